//! Test harness: a real OpenSSH `sshd` on a free loopback port, with a temporary config, fresh
//! host keys and a dedicated test user (`orca-test`, shell `/bin/sh`, no rc files).
//!
//! Needs root (sshd must switch to the test user; password auth reads /etc/shadow). As root the
//! harness creates the user if it is missing:
//! `useradd -m -s /bin/sh orca-test` and sets its password with `chpasswd`.
//! Without `/usr/sbin/sshd` or root the tests say so loudly and skip, unless
//! `ORCA_TEST_REQUIRE_ALL=1`, where they fail.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use orca_core::ids::{HostKeyId, SystemId};
use orca_core::model::{Credential, Health, HostKey, HostKeyPolicy, System, SystemType};
use orca_core::{Clock, HostKeyStore, Result, SystemClock, Target};
use secrecy::SecretString;

/// The test user.
pub const USER: &str = "orca-test";
/// Its password (set by the harness).
pub const PASSWORD: &str = "orca-Test-pw-7319";
/// The passphrase of encrypted test keys.
pub const PASSPHRASE: &str = "orca key passphrase";
const SSHD: &str = "/usr/sbin/sshd";

/// Whether a missing peer must fail the test (CI).
pub fn require_all() -> bool {
    std::env::var("ORCA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

fn skip<T>(why: &str) -> Option<T> {
    if require_all() {
        panic!("real sshd unavailable and ORCA_TEST_REQUIRE_ALL=1: {why}");
    }
    eprintln!("\n*** SKIPPED: no real sshd for this test: {why} ***\n");
    None
}

fn run(cmd: &mut Command) -> std::result::Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Create / prepare the test user once per process.
fn prepare_user() -> std::result::Result<(), String> {
    static READY: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            if !Path::new(SSHD).exists() {
                return Err(format!(
                    "{SSHD} is not installed (apt-get install openssh-server)"
                ));
            }
            let uid = run(Command::new("id").arg("-u"))?;
            if uid.trim() != "0" {
                return Err("the sshd tests need root (sshd switches to the test user)".into());
            }
            if run(Command::new("id").arg(USER)).is_err() {
                run(Command::new("useradd").args(["-m", "-s", "/bin/sh", USER]))?;
            }
            let mut child = Command::new("chpasswd")
                .stdin(Stdio::piped())
                .spawn()
                .map_err(|e| format!("chpasswd: {e}"))?;
            child
                .stdin
                .take()
                .ok_or("chpasswd stdin")?
                .write_all(format!("{USER}:{PASSWORD}\n").as_bytes())
                .map_err(|e| e.to_string())?;
            let st = child.wait().map_err(|e| e.to_string())?;
            if !st.success() {
                return Err("chpasswd failed".into());
            }
            let home = run(
                Command::new("sh").args(["-c", &format!("getent passwd {USER} | cut -d: -f6")])
            )?;
            for rc in [".bashrc", ".profile", ".bash_logout", ".bash_profile"] {
                let _ = fs::remove_file(Path::new(home.trim()).join(rc));
            }
            // sshd's privilege separation directory.
            let _ = fs::create_dir_all("/run/sshd");
            Ok(())
        })
        .clone()
}

/// sshd variations.
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// Authenticate passwords through PAM keyboard-interactive only (no `password` method).
    pub kbd_interactive_only: bool,
    /// `MaxSessions`.
    pub max_sessions: u32,
    /// Host key types to generate (`ed25519`, `ecdsa`, `rsa`).
    pub host_keys: Vec<&'static str>,
    /// Extra config lines.
    pub extra: Vec<String>,
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            kbd_interactive_only: false,
            max_sessions: 10,
            host_keys: vec!["ed25519"],
            extra: vec![],
        }
    }
}

/// A running sshd. Killed and its directory removed on drop.
pub struct Sshd {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its temporary directory (config, keys, log).
    pub dir: PathBuf,
    /// (algorithm, `SHA256:` fingerprint) of each host key.
    pub host_keys: Vec<(String, String)>,
    keys: Mutex<HashMap<String, String>>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

impl Sshd {
    /// Start with default options, or `None` (skipped loudly) if sshd or root is missing.
    pub fn start() -> Option<Sshd> {
        Self::start_with(SshdOptions::default())
    }

