//! The Rust side of the binding-overhead benchmark: N local `true` executions submitted and
//! awaited through `orca_core::Orca`, exactly as `orca.Orca.run(...).wait()` does from
//! Python (submit all, then wait for each and read its report). Prints seconds as JSON.
//!
//! ```text
//! cargo run --release -p orca-py --example bench_local -- 1000
//! python examples/python/bench_overhead.py --rust target/release/examples/bench_local
//! ```

use std::sync::Arc;
use std::time::Instant;

use orca::connectors::local::{LocalConfig, LocalConnector};
use orca::stores::sqlite::SqliteStore;
use orca_core::model::{JobOptions, JobSpec, Principal, Targets};
use orca_core::{Clock, Orca, SystemClock, keyfile};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("orca-bench-rust-{}", std::process::id()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = SqliteStore::open_path(dir.join("orca.db"), clock.clone()).await?;
    let orca = Orca::builder()
        .store(Arc::new(store))
        .clock(clock)
        .keyring(keyfile::load_or_create(&dir.join(keyfile::KEY_FILE_NAME))?)
        .connector(Arc::new(LocalConnector::new(LocalConfig::default())?))
        .build()?;
    orca.start().await?;
    let me = Principal::system("bench");
    orca.ensure_local_system(&me).await?;
    let start = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let spec = JobSpec {
            name: None,
            command: "true".into(),
            targets: Targets {
                systems: vec!["local".into()],
                tags: vec![],
            },
            options: JobOptions::default(),
        };
        ids.push(orca.submit(&me, spec).await?.job.id);
    }
    let mut completed = 0;
    for id in ids {
        orca.wait_job(&me, id).await?;
        let report = orca.job_report(&me, id).await?;
        if report.job.status == orca_core::model::JobStatus::Completed {
            completed += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    orca.shutdown(std::time::Duration::from_secs(5)).await?;
    std::fs::remove_dir_all(&dir).ok();
    println!("{{\"n\": {n}, \"completed\": {completed}, \"seconds\": {secs:.3}}}");
    Ok(())
}
