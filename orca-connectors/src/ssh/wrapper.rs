//! How a command is started on the remote host so that it can be stopped for real, and how it
//! is stopped.
//!
//! # The scheme
//! OpenSSH's `sshd` starts every non-PTY session command in a new session (`setsid()`), so the
//! process that runs the command is the leader of its own process group. The connector runs
//!
//! ```text
//! exec /bin/sh -c '<prelude>; exec <shell> -c "$1"' /bin/sh '<user command>'
//! ```
//! through the login shell. The prelude reads the process group of `$$` from
//! `/proc/$$/stat` (or `ps` where there is no `/proc`) and writes one marker line
//! `\x1eorca-pg:<pid>:<pgid>\n` to stderr *before* the user command starts, so the marker is
//! always the first thing on stderr; the connector strips it from the output. It then exports
//! the environment (`ORCA_EXECUTION_ID` and the command's variables: exporting works on every
//! server, unlike SSH `env` requests, which sshd refuses unless `AcceptEnv` lists the name) and
//! `exec`s the user's shell, so the pid (and the group) stay the same. For `sh` commands in a
//! shell that leads its process group (the usual case under sshd) it `eval`s the command in
//! that shell instead (the group to stop is the same, and one exec of `/bin/sh` less makes a
//! short command about a sixth cheaper for the server).
//!
//! To stop it, the connector opens a second channel on the same connection and runs a small
//! script that sends `TERM` to the whole group (`kill -TERM -<pgid>`; no `--`, which dash's
//! `kill` rejects), waits up to the grace
//! period for the group to disappear, sends `KILL` if it did not, and prints whether the group
//! is gone (`gone`, `term`, `killed`) or still there (`alive`): that is `kill_confirmed`. If the
//! shell was not a group leader (a server that does not start sessions with `setsid`), only
//! the pid is signalled. If no marker arrived (no `/bin/sh` on the server), the connector falls
//! back to SSH `signal` requests on the channel, which reach only the top process.

use std::collections::BTreeMap;
use std::time::Duration;

use orca_core::model::Shell;
use orca_core::{Error, Result};

/// The first byte of the marker line (ASCII record separator, never first in normal stderr of
/// the prelude).
const MARKER_PREFIX: &[u8] = b"\x1eorca-pg:";
/// The longest marker line we accept.
const MARKER_MAX: usize = 64;

/// Quote `s` for a POSIX shell: wrap in single quotes, `'` becomes `'\''`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Whether `name` is a valid environment variable name.
fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The remote command line that runs `command` under `shell` as described in the module docs.
pub(crate) fn wrap(command: &str, shell: Shell, env: &BTreeMap<String, String>) -> Result<String> {
    let shell_path = match shell {
        Shell::Default | Shell::Sh => "/bin/sh",
        Shell::Bash => "bash",
        other => {
            return Err(Error::new(
                orca_core::ErrorKind::Unsupported,
                format!(
                    "the ssh connector runs POSIX shells (sh, bash), not '{}': use a windows \
                     system for cmd/powershell",
                    other.as_str()
                ),
            ));
        }
    };
    if command.contains('\0') {
        return Err(Error::invalid("the command contains a NUL byte"));
    }
    let mut prelude = String::from(
        "g=; { read -r _ _ _ _ g _ </proc/$$/stat; } 2>/dev/null; \
         [ -n \"$g\" ] || { g=$(ps -o pgid= -p $$ 2>/dev/null); g=${g##* }; }; \
         printf '\\036orca-pg:%s:%s\\n' \"$$\" \"$g\" >&2; ",
    );
    for (k, v) in env {
        if !valid_env_name(k) {
            return Err(Error::invalid(format!(
                "environment variable name '{k}' is not valid: use letters, digits and '_', \
                 not starting with a digit"
            )));
        }
        if v.contains('\0') {
            return Err(Error::invalid(format!(
                "environment variable '{k}' contains a NUL byte"
            )));
        }
        prelude.push_str(&format!("export {k}={}; ", quote(v)));
    }
    if shell_path == "/bin/sh" {
        // The common case: this shell leads the session's process group, so the whole group
        // is what gets stopped, and the command can run right here (`eval`) instead of in one
        // more `/bin/sh`: one exec less per command (about 0.5 ms of server CPU). Elsewhere
        // `exec` keeps the command on the pid that the marker named.
        prelude.push_str(
            "if [ \"$g\" = \"$$\" ]; then orca_c=$1; shift; unset g; \
             eval \"unset orca_c; $orca_c\"; else exec /bin/sh -c \"$1\"; fi",
        );
    } else {
        prelude.push_str(&format!("exec {shell_path} -c \"$1\""));
    }
    Ok(format!(
        "exec /bin/sh -c {} /bin/sh {}",
        quote(&prelude),
        quote(command)
    ))
}

