//! The SSH connector against a real OpenSSH sshd (see `sshd/mod.rs` for the harness).

#![cfg(feature = "ssh")]

mod sshd;

use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_connectors::ssh::{SshConfig, SshConnector};
use orca_core::ids::ExecutionId;
use orca_core::model::{HealthStatus, HostKeyPolicy};
use orca_core::testkit::connector::{ConnectorFixture, run_collect};
use orca_core::{CancellationToken, CommandSpec, Connector, ErrorKind, RunEnd, RunOutcome, Target};
use sshd::{MemHostKeys, PASSPHRASE, Sshd, SshdOptions};

struct Fixture {
    sshd: Sshd,
    connector: Arc<SshConnector>,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        Some(Fixture {
            sshd: Sshd::start()?,
            connector: Arc::new(SshConnector::new(SshConfig::default()).unwrap()),
        })
    }
}

impl ConnectorFixture for Fixture {
    fn connector(&self) -> Arc<dyn Connector> {
        self.connector.clone()
    }
    fn target(&self) -> Target {
        self.sshd.target("conformance")
    }
    fn bad_target(&self) -> Target {
        let mut t = self.sshd.target("refused");
        t.system.port = sshd::free_port();
        t
    }
}

orca_core::connector_conformance!(match Fixture::new() {
    Some(f) => f,
    None => return,
});

fn connector() -> SshConnector {
    SshConnector::new(SshConfig::default()).unwrap()
}

async fn run(
    c: &SshConnector,
    t: &Target,
    cmd: &str,
) -> (orca_core::Result<RunOutcome>, String, String) {
    let (r, out, _) = run_collect(c, t, &CommandSpec::new(cmd), CancellationToken::new()).await;
    (r, out.stdout_text(), out.stderr_text())
}

