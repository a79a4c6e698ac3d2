//! Burn-down: one job of `--executions` executions (one per system) on `--nodes` engine
//! processes; executions per second from the first claim to the last finish, both stamped by
//! the database clock.

use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use orca_core::model::{JobOptions, JobSpec, JobStatus, Targets};

use crate::cluster::{Cluster, postgres_cpu_seconds};
use crate::{Common, Res, Scratch, load_average};

#[derive(Debug, Clone, ClapArgs)]
pub struct BurnArgs {
    #[command(flatten)]
    pub common: Common,
    /// Executions in the job (one system each).
    #[arg(long, default_value_t = 100_000)]
    pub executions: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 1800)]
    pub deadline: u64,
}

pub async fn run(a: BurnArgs) -> Res<()> {
    let c = &a.common;
    let load_before = load_average();
    let scratch = Scratch::open(c).await?;
    scratch.systems("burn", a.executions).await?;
    let cluster = Cluster::start(c, scratch.schema()).await?;
    let result = measure(&a, &scratch, &cluster).await;
    let stopped = cluster.stop().await;
    scratch.close().await;
    let line = result?;
    stopped?;
    println!(
        "{line} load_before={load_before} load_after={}",
        load_average()
    );
    Ok(())
}

async fn measure(a: &BurnArgs, s: &Scratch, cluster: &Cluster) -> Res<String> {
    let c = &a.common;
    let (node_cpu0, pg_cpu0) = (cluster.cpu_seconds(), postgres_cpu_seconds());
    let spec = JobSpec {
        name: Some("burn-down".into()),
        command: "true".into(),
        targets: Targets {
            systems: vec![],
            tags: vec!["burn".into()],
        },
        options: JobOptions::default(),
    };
    let t0 = Instant::now();
    let job = s.orca.submit(&s.me, spec).await?.job;
    let submit_secs = t0.elapsed().as_secs_f64();
    let deadline = t0 + Duration::from_secs(a.deadline);
    loop {
        let n = s.orca.raw_store().job_counts(job.id).await?;
        if n.pending + n.running == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the job did not drain within {} s ({} pending, {} running)",
                a.deadline, n.pending, n.running
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let (node_cpu, pg_cpu) = (
        cluster.cpu_seconds() - node_cpu0,
        postgres_cpu_seconds() - pg_cpu0,
    );
    let (total, completed, secs): (i64, i64, f64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'completed'),
                coalesce(extract(epoch FROM max(completed_at) - min(started_at))::float8, 0)
           FROM executions WHERE job_id = $1",
    )
    .bind(job.id.0)
    .fetch_one(s.store.pool())
    .await?;
    let status = s.orca.raw_store().get_job(job.id).await?.status;
    if total != a.executions as i64 || completed != total || status != JobStatus::Completed {
        let by_status: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM executions WHERE job_id = $1 GROUP BY status ORDER BY 1",
        )
        .bind(job.id.0)
        .fetch_all(s.store.pool())
        .await?;
        return Err(format!(
            "burn-down incomplete: {completed} of {total} executions completed \
             ({} submitted), job {}, executions by status {by_status:?}",
            a.executions,
            status.as_str()
        )
        .into());
    }
    let rate = if secs > 0.0 { total as f64 / secs } else { 0.0 };
    Ok(format!(
        "RESULT burn nodes={} sync={} executions={total} secs={secs:.3} rate={rate:.0} \
         submit_secs={submit_secs:.3} wall_secs={wall:.3} node_cpu_secs={node_cpu:.1} \
         pg_cpu_secs={pg_cpu:.1} claim_batch={} write_batch={} concurrency={} per_system={}",
        c.nodes, c.synchronous_commit, c.claim_batch, c.write_batch, c.concurrency, c.per_system,
    ))
}
