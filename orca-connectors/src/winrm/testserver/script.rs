//! The test server's command interpreter: a small, documented subset of cmd.exe and
//! PowerShell, enough to script every case the tests need.
//!
//! cmd (statements joined by `&`, `&&`, `||`; `@` and `( )` ignored; `>&2` / `1>&2` send a
//! statement's output to stderr; `>nul` discards it; `%NAME%` expands):
//! - `echo TEXT`, `echo.` — a line, in the shell's code page (65001 UTF-8, 437 OEM)
//! - `exit /b N`, `exit N` — end with N
//! - `hostname`, `cd` (working directory), `set NAME` (matching variables)
//! - `ping -n N 127.0.0.1 >nul` — silent sleep for N-1 seconds; `timeout /t N` sleeps N
//! - `for /l %i in (A,S,B) do @echo %i` — many lines, fast (1.5 M lines ≈ 10 MB)
//! - `more` — copies stdin to stdout until stdin ends
//! - `cmd /c REST`, `powershell ... -EncodedCommand B64` (UTF-16LE script, see below)
//! - anything else: cmd's "is not recognized" on stderr and exit 9009
//!
//! PowerShell (statements separated by `;` or new lines): `Write-Output X`, `Write-Host X`,
//! `Write-Error X` (CLIXML on stderr, written in several pieces), `Start-Sleep -Seconds N`,
//! `Start-Sleep -Milliseconds N`, `exit N`, `hostname`. The exit code is N for `exit N`, 1 if
//! the last statement failed, else 0.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::winrm::clixml;

/// The host name the server reports.
pub const HOSTNAME: &str = "WINRM-TEST01";
/// Exit code of a command stopped by Ctrl+C / terminate (`STATUS_CONTROL_C_EXIT`).
pub const EXIT_STOPPED: i32 = 0xC000013Au32 as i32;

/// Something a running command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes on stdout.
    Stdout(Vec<u8>),
    /// Bytes on stderr.
    Stderr(Vec<u8>),
    /// The command ended.
    Exit(i32),
}

/// What a command runs with.
#[derive(Debug)]
pub struct Ctx {
    /// Code page.
    pub codepage: u32,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: String,
    /// Stdin pieces; `None` = end of input.
    pub stdin: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
}

struct Run<'a> {
    ctx: Ctx,
    tx: &'a mpsc::Sender<Output>,
}

/// Encode text in `codepage` (65001 = UTF-8; 437 = OEM US for the characters tests use).
pub fn encode(codepage: u32, text: &str) -> Vec<u8> {
    if codepage != 437 {
        return text.as_bytes().to_vec();
    }
    text.chars()
        .map(|c| match c {
            c if c.is_ascii() => c as u8,
            'Ç' => 0x80,
            'ü' => 0x81,
            'é' => 0x82,
            'â' => 0x83,
            'ä' => 0x84,
            'à' => 0x85,
            'ç' => 0x87,
            'ê' => 0x88,
            'è' => 0x8A,
            'ï' => 0x8B,
            'î' => 0x8C,
            'Ä' => 0x8E,
            'É' => 0x90,
            'ô' => 0x93,
            'ö' => 0x94,
            'û' => 0x96,
            'ù' => 0x97,
            'Ö' => 0x99,
            'Ü' => 0x9A,
            'ß' => 0xE1,
            'ñ' => 0xA4,
            _ => b'?',
        })
        .collect()
}

/// Run `line` to the end (or until `cancel`), sending what it prints to `tx`; the last
/// message is always `Exit`.
pub async fn run(line: String, ctx: Ctx, tx: mpsc::Sender<Output>, cancel: CancellationToken) {
    let mut r = Run { ctx, tx: &tx };
    let code = tokio::select! {
        c = r.cmd_line(&line) => c,
        _ = cancel.cancelled() => EXIT_STOPPED,
    };
    let _ = tx.send(Output::Exit(code)).await;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Join {
    Always,
    And,
    Or,
}

fn split_cmd(line: &str) -> Vec<(Join, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut join = Join::Always;
    let mut quoted = false;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            quoted = !quoted;
        }
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        if !quoted && c == '&' && prev != '>' {
            out.push((join, std::mem::take(&mut cur)));
            if chars.get(i + 1) == Some(&'&') {
                join = Join::And;
                i += 1;
            } else {
                join = Join::Always;
            }
        } else if !quoted && c == '|' && chars.get(i + 1) == Some(&'|') {
            out.push((join, std::mem::take(&mut cur)));
            join = Join::Or;
            i += 1;
        } else {
            cur.push(c);
        }
        i += 1;
    }
    out.push((join, cur));
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Redirect {
    None,
    Stderr,
    Null,
}