/// What the marker said about the remote process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RemoteProcess {
    /// The pid of the shell (after `exec`, the command).
    pub pid: u32,
    /// Its process group, if known.
    pub pgid: Option<u32>,
}

impl RemoteProcess {
    /// What `kill` is given: `-PGID` when the process leads its own group, else the pid.
    pub(crate) fn kill_target(&self) -> String {
        match self.pgid {
            Some(g) if g == self.pid && g > 1 => format!("-{g}"),
            _ => self.pid.to_string(),
        }
    }
}

/// Strips the marker line from the start of stderr.
#[derive(Debug, Default)]
pub(crate) struct MarkerParser {
    buf: Vec<u8>,
    done: bool,
    found: Option<RemoteProcess>,
}

impl MarkerParser {
    /// Whether the parser has decided (marker found, or stderr does not start with one).
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }
    /// The marker, if one was found.
    pub(crate) fn process(&self) -> Option<RemoteProcess> {
        self.found
    }
    /// Feed stderr bytes; returns what should be forwarded as stderr output.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        if self.done {
            return data.to_vec();
        }
        self.buf.extend_from_slice(data);
        let n = self.buf.len().min(MARKER_PREFIX.len());
        if self.buf[..n] != MARKER_PREFIX[..n] {
            return self.give_up();
        }
        if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let line = &self.buf[MARKER_PREFIX.len().min(nl)..nl];
            match parse_marker(line) {
                Some(p) => {
                    self.found = Some(p);
                    self.done = true;
                    self.buf.drain(..=nl).for_each(drop);
                    std::mem::take(&mut self.buf)
                }
                None => self.give_up(),
            }
        } else if self.buf.len() > MARKER_MAX {
            self.give_up()
        } else {
            Vec::new()
        }
    }
    /// Stop looking; returns whatever was held back.
    pub(crate) fn give_up(&mut self) -> Vec<u8> {
        self.done = true;
        std::mem::take(&mut self.buf)
    }
}

fn parse_marker(line: &[u8]) -> Option<RemoteProcess> {
    let s = std::str::from_utf8(line).ok()?;
    let (pid, pgid) = s.split_once(':')?;
    let pid: u32 = pid.trim().parse().ok()?;
    let pgid = pgid.trim().parse().ok();
    (pid > 1).then_some(RemoteProcess { pid, pgid })
}

/// The script that stops `p`: TERM, wait up to `grace`, KILL, report.
///
/// "Gone" means no process of the group is left that is not a zombie: where `/proc` exists the
/// script scans it (a zombie still answers `kill -0`, and some init processes never reap
/// orphans); elsewhere it asks `kill -0`.
pub(crate) fn kill_script(p: RemoteProcess, grace: Duration) -> String {
    let t = p.kill_target();
    let g = if t.starts_with('-') {
        p.pgid.map(|g| g.to_string()).unwrap_or_default()
    } else {
        String::new()
    };
    let ticks = (grace.as_millis() / 100).max(1);
    let script = format!(
        "t={t}; G={g}; P={pid}; \
         a() {{ if [ -r /proc/self/stat ]; then \
           for f in /proc/[0-9]*/stat; do l=; {{ read -r l < \"$f\"; }} 2>/dev/null || continue; \
             set -- ${{l##*\") \"}}; \
             if [ -n \"$G\" ]; then [ \"$3\" = \"$G\" ]; else [ \"$f\" = /proc/$P/stat ]; fi \
               && [ \"$1\" != Z ] && return 0; \
           done; return 1; fi; kill -0 $t 2>/dev/null; }}; \
         a || {{ echo gone; exit 0; }}; \
         kill -TERM $t 2>/dev/null; n=0; \
         while a; do n=$((n+1)); [ $n -gt {ticks} ] && break; \
         sleep 0.1 2>/dev/null || sleep 1; done; \
         a || {{ echo term; exit 0; }}; \
         kill -KILL $t 2>/dev/null; n=0; \
         while a; do n=$((n+1)); [ $n -gt 30 ] && {{ echo alive; exit 0; }}; \
         sleep 0.1 2>/dev/null || sleep 1; done; echo killed",
        pid = p.pid
    );
    format!("exec /bin/sh -c {}", quote(&script))
}

