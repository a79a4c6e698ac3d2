use std::time::Duration;

/// Engine settings. `Default` gives sensible values for one node.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// This worker's name (lease owner). Defaults to `<hostname>-<pid>`.
    pub worker_name: String,
    /// At most this many executions run at once on this node.
    pub max_concurrency: usize,
    /// At most this many executions run at once per system, across nodes (None: unlimited).
    pub per_system: Option<u32>,
    /// How many executions one claim takes at most.
    pub claim_batch: u32,
    /// Lease length.
    #[serde(with = "secs")]
    pub lease: Duration,
    /// Heartbeat interval (must be well below `lease`).
    #[serde(with = "secs")]
    pub heartbeat_interval: Duration,
    /// Poll interval for new work when nothing wakes the engine.
    #[serde(with = "secs")]
    pub poll_interval: Duration,
    /// How often the reaper looks for expired leases.
    #[serde(with = "secs")]
    pub reaper_interval: Duration,
    /// Timeout of an execution whose job sets none (None: no timeout).
    #[serde(with = "opt_secs")]
    pub default_timeout: Option<Duration>,
    /// Output bytes kept per execution (head and tail; the middle is dropped and counted).
    pub output_cap: u64,
    /// Output is written to the store at least this often while a command prints.
    #[serde(with = "secs")]
    pub output_flush_interval: Duration,
    /// ... or when this many bytes are buffered.
    pub output_flush_bytes: usize,
    /// Retry backoff: first delay.
    #[serde(with = "secs")]
    pub backoff_base: Duration,
    /// Retry backoff: largest delay.
    #[serde(with = "secs")]
    pub backoff_max: Duration,
    /// Health probes of active systems at this interval (None: off).
    #[serde(with = "opt_secs")]
    pub health_interval: Option<Duration>,
    /// How many probes run at once.
    pub health_concurrency: usize,
    /// Most items written to the store in one batch.
    pub write_batch: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            worker_name: default_worker_name(),
            max_concurrency: 256,
            per_system: Some(8),
            claim_batch: 256,
            lease: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
            reaper_interval: Duration::from_secs(5),
            default_timeout: Some(Duration::from_secs(3600)),
            output_cap: 64 * 1024 * 1024,
            output_flush_interval: Duration::from_millis(50),
            output_flush_bytes: 256 * 1024,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            health_interval: Some(Duration::from_secs(300)),
            health_concurrency: 16,
            write_batch: 512,
        }
    }
}

impl EngineConfig {
    /// Check the settings hang together.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: &str| Err(crate::Error::invalid(format!("engine config: {m}")));
        if self.worker_name.trim().is_empty() {
            return bad("worker_name must not be empty");
        }
        if self.max_concurrency == 0 {
            return bad("max_concurrency must be at least 1");
        }
        if self.claim_batch == 0 || self.write_batch == 0 {
            return bad("claim_batch and write_batch must be at least 1");
        }
        if self.per_system == Some(0) {
            return bad("per_system must be at least 1 (or unset)");
        }
        if self.heartbeat_interval * 2 > self.lease {
            return bad("heartbeat_interval must be at most half the lease");
        }
        if self.output_cap != 0 && self.output_cap < 1024 {
            return bad("output_cap must be 0 (unlimited) or at least 1024 bytes");
        }
        Ok(())
    }
}

fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "orca".to_string());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::now_v7().simple().to_string()[24..]
    )
}

mod secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v: f64 = serde::Deserialize::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

mod opt_secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let v: Option<f64> = serde::Deserialize::deserialize(d)?;
        v.map(|v| Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom))
            .transpose()
    }
}
