//! SSH fan-out: run one command on many Linux hosts through the Orca engine, with the embedded
//! SQLite store in a temporary directory and host keys checked against a `known_hosts` file.
//!
//! ```text
//! cargo run --release --example ssh_fanout -- --hosts hosts.txt --user deploy \
//!     --key ~/.ssh/id_ed25519 --known-hosts ~/.ssh/known_hosts [--concurrency 100] -- uptime
//! ```
//!
//! `--hosts` lists one `host[:port]` per line (`[v6addr]:port` for IPv6; `#` starts a
//! comment). Each host becomes a system with host key policy `strict`; its keys are read from
//! the `known_hosts` file (plain and hashed `|1|salt|hash` entries, `[host]:port` form) and
//! pinned through the facade (`Orca::approve_host_key`), so the connector accepts only those
//! keys. A host without a key in the file is not contacted and reported as an error.
//!
//! Prints `HOST exit=CODE` or `HOST error=REASON` per host (in file order) and a summary, and
//! exits 0 only if every host ran the command with exit 0 (1 otherwise, 2 on bad input).
//!
//! `--warm` runs the command a second time over the connections pooled by the first run and
//! prints both timings, client CPU and memory to stderr (`ssh_fanout: ...` lines); this is the
//! driver of `benches/fanout/run.sh`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use orca_connectors::ssh::known_hosts::{KnownHosts, lookup_name};
use orca_connectors::ssh::{SshConfig, SshConnector};
use orca_core::ids::{JobId, SystemId};
use orca_core::model::{
    Credential, Execution, ExecutionStatus, HostKeyPolicy, JobOptions, JobSpec, NewSystem, Page,
    Principal, SystemType, Targets,
};
use orca_core::{Clock, EngineConfig, KeyRing, Orca, SystemClock};
use orca_store::sqlite::{SqliteOptions, SqliteStore};
use secrecy::SecretString;

/// The tag every system of this run gets; the job targets it.
const TAG: &str = "fanout";

#[derive(Debug, Parser)]
#[command(about = "Run a command on many hosts over SSH through the Orca engine")]
struct Args {
    /// File with one `host[:port]` per line.
    #[arg(long)]
    hosts: PathBuf,
    /// User to log in as.
    #[arg(long)]
    user: String,
    /// Private key (OpenSSH, PEM or PKCS#8).
    #[arg(long)]
    key: PathBuf,
    /// Environment variable that holds the key's passphrase, if it is encrypted.
    #[arg(long)]
    passphrase_env: Option<String>,
    /// `known_hosts` file with the hosts' keys (as `ssh-keyscan` writes it).
    #[arg(long)]
    known_hosts: PathBuf,
    /// Hosts contacted at once.
    #[arg(long, default_value_t = 100)]
    concurrency: u32,
    /// Limit per command, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Limit for TCP connect, handshake and host key check, in seconds.
    #[arg(long, default_value_t = 30)]
    connect_timeout: u64,
    /// Run the command a second time over the pooled connections and report both timings,
    /// client CPU and memory on stderr.
    #[arg(long)]
    warm: bool,
    /// The command (after `--`).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// One line of the hosts file.
#[derive(Debug, Clone)]
struct Host {
    /// As written (without comment), for the output.
    label: String,
    host: String,
    port: u16,
    /// The Orca system name.
    name: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("ssh_fanout: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

type BoxError = Box<dyn std::error::Error>;

/// `host`, `host:port`, `[host]:port` or a bare IPv6 address.
fn parse_host(s: &str) -> Result<(String, u16), String> {
    let bad_port = |p: &str| format!("'{s}': port '{p}' is not a number from 1 to 65535");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{s}': missing ']'"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, p.parse::<u16>().map_err(|_| bad_port(p))?),
            None if after.is_empty() => (h, 22),
            None => return Err(format!("'{s}': expected ':port' after ']'")),
        }
    } else if s.matches(':').count() == 1 {
        let (h, p) = s.split_once(':').unwrap_or((s, ""));
        (h, p.parse::<u16>().map_err(|_| bad_port(p))?)
    } else {
        (s, 22)
    };
    if host.is_empty() || port == 0 {
        return Err(format!(
            "'{s}': needs a host name and a port from 1 to 65535"
        ));
    }
    Ok((host.to_string(), port))
}

