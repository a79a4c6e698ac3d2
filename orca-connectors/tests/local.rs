//! The local connector: the Connector conformance suite plus what only a local process can show
//! (process groups, memory, signals).
#![cfg(feature = "local")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_connectors::local::{LocalConfig, LocalConnector};
use orca_core::ids::{ExecutionId, SystemId};
use orca_core::model::{Credential, Health, HostKeyPolicy, Shell, Stream, System, SystemType};
use orca_core::testkit::connector::{ConnectorFixture, run_collect};
use orca_core::{CancellationToken, CommandSpec, Connector, ErrorKind, OutputSink, RunEnd};
use orca_core::{RunOutcome, Target};

fn local_system(options: &[(&str, &str)]) -> System {
    System {
        id: SystemId::new(),
        name: "local".into(),
        hostname: "localhost".into(),
        port: 0,
        system_type: SystemType::Local,
        username: String::new(),
        credential: None,
        tags: vec![],
        active: true,
        health: Health::default(),
        host_key_policy: HostKeyPolicy::Strict,
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        created_at: Default::default(),
        updated_at: Default::default(),
    }
}

fn target_with(options: &[(&str, &str)]) -> Target {
    Target {
        system: local_system(options),
        credential: Credential::None,
        execution_id: None,
        host_keys: None,
    }
}

fn connector(config: LocalConfig) -> Arc<dyn Connector> {
    Arc::new(LocalConnector::new(config).expect("valid config"))
}

/// The settings that run commands as root when the tests run as root (for tests that need
/// root's access), and as the test's own user otherwise.
fn as_root() -> LocalConfig {
    LocalConfig {
        user: "root".into(),
        allow_root: true,
        ..LocalConfig::default()
    }
}

/// The conformance suite with the default settings (as root: commands run as `nobody`).
struct LocalFixture {
    config: LocalConfig,
}

impl ConnectorFixture for LocalFixture {
    fn connector(&self) -> Arc<dyn Connector> {
        connector(self.config.clone())
    }
    fn target(&self) -> Target {
        target_with(&[])
    }
    fn bad_target(&self) -> Target {
        target_with(&[("cwd", "/nonexistent/orca-test/no-such-dir")])
    }
}

orca_core::connector_conformance!(LocalFixture {
    config: LocalConfig::default()
});

/// The same suite with root allowed explicitly (`user = "root"`, `allow_root = true`).
mod allowed_root {
    use super::*;
    orca_core::connector_conformance!(LocalFixture { config: as_root() });
}

/// Whether `pid` is a live (non-zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let rest = &stat[stat.rfind(')').expect("stat has a comm") + 1..];
            !matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))
        }
    }
}

/// Wait up to two seconds for `pid` to die.
async fn dies(pid: i32) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !alive(pid)
}

/// The number after `key=` in `text`.
fn number_after(text: &str, key: &str) -> i32 {
    let start = text
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
        + key.len();
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().expect("a pid")
}