fn strip_redirect(s: &str) -> (String, Redirect) {
    let mut s = s.to_string();
    let mut r = Redirect::None;
    for (pat, red) in [
        (" 1>&2", Redirect::Stderr),
        ("1>&2", Redirect::Stderr),
        (">&2", Redirect::Stderr),
        (" 2>nul", Redirect::None),
        (" >nul", Redirect::Null),
        (" > nul", Redirect::Null),
        (">nul", Redirect::Null),
    ] {
        if let Some(i) = s.to_ascii_lowercase().rfind(pat) {
            s.replace_range(i..i + pat.len(), "");
            if red != Redirect::None {
                r = red;
            }
        }
    }
    (s, r)
}

impl Run<'_> {
    async fn out(&self, red: Redirect, text: &str) {
        let bytes = encode(self.ctx.codepage, text);
        let _ = match red {
            Redirect::Null => return,
            Redirect::None => self.tx.send(Output::Stdout(bytes)).await,
            Redirect::Stderr => self.tx.send(Output::Stderr(bytes)).await,
        };
    }

    fn expand(&self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            match after.find('%') {
                Some(j) if j > 0 => {
                    let name = &after[..j];
                    match self
                        .ctx
                        .env
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push('%');
                            out.push_str(name);
                            out.push('%');
                        }
                    }
                    rest = &after[j + 1..];
                }
                _ => {
                    out.push('%');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    async fn cmd_line(&mut self, line: &str) -> i32 {
        let mut level = 0;
        for (join, stmt) in split_cmd(line) {
            let skip = match join {
                Join::Always => false,
                Join::And => level != 0,
                Join::Or => level == 0,
            };
            if skip {
                continue;
            }
            match Box::pin(self.statement(&stmt)).await {
                Flow::Next(l) => level = l,
                Flow::Exit(c) => return c,
            }
        }
        level
    }

    async fn statement(&mut self, stmt: &str) -> Flow {
        let s = stmt.trim_start().trim_start_matches('@');
        let s = s.trim_start_matches('(');
        let s = if s.trim_end().ends_with(')') && !s.contains('(') {
            s.trim_end().trim_end_matches(')')
        } else {
            s
        };
        let (s, red) = strip_redirect(s);
        let s = self.expand(&s);
        let lower = s.trim().to_ascii_lowercase();
        let word = lower.split_whitespace().next().unwrap_or("");
        if lower.is_empty() {
            return Flow::Next(0);
        }
        if lower == "echo." {
            self.out(red, "\r\n").await;
            return Flow::Next(0);
        }
        if word == "echo" {
            let text = s.trim_start()[4..].strip_prefix(' ').unwrap_or("");
            self.out(red, &format!("{text}\r\n")).await;
            return Flow::Next(0);
        }
        match word {
            "exit" => {
                let args: Vec<&str> = lower
                    .split_whitespace()
                    .skip(1)
                    .filter(|a| *a != "/b")
                    .collect();
                return Flow::Exit(args.first().and_then(|a| a.parse().ok()).unwrap_or(0));
            }
            "hostname" => {
                self.out(red, &format!("{HOSTNAME}\r\n")).await;
                return Flow::Next(0);
            }
            "cd" if lower == "cd" => {
                let cwd = self.ctx.cwd.clone();
                self.out(red, &format!("{cwd}\r\n")).await;
                return Flow::Next(0);
            }
            "set" => {
                let prefix = lower.split_whitespace().nth(1).unwrap_or("").to_string();
                let lines: Vec<String> = self
                    .ctx
                    .env
                    .iter()
                    .filter(|(k, _)| k.to_ascii_lowercase().starts_with(&prefix))
                    .map(|(k, v)| format!("{k}={v}\r\n"))
                    .collect();
                if lines.is_empty() {
                    self.out(Redirect::Stderr, "Environment variable not defined\r\n")
                        .await;
                    return Flow::Next(1);
                }
                self.out(red, &lines.concat()).await;
                return Flow::Next(0);
            }
            "ping" => {
                let n: u64 = lower
                    .split_whitespace()
                    .skip_while(|a| *a != "-n")
                    .nth(1)
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(4);
                tokio::time::sleep(Duration::from_secs(n.saturating_sub(1))).await;
                return Flow::Next(0);
            }
            "timeout" => {
                let n: u64 = lower
                    .split_whitespace()
                    .skip_while(|a| *a != "/t")
                    .nth(1)
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(n)).await;
                return Flow::Next(0);
            }
            "more" => {
                while let Some(Some(piece)) = self.ctx.stdin.recv().await {
                    let _ = self.tx.send(Output::Stdout(piece)).await;
                }
                return Flow::Next(0);
            }
            "for" => return Flow::Next(self.for_loop(&lower, red).await),
            "cmd" | "cmd.exe" => {
                let rest = s.trim_start()[word.len()..].trim_start();
                let rest = rest
                    .strip_prefix("/c")
                    .or_else(|| rest.strip_prefix("/C"))
                    .unwrap_or(rest);
                return Flow::Next(Box::pin(self.cmd_line(rest)).await);
            }
            "powershell" | "powershell.exe" | "pwsh" => {
                return Flow::Next(self.powershell(&s).await);
            }
            _ => {}
        }
        let msg = format!(
            "'{word}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
        );
        self.out(Redirect::Stderr, &msg).await;
        Flow::Next(9009)
    }

    async fn for_loop(&mut self, lower: &str, red: Redirect) -> i32 {
        // for /l %i in (A,S,B) do @echo %i
        let Some(open) = lower.find('(') else {
            return 1;
        };
        let Some(close) = lower.find(')') else {
            return 1;
        };
        let nums: Vec<i64> = lower[open + 1..close]
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        let [a, step, b] = nums[..] else { return 1 };
        if step == 0 || !lower[close..].contains("echo") {
            return 1;
        }
        let mut buf = String::with_capacity(70_000);
        let mut i = a;
        while (step > 0 && i <= b) || (step < 0 && i >= b) {
            buf.push_str(&i.to_string());
            buf.push_str("\r\n");
            if buf.len() >= 64 * 1024 {
                self.out(red, &buf).await;
                buf.clear();
            }
            i += step;
        }
        self.out(red, &buf).await;
        0
    }

    async fn powershell(&mut self, line: &str) -> i32 {
        let words: Vec<&str> = line.split_whitespace().collect();
        let enc = words.iter().position(|w| {
            let w = w.to_ascii_lowercase();
            w == "-encodedcommand" || w == "-enc" || w == "-e" || w == "-ec"
        });
        let Some(b64) = enc.and_then(|i| words.get(i + 1)) else {
            self.out(
                Redirect::Stderr,
                "this test server runs powershell only with -EncodedCommand\r\n",
            )
            .await;
            return 1;
        };
        let raw = match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(r) if r.len() % 2 == 0 => r,
            _ => {
                self.out(Redirect::Stderr, "Cannot process the command because the value of -EncodedCommand is not valid base64 UTF-16.\r\n").await;
                return 1;
            }
        };
        let units: Vec<u16> = raw
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let script = String::from_utf16_lossy(&units);
        let mut ok = true;
        let mut clixml_started = false;
        for stmt in script.split([';', '\n']) {
            let stmt = stmt.trim();
            if stmt.is_empty() {
                continue;
            }
            let lower = stmt.to_ascii_lowercase();
            let (cmd, arg) = match stmt.split_once(char::is_whitespace) {
                Some((c, a)) => (c.to_ascii_lowercase(), unquote(a.trim())),
                None => (lower.clone(), String::new()),
            };
            ok = true;
            match cmd.as_str() {
                "write-output" | "write-host" | "echo" => {
                    self.out(Redirect::None, &format!("{arg}\r\n")).await
                }
                "hostname" => self.out(Redirect::None, &format!("{HOSTNAME}\r\n")).await,
                "exit" => {
                    if clixml_started {
                        let _ = self.tx.send(Output::Stderr(b"</Objs>".to_vec())).await;
                    }
                    return arg.parse().unwrap_or(0);
                }
                "start-sleep" => {
                    let parts: Vec<String> = arg
                        .split_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect();
                    let ms = match parts.as_slice() {
                        [flag, n] if flag.starts_with("-m") => n.parse::<f64>().unwrap_or(0.0),
                        [flag, n] if flag.starts_with("-s") => {
                            n.parse::<f64>().unwrap_or(0.0) * 1000.0
                        }
                        [n] => n.parse::<f64>().unwrap_or(0.0) * 1000.0,
                        _ => 0.0,
                    };
                    tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                }
                "write-error" => {
                    self.clixml_error(&mut clixml_started, &arg).await;
                    ok = false;
                }
                _ => {
                    let msg = format!(
                        "{cmd} : The term '{cmd}' is not recognized as the name of a cmdlet, function, script file, or operable program.\r\n"
                    );
                    self.clixml_error(&mut clixml_started, &msg).await;
                    ok = false;
                }
            }
        }
        if clixml_started {
            let _ = self.tx.send(Output::Stderr(b"</Objs>".to_vec())).await;
        }
        if ok { 0 } else { 1 }
    }

    /// Write one CLIXML error record in three pieces with pauses, so a client sees it split
    /// across Receive answers.
    async fn clixml_error(&mut self, started: &mut bool, text: &str) {
        let mut doc = String::new();
        if !*started {
            doc.push_str("#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">");
            *started = true;
        }
        let text = if text.ends_with("\r\n") {
            text.to_string()
        } else {
            format!("{text}\r\n")
        };
        doc.push_str(&clixml::encode_error_record(&text));
        let bytes = encode(self.ctx.codepage, &doc);
        let third = bytes.len() / 3;
        for piece in [
            &bytes[..third],
            &bytes[third..2 * third],
            &bytes[2 * third..],
        ] {
            let _ = self.tx.send(Output::Stderr(piece.to_vec())).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

enum Flow {
    Next(i32),
    Exit(i32),
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('\'') && s.ends_with('\'')) || (s.starts_with('"') && s.ends_with('"')))
    {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exec(line: &str, codepage: u32) -> (Vec<u8>, Vec<u8>, i32) {
        let (tx, mut rx) = mpsc::channel(16);
        let (_stdin_tx, stdin) = mpsc::unbounded_channel();
        let mut env = BTreeMap::new();
        env.insert("GREETING".to_string(), "hi".to_string());
        let ctx = Ctx {
            codepage,
            env,
            cwd: "C:\\Users\\test".into(),
            stdin,
        };
        tokio::spawn(run(line.to_string(), ctx, tx, CancellationToken::new()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            match rx.recv().await.unwrap() {
                Output::Stdout(b) => out.extend(b),
                Output::Stderr(b) => err.extend(b),
                Output::Exit(c) => return (out, err, c),
            }
        }
    }

    #[tokio::test]
    async fn cmd_subset() {
        assert_eq!(
            exec("echo a& echo b>&2& exit /b 3", 65001).await,
            (b"a\r\n".to_vec(), b"b\r\n".to_vec(), 3)
        );
        assert_eq!(
            exec("echo %GREETING% %NOPE%", 65001).await.0,
            b"hi %NOPE%\r\n"
        );
        assert_eq!(exec("exit /b 1 || echo no", 65001).await.2, 1);
        assert_eq!(exec("bogus && echo no", 65001).await.2, 9009);
        assert_eq!(
            exec("for /l %i in (1,1,3) do @echo %i", 65001).await.0,
            b"1\r\n2\r\n3\r\n"
        );
        assert_eq!(exec("echo h\u{e9}", 437).await.0, b"h\x82\r\n");
        assert_eq!(
            exec("echo h\u{e9}", 65001).await.0,
            "h\u{e9}\r\n".as_bytes()
        );
        assert_eq!(exec("cmd /c echo x", 65001).await.0, b"x\r\n");
    }

    #[tokio::test]
    async fn powershell_subset() {
        let line = crate::winrm::protocol::powershell_command(
            "Write-Output 'x'; Write-Error 'bad'; exit 4",
        );
        let (out, err, code) = exec(&line, 65001).await;
        assert_eq!((out.as_slice(), code), (&b"x\r\n"[..], 4));
        let mut d = clixml::ClixmlDecoder::new();
        let mut text = d.push(&err);
        text.extend(d.finish());
        assert_eq!(text, b"bad\r\n");
    }
}
