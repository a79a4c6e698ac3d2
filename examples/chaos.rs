//! Chaos harness: several Orca engine processes share one PostgreSQL database while nodes are
//! SIGKILLed (and their database sessions terminated) at random; afterwards it checks that no
//! execution was left unfinished or run twice.
//!
//! ```text
//! cargo run --release --example chaos -- --database postgres://postgres@127.0.0.1/test \
//!     --nodes 3 --executions 300 --kill-every 10
//! ```
//!
//! It starts `--nodes` engine processes (this same binary with `--node`), each with its own
//! pool, LISTEN connection and up to `--concurrency` executions at once, in a fresh schema.
//! It submits `--executions` executions of a local command that sleeps `--sleep` seconds and
//! then appends its execution id to a marker file. Every `--kill-every` seconds it SIGKILLs a
//! random node and starts a new one in its place; with `--terminate-every` it also terminates a
//! random node's database sessions (`pg_terminate_backend`). When every execution has ended it
//! checks:
//!
//! - every execution is terminal;
//! - each has exactly one terminal state (the stored one; no node announced another);
//! - no execution's marker was written twice;
//! - every `completed` execution has its marker;
//! - `lost` ≤ kills × per-node concurrency.
//!
//! It prints one summary line and exits 1 on any violation (2 if it could not run).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use orca_connectors::local::{LocalConfig, LocalConnector};
use orca_core::ids::{ExecutionId, JobId};
use orca_core::model::{
    ExecutionStatus, JobOptions, JobSpec, NewSystem, Page, Principal, SystemType, Targets,
};
use orca_core::{
    Clock, EngineConfig, Event, EventBus, Executor, KeyRing, Orca, Store, SystemClock,
};
use orca_store::postgres::{PgEventBus, PostgresOptions, PostgresStore};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

