//! Helpers of the end-to-end test: run the `orca` binary in a private home and data directory,
//! start `orca serve` and read its banner, start a real OpenSSH sshd.

#![allow(dead_code)]

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The sshd test user (the same as the connector tests' harness).
pub const SSH_USER: &str = "orca-test";
/// Its password.
pub const SSH_PASSWORD: &str = "orca-Test-pw-7319";

/// Whether a missing peer must fail the test (CI).
pub fn require_all() -> bool {
    std::env::var("ORCA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Say loudly that a part is skipped.
pub fn skip(why: &str) {
    eprintln!(
        "\n*** SKIPPED (set up the peer, or it fails under ORCA_TEST_REQUIRE_ALL=1): {why} ***\n"
    );
}

/// A port nobody listens on.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// The permission bits of a file.
pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// What a command did.
pub struct Out {
    /// Exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Exit code 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A private home and data directory for the `orca` binary.
pub struct Orca {
    dir: tempfile::TempDir,
}

impl Orca {
    /// Fresh directories.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Orca { dir }
    }

    /// The private directory (holds `home/` and `data/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The session file of `orca login`.
    pub fn credentials(&self) -> PathBuf {
        self.dir.path().join("home/.config/orca/credentials.json")
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_orca"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path().join("home"))
            .env("ORCA_DATA_DIR", self.data_dir())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("RUST_LOG");
        for v in [
            "ORCA_TOKEN",
            "ORCA_SERVER",
            "ORCA_CONFIG",
            "ORCA_CREDENTIALS",
            "ORCA_ADMIN_PASSWORD",
            "ORCA_OUTPUT",
        ] {
            c.env_remove(v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// Run to completion with `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Out {
        let mut c = self.command(args, env);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn orca");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        wait_output(child)
    }

    /// Run a client verb against `server`.
    pub fn run_in(&self, server: &Server, args: &[&str], stdin: &str) -> Out {
        self.run(args, stdin, &[("ORCA_SERVER", &server.url)])
    }

    /// Start a client verb against `server` without waiting.
    pub fn spawn_in(&self, server: &Server, args: &[&str]) -> Child {
        self.command(args, &[("ORCA_SERVER", &server.url)])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn orca")
    }

    /// Start a long-running verb (its output goes to a log file in the directory).
    pub fn spawn_with(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", args[0]))).unwrap();
        self.command(args, env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn orca")
    }
}

/// Wait for a child and collect its output.
pub fn wait_output(child: Child) -> Out {
    let o = child.wait_with_output().expect("wait for orca");
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// SIGTERM, then wait up to `timeout` (SIGKILL after); the exit code.
pub fn terminate(mut child: Child, timeout: Duration) -> Option<i32> {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `orca serve`.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The one-time admin password, on first start.
    pub password: Option<String>,
    /// What the banner says about start-up time.
    pub started_ms: u64,
}

impl Server {
    /// Start `orca serve` on a free port and wait for its banner.
    pub fn start(orca: &Orca, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_at(orca, &format!("127.0.0.1:{}", free_port()), extra, env)
    }

    /// Start `orca serve` on `addr` and wait for its banner.
    pub fn start_at(orca: &Orca, addr: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let addr = addr.to_string();
        let mut args = vec!["serve", "--listen", addr.as_str()];
        args.extend_from_slice(extra);
        let log = std::fs::File::create(orca.dir.path().join("serve.log")).unwrap();
        let mut child = orca
            .command(&args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn orca serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Keep draining so the server never blocks on a full pipe.
                    continue;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = Vec::new();
        let mut ready = false;
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    lines.push(l);
                    if lines.iter().any(|l| l.starts_with("  Try:")) {
                        ready = true;
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(st)) = child.try_wait() {
                        let log = std::fs::read_to_string(orca.dir.path().join("serve.log"))
                            .unwrap_or_default();
                        panic!("orca serve exited ({st}):\n{}\n{log}", lines.join("\n"));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if !ready {
            let _ = child.kill();
            let st = child.wait();
            let log =
                std::fs::read_to_string(orca.dir.path().join("serve.log")).unwrap_or_default();
            panic!(
                "orca serve printed no banner ({st:?}):\n{}\n{log}",
                lines.join("\n")
            );
        }
        let started_ms = lines
            .iter()
            .find_map(|l| {
                l.split("started in ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(u64::MAX);
        let password = lines
            .iter()
            .position(|l| l.contains("one-time password"))
            .and_then(|i| lines[i + 1..].iter().find(|l| !l.trim().is_empty()))
            .map(|l| l.trim().to_string());
        Server {
            child: Some(child),
            url: format!("http://{addr}"),
            addr,
            password,
            started_ms,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("a running server")
    }

    /// SIGTERM and wait; the exit code.
    pub fn terminate(mut self, timeout: Duration) -> Option<i32> {
        self.child.take().and_then(|c| terminate(c, timeout))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A real sshd on a loopback port with a fresh ed25519 host key; password login for
/// [`SSH_USER`]. Killed on drop.
pub struct Sshd {
    child: Child,
    _dir: tempfile::TempDir,
    /// Its port.
    pub port: u16,
    /// `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:...` of its host key.
    pub fingerprint: String,
}

fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Sshd {
    /// Start one, or `None` after a loud skip (a panic under `ORCA_TEST_REQUIRE_ALL=1`).
    pub fn start() -> Option<Sshd> {
        match Self::try_start() {
            Ok(s) => Some(s),
            Err(e) if require_all() => panic!("a real sshd is required: {e}"),
            Err(e) => {
                skip(&format!("no real sshd: {e}"));
                None
            }
        }
    }

    fn try_start() -> Result<Sshd, String> {
        if !Path::new("/usr/sbin/sshd").exists() {
            return Err("/usr/sbin/sshd is missing (apt-get install openssh-server)".into());
        }
        if nix::unistd::geteuid().as_raw() != 0 {
            return Err("sshd tests need root".into());
        }
        if sh(Command::new("id").arg(SSH_USER)).is_err() {
            sh(Command::new("useradd").args(["-m", "-s", "/bin/sh", SSH_USER]))?;
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        chpasswd
            .stdin
            .take()
            .ok_or("chpasswd")?
            .write_all(format!("{SSH_USER}:{SSH_PASSWORD}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        chpasswd.wait().map_err(|e| e.to_string())?;
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let key = dir.path().join("host_ed25519");
        sh(Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-t", "ed25519", "-f"])
            .arg(&key))?;
        let fp = sh(Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub")))?;
        let fingerprint = fp
            .split_whitespace()
            .nth(1)
            .ok_or("ssh-keygen printed no fingerprint")?
            .to_string();
        let port = free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}/sshd.pid\n\
                 UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin no\nAllowUsers {SSH_USER}\nStrictModes no\nUseDNS no\n\
                 MaxStartups 100\n",
                key.display(),
                dir.path().display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut sshd = Sshd {
            child,
            _dir: dir,
            port,
            algorithm: "ssh-ed25519".into(),
            fingerprint,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || matches!(sshd.child.try_wait(), Ok(Some(_))) {
                return Err("sshd did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(sshd)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drops a PostgreSQL schema when dropped (best effort, through `psql`).
pub struct DropSchema(pub String, pub String);

impl Drop for DropSchema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.0)
            .args([
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.1),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A blocking client of a server's HTTP API (for what the CLI has no verb for).
pub struct Api {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client of `server`, not logged in.
    pub fn new(server: &Server) -> Api {
        Api {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime"),
            http: reqwest::Client::new(),
            base: server.url.clone(),
            token: None,
        }
    }

    /// Log in as `user`; later calls carry its access token.
    pub fn login(&mut self, user: &str, password: &str) {
        let (status, body) = self.call(
            "POST",
            "/api/v1/auth/login",
            Some(serde_json::json!({"username": user, "password": password})),
        );
        assert_eq!(status, 200, "login as {user}: {body}");
        self.token = Some(body["access_token"].as_str().expect("a token").to_string());
    }

    /// Send a request; the status and the JSON answer (`null` if none).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let (status, bytes) = self.send(method, path, body);
        let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, v)
    }

    /// Send a request; the status and the raw answer.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, Vec<u8>) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.rt.block_on(async {
            let r = req.send().await.expect("the server answers");
            let status = r.status().as_u16();
            (status, r.bytes().await.expect("a body").to_vec())
        })
    }
}
