//! Cases about targets: unreachable ones and probes.

use std::time::Duration;

use crate::model::HealthStatus;
use crate::{CancellationToken, CommandSpec, OutputSink};

use super::ConnectorFixture;
use super::support::SINK_CAPACITY;

/// Running on the bad target fails within [`ConnectorFixture::bad_target_bound`] with one of
/// [`ConnectorFixture::bad_target_kinds`] and a message, rather than hanging or reporting an
/// outcome; and it printed nothing.
pub async fn bad_target_is_an_error(f: &dyn ConnectorFixture) {
    let c = f.connector();
    let t = f.bad_target();
    let (sink, mut rx) = OutputSink::channel(SINK_CAPACITY);
    let spec = CommandSpec::new(f.cmd_exit(0));
    let r = tokio::time::timeout(
        f.bad_target_bound(),
        c.run(&t, &spec, sink, CancellationToken::new()),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "run on the bad target {} hung for {:?}",
            t.system.name,
            f.bad_target_bound()
        )
    });
    let e = match r {
        Ok(o) => panic!("run on the bad target must fail, got the outcome {o:?}"),
        Err(e) => e,
    };
    assert!(
        f.bad_target_kinds().contains(&e.kind()),
        "run on the bad target failed with {:?} ({e}); expected one of {:?}",
        e.kind(),
        f.bad_target_kinds()
    );
    assert!(
        !e.message().trim().is_empty(),
        "the error says what went wrong"
    );
    assert!(
        rx.recv().await.is_none(),
        "nothing ran, so nothing was printed"
    );
}

/// A probe of the good target is healthy, with a latency and no reason.
pub async fn probe_reports_healthy_target(f: &dyn ConnectorFixture) {
    let c = f.connector();
    let report = tokio::time::timeout(Duration::from_secs(60), c.probe(&f.target()))
        .await
        .expect("the probe hung");
    assert_eq!(report.status, HealthStatus::Healthy, "{report:?}");
    assert_eq!(report.reason, None, "{report:?}");
    assert!(report.latency > Duration::ZERO, "{report:?}");
    assert!(report.latency < Duration::from_secs(60), "{report:?}");
}

/// A probe of the bad target is an unhealthy report with a reason (not an error, not a hang).
pub async fn probe_reports_unhealthy_target(f: &dyn ConnectorFixture) {
    let c = f.connector();
    let report = tokio::time::timeout(f.bad_target_bound(), c.probe(&f.bad_target()))
        .await
        .expect("the probe of the bad target hung");
    assert_eq!(report.status, HealthStatus::Unhealthy, "{report:?}");
    let reason = report.reason.as_deref().unwrap_or("");
    assert!(
        !reason.trim().is_empty(),
        "an unhealthy report says why: {report:?}"
    );
}
