//! End-to-end: the `orca` binary as a user runs it. `orca serve` on a temporary data directory,
//! `orca login`, `orca run` on `local` and on a real OpenSSH sshd (after approving its host
//! key), output, exit codes, audit; graceful SIGTERM; then `orca serve --no-engine` + `orca
//! worker` on PostgreSQL, where a job submitted to the server is run by the worker and followed
//! live from the server.
//!
//! Missing peers (sshd, PostgreSQL) skip loudly, and fail under `ORCA_TEST_REQUIRE_ALL=1`.

mod support;

use std::time::Duration;

use support::{Orca, Server, require_all, skip};

#[test]
fn embedded_tour() {
    let orca = Orca::new();
    let server = Server::start(&orca, &[], &[]);
    assert!(
        server.started_ms < 1000,
        "serve took {} ms to be ready",
        server.started_ms
    );
    let password = server.password.clone().expect("one-time admin password");
    for name in ["jwt.secret", "keys.json"] {
        assert_eq!(support::mode(&orca.data_dir().join(name)), 0o600, "{name}");
    }

    // A wrong password: one clear line, non-zero.
    let bad = orca.run_in(
        &server,
        &["login", "--password-stdin"],
        "not-the-password\n",
    );
    assert!(!bad.ok(), "{bad}");
    assert!(bad.stderr.contains("invalid username or password"), "{bad}");
    // Not logged in yet.
    let anon = orca.run_in(&server, &["systems", "list"], "");
    assert!(!anon.ok() && anon.stderr.contains("orca login"), "{anon}");

    let login = orca.run_in(
        &server,
        &["login", "--password-stdin"],
        &format!("{password}\n"),
    );
    assert!(login.ok(), "{login}");
    assert_eq!(support::mode(&orca.credentials()), 0o600);

    let systems = orca.run_in(&server, &["systems", "list", "-o", "json"], "");
    assert!(systems.ok(), "{systems}");
    let v: serde_json::Value = serde_json::from_str(&systems.stdout).unwrap();
    assert_eq!(v[0]["name"], "local", "{systems}");

    let run = orca.run_in(
        &server,
        &[
            "run",
            "--system",
            "local",
            "--",
            "echo hello-e2e; echo err-e2e >&2",
        ],
        "",
    );
    assert!(run.ok(), "{run}");
    assert!(run.stdout.contains("[local] hello-e2e"), "{run}");
    assert!(run.stderr.contains("[local] err-e2e"), "{run}");
    assert!(run.stderr.contains("all 1 system(s) completed"), "{run}");

    let failed = orca.run_in(&server, &["run", "-s", "local", "--", "exit 3"], "");
    assert_eq!(failed.code, Some(1), "{failed}");
    assert!(failed.stderr.contains("did not complete"), "{failed}");

    let jobs = orca.run_in(&server, &["jobs", "list", "-o", "json"], "");
    let jobs: serde_json::Value = serde_json::from_str(&jobs.stdout).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_eq!(jobs[0]["status"], "failed");
    assert_eq!(jobs[1]["status"], "completed");
    let job = jobs[1]["id"].as_str().unwrap();
    let show = orca.run_in(&server, &["jobs", "show", job, "-o", "json"], "");
    let show: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let exec = show["executions"][0]["id"].as_str().unwrap().to_string();
    let logs = orca.run_in(&server, &["logs", &exec], "");
    assert!(logs.ok() && logs.stdout.contains("hello-e2e"), "{logs}");

    let audit = orca.run_in(&server, &["audit", "-o", "json", "--limit", "200"], "");
    let audit: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
    let actions: Vec<(String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap_or("").to_string(),
                r["action"].as_str().unwrap_or("").to_string(),
                r["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for want in [
        ("admin", "submit", "success"),
        ("admin", "login", "success"),
    ] {
        assert!(
            actions
                .iter()
                .any(|a| (a.0.as_str(), a.1.as_str(), a.2.as_str()) == want),
            "{want:?} not in {actions:?}"
        );
    }
    assert!(
        !audit.to_string().contains(&password),
        "the admin password leaked into the audit log"
    );

    ssh_part(&orca, &server);

    // The same data dir cannot be served twice; a port in use is one clear line.
    let twice = orca.run(
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", support::free_port()),
        ],
        "",
        &[],
    );
    assert!(
        !twice.ok() && twice.stderr.contains("already running"),
        "{twice}"
    );
    let other = Orca::new();
    let busy = other.run(&["serve", "--listen", &server.addr], "", &[]);
    assert!(
        !busy.ok() && busy.stderr.contains("port is in use"),
        "{busy}"
    );

    // Graceful stop on SIGTERM: a running command may finish.
    let slow = orca.spawn_in(
        &server,
        &["run", "-s", "local", "--", "sleep 1; echo finished-late"],
    );
    std::thread::sleep(Duration::from_millis(600));
    let addr = server.addr.clone();
    let code = server.terminate(Duration::from_secs(20));
    assert_eq!(code, Some(0), "serve did not exit cleanly on SIGTERM");
    drop(support::wait_output(slow));
    // Started again on the same data directory: no new admin, the session still works, and the
    // command had finished before the server stopped.
    let again = Server::start_at(&orca, &addr, &[], &[]);
    assert!(again.password.is_none());
    let jobs = orca.run_in(&again, &["jobs", "list", "-o", "json", "--limit", "1"], "");
    assert!(jobs.ok(), "{jobs}");
    let jobs: serde_json::Value = serde_json::from_str(&jobs.stdout).unwrap();
    assert_eq!(jobs[0]["status"], "completed", "{jobs}");
    let show = orca.run_in(
        &again,
        &[
            "jobs",
            "show",
            jobs[0]["id"].as_str().unwrap(),
            "-o",
            "json",
        ],
        "",
    );
    let show: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let logs = orca.run_in(
        &again,
        &["logs", show["executions"][0]["id"].as_str().unwrap()],
        "",
    );
    assert!(logs.stdout.contains("finished-late"), "{logs}");
    assert_eq!(again.terminate(Duration::from_secs(20)), Some(0));
}