    /// Start with `opts`.
    pub fn start_with(opts: SshdOptions) -> Option<Sshd> {
        if let Err(e) = prepare_user() {
            return skip(&e);
        }
        let dir = std::env::temp_dir().join(format!(
            "orca-sshd-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create sshd dir");
        // Readable by the test user (sshd reads authorized_keys as the user).
        run(Command::new("chmod").args(["755"]).arg(&dir)).expect("chmod");
        let mut host_keys = Vec::new();
        let mut host_key_lines = String::new();
        for t in &opts.host_keys {
            let path = dir.join(format!("ssh_host_{t}_key"));
            let mut c = Command::new("ssh-keygen");
            c.args(["-q", "-N", "", "-t", t]).arg("-f").arg(&path);
            if *t == "rsa" {
                c.args(["-b", "2048"]);
            }
            run(&mut c).expect("ssh-keygen host key");
            host_keys.push(fingerprint_of(&path.with_extension("pub")));
            host_key_lines.push_str(&format!("HostKey {}\n", path.display()));
        }
        fs::write(dir.join("authorized_keys"), "").expect("authorized_keys");
        run(Command::new("chmod")
            .arg("644")
            .arg(dir.join("authorized_keys")))
        .expect("chmod");
        let auth = if opts.kbd_interactive_only {
            "UsePAM yes\nPasswordAuthentication no\nKbdInteractiveAuthentication yes\n"
        } else {
            "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
        };
        for _attempt in 0..5 {
            let port = free_port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\n{host_key_lines}\
                 PidFile {dir}/sshd.pid\nAuthorizedKeysFile {dir}/authorized_keys\n\
                 StrictModes no\n{auth}PubkeyAuthentication yes\nPermitRootLogin no\n\
                 AllowUsers {USER}\nMaxStartups 2000\nMaxSessions {ms}\nMaxAuthTries 10\n\
                 UseDNS no\nPrintMotd no\nLoginGraceTime 60\nLogLevel INFO\n{extra}\n",
                dir = dir.display(),
                ms = opts.max_sessions,
                extra = opts.extra.join("\n"),
            );
            fs::write(dir.join("sshd_config"), config).expect("sshd_config");
            let log = fs::File::create(dir.join("sshd.log")).expect("sshd.log");
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(dir.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Sshd {
                        child,
                        port,
                        dir,
                        host_keys,
                        keys: Mutex::new(HashMap::new()),
                    });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let log = fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
            if !log.contains("Address already in use") {
                panic!("sshd did not start: {log}");
            }
        }
        panic!("sshd could not find a free port");
    }

    /// The pid of the listening sshd.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The sshd log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// A client private key of type `kind` (`ed25519`, `ecdsa`, `rsa`), optionally encrypted
    /// with [`PASSPHRASE`], authorized for the test user. Generated once per sshd.
    pub fn client_key(&self, kind: &str, encrypted: bool) -> String {
        let name = format!("id_{kind}{}", if encrypted { "_enc" } else { "" });
        let mut keys = self.keys.lock().unwrap();
        if let Some(k) = keys.get(&name) {
            return k.clone();
        }
        let path = self.dir.join(&name);
        let mut c = Command::new("ssh-keygen");
        c.args([
            "-q",
            "-t",
            kind,
            "-N",
            if encrypted { PASSPHRASE } else { "" },
        ])
        .arg("-f")
        .arg(&path);
        if kind == "rsa" {
            c.args(["-b", "2048"]);
        }
        run(&mut c).expect("ssh-keygen client key");
        let public = fs::read_to_string(path.with_extension("pub")).unwrap();
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("authorized_keys"))
            .unwrap();
        f.write_all(public.as_bytes()).unwrap();
        let private = fs::read_to_string(&path).unwrap();
        keys.insert(name, private.clone());
        private
    }