async fn expect_err(c: &SshConnector, t: &Target, kind: ErrorKind) -> orca_core::Error {
    let (r, _, _) = run(c, t, "true").await;
    let e = r.expect_err("expected an error");
    assert_eq!(e.kind(), kind, "{e}");
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_keys_authenticate() {
    let Some(s) = Sshd::start() else { return };
    let c = connector();
    let mut t = s.target("auth");
    let (r, out, _) = run(&c, &t, "id -un").await;
    assert_eq!(r.unwrap(), RunOutcome::exited(0));
    assert_eq!(out, format!("{}\n", sshd::USER));
    for (kind, enc) in [
        ("ed25519", false),
        ("ecdsa", false),
        ("rsa", false),
        ("ed25519", true),
    ] {
        let key = s.client_key(kind, enc);
        t.credential = sshd::private_key(&key, enc.then_some(PASSPHRASE));
        let (r, out, err) = run(&c, &t, "echo key-ok").await;
        assert_eq!(r.unwrap(), RunOutcome::exited(0), "{kind} enc={enc}: {err}");
        assert_eq!(out, "key-ok\n");
    }
    // RSA worked although OpenSSH 9 refuses SHA-1 `ssh-rsa` signatures: rsa-sha2 was used.
    assert!(
        s.log().contains("Accepted publickey for orca-test"),
        "{}",
        s.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_precise_errors() {
    let Some(s) = Sshd::start() else { return };
    let c = connector();
    let mut t = s.target("badcreds");
    t.credential = sshd::password("wrong password");
    let e = expect_err(&c, &t, ErrorKind::AuthFailed).await;
    assert!(e.message().contains("rejected the password"), "{e}");
    assert!(
        !e.message().contains("wrong password"),
        "secret leaked: {e}"
    );

    let enc = s.client_key("ed25519", true);
    t.credential = sshd::private_key(&enc, Some("not the passphrase"));
    let e = expect_err(&c, &t, ErrorKind::InvalidInput).await;
    assert!(e.message().contains("passphrase is wrong"), "{e}");
    t.credential = sshd::private_key(&enc, None);
    let e = expect_err(&c, &t, ErrorKind::InvalidInput).await;
    assert!(e.message().contains("no passphrase"), "{e}");

    t.credential = sshd::private_key(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA garbage\n-----END OPENSSH PRIVATE KEY-----\n",
        None,
    );
    let e = expect_err(&c, &t, ErrorKind::InvalidInput).await;
    assert!(e.message().contains("malformed"), "{e}");
    t.credential = sshd::private_key("not a key at all", None);
    let e = expect_err(&c, &t, ErrorKind::InvalidInput).await;
    assert!(e.message().contains("not in a known format"), "{e}");

    // A valid key that is not authorized.
    let other = Sshd::start().unwrap();
    t.credential = sshd::private_key(&other.client_key("ed25519", false), None);
    let e = expect_err(&c, &t, ErrorKind::AuthFailed).await;
    assert!(e.message().contains("refused the key SHA256:"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_interactive_answers_password_prompts() {
    let Some(s) = Sshd::start_with(SshdOptions {
        kbd_interactive_only: true,
        ..Default::default()
    }) else {
        return;
    };
    let c = connector();
    let t = s.target("kbdint");
    let (r, out, err) = run(&c, &t, "echo via-kbdint").await;
    assert_eq!(r.unwrap(), RunOutcome::exited(0), "{err}\n{}", s.log());
    assert_eq!(out, "via-kbdint\n");
    let mut bad = s.target("kbdint-bad");
    bad.credential = sshd::password("nope");
    let e = expect_err(&c, &bad, ErrorKind::AuthFailed).await;
    assert!(e.message().contains("keyboard-interactive"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_key_is_refused_before_credentials() {
    let Some(s) = Sshd::start() else { return };
    let c = connector();
    let mut t = s.target("unknown");
    t.host_keys = Some(MemHostKeys::new());
    let e = expect_err(&c, &t, ErrorKind::HostKeyRejected).await;
    let (alg, fp) = &s.host_keys[0];
    assert!(
        e.message().contains(fp.as_str()) && e.message().contains(alg.as_str()),
        "{e}"
    );
    assert!(e.message().contains("unknown"), "{e}");
    // Nothing of the credential reached the server: no authentication was attempted.
    std::thread::sleep(Duration::from_millis(200));
    let log = s.log();
    assert!(!log.contains("password for"), "{log}");
    assert!(!log.contains("Accepted"), "{log}");
    // No store at all under strict: refused as well.
    t.host_keys = None;
    expect_err(&c, &t, ErrorKind::HostKeyRejected).await;
    // Probe says why.
    let report = c.probe(&t).await;
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert!(report.reason.unwrap().starts_with("host_key_rejected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_host_key_is_refused_under_strict_and_tofu() {
    let Some(s) = Sshd::start() else { return };
    let other = Sshd::start().unwrap();
    let c = connector();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::Tofu] {
        let mut t = s.target("changed");
        t.system.host_key_policy = policy;
        let store = MemHostKeys::new();
        let (alg, old_fp) = &other.host_keys[0];
        store.pin(t.system.id, alg, old_fp);
        t.host_keys = Some(store.clone());
        let e = expect_err(&c, &t, ErrorKind::HostKeyRejected).await;
        assert!(e.message().contains("MISMATCH"), "{e}");
        assert!(
            e.message().contains(&s.host_keys[0].1),
            "offered fp shown: {e}"
        );
        assert!(
            e.message().contains(old_fp.as_str()),
            "pinned fp shown: {e}"
        );
        assert_eq!(store.get(t.system.id).len(), 1, "the pin was not replaced");
    }
    // Insecure accepts it (and warns).
    let mut t = s.target("insecure");
    t.system.host_key_policy = HostKeyPolicy::Insecure;
    t.host_keys = Some(MemHostKeys::new());
    let (r, _, _) = run(&c, &t, "true").await;
    assert_eq!(r.unwrap(), RunOutcome::exited(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tofu_race_pins_exactly_one_key() {
    let Some(a) = Sshd::start() else { return };
    let b = Sshd::start().unwrap();
    let store = MemHostKeys::new();
    let mut ta = a.target("tofu");
    ta.system.host_key_policy = HostKeyPolicy::Tofu;
    ta.host_keys = Some(store.clone());
    // The same system reached at two addresses with different host keys (one of them an
    // impostor): two concurrent first contacts.
    let mut tb = ta.clone();
    tb.system.port = b.port;
    let (ca, cb) = (connector(), connector());
    let (ra, rb) = tokio::join!(run(&ca, &ta, "echo a"), run(&cb, &tb, "echo b"));
    let pins = store.get(ta.system.id);
    assert_eq!(pins.len(), 1, "{pins:?}");
    assert_eq!(
        store.pin_calls.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let ok = [&ra.0, &rb.0].iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "exactly one contact wins: {:?} {:?}", ra.0, rb.0);
    let loser = [ra.0, rb.0].into_iter().find_map(|r| r.err()).unwrap();
    assert_eq!(loser.kind(), ErrorKind::HostKeyRejected, "{loser}");
    let winner_fp = &pins[0].fingerprint;
    assert!(a.host_keys[0].1 == *winner_fp || b.host_keys[0].1 == *winner_fp);

    // Two concurrent first contacts to the same server: one pin, both succeed.
    let store = MemHostKeys::new();
    let mut t = a.target("tofu-same");
    t.system.host_key_policy = HostKeyPolicy::Tofu;
    t.host_keys = Some(store.clone());
    let (r1, r2) = tokio::join!(run(&ca, &t, "true"), run(&cb, &t, "true"));
    assert!(r1.0.is_ok() && r2.0.is_ok(), "{:?} {:?}", r1.0, r2.0);
    assert_eq!(store.get(t.system.id).len(), 1);
    assert_eq!(store.get(t.system.id)[0].fingerprint, a.host_keys[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_signal_env_and_binary_output() {
    let Some(s) = Sshd::start() else { return };
    let c = connector();
    let mut t = s.target("exec");
    let (r, _, _) = run(&c, &t, "kill -USR1 $$").await;
    let o = r.unwrap();
    assert_eq!(
        (o.exit_code, o.signal.as_deref()),
        (None, Some("USR1")),
        "{o:?}"
    );
    let id = ExecutionId::new();
    t.execution_id = Some(id);
    let mut spec = CommandSpec::new(
        "echo \"$ORCA_EXECUTION_ID $GREETING\"; [ -t 0 ] && echo tty || echo notty",
    );
    spec.env.insert("GREETING".into(), "it's me".into());
    let (r, out, _) = run_collect(&c, &t, &spec, CancellationToken::new()).await;
    assert_eq!(r.unwrap(), RunOutcome::exited(0));
    assert_eq!(out.stdout_text(), format!("{id} it's me\nnotty\n"));
    let (r, _, _) = run_collect(
        &c,
        &t,
        &CommandSpec::new("head -c 65536 /dev/urandom; exit 3"),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.unwrap(), RunOutcome::exited(3));
    let (r, _, _) = run_collect(
        &c,
        &t,
        &CommandSpec::new("no-such-command-orca"),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.unwrap().exit_code, Some(127));
    let mut ps = CommandSpec::new("Get-Date");
    ps.shell = orca_core::model::Shell::Powershell;
    let (r, _, _) = run_collect(&c, &t, &ps, CancellationToken::new()).await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Unsupported);
}

/// pids of the test user's processes whose command line contains `tag`.
fn pgrep(tag: &str) -> Vec<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-u", sshd::USER, "-f", tag])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_sleep_600_on_the_server() {
    let Some(s) = Sshd::start() else { return };
    let c = Arc::new(connector());
    let t = s.target("cancel");
    let tag = format!("orca-cancel-{}", std::process::id());
    // The shell stays (the sleep is not its last command), so `sleep 600` is its child.
    let spec = CommandSpec::new(format!("sleep 600; echo {tag}"));
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let (c, t, cancel) = (c.clone(), t.clone(), cancel.clone());
        async move { run_collect(&*c, &t, &spec, cancel).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let (shell, sleep) = loop {
        let shells = pgrep(&tag);
        let sleeps: Vec<u32> = shells
            .iter()
            .flat_map(|p| {
                let out = std::process::Command::new("pgrep")
                    .args(["-P", &p.to_string(), "-x", "sleep"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .filter_map(|x| x.parse::<u32>().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        if let (Some(sh), Some(sl)) = (shells.first(), sleeps.first()) {
            break (*sh, *sl);
        }
        assert!(
            Instant::now() < deadline,
            "sleep 600 never appeared on the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    cancel.cancel();
    let (r, _, _) = task.await.unwrap();
    let o = r.unwrap();
    assert_eq!(o.end, RunEnd::Cancelled);
    assert_eq!(o.kill_confirmed, Some(true), "{o:?}");
    assert!(
        !alive(sleep),
        "sleep 600 (pid {sleep}) still runs on the server"
    );
    assert!(!alive(shell), "its shell (pid {shell}) still runs");
    assert!(pgrep(&tag).is_empty());
    // The connection is still usable afterwards.
    let (r, _, _) = run(&c, &t, "echo again").await;
    assert_eq!(r.unwrap(), RunOutcome::exited(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_stream_intact() {
    use sha2::{Digest, Sha256};
    let Some(s) = Sshd::start() else { return };
    let c = connector();
    let t = s.target("big");
    let cmd = "f=$(mktemp); head -c 10485760 /dev/urandom > \"$f\"; \
               sha256sum \"$f\" | cut -d' ' -f1 >&2; cat \"$f\"; rm -f \"$f\"";
    let (r, out, _) = run_collect(&c, &t, &CommandSpec::new(cmd), CancellationToken::new()).await;
    assert_eq!(r.unwrap(), RunOutcome::exited(0));
    assert_eq!(out.stdout.len(), 10 * 1024 * 1024);
    let local = hex_string(&Sha256::digest(&out.stdout));
    assert_eq!(out.stderr_text().trim(), local);
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_executions_succeed() {
    let Some(s) = Sshd::start() else { return };
    let c = Arc::new(connector());
    let key = s.client_key("ed25519", false);
    let store = MemHostKeys::new();
    let mut tasks = Vec::new();
    // 250 systems (one connection each) with two executions each, on one sshd.
    for i in 0..250 {
        let mut t = s.target(&format!("fan-{i}"));
        t.credential = sshd::private_key(&key, None);
        store.pin(t.system.id, &s.host_keys[0].0, &s.host_keys[0].1);
        t.host_keys = Some(store.clone());
        for j in 0..2 {
            let (c, t) = (c.clone(), t.clone());
            tasks.push(tokio::spawn(async move {
                let spec = CommandSpec::new(format!("echo {i}-{j}"));
                let (r, out, _) = run_collect(&*c, &t, &spec, CancellationToken::new()).await;
                (i, j, r, out.stdout_text())
            }));
        }
    }
    let mut failures = Vec::new();
    for task in tasks {
        let (i, j, r, out) = task.await.unwrap();
        match r {
            Ok(o) if o == RunOutcome::exited(0) && out == format!("{i}-{j}\n") => {}
            other => failures.push(format!("{i}-{j}: {other:?} {out:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(c.connections_opened(), 250, "one connection per system");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_reuses_replaces_and_closes_idle() {
    let Some(s) = Sshd::start_with(SshdOptions {
        max_sessions: 3,
        ..Default::default()
    }) else {
        return;
    };
    let c = Arc::new(
        SshConnector::new(SshConfig {
            idle_timeout: Duration::from_millis(1500),
            ..SshConfig::default()
        })
        .unwrap(),
    );
    let t = s.target("pool");
    // 24 concurrent commands on one connection although the server allows 3 channels: the
    // pool learns the lower MaxSessions.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (c, t) = (c.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            run(&c, &t, &format!("sleep 0.2; echo {i}")).await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let (r, out, err) = task.await.unwrap();
        assert_eq!(r.unwrap(), RunOutcome::exited(0), "{i}: {err}");
        assert_eq!(out, format!("{i}\n"));
    }
    assert_eq!(c.connections_opened(), 1);
    assert_eq!(c.open_connections(), 1);
    // Idle connections are closed.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(c.open_connections(), 0, "idle connection not closed");
    // A broken connection is replaced: kill the server process of the pooled connection.
    let (r, _, _) = run(&c, &t, "true").await;
    r.unwrap();
    // The listener's children are the per-connection server processes (ours only); kill the
    // one of the pooled connection and its unprivileged child, which holds the socket.
    let children = |pid: &str| -> Vec<String> {
        let out = std::process::Command::new("pgrep")
            .args(["-P", pid])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let monitors = children(&s.pid().to_string());
    assert_eq!(
        monitors.len(),
        1,
        "one server process for the pooled connection: {monitors:?}"
    );
    let mut tree = children(&monitors[0]);
    tree.push(monitors[0].clone());
    for pid in &tree {
        std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status()
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (r, out, _) = run(&c, &t, "echo replaced").await;
    assert_eq!(r.unwrap(), RunOutcome::exited(0));
    assert_eq!(out, "replaced\n");
    // The first, the one after the idle close, and the replacement.
    assert_eq!(c.connections_opened(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_mismatched_hosts_have_precise_reasons() {
    let Some(s) = Sshd::start_with(SshdOptions {
        extra: vec!["KexAlgorithms diffie-hellman-group14-sha1".into()],
        ..Default::default()
    }) else {
        return;
    };
    let c = connector();
    let t = s.target("old-kex");
    let e = expect_err(&c, &t, ErrorKind::Unsupported).await;
    assert!(e.message().contains("diffie-hellman-group14-sha1"), "{e}");
    assert!(e.message().contains("curve25519-sha256"), "{e}");

    let mut refused = s.target("refused");
    refused.system.port = sshd::free_port();
    let e = expect_err(&c, &refused, ErrorKind::ConnectionFailed).await;
    assert!(e.message().contains("refused"), "{e}");
    assert!(e.is_retryable());

    let mut dns = s.target("dns");
    dns.system.hostname = "no-such-host.invalid".into();
    let e = expect_err(&c, &dns, ErrorKind::ConnectionFailed).await;
    assert!(e.message().contains("cannot resolve"), "{e}");

    // A listener that never speaks SSH: the connect timeout fires.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut slow = s.target("silent");
    slow.system.port = silent.local_addr().unwrap().port();
    let quick = SshConnector::new(SshConfig {
        connect_timeout: Duration::from_millis(500),
        ..SshConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let e = expect_err(&quick, &slow, ErrorKind::Timeout).await;
    assert!(started.elapsed() < Duration::from_secs(5), "{e}");
    assert!(e.message().contains("connect_timeout"), "{e}");

    for (t, code) in [
        (&refused, "connection_failed"),
        (&dns, "connection_failed"),
        (&t, "unsupported"),
    ] {
        let report = c.probe(t).await;
        assert_eq!(report.status, HealthStatus::Unhealthy);
        assert!(
            report.reason.as_deref().unwrap().starts_with(code),
            "{report:?}"
        );
    }
}