async fn run_ok(
    c: &dyn Connector,
    t: &Target,
    spec: &CommandSpec,
) -> (RunOutcome, Vec<u8>, Vec<u8>) {
    let (r, out, _) = run_collect(c, t, spec, CancellationToken::new()).await;
    (r.expect("run"), out.stdout, out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_a_background_grandchild_holding_the_pipes() {
    let c = connector(LocalConfig::default());
    let t = target_with(&[]);
    let spec = CommandSpec::new("sleep 600 & echo \"grandchild=$!\"; wait");
    let cancel = CancellationToken::new();
    let (sink, mut rx) = OutputSink::channel(4);
    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move { c.run(&t, &spec, sink, cancel).await }
    });
    let (_, first) = rx.recv().await.expect("the pid line");
    let grandchild = number_after(&String::from_utf8_lossy(&first), "grandchild=");
    assert!(alive(grandchild), "the background sleep runs");
    cancel.cancel();
    while rx.recv().await.is_some() {}
    let o = run.await.unwrap().expect("run");
    assert_eq!(o.end, RunEnd::Cancelled);
    assert_eq!(o.kill_confirmed, Some(true));
    assert!(
        !alive(grandchild),
        "the grandchild {grandchild} died with its group"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_holding_the_pipes_are_killed_after_a_short_drain() {
    let config = LocalConfig {
        drain_grace: Duration::from_millis(300),
        kill_grace: Duration::from_millis(300),
        ..LocalConfig::default()
    };
    let c = connector(config);
    let started = Instant::now();
    let spec = CommandSpec::new("sleep 600 & echo \"left=$!\"; exit 3");
    let (o, stdout, _) = run_ok(&*c, &target_with(&[]), &spec).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(o, RunOutcome::exited(3), "the shell's own exit counts");
    let left = number_after(&String::from_utf8_lossy(&stdout), "left=");
    assert!(dies(left).await, "the leftover {left} was killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_ignores_term_gets_kill_after_the_grace() {
    let config = LocalConfig {
        kill_grace: Duration::from_millis(300),
        ..LocalConfig::default()
    };
    let c = connector(config);
    let spec = CommandSpec::new("trap '' TERM; echo ready; while :; do sleep 0.1; done")
        .with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let (r, out, _) = run_collect(&*c, &target_with(&[]), &spec, CancellationToken::new()).await;
    let took = started.elapsed();
    let o = r.expect("run");
    assert_eq!(o.end, RunEnd::TimedOut);
    assert_eq!(o.kill_confirmed, Some(true));
    assert_eq!(o.signal.as_deref(), Some("KILL"), "{o:?}");
    assert_eq!(o.exit_code, None);
    assert!(
        took >= Duration::from_millis(800),
        "TERM was ignored for the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(out.stdout_text(), "ready\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_receiver_kills_the_command() {
    let c = connector(LocalConfig::default());
    let t = target_with(&[]);
    let spec = CommandSpec::new("echo \"me=$$\"; exec yes");
    let (sink, mut rx) = OutputSink::channel(2);
    let run = tokio::spawn(async move { c.run(&t, &spec, sink, CancellationToken::new()).await });
    let (_, first) = rx.recv().await.expect("output");
    let pid = number_after(&String::from_utf8_lossy(&first), "me=");
    drop(rx);
    let r = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run returns once nobody reads")
        .unwrap();
    let e = r.expect_err("a run whose output nobody reads fails");
    assert_eq!(e.kind(), ErrorKind::Unexpected);
    assert!(e.message().contains("receiver"), "{e}");
    assert!(!alive(pid), "`yes` ({pid}) was killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_run_future_kills_the_group() {
    let c = connector(LocalConfig::default());
    let t = target_with(&[]);
    let spec = CommandSpec::new("echo \"me=$$\"; sleep 600 & sleep 600; wait");
    let (sink, mut rx) = OutputSink::channel(4);
    let run = c.run(&t, &spec, sink, CancellationToken::new());
    let pid = tokio::select! {
        _ = run => panic!("the command ended by itself"),
        Some((_, first)) = rx.recv() => number_after(&String::from_utf8_lossy(&first), "me="),
    };
    assert!(
        dies(pid).await,
        "the shell {pid} was killed when its run was dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_bytes_pass_through_untouched() {
    let c = connector(LocalConfig::default());
    let spec = CommandSpec::new(r"printf '\377\376\000abc\200'; printf '\300\n\001' >&2");
    let (o, stdout, stderr) = run_ok(&*c, &target_with(&[]), &spec).await;
    assert_eq!(o, RunOutcome::exited(0));
    assert_eq!(stdout, b"\xff\xfe\x00abc\x80");
    assert_eq!(stderr, b"\xc0\n\x01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_is_clean_plus_job_env_and_execution_id() {
    // A variable of this process that is not passed through by default (the test harness
    // always has some: RUST_TEST_THREADS, CARGO_*, TERM...).
    let defaults = LocalConfig::default().env_passthrough;
    let shell_own = ["PWD", "OLDPWD", "SHLVL", "_", "IFS", "PPID", "OPTIND"];
    let (secret_name, secret_value) = std::env::vars()
        .find(|(k, v)| {
            !defaults.contains(k)
                && !shell_own.contains(&k.as_str())
                && !v.is_empty()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !k.as_bytes()[0].is_ascii_digit()
        })
        .expect("this process has at least one environment variable outside the passthrough");

    let c = connector(LocalConfig::default());
    let mut t = target_with(&[]);
    let id = ExecutionId::new();
    t.execution_id = Some(id);
    let mut spec = CommandSpec::new(format!(
        "printf '%s|%s|%s|' \"$ORCA_EXECUTION_ID\" \"$GREETING\" \"${{{secret_name}-unset}}\"; \
         command -v sh"
    ));
    spec.env = BTreeMap::from([("GREETING".to_string(), "hello world".to_string())]);
    let (o, stdout, stderr) = run_ok(&*c, &t, &spec).await;
    assert_eq!(
        o,
        RunOutcome::exited(0),
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    let text = String::from_utf8(stdout).unwrap();
    assert!(
        text.starts_with(&format!("{id}|hello world|unset|/")),
        "Orca's own environment ({secret_name}) is not passed, PATH is: {text:?}"
    );

    // A variable named in env_passthrough is passed.
    let mut config = LocalConfig::default();
    config.env_passthrough.push(secret_name.clone());
    let spec = CommandSpec::new(format!("printf '%s' \"${secret_name}\""));
    let (_, stdout, _) = run_ok(&*connector(config), &target_with(&[]), &spec).await;
    assert_eq!(String::from_utf8(stdout).unwrap(), secret_value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_by_signal_reports_the_signal_name() {
    let c = connector(LocalConfig::default());
    for (command, name) in [
        ("kill -TERM $$", "TERM"),
        ("kill -KILL $$", "KILL"),
        ("ulimit -c 0; kill -SEGV $$", "SEGV"),
    ] {
        let (o, _, _) = run_ok(&*c, &target_with(&[]), &CommandSpec::new(command)).await;
        assert_eq!(o.end, RunEnd::Exited, "{command}");
        assert_eq!(o.exit_code, None, "{command}");
        assert_eq!(o.signal.as_deref(), Some(name), "{command}");
        assert_eq!(o.kill_confirmed, None, "{command}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shells_bash_runs_and_windows_shells_are_refused() {
    let c = connector(LocalConfig::default());
    let t = target_with(&[]);
    let mut spec = CommandSpec::new("printf %s \"${BASH_VERSION:+bash}\"");
    spec.shell = Shell::Bash;
    let (o, stdout, _) = run_ok(&*c, &t, &spec).await;
    assert_eq!(o, RunOutcome::exited(0));
    assert_eq!(stdout, b"bash");
    for shell in [Shell::Cmd, Shell::Powershell] {
        spec.shell = shell;
        let (r, _, _) = run_collect(&*c, &t, &spec, CancellationToken::new()).await;
        let e = r.expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert_eq!(e.context().system, Some(t.system.id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cwd_option_is_used_and_checked() {
    let c = connector(LocalConfig::default());
    let dir = std::env::temp_dir().canonicalize().unwrap();
    let dir = dir.to_str().unwrap();
    let (o, stdout, _) = run_ok(
        &*c,
        &target_with(&[("cwd", dir)]),
        &CommandSpec::new("pwd -P"),
    )
    .await;
    assert_eq!(o, RunOutcome::exited(0));
    assert_eq!(String::from_utf8(stdout).unwrap().trim_end(), dir);

    let cases = [
        (
            "cwd",
            "/no/such/dir",
            ErrorKind::ConnectionFailed,
            "does not exist",
        ),
        ("cwd", "relative/dir", ErrorKind::InvalidInput, "absolute"),
        (
            "cwd",
            "/etc/hostname",
            ErrorKind::InvalidInput,
            "not a directory",
        ),
        (
            "cdw",
            "/tmp",
            ErrorKind::InvalidInput,
            "unknown option 'cdw'",
        ),
    ];
    for (key, value, kind, says) in cases {
        let options = &[(key, value)];
        let (r, _, _) = run_collect(
            &*c,
            &target_with(options),
            &CommandSpec::new("true"),
            CancellationToken::new(),
        )
        .await;
        let e = r.expect_err("refused");
        assert_eq!(e.kind(), kind, "{options:?}: {e}");
        assert!(e.message().contains(says), "{options:?}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_system_types_and_precancelled_runs() {
    let c = connector(LocalConfig::default());
    let mut t = target_with(&[]);
    t.system.system_type = SystemType::Linux;
    let (r, _, _) = run_collect(&*c, &t, &CommandSpec::new("true"), CancellationToken::new()).await;
    assert_eq!(r.expect_err("refused").kind(), ErrorKind::Unsupported);

    let cancel = CancellationToken::new();
    cancel.cancel();
    let spec = CommandSpec::new("echo should-not-run");
    let (r, out, _) = run_collect(&*c, &target_with(&[]), &spec, cancel).await;
    let o = r.expect("run");
    assert_eq!(o.end, RunEnd::Cancelled);
    assert_eq!(o.kill_confirmed, Some(true));
    assert!(out.stdout.is_empty());
}

#[test]
fn memory_stays_flat_for_100_mb_through_a_slow_sink() {
    // Measured in a process of its own, so other tests' allocations do not count.
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "memory_probe_100_mb",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("1 passed"), "the probe ran: {stdout}");
}

/// Kilobytes of a `/proc/self/status` field.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field}"));
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in its own process by memory_stays_flat_for_100_mb_through_a_slow_sink"]
async fn memory_probe_100_mb() {
    const TOTAL: u64 = 100 * 1024 * 1024;
    let c = connector(LocalConfig::default());
    let t = target_with(&[]);
    // Warm up (runtime, allocator), then reset the peak ("5" clears VmHWM).
    run_ok(&*c, &t, &CommandSpec::new("head -c 1048576 /dev/zero")).await;
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kb("VmRSS:");

    let spec = CommandSpec::new(format!("head -c {TOTAL} /dev/zero"));
    let (sink, mut rx) = OutputSink::channel(8);
    let run = c.run(&t, &spec, sink, CancellationToken::new());
    let consume = async {
        let (mut bytes, mut pieces) = (0u64, 0u64);
        while let Some((stream, data)) = rx.recv().await {
            assert_eq!(stream, Stream::Stdout);
            assert!(data.iter().all(|&b| b == 0));
            bytes += data.len() as u64;
            pieces += 1;
            if pieces % 8 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        bytes
    };
    let (r, bytes) = tokio::join!(run, consume);
    assert_eq!(r.expect("run"), RunOutcome::exited(0));
    assert_eq!(bytes, TOTAL);
    let peak = status_kb("VmHWM:");
    let growth_mb = peak.saturating_sub(before) / 1024;
    println!("RSS before {before} kB, peak {peak} kB, growth {growth_mb} MB");
    assert!(
        growth_mb < 64,
        "memory grew by {growth_mb} MB for 100 MB of output"
    );
}

// Privileges and the working directory (security finding F3: a local command must not reach
// Orca's own secrets).

/// Whether this test process runs as root.
fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For a test that can only show something as root: whether to go on. Not root: says so loudly
/// and skips, or fails under `ORCA_TEST_REQUIRE_ALL=1` (CI runs as root).
fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("ORCA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1") {
        panic!("{test} needs root and ORCA_TEST_REQUIRE_ALL=1");
    }
    eprintln!("\n*** SKIPPED: {test} needs root (CI runs as root) ***\n");
    false
}

fn uid_of(name: &str) -> u32 {
    nix::unistd::User::from_name(name)
        .expect("user lookup")
        .unwrap_or_else(|| panic!("no user {name}"))
        .uid
        .as_raw()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_as_nobody_when_orca_is_root() {
    let c = connector(LocalConfig::default());
    let (o, stdout, stderr) = run_ok(
        &*c,
        &target_with(&[]),
        &CommandSpec::new("id -u; id -G; printf '%s %s\\n' \"$USER\" \"$LOGNAME\""),
    )
    .await;
    assert_eq!(
        o,
        RunOutcome::exited(0),
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    let text = String::from_utf8(stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    if is_root() {
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        assert_eq!(lines[0], nobody.uid.to_string(), "{text}");
        assert_eq!(
            lines[1],
            nobody.gid.to_string(),
            "only nobody's primary group, none of root's: {text}"
        );
        assert_eq!(lines[2], "nobody nobody", "{text}");
    } else {
        // Nothing to drop to: Orca's own user.
        assert_eq!(
            lines[0],
            nix::unistd::geteuid().to_string(),
            "not root: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_only_file_is_out_of_reach() {
    if !root_or_skip("a_root_only_file_is_out_of_reach") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // A directory anyone may enter, holding a file only root may read (like jwt.secret).
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.path().join("jwt.secret");
    std::fs::write(&secret, "s3cr3t-bytes-of-orca").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();

    let c = connector(LocalConfig::default());
    let spec = CommandSpec::new(format!("cat '{}'", secret.display()));
    let (o, stdout, stderr) = run_ok(&*c, &target_with(&[]), &spec).await;
    let stderr = String::from_utf8_lossy(&stderr);
    assert_ne!(o.exit_code, Some(0), "{o:?}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(!String::from_utf8_lossy(&stdout).contains("s3cr3t"));

    // Root, when allowed explicitly, reads it.
    let (o, stdout, _) = run_ok(&*connector(as_root()), &target_with(&[]), &spec).await;
    assert_eq!(o, RunOutcome::exited(0));
    assert_eq!(stdout, b"s3cr3t-bytes-of-orca");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_gets_a_fresh_private_directory_removed_afterwards() {
    let c = connector(LocalConfig::default());
    let mut t = target_with(&[]);
    let id = ExecutionId::new();
    t.execution_id = Some(id);
    // Leave things behind, one of them a directory its owner cannot write to.
    let spec = CommandSpec::new(
        "pwd -P; printf '%s\\n' \"$HOME\"; stat -c '%a %u' .; \
         echo x > left; mkdir -p d/e; echo y > d/e/f; chmod 500 d/e d",
    );
    let (o, stdout, stderr) = run_ok(&*c, &t, &spec).await;
    assert_eq!(
        o,
        RunOutcome::exited(0),
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    let text = String::from_utf8(stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let dir = std::path::Path::new(lines[0]);
    let tmp = std::env::temp_dir().canonicalize().unwrap();
    assert_eq!(dir.parent(), Some(tmp.as_path()), "{text}");
    assert!(
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("orca-{id}-")),
        "{text}"
    );
    let owner = if is_root() {
        uid_of("nobody")
    } else {
        nix::unistd::geteuid().as_raw()
    };
    assert_eq!(lines[2], format!("700 {owner}"), "{text}");
    if is_root() {
        assert_eq!(lines[1], lines[0], "HOME is the run's directory: {text}");
    }
    assert!(!dir.exists(), "{} was removed", dir.display());

    // Another run, another directory.
    let (_, stdout, _) = run_ok(&*c, &t, &CommandSpec::new("pwd -P")).await;
    let again = String::from_utf8(stdout).unwrap();
    assert_ne!(again.trim_end(), lines[0]);
    assert!(!std::path::Path::new(again.trim_end()).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_as_the_user_needs_allow_root() {
    let t = target_with(&[]);
    let spec = CommandSpec::new("id -u");
    let root = LocalConfig {
        user: "root".into(),
        ..LocalConfig::default()
    };
    let c = connector(root);
    let (r, out, _) = run_collect(&*c, &t, &spec, CancellationToken::new()).await;
    if is_root() {
        let e = r.expect_err("running as root without allow_root is refused");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        for says in ["execution.local.user", "execution.local.allow_root", "root"] {
            assert!(e.message().contains(says), "{says}: {e}");
        }
        assert_eq!(e.context().system, Some(t.system.id));
        assert!(out.stdout.is_empty(), "nothing ran");
        let report = c.probe(&t).await;
        assert_eq!(report.status, orca_core::model::HealthStatus::Unhealthy);
        assert!(
            report
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("execution.local.allow_root"),
            "{report:?}"
        );
    } else {
        // Not root: the setting is moot, commands run as Orca's own user.
        let o = r.expect("run");
        assert_eq!(o, RunOutcome::exited(0));
        assert_eq!(out.stdout_text().trim(), nix::unistd::geteuid().to_string());
    }

    // Allowed explicitly: root.
    let (o, stdout, _) = run_ok(&*connector(as_root()), &t, &spec).await;
    assert_eq!(o, RunOutcome::exited(0));
    let want = if is_root() {
        "0".to_string()
    } else {
        nix::unistd::geteuid().to_string()
    };
    assert_eq!(String::from_utf8(stdout).unwrap().trim(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_is_a_clear_error() {
    if !root_or_skip("an_unknown_user_is_a_clear_error") {
        return;
    }
    let c = connector(LocalConfig {
        user: "orca-no-such-user".into(),
        ..LocalConfig::default()
    });
    let (r, _, _) = run_collect(
        &*c,
        &target_with(&[]),
        &CommandSpec::new("true"),
        CancellationToken::new(),
    )
    .await;
    let e = r.expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.message().contains("orca-no-such-user") && e.message().contains("execution.local.user"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cwd_the_user_cannot_enter_is_refused_naming_the_user() {
    if !root_or_skip("a_cwd_the_user_cannot_enter_is_refused_naming_the_user") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = private.path().to_str().unwrap();
    let c = connector(LocalConfig::default());
    let (r, _, _) = run_collect(
        &*c,
        &target_with(&[("cwd", dir)]),
        &CommandSpec::new("true"),
        CancellationToken::new(),
    )
    .await;
    let e = r.expect_err("nobody cannot enter a 0700 root directory");
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.message().contains("'nobody'"), "{e}");
}

#[test]
fn a_run_abandoned_when_the_runtime_stops_leaves_no_directory() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut t = target_with(&[]);
    t.execution_id = Some(ExecutionId::new());
    let (dir, rx) = rt.block_on(async move {
        let c = connector(LocalConfig::default());
        let (sink, mut rx) = OutputSink::channel(4);
        let spec = CommandSpec::new("pwd -P; exec sleep 600");
        tokio::spawn(async move { c.run(&t, &spec, sink, CancellationToken::new()).await });
        let (_, first) = rx.recv().await.expect("the directory");
        (String::from_utf8(first.to_vec()).unwrap(), rx)
    });
    let dir = std::path::PathBuf::from(dir.trim_end());
    assert!(dir.is_dir(), "{}", dir.display());
    // Shutting the runtime down drops the run's future with the command still running.
    drop(rt);
    drop(rx);
    assert!(!dir.exists(), "{} was removed", dir.display());
}
