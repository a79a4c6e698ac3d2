//! WinRM connector benchmark against the WinRM test server on loopback (NTLM with message
//! sealing over HTTP, as a default Windows host), and pywinrm's `run_cmd` on the same servers in
//! the same run. Use `benches/winrm/run.sh`, which also sets up pywinrm in a venv:
//!
//! ```text
//! bash benches/winrm/run.sh                      # defaults: 100 systems x 10 commands, 5 reps
//! cargo bench -p orca-benches --bench winrm -- --systems 100 --commands 10 --reps 5 \
//!     --python target/winrm-bench-venv/bin/python
//! ```
//!
//! Measures, with medians over the samples:
//! - round trips (HTTP requests counted by the server), latency and client CPU of one command on
//!   a fresh connector (TCP + NTLM + shell) and on a warm shell;
//! - commands/s for N systems × M commands, all systems at once, each system's commands in turn
//!   (a job's way), from a cold connector and again with its pool warm;
//! - the same workload with pywinrm (`Session.run_cmd`, one thread per system up to
//!   `--py-threads`), its round trips and CPU.
//!
//! Every server is a separate listener (its own NTLM state and shells, like separate hosts) on
//! a server runtime whose threads are measured apart from the client's (`cpu.rs`). The Orca
//! client runs on one thread, like the Python client (GIL), so CPU per command compares.

mod cpu;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use orca_connectors::winrm::WinRmConnector;
use orca_connectors::winrm::testserver::{TestServer, TestServerConfig};
use orca_core::ids::SystemId;
use orca_core::model::{Credential, Health, HostKeyPolicy, Stream, System, SystemType};
use orca_core::{CancellationToken, CommandSpec, Connector, OutputSink, RunEnd, Target};
use secrecy::SecretString;

use cpu::ServerThreads;

const COMMAND: &str = "echo hello";
const ACTIONS: [&str; 5] = ["Create", "Command", "Receive", "Signal", "Delete"];

#[derive(Debug, Parser)]
struct Args {
    /// Systems (one test server each).
    #[arg(long, default_value_t = 100)]
    systems: usize,
    /// Commands per system.
    #[arg(long, default_value_t = 10)]
    commands: usize,
    /// Repetitions of the throughput workload (per client).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Samples of a command on a fresh connector.
    #[arg(long, default_value_t = 30)]
    fresh: usize,
    /// Samples of a command on a warm shell.
    #[arg(long, default_value_t = 300)]
    warm: usize,
    /// Worker threads of the test servers' runtime.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// A Python with pywinrm installed; without it pywinrm is skipped.
    #[arg(long)]
    python: Option<String>,
    /// Threads of the pywinrm client (at most one per system).
    #[arg(long, default_value_t = 100)]
    py_threads: usize,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one measured piece of work cost.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    wall: Duration,
    client_cpu: Duration,
    server_cpu: Duration,
    requests: u64,
}

struct Bench {
    servers: Vec<TestServer>,
    threads: ServerThreads,
}

impl Bench {
    fn requests(&self) -> u64 {
        self.servers
            .iter()
            .map(|s| {
                s.state()
                    .stats
                    .requests
                    .load(std::sync::atomic::Ordering::SeqCst)
            })
            .sum()
    }
    /// Requests per WinRS action so far, summed over servers, in [`ACTIONS`] order.
    fn actions(&self) -> Vec<u64> {
        ACTIONS
            .iter()
            .map(|a| self.servers.iter().map(|s| s.state().stats.action(a)).sum())
            .collect()
    }
    fn connections(&self) -> u64 {
        self.servers
            .iter()
            .map(|s| {
                s.state()
                    .stats
                    .connections
                    .load(std::sync::atomic::Ordering::SeqCst)
            })
            .sum()
    }
    fn logons(&self) -> u64 {
        self.servers
            .iter()
            .map(|s| {
                s.state()
                    .stats
                    .ntlm_logons
                    .load(std::sync::atomic::Ordering::SeqCst)
            })
            .sum()
    }
    /// Measure `f`.
    async fn measure<F: std::future::Future<Output = ()>>(&self, f: F) -> Cost {
        let (c0, s0) = cpu::split(&self.threads);
        let r0 = self.requests();
        let t0 = Instant::now();
        f.await;
        let wall = t0.elapsed();
        let (c1, s1) = cpu::split(&self.threads);
        Cost {
            wall,
            client_cpu: c1.saturating_sub(c0),
            server_cpu: s1.saturating_sub(s0),
            requests: self.requests() - r0,
        }
    }
}

