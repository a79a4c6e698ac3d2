//! Orca on PostgreSQL: burn-down throughput over 1–3 engine processes and create→claim latency
//! at a steady offered load. `run.sh` beside this file runs it together with the pgbench
//! ceiling and prints a Markdown table; see `README.md` there.
//!
//! ```text
//! cargo bench -p orca-benches --bench postgres -- burn --nodes 2 --executions 100000
//! cargo bench -p orca-benches --bench postgres -- burn --nodes 1 --synchronous-commit off
//! cargo bench -p orca-benches --bench postgres -- latency --nodes 1 --rate 1000 --seconds 20
//! ```
//!
//! Every run works in a fresh schema `orca_pgb_<pid>_<n>` of `--database` (dropped afterwards).
//! The nodes are separate processes (this binary with the hidden `node` command), each with its
//! own pool, LISTEN connection and [`orca_store::postgres::PgEventBus`], woken by the store's
//! NOTIFY, running the no-op scripted connector (`true`). Each command prints one `RESULT`
//! line of `key=value` pairs for `run.sh` to parse.

mod burn;
mod cluster;
mod latency;
mod node;

use std::sync::Arc;

use clap::{Args as ClapArgs, Parser, Subcommand};
use orca_core::model::{NewSystem, Principal, SystemType};
use orca_core::scripted::ScriptedConnector;
use orca_core::{Clock, EngineConfig, KeyRing, Orca, SystemClock};
use orca_store::postgres::{PostgresOptions, PostgresStore};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Parser)]
#[command(about = "Orca on PostgreSQL: burn-down throughput and create→claim latency")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Burn down one job of `--executions` executions with `--nodes` engine processes.
    Burn(burn::BurnArgs),
    /// Submit small jobs at a steady rate and measure create→claim latency.
    Latency(latency::LatencyArgs),
    /// Internal: one engine process.
    #[command(hide = true)]
    Node(node::NodeArgs),
}

/// What every command shares: where, how durable, and the engine settings of the nodes.
#[derive(Debug, Clone, ClapArgs)]
struct Common {
    /// PostgreSQL URL (a scratch schema is created in it and dropped afterwards).
    #[arg(
        long,
        env = "ORCA_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database: String,
    /// `synchronous_commit` of every session of the run (`on` or `off`), set per session.
    #[arg(long, default_value = "on")]
    synchronous_commit: String,
    /// Engine processes.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Executions running at once per node.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Most executions one claim takes.
    #[arg(long, default_value_t = 256)]
    claim_batch: u32,
    /// Most finishes written in one statement.
    #[arg(long, default_value_t = 512)]
    write_batch: usize,
    /// Per-system limit across nodes (0: none; Orca's default is 8).
    #[arg(long, default_value_t = 0)]
    per_system: u32,
    /// Connections in each node's pool.
    #[arg(long, default_value_t = 10)]
    pool: u32,
    /// Keep the scratch schema afterwards.
    #[arg(long)]
    keep: bool,
}

impl Common {
    /// The URL with `synchronous_commit` set for every session it opens.
    fn url(&self) -> Res<String> {
        let sc = self.synchronous_commit.as_str();
        if !matches!(sc, "on" | "off" | "local" | "remote_write" | "remote_apply") {
            return Err(format!("--synchronous-commit must be on or off, not '{sc}'").into());
        }
        let sep = if self.database.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!(
            "{}{sep}options[synchronous_commit]={sc}",
            self.database
        ))
    }

    fn engine(&self, name: &str) -> EngineConfig {
        EngineConfig {
            worker_name: format!("{name}-{}", std::process::id()),
            max_concurrency: self.concurrency,
            per_system: (self.per_system > 0).then_some(self.per_system),
            claim_batch: self.claim_batch,
            write_batch: self.write_batch,
            health_interval: None,
            ..EngineConfig::default()
        }
    }
}

/// The one-minute load average.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// A coordinator's store and Orca (its engine never starts) in a fresh scratch schema.
struct Scratch {
    store: PostgresStore,
    orca: Orca,
    me: Principal,
}

impl Scratch {
    async fn open(c: &Common) -> Res<Self> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let schema = format!("orca_pgb_{}_{n}", std::process::id());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut o = PostgresOptions::new(c.url()?)
            .schema(&schema)
            .max_connections(16);
        o.node_name = Some("coordinator".into());
        o.ephemeral = !c.keep;
        let store = PostgresStore::connect(o, clock.clone()).await?;
        let orca = Orca::builder()
            .store(Arc::new(store.clone()))
            .connector(Arc::new(ScriptedConnector::new()))
            .keyring(KeyRing::ephemeral())
            .clock(clock)
            .build()?;
        Ok(Scratch {
            store,
            orca,
            me: Principal::system("bench"),
        })
    }

    fn schema(&self) -> &str {
        self.store.schema()
    }

    /// `n` local systems tagged `tag`: one through the facade, the rest copied from it in one
    /// statement (set-up, not measured).
    async fn systems(&self, tag: &str, n: usize) -> Res<()> {
        let first = format!("{tag}-0");
        self.orca
            .add_system(
                &self.me,
                NewSystem {
                    name: first.clone(),
                    system_type: Some(SystemType::Local),
                    tags: vec![tag.to_string()],
                    ..NewSystem::default()
                },
            )
            .await?;
        if n > 1 {
            sqlx::query(
                "INSERT INTO systems (id, name, hostname, port, system_type, username, credential,
                                      tags, active, health_status, host_key_policy, options,
                                      created_at, updated_at)
                 SELECT gen_random_uuid(), $2 || '-' || g, hostname, port, system_type, username,
                        credential, tags, active, health_status, host_key_policy, options,
                        created_at, updated_at
                   FROM systems, generate_series(1, $3) AS g WHERE name = $1",
            )
            .bind(&first)
            .bind(tag)
            .bind(i64::try_from(n - 1)?)
            .execute(self.store.pool())
            .await?;
            sqlx::query("ANALYZE systems")
                .execute(self.store.pool())
                .await?;
        }
        Ok(())
    }

    async fn close(self) {
        let store = self.store.clone();
        drop(self.orca);
        drop(self.store);
        store.close().await;
        // The last handle drops the scratch schema (ephemeral), synchronously.
        drop(store);
    }
}

fn main() -> std::process::ExitCode {
    // `cargo bench` appends `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let cli = Cli::parse_from(args);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("postgres bench: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let res = rt.block_on(async move {
        match cli.cmd {
            Cmd::Burn(a) => burn::run(a).await,
            Cmd::Latency(a) => latency::run(a).await,
            Cmd::Node(a) => node::run(a).await,
        }
    });
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postgres bench: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
