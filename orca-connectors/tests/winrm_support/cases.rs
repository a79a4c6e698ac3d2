//! WinRM-specific cases.

use std::sync::atomic::Ordering;
use std::time::Duration;

use orca_connectors::winrm::testserver::TestServerConfig;
use orca_core::model::{HealthStatus, Shell};
use orca_core::testkit::connector::{ConnectorFixture, run_collect};
use orca_core::{CancellationToken, CommandSpec, Connector, ErrorKind, RunOutcome};

use super::fixture::{Fx, opts};

async fn run(fx: &Fx, spec: &CommandSpec) -> (orca_core::Result<RunOutcome>, String, String) {
    let (r, out, _) =
        run_collect(&*fx.connector, &fx.target(), spec, CancellationToken::new()).await;
    (r, out.stdout_text(), out.stderr_text())
}

#[tokio::test]
async fn warm_shell_costs_two_round_trips() {
    let fx = Fx::ntlm().await;
    let stats = &fx.server.state().stats;
    let (r, out, _) = run(&fx, &CommandSpec::new("echo first")).await;
    assert_eq!(
        (r.unwrap(), out.as_str()),
        (RunOutcome::exited(0), "first\n")
    );
    assert_eq!(stats.action("Create"), 1);
    let before = stats.requests.load(Ordering::SeqCst);
    for i in 0..5 {
        let (r, out, _) = run(&fx, &CommandSpec::new(format!("echo warm{i}& exit /b {i}"))).await;
        assert_eq!(
            (r.unwrap(), out),
            (RunOutcome::exited(i), format!("warm{i}\n"))
        );
    }
    let after = stats.requests.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        10,
        "5 warm commands, 2 round trips each (creates {}, receives {}, logons {}, connections {})",
        stats.action("Create"),
        stats.action("Receive"),
        stats.ntlm_logons.load(Ordering::SeqCst),
        stats.connections.load(Ordering::SeqCst)
    );
    assert_eq!(stats.action("Create"), 1, "one shell for all");
    assert_eq!(
        stats.ntlm_logons.load(Ordering::SeqCst),
        1,
        "one NTLM logon, one connection"
    );
}

#[tokio::test]
async fn silent_command_polls_through_timed_out_faults() {
    let fx = Fx::with(
        TestServerConfig::default(),
        opts(&[("operation_timeout_secs", "0.3")]),
    )
    .await;
    let (r, out, _) = run(
        &fx,
        &CommandSpec::new("ping -n 3 127.0.0.1 >nul& echo woke& exit /b 7"),
    )
    .await;
    assert_eq!(
        (r.unwrap(), out.as_str()),
        (RunOutcome::exited(7), "woke\n")
    );
    assert!(
        fx.server.state().stats.action("Receive") >= 4,
        "several empty polls"
    );
}