/// How the kill script's output reads: `Some(true)` gone, `Some(false)` still alive.
pub(crate) fn kill_confirmed(output: &str) -> Option<bool> {
    match output.trim() {
        "gone" | "term" | "killed" => Some(true),
        "alive" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn wrap_rejects_bad_env_and_windows_shells() {
        let mut env = BTreeMap::new();
        env.insert("1BAD".to_string(), "x".to_string());
        let e = wrap("true", Shell::Sh, &env).unwrap_err();
        assert_eq!(e.kind(), orca_core::ErrorKind::InvalidInput);
        assert!(e.message().contains("1BAD"));
        let e = wrap("dir", Shell::Cmd, &BTreeMap::new()).unwrap_err();
        assert_eq!(e.kind(), orca_core::ErrorKind::Unsupported);
    }

    #[test]
    fn marker_is_stripped_across_chunks() {
        let mut p = MarkerParser::default();
        assert!(p.feed(b"\x1eorca-").is_empty());
        assert!(!p.is_done());
        let rest = p.feed(b"pg:4242:4242\nhello");
        assert_eq!(rest, b"hello");
        assert_eq!(
            p.process(),
            Some(RemoteProcess {
                pid: 4242,
                pgid: Some(4242)
            })
        );
        assert_eq!(p.feed(b" world"), b" world");
        assert_eq!(p.process().map(|p| p.kill_target()), Some("-4242".into()));
    }

    #[test]
    fn stderr_without_marker_passes_through() {
        let mut p = MarkerParser::default();
        assert_eq!(p.feed(b"sh: not found\n"), b"sh: not found\n");
        assert!(p.is_done());
        assert_eq!(p.process(), None);
    }

    #[test]
    fn non_leader_is_killed_by_pid() {
        let p = RemoteProcess {
            pid: 10,
            pgid: Some(7),
        };
        assert_eq!(p.kill_target(), "10");
        assert!(kill_script(p, Duration::from_secs(1)).contains("t=10;"));
        assert_eq!(kill_confirmed("killed\n"), Some(true));
        assert_eq!(kill_confirmed("alive"), Some(false));
        assert_eq!(kill_confirmed(""), None);
    }

    #[test]
    fn kill_script_stops_a_local_process_group() {
        use std::os::unix::process::CommandExt;
        // A group leader shell with a child, like a remote command under sshd.
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 600; exit 0"])
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let pid = child.id();
        let p = RemoteProcess {
            pid,
            pgid: Some(pid),
        };
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(kill_script(p, Duration::from_secs(2)))
            .output()
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "term");
        assert_eq!(
            kill_confirmed(&String::from_utf8_lossy(&out.stdout)),
            Some(true)
        );
        assert!(!status.success());
        // Nothing of the group is left.
        let again = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(kill_script(p, Duration::from_secs(1)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "gone");
    }

    /// Runs `wrap(command)` in a local `/bin/sh`, as its own process group or not; returns
    /// (pid, exit code, stdout, marker).
    fn run_wrapped(command: &str, leader: bool) -> (u32, i32, String, Option<RemoteProcess>) {
        use std::os::unix::process::CommandExt;
        let cmd = wrap(command, Shell::Sh, &BTreeMap::new()).unwrap();
        let mut c = std::process::Command::new("/bin/sh");
        c.arg("-c").arg(&cmd);
        c.stdout(std::process::Stdio::piped());
        c.stderr(std::process::Stdio::piped());
        if leader {
            c.process_group(0);
        }
        let child = c.spawn().unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let mut p = MarkerParser::default();
        p.feed(&out.stderr);
        (
            pid,
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            p.process(),
        )
    }

    #[test]
    fn the_command_keeps_the_marker_pid_and_a_clean_shell() {
        // Leader: the command is evaluated in the marked shell; otherwise that shell execs
        // /bin/sh. Either way: same pid, no positional parameters, no prelude variables.
        let cmd = "echo \"$#:${orca_c-u}:${g-u}:$$\"; exit 3";
        for leader in [true, false] {
            let (pid, code, out, marker) = run_wrapped(cmd, leader);
            assert_eq!(code, 3, "leader={leader}");
            assert_eq!(out, format!("0:u:u:{pid}\n"), "leader={leader}");
            let m = marker.expect("marker");
            assert_eq!(m.pid, pid);
            assert_eq!(m.pgid == Some(pid), leader);
        }
        // Syntax errors and unknown commands behave as in `sh -c`.
        let (_, code, _, _) = run_wrapped("if then", true);
        assert_eq!(code, 2);
        let (_, code, _, _) = run_wrapped("no-such-command-orca", true);
        assert_eq!(code, 127);
        // Multi-line commands and here-documents survive.
        let (_, code, out, _) = run_wrapped("cat <<EOF\nline 'one'\nEOF\necho two", true);
        assert_eq!((code, out.as_str()), (0, "line 'one'\ntwo\n"));
    }

    #[test]
    fn wrapped_command_runs_in_a_local_sh() {
        // The wrapper is plain POSIX sh: run it here and check the marker and the environment.
        let mut env = BTreeMap::new();
        env.insert("ORCA_EXECUTION_ID".to_string(), "ex'1".to_string());
        let cmd = wrap("echo \"$ORCA_EXECUTION_ID\"; echo err >&2", Shell::Sh, &env).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ex'1\n");
        let mut p = MarkerParser::default();
        let rest = p.feed(&out.stderr);
        assert_eq!(rest, b"err\n");
        assert!(p.process().is_some_and(|p| p.pid > 1 && p.pgid.is_some()));
    }
}
