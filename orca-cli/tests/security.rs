//! Security of `orca serve` through the real binary: the data directory is private, the first
//! admin's password can come from a file, and (finding F3) a command run on the `local` system
//! cannot read Orca's own secrets.
//!
//! The F3 test needs root (so that Orca has privileges to drop); without root it skips loudly,
//! and fails under `ORCA_TEST_REQUIRE_ALL=1`.

mod support;

use std::time::{Duration, Instant};

use support::{Api, Orca, Server, require_all, skip};

/// Every entry of `dir`: its name and mode.
fn modes(dir: &std::path::Path) -> Vec<(String, u32, bool)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            (name, support::mode(&e.path()), meta.is_file())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn data_dir_is_private_and_the_admin_password_can_come_from_a_file() {
    let orca = Orca::new();
    let pw_file = orca.dir().join("admin-password");
    std::fs::write(&pw_file, "file-Secret-pw-4711\n").unwrap();
    let pw_arg = pw_file.to_str().unwrap();

    // Both ways at once: one clear line, nothing created.
    let both = orca.run(
        &["serve", "--admin-password-file", pw_arg],
        "",
        &[("ORCA_ADMIN_PASSWORD", "env-Secret-pw-4711")],
    );
    assert!(!both.ok() && both.stderr.contains("one way"), "{both}");
    assert!(!orca.data_dir().exists());
    let missing = orca.run(
        &["serve", "--admin-password-file", "/nonexistent/pw"],
        "",
        &[],
    );
    assert!(
        !missing.ok() && missing.stderr.contains("/nonexistent/pw"),
        "{missing}"
    );

    let server = Server::start(&orca, &["--admin-password-file", pw_arg], &[]);
    assert!(server.password.is_none(), "no password is generated");

    // Every file Orca made in a fresh data directory is private.
    let dir = orca.data_dir();
    assert_eq!(support::mode(&dir), 0o700);
    let entries = modes(&dir);
    for want in [
        "jwt.secret",
        "keys.json",
        "orca.db",
        "orca.db-wal",
        "orca.db-shm",
    ] {
        assert!(entries.iter().any(|e| e.0 == want), "{want} in {entries:?}");
    }
    for (name, mode, is_file) in &entries {
        assert!(is_file, "{name} is a plain file");
        assert_eq!(*mode, 0o600, "{name} has mode {mode:03o}");
    }

    // The password from the file works (the line ending is not part of it).
    let login = orca.run_in(
        &server,
        &["login", "--password-stdin"],
        "file-Secret-pw-4711\n",
    );
    assert!(login.ok(), "{login}");
    // Jobs leave nothing behind in the data directory either.
    let run = orca.run_in(&server, &["run", "-s", "local", "--", "echo hi > f"], "");
    assert!(run.ok(), "{run}");
    for (name, mode, _) in modes(&dir) {
        assert_eq!(mode, 0o600, "{name} has mode {mode:03o}");
    }
    assert_eq!(server.terminate(Duration::from_secs(20)), Some(0));
}

/// Wait for an execution to end; its record.
fn wait_ended(api: &Api, execution: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, e) = api.call("GET", &format!("/api/v1/executions/{execution}"), None);
        assert_eq!(status, 200, "{e}");
        let s = e["status"].as_str().unwrap_or("");
        if !matches!(s, "pending" | "running") {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "execution {execution} hangs: {e}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Submit `command` on `local` as the caller of `api`; the ended execution and its output.
fn run_local(api: &Api, command: &str) -> (serde_json::Value, String) {
    let (status, job) = api.call(
        "POST",
        "/api/v1/jobs",
        Some(serde_json::json!({"command": command, "targets": {"systems": ["local"]}})),
    );
    assert_eq!(status, 201, "{job}");
    let id = job["executions"][0]["id"].as_str().expect("one execution");
    let exec = wait_ended(api, id);
    let (status, out) = api.send(
        "GET",
        &format!("/api/v1/executions/{id}/output/download"),
        None,
    );
    assert_eq!(status, 200);
    (exec, String::from_utf8_lossy(&out).into_owned())
}

/// Finding F3: an operator granted the `local` system runs `cat` on Orca's secrets.
#[test]
fn f3_a_local_command_cannot_read_orcas_secrets() {
    if !nix::unistd::geteuid().is_root() {
        if require_all() {
            panic!("the F3 test needs root (ORCA_TEST_REQUIRE_ALL=1)");
        }
        skip("the F3 test needs root: without it Orca has no privileges to drop");
        return;
    }
    const ADMIN_PW: &str = "env-Secret-pw-0815";
    let orca = Orca::new();
    let server = Server::start(&orca, &[], &[("ORCA_ADMIN_PASSWORD", ADMIN_PW)]);
    let data = orca.data_dir();

    let mut admin = Api::new(&server);
    admin.login("admin", ADMIN_PW);
    let (_, systems) = admin.call("GET", "/api/v1/systems?type=local", None);
    let local = systems["items"][0]["id"]
        .as_str()
        .expect("the local system")
        .to_string();
    let (status, user) = admin.call(
        "POST",
        "/api/v1/users",
        Some(serde_json::json!({
            "username": "alice", "role": "operator", "password": "Tr1cky-Horse-Battery"
        })),
    );
    assert_eq!(status, 201, "{user}");
    let uid = user["id"].as_str().unwrap();
    let (status, grants) = admin.call(
        "PUT",
        &format!("/api/v1/users/{uid}/grants"),
        Some(serde_json::json!({"grants": [{"kind": "system", "value": local}]})),
    );
    assert_eq!(status, 200, "{grants}");

    let mut op = Api::new(&server);
    op.login("alice", "Tr1cky-Horse-Battery");
    let (exec, out) = run_local(
        &op,
        &format!(
            "id -un; cat {d}/jwt.secret; cat {d}/keys.json; cat {d}/orca.db",
            d = data.display()
        ),
    );
    assert_eq!(exec["status"], "failed", "{exec}\n{out}");
    assert!(out.starts_with("nobody\n"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    let jwt = std::fs::read_to_string(data.join("jwt.secret")).unwrap();
    assert!(!out.contains(jwt.trim()), "the JWT secret leaked: {out}");
    let keys: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("keys.json")).unwrap()).unwrap();
    for (id, key) in keys["keys"].as_object().expect("keys.json has keys") {
        let key = key.as_str().unwrap();
        assert!(!out.contains(key), "key {id} leaked: {out}");
    }
    assert!(!out.contains("SQLite format"), "the database leaked: {out}");

    // ORCA_ADMIN_PASSWORD: commands never see it, neither in their environment nor through
    // the server's /proc entry (another user's).
    let (_, out) = run_local(&op, "env; cat /proc/$PPID/environ");
    assert!(!out.contains(ADMIN_PW), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    // The server removed it from its environment at start, but the kernel's copy of the
    // initial environment still shows it to root and to Orca's own user (documented in
    // docs/security.md, which recommends --admin-password-file).
    let environ = std::fs::read(format!("/proc/{}/environ", server.pid())).unwrap();
    assert!(
        String::from_utf8_lossy(&environ).contains(ADMIN_PW),
        "/proc/<pid>/environ no longer shows ORCA_ADMIN_PASSWORD: update docs/security.md"
    );
    assert_eq!(server.terminate(Duration::from_secs(20)), Some(0));
}