#[derive(Debug, Clone, Parser)]
#[command(about = "Kill Orca nodes sharing one PostgreSQL database and check the invariants")]
struct Args {
    /// PostgreSQL URL.
    #[arg(long, env = "ORCA_TEST_POSTGRES_URL")]
    database: String,
    /// Engine processes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Executions to run.
    #[arg(long, default_value_t = 300)]
    executions: usize,
    /// SIGKILL a random node (and restart it) this often, in seconds (0: never).
    #[arg(long, default_value_t = 10.0)]
    kill_every: f64,
    /// Terminate a random node's database sessions this often, in seconds (0: never).
    #[arg(long, default_value_t = 0.0)]
    terminate_every: f64,
    /// Stop killing after this many seconds (0: until the queue drains).
    #[arg(long, default_value_t = 0.0)]
    kill_for: f64,
    /// How long each command sleeps before writing its marker, in seconds.
    #[arg(long, default_value_t = 3.0)]
    sleep: f64,
    /// Executions running at once per node.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Lease length in seconds (heartbeats every third of it).
    #[arg(long, default_value_t = 4.0)]
    lease: f64,
    /// Give up waiting for the drain after this many seconds.
    #[arg(long, default_value_t = 1800.0)]
    deadline: f64,
    /// Keep the schema and the work directory afterwards.
    #[arg(long)]
    keep: bool,
    /// Internal: run as an engine node in this schema.
    #[arg(long, hide = true)]
    node: Option<String>,
    /// Internal: the node's name.
    #[arg(long, hide = true, default_value = "node")]
    node_name: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr);
    if args.node.is_some() {
        let _ = logs
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .try_init();
        return match node(args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chaos node: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    let _ = logs
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .try_init();
    match coordinate(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("chaos: could not run: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn store_options(args: &Args, schema: &str, node: Option<&str>) -> PostgresOptions {
    let mut o = PostgresOptions::new(&args.database)
        .schema(schema)
        .max_connections(8);
    o.node_name = node.map(str::to_string);
    o
}

/// An engine node: runs until its stdin closes (the coordinator went away) or it is killed.
async fn node(args: Args) -> Res<()> {
    let schema = args.node.clone().unwrap_or_default();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = PostgresStore::connect(
        store_options(&args, &schema, Some(&args.node_name)),
        clock.clone(),
    )
    .await?;
    let bus = PgEventBus::new(&store).await?;
    let lease = secs(args.lease);
    let config = EngineConfig {
        worker_name: format!("{}-{}", args.node_name, std::process::id()),
        max_concurrency: args.concurrency,
        per_system: None,
        claim_batch: args.concurrency as u32,
        lease,
        heartbeat_interval: lease / 3,
        poll_interval: Duration::from_millis(500),
        reaper_interval: Duration::from_secs(1),
        default_timeout: Some(Duration::from_secs(600)),
        health_interval: None,
        ..EngineConfig::default()
    };
    let orca = Orca::builder()
        .store(Arc::new(store.clone()))
        .bus(Arc::new(bus))
        .connector(Arc::new(LocalConnector::new(LocalConfig::default())?))
        .keyring(KeyRing::ephemeral())
        .clock(clock)
        .engine_config(config)
        .build()?;
    orca.start().await?;
    let mut waker = store.work_waker().await?;
    let engine = orca.engine().clone();
    tokio::spawn(async move {
        while waker.notified().await {
            engine.wake();
        }
    });
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while stdin.read(&mut buf).await.unwrap_or(0) > 0 {}
    orca.shutdown(Duration::from_secs(5)).await?;
    store.close().await;
    Ok(())
}

/// The node processes.
struct Nodes {
    exe: PathBuf,
    args: Args,
    schema: String,
    dir: PathBuf,
    children: Vec<Child>,
    started: usize,
}

impl Nodes {
    fn spawn(&mut self, i: usize) -> Res<Child> {
        self.started += 1;
        let log = std::fs::File::create(self.dir.join(format!("node-{i}-{}.log", self.started)))?;
        let child = Command::new(&self.exe)
            .arg("--database")
            .arg(&self.args.database)
            .arg("--node")
            .arg(&self.schema)
            .arg("--node-name")
            .arg(format!("node-{i}"))
            .arg("--concurrency")
            .arg(self.args.concurrency.to_string())
            .arg("--lease")
            .arg(self.args.lease.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()?;
        Ok(child)
    }

    async fn kill(&mut self, i: usize) -> Res<()> {
        self.children[i].start_kill()?;
        let _ = self.children[i].wait().await;
        self.children[i] = self.spawn(i)?;
        Ok(())
    }

    async fn stop_all(&mut self) {
        for c in &mut self.children {
            drop(c.stdin.take());
        }
        for c in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(15), c.wait())
                .await
                .is_err()
            {
                let _ = c.start_kill();
                let _ = c.wait().await;
            }
        }
    }
}

impl Drop for Nodes {
    /// On an early return, make sure no node outlives the coordinator (a node starting up
    /// could otherwise re-create the schema after the coordinator dropped it).
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.start_kill();
        }
        for c in &mut self.children {
            for _ in 0..100 {
                if !matches!(c.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

async fn coordinate(args: Args) -> Res<bool> {
    if args.nodes == 0 || args.executions == 0 || args.concurrency == 0 {
        return Err("--nodes, --executions and --concurrency must be at least 1".into());
    }
    let started = Instant::now();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let schema = format!("orca_chaos_{stamp}_{}", std::process::id());
    let dir = std::env::temp_dir().join(&schema);
    std::fs::create_dir_all(&dir)?;
    let marker = dir.join("markers");
    std::fs::File::create(&marker)?;
    {
        // Run as root, the local connector runs commands as `nobody`: they must be able to
        // reach the directory and append to the marker file.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(&marker, std::fs::Permissions::from_mode(0o666))?;
    }

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut opts = store_options(&args, &schema, Some("coordinator"));
    opts.ephemeral = !args.keep;
    let store = PostgresStore::connect(opts, clock.clone()).await?;
    let bus = PgEventBus::new(&store).await?;
    let announced = watch_terminal_events(&bus);
    // The coordinator's own Orca only registers systems and submits; its engine never starts.
    let orca = Orca::builder()
        .store(Arc::new(store.clone()))
        .bus(Arc::new(bus))
        .connector(Arc::new(LocalConnector::new(LocalConfig::default())?))
        .keyring(KeyRing::ephemeral())
        .clock(clock)
        .build()?;
    let me = Principal::system("chaos");

    let mut nodes = Nodes {
        exe: std::env::current_exe()?,
        args: args.clone(),
        schema: schema.clone(),
        dir: dir.clone(),
        children: Vec::new(),
        started: 0,
    };
    for i in 0..args.nodes {
        let c = nodes.spawn(i)?;
        nodes.children.push(c);
    }

    // Executions: up to 100 local systems, one job per round over them.
    let n_systems = args.executions.min(100);
    let mut names = Vec::new();
    for i in 0..n_systems {
        let name = format!("chaos-{i:03}");
        orca.add_system(
            &me,
            NewSystem {
                name: name.clone(),
                system_type: Some(SystemType::Local),
                ..NewSystem::default()
            },
        )
        .await?;
        names.push(name);
    }
    let command = format!(
        "sleep {}; echo \"$ORCA_EXECUTION_ID\" >> '{}'",
        args.sleep,
        marker.display()
    );
    let mut jobs = Vec::new();
    let mut left = args.executions;
    while left > 0 {
        let n = left.min(n_systems);
        let s = orca
            .submit(
                &me,
                JobSpec {
                    name: Some("chaos".into()),
                    command: command.clone(),
                    targets: Targets {
                        systems: names[..n].to_vec(),
                        tags: vec![],
                    },
                    options: JobOptions::default(),
                },
            )
            .await?;
        jobs.push(s.job.id);
        left -= n;
    }

    // Chaos until the queue drains.
    let pg = store.clone();
    let store: Arc<dyn Store> = Arc::new(store);
    let mut kills = 0usize;
    let mut terminations = 0usize;
    let mut next_kill = Instant::now() + secs(args.kill_every);
    let mut next_term = Instant::now() + secs(args.terminate_every);
    let chaos_until = (args.kill_for > 0.0).then(|| Instant::now() + secs(args.kill_for));
    let deadline = Instant::now() + secs(args.deadline);
    let drained = loop {
        if unfinished(&*store, &jobs).await? == 0 {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        let chaos = chaos_until.is_none_or(|t| Instant::now() < t);
        if chaos && args.kill_every > 0.0 && Instant::now() >= next_kill {
            let i = rand::random_range(0..args.nodes);
            nodes.kill(i).await?;
            kills += 1;
            next_kill = Instant::now() + secs(args.kill_every);
        }
        if chaos && args.terminate_every > 0.0 && Instant::now() >= next_term {
            let i = rand::random_range(0..args.nodes);
            terminate_sessions(pg.pool(), &schema, i).await;
            terminations += 1;
            next_term = Instant::now() + secs(args.terminate_every);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    nodes.stop_all().await;

    let report = check(&*store, &jobs, &marker, &announced, kills, &args).await?;
    let ok = drained && report.violations.is_empty();
    println!(
        "chaos: {} nodes={} executions={} kills={kills} terminations={terminations} \
         completed={} lost={} (bound {}) failed={} timeout={} cancelled={} not_terminal={} \
         markers={} duplicate_markers={} completed_without_marker={} conflicting_states={} \
         elapsed={:.1}s{}",
        if ok { "PASS" } else { "FAIL" },
        args.nodes,
        args.executions,
        report.count(ExecutionStatus::Completed),
        report.count(ExecutionStatus::Lost),
        kills * args.concurrency,
        report.count(ExecutionStatus::Failed),
        report.count(ExecutionStatus::Timeout),
        report.count(ExecutionStatus::Cancelled),
        report.not_terminal,
        report.markers,
        report.duplicate_markers,
        report.missing_markers,
        report.conflicting,
        started.elapsed().as_secs_f64(),
        if drained {
            ""
        } else {
            " (did not drain before --deadline)"
        },
    );
    for v in &report.violations {
        eprintln!("chaos: violation: {v}");
    }
    if ok && !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("chaos: node logs and markers kept in {}", dir.display());
    }
    Ok(ok)
}

/// Terminate node `i`'s database sessions (its pool and LISTEN connection), as an operator or
/// a network failure would.
async fn terminate_sessions(pool: &sqlx::PgPool, schema: &str, i: usize) {
    let r: Result<i64, _> = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
          WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(format!("orca/{schema}/node-{i}"))
    .fetch_one(pool)
    .await;
    if let Err(e) = r {
        eprintln!("chaos: terminating node-{i}'s sessions failed: {e}");
    }
}

async fn unfinished(store: &dyn Store, jobs: &[JobId]) -> Res<u64> {
    let mut n = 0;
    for j in jobs {
        let c = store.job_counts(*j).await?;
        n += c.pending + c.running;
    }
    Ok(n)
}

/// Terminal states announced on the bus, per execution.
type Announced = Arc<Mutex<HashMap<ExecutionId, Vec<ExecutionStatus>>>>;

fn watch_terminal_events(bus: &PgEventBus) -> Announced {
    let seen: Announced = Arc::default();
    let mut rx = bus.subscribe();
    let out = seen.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Event::Execution {
                        execution_id,
                        status,
                        ..
                    } = &*ev
                        && status.is_terminal()
                    {
                        out.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(*execution_id)
                            .or_default()
                            .push(*status);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("chaos: missed {n} events (lagging); the store remains the check");
                }
                Err(_) => break,
            }
        }
    });
    seen
}

#[derive(Debug, Default)]
struct Report {
    counts: HashMap<ExecutionStatus, usize>,
    not_terminal: usize,
    markers: usize,
    duplicate_markers: usize,
    missing_markers: usize,
    conflicting: usize,
    violations: Vec<String>,
}

impl Report {
    fn count(&self, s: ExecutionStatus) -> usize {
        self.counts.get(&s).copied().unwrap_or(0)
    }
}

async fn check(
    store: &dyn Store,
    jobs: &[JobId],
    marker: &Path,
    announced: &Announced,
    kills: usize,
    args: &Args,
) -> Res<Report> {
    let mut r = Report::default();
    let mut executions = Vec::new();
    for j in jobs {
        let mut offset = 0;
        loop {
            let page = store.list_executions(*j, Page::new(offset, 1000)?).await?;
            offset += page.len() as u64;
            let done = page.len() < 1000;
            executions.extend(page);
            if done {
                break;
            }
        }
    }
    if executions.len() != args.executions {
        r.violations.push(format!(
            "{} executions stored for {} submitted",
            executions.len(),
            args.executions
        ));
    }
    let mut marks: HashMap<ExecutionId, usize> = HashMap::new();
    for line in std::fs::read_to_string(marker)?.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.parse::<ExecutionId>() {
            Ok(id) => *marks.entry(id).or_default() += 1,
            Err(_) => r.violations.push(format!("garbled marker line '{line}'")),
        }
    }
    r.markers = marks.values().sum();
    for (id, n) in &marks {
        if *n > 1 {
            r.duplicate_markers += 1;
            r.violations
                .push(format!("execution {id} ran {n} times (markers)"));
        }
    }
    let announced = announced.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for e in &executions {
        *r.counts.entry(e.status).or_default() += 1;
        if !e.status.is_terminal() {
            r.not_terminal += 1;
            r.violations
                .push(format!("execution {} is still {}", e.id, e.status.as_str()));
        }
        if e.status == ExecutionStatus::Completed && !marks.contains_key(&e.id) {
            r.missing_markers += 1;
            r.violations
                .push(format!("execution {} completed without its marker", e.id));
        }
        if let Some(seen) = announced.get(&e.id)
            && seen.iter().any(|s| *s != e.status)
        {
            r.conflicting += 1;
            r.violations.push(format!(
                "execution {} is {} but was announced as {:?}",
                e.id,
                e.status.as_str(),
                seen
            ));
        }
    }
    for id in marks.keys() {
        if !executions.iter().any(|e| e.id == *id) {
            r.violations
                .push(format!("a marker names unknown execution {id}"));
        }
    }
    let lost = r.count(ExecutionStatus::Lost);
    if lost > kills * args.concurrency {
        r.violations.push(format!(
            "{lost} executions lost for {kills} kills × {} per node",
            args.concurrency
        ));
    }
    Ok(r)
}