fn target(server: &TestServer) -> Target {
    let cfg = &server.state().config;
    Target {
        system: System {
            id: SystemId::new(),
            name: format!("win-{}", server.addr().port()),
            hostname: "127.0.0.1".into(),
            port: server.addr().port(),
            system_type: SystemType::Windows,
            username: cfg.user.clone(),
            credential: None,
            tags: vec![],
            active: true,
            health: Health::default(),
            host_key_policy: HostKeyPolicy::Strict,
            options: Default::default(),
            created_at: Default::default(),
            updated_at: Default::default(),
        },
        credential: Credential::Password(SecretString::from(cfg.password.clone())),
        execution_id: None,
        host_keys: None,
    }
}

/// Run `COMMAND` and check its output and exit code.
async fn run_one(conn: &WinRmConnector, target: &Target) {
    let (sink, mut rx) = OutputSink::channel(16);
    let spec = CommandSpec::new(COMMAND).with_timeout(Duration::from_secs(60));
    let drain = async {
        let mut out = Vec::new();
        while let Some((s, b)) = rx.recv().await {
            if s == Stream::Stdout {
                out.extend_from_slice(&b);
            }
        }
        out
    };
    let (r, out) = tokio::join!(
        conn.run(target, &spec, sink, CancellationToken::new()),
        drain
    );
    let r = r.expect("the command runs");
    assert_eq!((r.end, r.exit_code), (RunEnd::Exited, Some(0)), "{r:?}");
    assert_eq!(out, b"hello\r\n", "stdout");
}