    /// A linux system for this sshd with `policy`.
    pub fn system(&self, name: &str, policy: HostKeyPolicy) -> System {
        system_at(name, "127.0.0.1", self.port, policy)
    }

    /// A target with a password credential, the host key pinned in a fresh store.
    pub fn target(&self, name: &str) -> Target {
        let system = self.system(name, HostKeyPolicy::Strict);
        let store = MemHostKeys::new();
        for (alg, fp) in &self.host_keys {
            store.pin(system.id, alg, fp);
        }
        Target {
            system,
            credential: password(PASSWORD),
            execution_id: None,
            host_keys: Some(store),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A linux system at `host:port`.
pub fn system_at(name: &str, host: &str, port: u16, policy: HostKeyPolicy) -> System {
    let now = SystemClock.now();
    System {
        id: SystemId::new(),
        name: name.to_string(),
        hostname: host.to_string(),
        port,
        system_type: SystemType::Linux,
        username: USER.to_string(),
        credential: None,
        tags: vec![],
        active: true,
        health: Health::default(),
        host_key_policy: policy,
        options: BTreeMap::new(),
        created_at: now,
        updated_at: now,
    }
}

/// A password credential.
pub fn password(p: &str) -> Credential {
    Credential::Password(SecretString::from(p.to_string()))
}

/// A private key credential.
pub fn private_key(key: &str, passphrase: Option<&str>) -> Credential {
    Credential::PrivateKey {
        key: SecretString::from(key.to_string()),
        passphrase: passphrase.map(|p| SecretString::from(p.to_string())),
    }
}

/// `(algorithm, SHA256 fingerprint)` of a public key file, as ssh-keygen prints it.
pub fn fingerprint_of(pub_path: &Path) -> (String, String) {
    let alg = fs::read_to_string(pub_path)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let out = run(Command::new("ssh-keygen")
        .args(["-E", "sha256", "-l", "-f"])
        .arg(pub_path))
    .expect("ssh-keygen -l");
    let fp = out.split_whitespace().nth(1).unwrap().to_string();
    (alg, fp)
}

/// An in-memory host key store; `pin_first` is atomic (one mutex).
#[derive(Debug, Default)]
pub struct MemHostKeys {
    pins: Mutex<HashMap<SystemId, Vec<HostKey>>>,
    /// How many times `pin_first` was called.
    pub pin_calls: AtomicUsize,
}

impl MemHostKeys {
    /// An empty store.
    pub fn new() -> Arc<MemHostKeys> {
        Arc::new(MemHostKeys::default())
    }
    /// Pin a key directly.
    pub fn pin(&self, system: SystemId, algorithm: &str, fingerprint: &str) {
        self.pins
            .lock()
            .unwrap()
            .entry(system)
            .or_default()
            .push(host_key(system, algorithm, fingerprint));
    }
    /// The pins of `system`.
    pub fn get(&self, system: SystemId) -> Vec<HostKey> {
        self.pins
            .lock()
            .unwrap()
            .get(&system)
            .cloned()
            .unwrap_or_default()
    }
}

fn host_key(system: SystemId, algorithm: &str, fingerprint: &str) -> HostKey {
    HostKey {
        id: HostKeyId::new(),
        system_id: system,
        algorithm: algorithm.to_string(),
        fingerprint: fingerprint.to_string(),
        created_at: SystemClock.now(),
    }
}

#[orca_core::async_trait]
impl HostKeyStore for MemHostKeys {
    async fn pinned(&self, system: SystemId) -> Result<Vec<HostKey>> {
        Ok(self.get(system))
    }
    async fn pin_first(
        &self,
        system: SystemId,
        algorithm: &str,
        fingerprint: &str,
    ) -> Result<Vec<HostKey>> {
        self.pin_calls.fetch_add(1, Ordering::Relaxed);
        // Widen the race window so concurrent first contacts really overlap.
        std::thread::sleep(Duration::from_millis(20));
        let mut pins = self.pins.lock().unwrap();
        let v = pins.entry(system).or_default();
        if v.is_empty() {
            v.push(host_key(system, algorithm, fingerprint));
        }
        Ok(v.clone())
    }
}
