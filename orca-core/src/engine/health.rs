//! Health probes: on demand and, optionally, a monitor that probes every active system.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::Inner;
use crate::Result;
use crate::connector::{ProbeReport, Target};
use crate::model::{Credential, Health, HealthStatus, Page, System, SystemFilter};

/// Probe a target through a connector, turning the report into a [`Health`] stamped `now`.
pub async fn probe_target(
    connector: &dyn crate::Connector,
    target: &Target,
    now: crate::model::Timestamp,
) -> Health {
    let ProbeReport {
        status,
        latency,
        reason,
    } = connector.probe(target).await;
    Health {
        status,
        checked_at: Some(now),
        latency_ms: Some(latency.as_millis().min(u64::MAX as u128) as u64),
        reason,
    }
}

pub(crate) async fn probe_and_record(inner: &Arc<Inner>, system: &System) -> Result<Health> {
    let health = match probe(inner, system).await {
        Ok(h) => h,
        Err(e) => Health {
            status: HealthStatus::Unhealthy,
            checked_at: Some(inner.clock.now()),
            latency_ms: None,
            reason: Some(e.to_string()),
        },
    };
    inner.store.record_health(system.id, &health).await?;
    Ok(health)
}

async fn probe(inner: &Arc<Inner>, system: &System) -> Result<Health> {
    let connector = inner.connectors.require(system.system_type)?;
    let credential = match &system.credential {
        None => Credential::None,
        Some(s) => inner.vault.open(&system.id.to_string(), s)?,
    };
    let target = Target {
        system: system.clone(),
        credential,
        execution_id: None,
        host_keys: Some(inner.host_keys.clone()),
    };
    Ok(probe_target(connector.as_ref(), &target, inner.clock.now()).await)
}

pub(crate) async fn monitor_loop(inner: Arc<Inner>, every: Duration) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = inner.stop_loops.cancelled() => break,
        }
        let filter = SystemFilter {
            active: Some(true),
            ..Default::default()
        };
        let mut offset = 0;
        loop {
            let page = Page { offset, limit: 500 };
            let systems = match inner.store.list_systems(&filter, page).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "health monitor cannot list systems");
                    break;
                }
            };
            let n = systems.len();
            futures::stream::iter(systems)
                .for_each_concurrent(inner.config.health_concurrency.max(1), |s| {
                    let inner = inner.clone();
                    async move {
                        if let Err(e) = probe_and_record(&inner, &s).await {
                            tracing::warn!(system = %s.name, error = %e, "recording health failed");
                        }
                    }
                })
                .await;
            if n < 500 || inner.stop_loops.is_cancelled() {
                break;
            }
            offset += 500;
        }
    }
}