/// Read the hosts file: one entry per line, duplicates dropped (with a warning).
fn read_hosts(path: &Path) -> Result<Vec<Host>, BoxError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the hosts file {}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut names = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (host, port) =
            parse_host(line).map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
        if !seen.insert((host.to_ascii_lowercase(), port)) {
            eprintln!(
                "ssh_fanout: {} line {}: {line} is listed twice; running once",
                path.display(),
                i + 1
            );
            continue;
        }
        let mut base: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if port != 22 {
            base.push_str(&format!("-{port}"));
        }
        let mut name = base.clone();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        out.push(Host {
            label: line.to_string(),
            host,
            port,
            name,
        });
    }
    if out.is_empty() {
        return Err(format!("the hosts file {} lists no hosts", path.display()).into());
    }
    Ok(out)
}

/// Client CPU (user + system, all threads) and peak RSS of this process.
fn usage() -> (f64, u64) {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            (
                secs(u.user_time()) + secs(u.system_time()),
                u.max_rss() as u64,
            )
        }
        Err(_) => (0.0, 0),
    }
}

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmLck`...).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory now, in KiB.
fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// Register the hosts that have keys in `known` and pin those keys through the facade.
/// Returns the registered hosts and, for the others, why they were left out.
async fn register(
    orca: &Orca,
    me: &Principal,
    hosts: &[Host],
    known: &KnownHosts,
    user: &str,
    credential: &Credential,
) -> Result<(Vec<(Host, SystemId)>, HashMap<String, String>), BoxError> {
    let mut missing = HashMap::new();
    let mut ready = Vec::new();
    for h in hosts {
        let keys = known.keys_for(&h.host, h.port);
        if keys.is_empty() {
            missing.insert(
                h.name.clone(),
                format!(
                    "no host key for {} in the known_hosts file: check the host's key and add it \
                     (ssh-keyscan -p {} {})",
                    lookup_name(&h.host, h.port),
                    h.port,
                    h.host
                ),
            );
        } else {
            ready.push((h.clone(), keys));
        }
    }
    let results: Vec<Result<(Host, SystemId), orca_core::Error>> = futures::stream::iter(ready)
        .map(|(h, keys)| async move {
            let system = orca
                .add_system(
                    me,
                    NewSystem {
                        name: h.name.clone(),
                        hostname: Some(h.host.clone()),
                        port: Some(h.port),
                        system_type: Some(SystemType::Linux),
                        username: user.to_string(),
                        credential: credential.clone(),
                        tags: vec![TAG.to_string()],
                        host_key_policy: Some(HostKeyPolicy::Strict),
                        options: Default::default(),
                    },
                )
                .await?;
            orca.approve_host_key(me, &h.name, &keys[0].algorithm, &keys[0].fingerprint)
                .await?;
            if keys.len() > 1 {
                // Several key types for one host: pin them all (one audited replace).
                let all: Vec<(String, String)> = keys
                    .iter()
                    .map(|k| (k.algorithm.clone(), k.fingerprint.clone()))
                    .collect();
                orca.replace_host_keys(me, &h.name, &all).await?;
            }
            Ok((h, system.id))
        })
        .buffered(16)
        .collect()
        .await;
    let mut registered = Vec::new();
    for r in results {
        registered.push(r?);
    }
    Ok((registered, missing))
}

/// All executions of a job.
async fn executions(orca: &Orca, me: &Principal, job: JobId) -> Result<Vec<Execution>, BoxError> {
    let mut out = Vec::new();
    loop {
        let page = Page::new(out.len() as u64, Page::MAX_LIMIT)?;
        let got = orca.job_executions(me, job, page).await?;
        let n = got.len();
        out.extend(got);
        if n < Page::MAX_LIMIT as usize {
            return Ok(out);
        }
    }
}

/// What one run did: per system name, `Ok(exit code)` or `Err(reason)`.
struct RunResult {
    results: HashMap<String, Result<i32, String>>,
    wall: Duration,
    cpu: f64,
}

/// Submit `command` to every registered system and wait for the job.
async fn fan_out(
    orca: &Orca,
    me: &Principal,
    command: &str,
    args: &Args,
    names: &HashMap<SystemId, String>,
) -> Result<RunResult, BoxError> {
    let (cpu0, _) = usage();
    let start = Instant::now();
    let submitted = orca
        .submit(
            me,
            JobSpec {
                name: Some("ssh_fanout".into()),
                command: command.to_string(),
                targets: Targets {
                    systems: vec![],
                    tags: vec![TAG.into()],
                },
                options: JobOptions {
                    concurrency: Some(args.concurrency),
                    timeout_seconds: Some(args.timeout),
                    ..Default::default()
                },
            },
        )
        .await?;
    orca.wait_job(me, submitted.job.id).await?;
    let execs = executions(orca, me, submitted.job.id).await?;
    let wall = start.elapsed();
    let (cpu1, _) = usage();
    let mut results = HashMap::new();
    for e in execs {
        let name = names
            .get(&e.system_id)
            .cloned()
            .unwrap_or_else(|| e.system_id.to_string());
        let r = match (e.status, e.exit_code) {
            (ExecutionStatus::Completed | ExecutionStatus::Failed, Some(code)) => Ok(code),
            (status, _) => {
                let mut why = e
                    .error
                    .clone()
                    .unwrap_or_else(|| status.as_str().to_string());
                if let Some(sig) = &e.signal {
                    why = format!("{why} (signal {sig})");
                }
                if status != ExecutionStatus::Failed {
                    why = format!("{}: {why}", status.as_str());
                }
                Err(why.replace(['\n', '\r'], " "))
            }
        };
        results.insert(name, r);
    }
    Ok(RunResult {
        results,
        wall,
        cpu: cpu1 - cpu0,
    })
}

fn count_ok(r: &RunResult) -> usize {
    r.results.values().filter(|v| matches!(v, Ok(0))).count()
}

async fn run(args: Args) -> Result<bool, BoxError> {
    let command = args.command.join(" ");
    if command.trim().is_empty() {
        return Err("the command is empty: give it after `--`".into());
    }
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let rss_start = rss_kib();
    let setup_start = Instant::now();
    let hosts = read_hosts(&args.hosts)?;
    let known = KnownHosts::read(&args.known_hosts)?;
    for s in known.skipped() {
        eprintln!(
            "ssh_fanout: {} line {}: skipped ({})",
            args.known_hosts.display(),
            s.line,
            s.reason
        );
    }
    let key = std::fs::read_to_string(&args.key)
        .map_err(|e| format!("cannot read the private key {}: {e}", args.key.display()))?;
    let passphrase = match &args.passphrase_env {
        Some(var) => Some(SecretString::from(std::env::var(var).map_err(|_| {
            format!("--passphrase-env {var}: the environment variable is not set")
        })?)),
        None => None,
    };
    let credential = Credential::PrivateKey {
        key: SecretString::from(key),
        passphrase,
    };

    let dir = tempfile::tempdir()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("orca.db")),
        clock.clone(),
    )
    .await?;
    let connector = Arc::new(SshConnector::new(SshConfig {
        connect_timeout: Duration::from_secs(args.connect_timeout),
        max_connections: hosts.len().max(4096),
        ..SshConfig::default()
    })?);
    let orca = Orca::builder()
        .store(Arc::new(store))
        .connector(connector.clone())
        .keyring(KeyRing::ephemeral())
        .clock(clock)
        .engine_config(EngineConfig {
            max_concurrency: args.concurrency as usize,
            health_interval: None,
            default_timeout: Some(Duration::from_secs(args.timeout)),
            ..EngineConfig::default()
        })
        .build()?;
    orca.start().await?;
    let me = Principal::system("ssh_fanout");
    let (registered, missing) =
        register(&orca, &me, &hosts, &known, &args.user, &credential).await?;
    let names: HashMap<SystemId, String> = registered
        .iter()
        .map(|(h, id)| (*id, h.name.clone()))
        .collect();
    let registered: Vec<Host> = registered.into_iter().map(|(h, _)| h).collect();
    let setup = setup_start.elapsed();
    eprintln!(
        "ssh_fanout: setup hosts={} registered={} setup_s={:.3}",
        hosts.len(),
        registered.len(),
        setup.as_secs_f64()
    );

    let rss_before = rss_kib();
    let mut all_ok = missing.is_empty();
    let fresh = if registered.is_empty() {
        None
    } else {
        Some(fan_out(&orca, &me, &command, &args, &names).await?)
    };
    let rss_fresh = rss_kib();
    let locked_fresh = status_kib("VmLck");
    let idle = connector.open_connections();
    for h in &hosts {
        let line = match (
            missing.get(&h.name),
            fresh.as_ref().and_then(|f| f.results.get(&h.name)),
        ) {
            (Some(why), _) => format!("{} error={why}", h.label),
            (None, Some(Ok(code))) => format!("{} exit={code}", h.label),
            (None, Some(Err(why))) => format!("{} error={why}", h.label),
            (None, None) => format!("{} error=no execution was recorded", h.label),
        };
        println!("{line}");
    }
    let ok = fresh.as_ref().map(count_ok).unwrap_or(0);
    let errors = missing.len()
        + fresh
            .as_ref()
            .map(|f| f.results.values().filter(|v| v.is_err()).count())
            .unwrap_or(0);
    let nonzero = hosts.len() - ok - errors;
    all_ok &= ok == hosts.len();
    let wall = fresh.as_ref().map(|f| f.wall.as_secs_f64()).unwrap_or(0.0);
    println!(
        "summary: {} hosts, {ok} exit 0, {nonzero} other exit, {errors} errors in {wall:.3}s",
        hosts.len()
    );
    if let Some(f) = &fresh {
        eprintln!(
            "ssh_fanout: run=fresh hosts={} ok={ok} failed={} wall_s={:.3} cpu_s={:.3} \
             cpu_ms_per_host={:.3} connections_opened={}",
            f.results.len(),
            f.results.len() - count_ok(f),
            wall,
            f.cpu,
            f.cpu * 1000.0 / f.results.len() as f64,
            connector.connections_opened()
        );
    }

    if args.warm && fresh.is_some() {
        let opened = connector.connections_opened();
        let w = fan_out(&orca, &me, &command, &args, &names).await?;
        let wok = count_ok(&w);
        all_ok &= wok == w.results.len();
        for h in &registered {
            if let Some(Err(why)) = w.results.get(&h.name) {
                println!("{} error={why} (warm run)", h.label);
            } else if let Some(Ok(code)) = w.results.get(&h.name).filter(|r| !matches!(r, Ok(0))) {
                println!("{} exit={code} (warm run)", h.label);
            }
        }
        println!(
            "summary (warm run over pooled connections): {} hosts, {wok} exit 0, {} failed in {:.3}s",
            w.results.len(),
            w.results.len() - wok,
            w.wall.as_secs_f64()
        );
        let (_, peak) = usage();
        let rss_warm = rss_kib();
        eprintln!(
            "ssh_fanout: run=warm hosts={} ok={wok} failed={} wall_s={:.3} cpu_s={:.3} \
             cpu_ms_per_host={:.3} new_connections={}",
            w.results.len(),
            w.results.len() - wok,
            w.wall.as_secs_f64(),
            w.cpu,
            w.cpu * 1000.0 / w.results.len() as f64,
            connector.connections_opened() - opened
        );
        // The fresh run grew by (connections + one run of the engine), the warm run by one run
        // of the engine alone: the difference is what the idle connections hold.
        let grow_fresh = rss_fresh.saturating_sub(rss_before) as f64;
        let grow_warm = rss_warm.saturating_sub(rss_fresh) as f64;
        let idle_n = idle.max(1) as f64;
        eprintln!(
            "ssh_fanout: memory rss_start_kib={rss_start} rss_before_fanout_kib={rss_before} \
             rss_after_fresh_kib={rss_fresh} rss_after_warm_kib={rss_warm} peak_rss_kib={peak} \
             idle_connections={idle} rss_per_idle_connection_kib={:.1} \
             rss_per_idle_connection_upper_kib={:.1} mlocked_per_idle_connection_kib={:.1}",
            (grow_fresh - grow_warm).max(0.0) / idle_n,
            grow_fresh / idle_n,
            locked_fresh as f64 / idle_n
        );
    }
    orca.shutdown(Duration::from_secs(10)).await?;
    Ok(all_ok)
}