fn delta(before: &[u64], after: &[u64]) -> Vec<u64> {
    after.iter().zip(before).map(|(a, b)| a - b).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Medians of per-command figures over samples: (round trips, latency µs, client CPU µs,
/// server CPU µs).
fn per_command(samples: &[Cost], commands: f64) -> (f64, f64, f64, f64) {
    let m = |f: &dyn Fn(&Cost) -> f64| median(samples.iter().map(f).collect());
    (
        m(&|c| c.requests as f64 / commands),
        m(&|c| us(c.wall) / commands),
        m(&|c| us(c.client_cpu) / commands),
        m(&|c| us(c.server_cpu) / commands),
    )
}

fn row(name: &str, samples: &[Cost], commands: f64) {
    let (rt, lat, ccpu, scpu) = per_command(samples, commands);
    let cps = median(
        samples
            .iter()
            .map(|c| commands / c.wall.as_secs_f64())
            .collect(),
    );
    println!(
        "| {name} | {} | {rt:.2} | {lat:.0} | {ccpu:.0} | {scpu:.0} | {cps:.0} |",
        samples.len()
    );
}

async fn orca_single(b: &Bench, args: &Args) -> (Vec<Cost>, Vec<Cost>) {
    let t = target(&b.servers[0]);
    let mut fresh = Vec::new();
    for _ in 0..args.fresh {
        let conn = WinRmConnector::new();
        fresh.push(b.measure(run_one(&conn, &t)).await);
        conn.close().await;
    }
    let conn = WinRmConnector::new();
    run_one(&conn, &t).await;
    let mut warm = Vec::new();
    for _ in 0..args.warm {
        warm.push(b.measure(run_one(&conn, &t)).await);
    }
    conn.close().await;
    (fresh, warm)
}

/// All systems at once, each running its commands in turn. The same `targets` (system ids) on
/// the same connector reuse its pooled sessions and shells.
async fn orca_fleet(
    b: &Bench,
    args: &Args,
    conn: &Arc<WinRmConnector>,
    targets: &[Arc<Target>],
) -> Cost {
    let commands = args.commands;
    b.measure(async {
        let mut set = tokio::task::JoinSet::new();
        for t in targets {
            let (conn, t) = (conn.clone(), Arc::clone(t));
            set.spawn(async move {
                for _ in 0..commands {
                    run_one(&conn, &t).await;
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("a system's commands");
        }
    })
    .await
}

/// Run pywinrm on every server; returns the cost with the Python process's own wall and CPU.
fn pywinrm(b: &Bench, args: &Args, python: &str) -> Cost {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/winrm/pywinrm_bench.py");
    let endpoints: Vec<String> = b.servers.iter().map(|s| s.endpoint()).collect();
    let cfg = &b.servers[0].state().config;
    let (_, s0) = cpu::split(&b.threads);
    let r0 = b.requests();
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["--user", &cfg.user, "--password", &cfg.password])
        .args(["--commands", &args.commands.to_string()])
        .args(["--threads", &args.py_threads.to_string()])
        .args(["--command", COMMAND])
        .args(&endpoints)
        .output()
        .expect("run the pywinrm benchmark");
    let (_, s1) = cpu::split(&b.threads);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pywinrm failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| -> f64 {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("pywinrm printed no {k}: {stdout}"))
    };
    assert_eq!(
        field("ok") as usize,
        args.systems * args.commands,
        "pywinrm commands that returned hello / 0"
    );
    Cost {
        wall: Duration::from_secs_f64(field("wall")),
        client_cpu: Duration::from_secs_f64(field("cpu")),
        server_cpu: s1.saturating_sub(s0),
        requests: b.requests() - r0,
    }
}

fn main() {
    let args = Args::parse();
    let threads = ServerThreads::default();
    let reg = threads.clone();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .enable_all()
        .on_thread_start(move || reg.register_current())
        .build()
        .expect("server runtime");
    let cfg = TestServerConfig {
        max_shells_per_user: 1000,
        ..TestServerConfig::default()
    };
    let servers = server_rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..args.systems.max(1) {
            v.push(
                TestServer::start(cfg.clone())
                    .await
                    .expect("start a server"),
            );
        }
        v
    });
    let bench = Bench { servers, threads };
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let n = (args.systems * args.commands) as f64;

    let (fresh, warm) = client_rt.block_on(orca_single(&bench, &args));
    let logons0 = bench.logons();
    let orca_a0 = bench.actions();
    let (mut cold, mut hot) = (Vec::new(), Vec::new());
    client_rt.block_on(async {
        for _ in 0..args.reps {
            let conn = Arc::new(WinRmConnector::new());
            let targets: Vec<Arc<Target>> =
                bench.servers.iter().map(|s| Arc::new(target(s))).collect();
            cold.push(orca_fleet(&bench, &args, &conn, &targets).await);
            hot.push(orca_fleet(&bench, &args, &conn, &targets).await);
            conn.close().await;
        }
    });
    let logons = (bench.logons() - logons0) as f64 / args.reps.max(1) as f64;
    let orca_actions = delta(&orca_a0, &bench.actions());
    let py_a0 = bench.actions();
    let (py_c0, py_l0) = (bench.connections(), bench.logons());
    let py: Vec<Cost> = match &args.python {
        Some(p) => (0..args.reps).map(|_| pywinrm(&bench, &args, p)).collect(),
        None => {
            eprintln!("pywinrm skipped: pass --python PATH (benches/winrm/run.sh does)");
            Vec::new()
        }
    };

    let py_actions = delta(&py_a0, &bench.actions());
    let py_runs = (n * args.reps.max(1) as f64).max(1.0);
    let py_conns = (bench.connections() - py_c0) as f64 / py_runs;
    let py_logons = (bench.logons() - py_l0) as f64 / py_runs;
    println!(
        "\nWinRM over NTLM-sealed HTTP on loopback; command `{COMMAND}`; {} systems x {} commands; \
         {} reps; server runtime {} thread(s); Orca client on 1 thread.\n",
        args.systems, args.commands, args.reps, args.server_threads
    );
    println!(
        "| scenario | samples | round trips / cmd | wall µs / cmd | client CPU µs / cmd | server CPU µs / cmd | cmds/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    row(
        "Orca, 1 command, fresh connector (TCP + NTLM + shell)",
        &fresh,
        1.0,
    );
    row("Orca, 1 command, warm shell", &warm, 1.0);
    let label = format!("{} systems × {} commands", args.systems, args.commands);
    row(&format!("Orca, {label}, cold pool"), &cold, n);
    row(&format!("Orca, {label}, warm pool"), &hot, n);
    if !py.is_empty() {
        row(&format!("pywinrm run_cmd, {label}"), &py, n);
        let ratio = median(cold.iter().map(|c| n / c.wall.as_secs_f64()).collect())
            / median(py.iter().map(|c| n / c.wall.as_secs_f64()).collect());
        println!("\nOrca (cold pool) / pywinrm commands/s: {ratio:.1}x");
    }
    let per = |a: &[u64], runs: usize| -> String {
        let n = (n * runs.max(1) as f64).max(1.0);
        ACTIONS
            .iter()
            .zip(a)
            .map(|(name, c)| format!("{name} {:.2}", *c as f64 / n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "WinRS requests per command, Orca fleet (cold + warm passes): {}",
        per(&orca_actions, 2 * args.reps)
    );
    if !py.is_empty() {
        println!(
            "WinRS requests per command, pywinrm: {}; TCP connections per command {py_conns:.2}, \
             NTLM logons per command {py_logons:.2}",
            per(&py_actions, args.reps)
        );
    }
    println!(
        "NTLM logons per Orca cold + warm pass over {} systems: {logons:.0}",
        args.systems
    );
}