/// Register the real sshd, approve its host key, run on it and on `local`.
fn ssh_part(orca: &Orca, server: &Server) {
    let Some(sshd) = support::Sshd::start() else {
        return;
    };
    let port = sshd.port.to_string();
    let add = orca.run_in(
        server,
        &[
            "systems",
            "add",
            "box1",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            support::SSH_USER,
            "--password-stdin",
            "--tag",
            "e2e",
        ],
        &format!("{}\n", support::SSH_PASSWORD),
    );
    assert!(add.ok(), "{add}");
    // Strict by default: an unknown host key fails with what to do.
    let refused = orca.run_in(server, &["run", "-s", "box1", "--", "true"], "");
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(refused.stderr.contains("SHA256:"), "{refused}");
    let approve = orca.run_in(
        server,
        &[
            "hostkeys",
            "approve",
            "box1",
            &sshd.fingerprint,
            "--algorithm",
            &sshd.algorithm,
        ],
        "",
    );
    assert!(approve.ok(), "{approve}");
    let keys = orca.run_in(server, &["hostkeys", "list", "box1"], "");
    assert!(keys.stdout.contains(&sshd.fingerprint), "{keys}");

    // A second system on the same host: approve the offered key after a probe.
    let add2 = orca.run_in(
        server,
        &[
            "systems",
            "add",
            "box2",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            support::SSH_USER,
            "--password-stdin",
            "--tag",
            "e2e",
        ],
        &format!("{}\n", support::SSH_PASSWORD),
    );
    assert!(add2.ok(), "{add2}");
    let offered = orca.run_in(server, &["hostkeys", "approve", "box2", "--yes"], "");
    assert!(
        offered.ok() && offered.stdout.contains(&sshd.fingerprint),
        "{offered}"
    );

    let run = orca.run_in(
        server,
        &[
            "run",
            "--tag",
            "e2e",
            "-s",
            "local",
            "--",
            "echo on-$(whoami)",
        ],
        "",
    );
    assert!(run.ok(), "{run}");
    assert!(run.stdout.contains("[box1 ] on-orca-test"), "{run}");
    assert!(run.stdout.contains("[box2 ] on-orca-test"), "{run}");
    assert!(run.stdout.contains("[local] on-"), "{run}");
    let probe = orca.run_in(server, &["systems", "probe", "box1"], "");
    assert!(probe.ok() && probe.stdout.contains("healthy"), "{probe}");
    let audit = orca.run_in(server, &["audit", "--action", "approve", "-o", "json"], "");
    assert!(audit.stdout.contains("box1"), "{audit}");
    assert!(
        !audit.stdout.contains(support::SSH_PASSWORD),
        "an SSH password leaked into the audit log"
    );
}

#[test]
fn postgres_scale_out() {
    let url = std::env::var("ORCA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("orca_e2e_{}", std::process::id());
    let env = [
        ("ORCA_DATABASE_URL", url.as_str()),
        ("ORCA_DATABASE_SCHEMA", schema.as_str()),
    ];
    let orca = Orca::new();
    let migrate = orca.run(&["migrate"], "", &env);
    if !migrate.ok() {
        if require_all() {
            panic!("PostgreSQL at {url} is required (ORCA_TEST_REQUIRE_ALL=1): {migrate}");
        }
        skip(&format!(
            "no PostgreSQL at {url}: {}",
            migrate.stderr.trim()
        ));
        return;
    }
    let _cleanup = support::DropSchema(url.clone(), schema.clone());
    // SQLite refuses a worker with a clear line.
    let sqlite_worker = Orca::new().run(&["worker"], "", &[]);
    assert!(
        !sqlite_worker.ok() && sqlite_worker.stderr.contains("PostgreSQL"),
        "{sqlite_worker}"
    );

    let server = Server::start(&orca, &["--no-engine"], &env);
    let password = server.password.clone().expect("admin password");
    let worker = orca.spawn_with(&["worker"], &env);
    let login = orca.run_in(
        &server,
        &["login", "--password-stdin"],
        &format!("{password}\n"),
    );
    assert!(login.ok(), "{login}");
    let run = orca.run_in(
        &server,
        &[
            "run",
            "-s",
            "local",
            "--",
            "echo step-1; sleep 0.5; tr '\\0' ' ' < /proc/$PPID/cmdline; echo; echo step-2",
        ],
        "",
    );
    assert!(run.ok(), "{run}");
    assert!(run.stdout.contains("[local] step-1"), "{run}");
    assert!(run.stdout.contains("[local] step-2"), "{run}");
    assert!(
        run.stdout.contains(" worker"),
        "the job should have run in `orca worker`: {run}"
    );
    support::terminate(worker, Duration::from_secs(20));
    let code = server.terminate(Duration::from_secs(20));
    assert_eq!(code, Some(0));
}