#[tokio::test]
async fn powershell_output_errors_and_exit_codes() {
    let fx = Fx::ntlm().await;
    let mut spec = CommandSpec::new("Write-Output 'héllo'; Write-Error 'it <broke> é'; exit 3");
    spec.shell = Shell::Powershell;
    let (r, out, err) = run(&fx, &spec).await;
    assert_eq!(r.unwrap(), RunOutcome::exited(3));
    assert_eq!(out, "héllo\n");
    assert_eq!(err, "it <broke> é\n", "CLIXML decoded to text");
    spec.command = "Write-Error 'last failed'".into();
    let (r, _, err) = run(&fx, &spec).await;
    assert_eq!(
        (r.unwrap(), err.as_str()),
        (RunOutcome::exited(1), "last failed\n")
    );
    spec.shell = Shell::Bash;
    let e = run(&fx, &spec).await.0.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn codepages_and_environment() {
    let fx = Fx::ntlm().await;
    let (r, out, _) = run(&fx, &CommandSpec::new("echo grüße é")).await;
    assert_eq!(
        (r.unwrap(), out.as_str()),
        (RunOutcome::exited(0), "grüße é\n")
    );
    let fx437 = Fx::with(TestServerConfig::default(), opts(&[("codepage", "437")])).await;
    let (r, out, _) = run_collect(
        &*fx437.connector,
        &fx437.target(),
        &CommandSpec::new("echo é"),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(
        (r.unwrap(), out.stdout),
        (RunOutcome::exited(0), b"\x82\r\n".to_vec()),
        "bytes as the host sent them"
    );
    let mut spec = CommandSpec::new("echo %GREETING%");
    spec.env.insert("GREETING".into(), "hi there".into());
    let (r, out, _) = run(&fx, &spec).await;
    assert_eq!(
        (r.unwrap(), out.as_str()),
        (RunOutcome::exited(0), "hi there\n")
    );
    let (_, out, _) = run(&fx, &CommandSpec::new("echo %GREETING%")).await;
    assert_eq!(
        out, "%GREETING%\n",
        "a shell with another environment is not reused"
    );
}

#[tokio::test]
async fn shell_recreated_after_idle_timeout_on_the_server() {
    let fx = Fx::ntlm().await;
    assert_eq!(
        run(&fx, &CommandSpec::new("echo a")).await.0.unwrap(),
        RunOutcome::exited(0)
    );
    fx.server.state().shells.expire_all();
    let (r, out, _) = run(&fx, &CommandSpec::new("echo b")).await;
    assert_eq!((r.unwrap(), out.as_str()), (RunOutcome::exited(0), "b\n"));
    assert_eq!(fx.server.state().stats.action("Create"), 2);
}

#[tokio::test]
async fn wrong_password_is_auth_failed_and_probe_says_why() {
    let fx = Fx::ntlm().await;
    let t = fx.target_with_password("wrong");
    let (r, _, _) = run_collect(
        &*fx.connector,
        &t,
        &CommandSpec::new("echo x"),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::AuthFailed);
    let p = fx.connector.probe(&t).await;
    assert_eq!(p.status, HealthStatus::Unhealthy);
    assert!(p.reason.unwrap().contains("password"));
    let p = fx.connector.probe(&fx.target()).await;
    assert_eq!((p.status, p.reason), (HealthStatus::Healthy, None));
}

#[tokio::test]
async fn access_denied_and_quota_faults_have_kinds() {
    let fx = Fx::ntlm().await;
    fx.server
        .state()
        .faults
        .deny_access
        .store(true, Ordering::SeqCst);
    let e = run(&fx, &CommandSpec::new("echo x")).await.0.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let cfg = TestServerConfig {
        max_shells_per_user: 0,
        ..TestServerConfig::default()
    };
    let fx = Fx::with(cfg, opts(&[])).await;
    let e = run(&fx, &CommandSpec::new("echo x")).await.0.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.is_retryable(), "nothing ran: {e:?}");
    assert!(e.message().contains("maximum number"), "{e}");
}

#[tokio::test]
async fn connection_dropped_mid_receive_is_resumed() {
    let fx = Fx::with(
        TestServerConfig::default(),
        opts(&[("operation_timeout_secs", "0.3")]),
    )
    .await;
    fx.server.state().faults.drop_receive(2);
    let (r, out, _) = run(
        &fx,
        &CommandSpec::new("ping -n 2 127.0.0.1 >nul& echo done& exit /b 5"),
    )
    .await;
    assert_eq!(
        (r.unwrap(), out.as_str()),
        (RunOutcome::exited(5), "done\n")
    );
    assert!(
        fx.server.state().stats.ntlm_logons.load(Ordering::SeqCst) >= 2,
        "a new session"
    );
}

#[tokio::test]
async fn unauthorized_mid_session_reauthenticates_before_the_command() {
    let fx = Fx::ntlm().await;
    assert_eq!(
        run(&fx, &CommandSpec::new("echo a")).await.0.unwrap(),
        RunOutcome::exited(0)
    );
    fx.server.state().faults.unauthorized(1);
    let (r, out, _) = run(&fx, &CommandSpec::new("echo b& exit /b 2")).await;
    assert_eq!((r.unwrap(), out.as_str()), (RunOutcome::exited(2), "b\n"));
    assert_eq!(
        fx.server.state().stats.action("Command"),
        2,
        "the refused Command ran once, after re-authentication"
    );
}

#[tokio::test]
async fn corrupted_signature_fails_the_run_and_never_resends_the_command() {
    let fx = Fx::ntlm().await;
    assert_eq!(
        run(&fx, &CommandSpec::new("echo a")).await.0.unwrap(),
        RunOutcome::exited(0)
    );
    fx.server.state().faults.corrupt_signature(1); // the Command answer
    let e = run(&fx, &CommandSpec::new("echo b")).await.0.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unexpected, "{e}");
    assert!(e.message().contains("signature"), "{e}");
    assert_eq!(fx.server.state().stats.action("Command"), 2, "not resent");
    assert_eq!(
        run(&fx, &CommandSpec::new("echo c")).await.0.unwrap(),
        RunOutcome::exited(0),
        "a new session works"
    );
}

