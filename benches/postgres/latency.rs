//! Create→claim latency under a steady offered load: small jobs (`--job-size` executions each)
//! submitted open-loop at `--rate` executions per second; for each execution, from its job's
//! `created_at` (stamped when `submit` starts) to its `started_at` (the claim, database clock).

use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use orca_core::ids::JobId;
use orca_core::model::{JobOptions, JobSpec, Targets};
use tokio::time::MissedTickBehavior;

use crate::cluster::{Cluster, postgres_cpu_seconds};
use crate::{Common, Res, Scratch, load_average};

#[derive(Debug, Clone, ClapArgs)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub common: Common,
    /// Executions per second offered.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Executions per job (the job targets this many systems).
    #[arg(long, default_value_t = 10)]
    pub job_size: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// Seconds of the same load before measuring (not counted).
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
}

pub async fn run(a: LatencyArgs) -> Res<()> {
    let c = &a.common;
    if a.rate <= 0.0 || a.job_size == 0 || a.seconds <= 0.0 {
        return Err("--rate, --job-size and --seconds must be positive".into());
    }
    let load_before = load_average();
    let scratch = Scratch::open(c).await?;
    scratch.systems("lat", a.job_size).await?;
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

/// Submit at the offered rate for `secs`; returns the jobs and each submit's duration.
async fn offer(a: &LatencyArgs, s: &Scratch, secs: f64) -> Res<(Vec<JobId>, Vec<f64>, f64)> {
    let spec = JobSpec {
        name: Some("latency".into()),
        command: "true".into(),
        targets: Targets {
            systems: vec![],
            tags: vec!["lat".into()],
        },
        options: JobOptions::default(),
    };
    let period = Duration::from_secs_f64(a.job_size as f64 / a.rate);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let n = (secs / period.as_secs_f64()).round() as usize;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        tick.tick().await;
        let (orca, me, spec) = (s.orca.clone(), s.me.clone(), spec.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            orca.submit(&me, spec)
                .await
                .map(|sub| (sub.job.id, t.elapsed().as_secs_f64() * 1000.0))
        }));
    }
    let offered_secs = start.elapsed().as_secs_f64();
    let mut jobs = Vec::with_capacity(n);
    let mut submit_ms = Vec::with_capacity(n);
    for t in tasks {
        let (id, ms) = t.await??;
        jobs.push(id);
        submit_ms.push(ms);
    }
    Ok((jobs, submit_ms, offered_secs))
}

async fn measure(a: &LatencyArgs, s: &Scratch, cluster: &Cluster) -> Res<String> {
    let c = &a.common;
    if a.warmup > 0.0 {
        offer(a, s, a.warmup).await?;
    }
    let (node_cpu0, pg_cpu0) = (cluster.cpu_seconds(), postgres_cpu_seconds());
    let (jobs, mut submit_ms, offered_secs) = offer(a, s, a.seconds).await?;
    let ids: Vec<_> = jobs.iter().map(|j| j.0).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM executions
              WHERE job_id = ANY($1) AND status IN ('pending', 'running')",
        )
        .bind(&ids)
        .fetch_one(s.store.pool())
        .await?;
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{left} executions still unfinished 120 s after the load").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (node_cpu, pg_cpu) = (
        cluster.cpu_seconds() - node_cpu0,
        postgres_cpu_seconds() - pg_cpu0,
    );
    let (n, completed, p50, p99, max): (i64, i64, f64, f64, f64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE e.status = 'completed'),
                percentile_cont(0.5) WITHIN GROUP (ORDER BY l),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY l), max(l)
           FROM (SELECT e.status,
                        extract(epoch FROM e.started_at - j.created_at)::float8 * 1000 AS l
                   FROM executions e JOIN jobs j ON j.id = e.job_id
                  WHERE j.id = ANY($1)) e",
    )
    .bind(&ids)
    .fetch_one(s.store.pool())
    .await?;
    if completed != n || n as usize != jobs.len() * a.job_size {
        return Err(format!(
            "{completed} of {n} executions completed ({} submitted)",
            jobs.len() * a.job_size
        )
        .into());
    }
    submit_ms.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Ok(format!(
        "RESULT latency nodes={} sync={} rate={} job_size={} executions={n} \
         achieved_rate={:.0} p50_ms={p50:.2} p99_ms={p99:.2} max_ms={max:.2} \
         submit_p50_ms={:.2} submit_p99_ms={:.2} node_cpu_secs={node_cpu:.1} \
         pg_cpu_secs={pg_cpu:.1}",
        c.nodes,
        c.synchronous_commit,
        a.rate,
        a.job_size,
        n as f64 / offered_secs,
        pct(&submit_ms, 0.5),
        pct(&submit_ms, 0.99),
    ))
}