#[tokio::test]
async fn bad_answers_are_specific_errors() {
    use orca_connectors::winrm::testserver::BadAnswer;
    for (bad, needle) in [
        (BadAnswer::MalformedXml, "not XML"),
        (BadAnswer::WrongRelatesTo, "relates to"),
        (BadAnswer::BadBase64, "base64"),
        (BadAnswer::InternalError, "InternalError"),
    ] {
        let fx = Fx::ntlm().await;
        fx.server.state().faults.bad_answer(bad);
        let e = run(&fx, &CommandSpec::new("echo x")).await.0.unwrap_err();
        assert!(e.message().contains(needle), "{bad:?}: {e}");
        assert_eq!(e.retry(), orca_core::Retry::Never, "{bad:?}: {e:?}");
    }
}

#[tokio::test]
async fn stalled_server_hits_the_read_timeout() {
    let fx = Fx::with(
        TestServerConfig::default(),
        opts(&[
            ("operation_timeout_secs", "0.3"),
            ("read_timeout_secs", "1"),
        ]),
    )
    .await;
    for _ in 0..4 {
        fx.server.state().faults.stall_receive(1);
    }
    fx.server.state().faults.stall_receive(1);
    let started = std::time::Instant::now();
    let spec = CommandSpec::new("ping -n 30 127.0.0.1 >nul").with_timeout(Duration::from_secs(3));
    let (r, _, _) = run(&fx, &spec).await;
    let o = r.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the timeouts"
    );
    assert_eq!(o.end, orca_core::RunEnd::TimedOut);
}

#[tokio::test]
async fn https_thumbprint_pin_and_mismatch() {
    let cfg = TestServerConfig {
        https: true,
        allow_basic: true,
        ..TestServerConfig::default()
    };
    let mut fx = Fx::with(cfg, opts(&[])).await;
    let sha1 = fx.server.tls().unwrap().sha1.clone();
    fx.options = opts(&[
        ("transport", "basic"),
        ("scheme", "https"),
        ("thumbprint", &sha1),
    ]);
    let (r, out, _) = run(&fx, &CommandSpec::new("hostname")).await;
    assert_eq!(
        (r.unwrap(), out.as_str()),
        (RunOutcome::exited(0), "WINRM-TEST01\n")
    );
    fx.options.insert("thumbprint".into(), "00".repeat(32));
    let e = run(&fx, &CommandSpec::new("hostname")).await.0.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HostKeyRejected, "{e}");
    fx.options.remove("thumbprint");
    let e = run(&fx, &CommandSpec::new("hostname")).await.0.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::HostKeyRejected,
        "the test CA is not a system root: {e}"
    );
}

#[tokio::test]
async fn ntlm_over_https_and_basic_over_http_needs_opt_in() {
    let cfg = TestServerConfig {
        https: true,
        ..TestServerConfig::default()
    };
    let mut fx = Fx::with(cfg, opts(&[])).await;
    let ca = super::fixture::write_ca(&fx.server);
    fx.options = opts(&[("scheme", "https"), ("ca_file", &ca)]);
    assert_eq!(
        run(&fx, &CommandSpec::new("exit /b 4")).await.0.unwrap(),
        RunOutcome::exited(4)
    );

    let cfg = TestServerConfig {
        allow_basic: true,
        allow_unencrypted: true,
        ..TestServerConfig::default()
    };
    let mut fx = Fx::with(cfg, opts(&[("transport", "basic")])).await;
    let e = run(&fx, &CommandSpec::new("exit /b 0"))
        .await
        .0
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("allow_unencrypted"), "{e}");
    fx.options.insert("allow_unencrypted".into(), "true".into());
    assert_eq!(
        run(&fx, &CommandSpec::new("exit /b 0")).await.0.unwrap(),
        RunOutcome::exited(0)
    );
}

#[tokio::test]
async fn cancel_before_and_during_a_command() {
    let fx = Fx::ntlm().await;
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (r, _, _) = run_collect(
        &*fx.connector,
        &fx.target(),
        &CommandSpec::new("echo x"),
        cancel,
    )
    .await;
    assert_eq!(r.unwrap().end, orca_core::RunEnd::Cancelled);
    assert_eq!(
        fx.server.state().stats.action("Command"),
        0,
        "nothing was started"
    );
    assert!(fx.connector.capabilities().powershell && !fx.connector.capabilities().posix_shell);
}
