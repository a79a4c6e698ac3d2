//! The engine processes of one run: start them, wait until each claims, read their CPU time,
//! stop them.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{Common, Res};

pub struct Cluster {
    children: Vec<Child>,
}

impl Cluster {
    /// Start `c.nodes` engine processes on `schema` and wait until every one is ready.
    pub async fn start(c: &Common, schema: &str) -> Res<Cluster> {
        let exe = std::env::current_exe()?;
        let mut cluster = Cluster {
            children: Vec::new(),
        };
        for i in 0..c.nodes {
            let mut cmd = Command::new(&exe);
            cmd.arg("node")
                .arg("--database")
                .arg(&c.database)
                .arg("--synchronous-commit")
                .arg(&c.synchronous_commit)
                .arg("--concurrency")
                .arg(c.concurrency.to_string())
                .arg("--claim-batch")
                .arg(c.claim_batch.to_string())
                .arg("--write-batch")
                .arg(c.write_batch.to_string())
                .arg("--per-system")
                .arg(c.per_system.to_string())
                .arg("--pool")
                .arg(c.pool.to_string())
                .arg("--schema")
                .arg(schema)
                .arg("--name")
                .arg(format!("node-{i}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            cluster.children.push(cmd.spawn()?);
        }
        for (i, child) in cluster.children.iter_mut().enumerate() {
            let out = child.stdout.take().ok_or("a node's stdout is not piped")?;
            let mut lines = BufReader::new(out).lines();
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .map_err(|_| format!("node-{i} did not start within 60 s"))??
                .ok_or_else(|| format!("node-{i} exited before it was ready"))?;
            let want = format!("ready synchronous_commit={}", c.synchronous_commit);
            if line.trim() != want {
                return Err(format!("node-{i} said '{line}', expected '{want}'").into());
            }
        }
        Ok(cluster)
    }

    /// CPU seconds (user + system) the nodes used so far.
    pub fn cpu_seconds(&self) -> f64 {
        self.children
            .iter()
            .filter_map(|c| c.id())
            .map(cpu_seconds_of)
            .sum()
    }

    /// Close every node's stdin and wait for it to shut down (kill it after 30 s).
    pub async fn stop(mut self) -> Res<()> {
        for c in &mut self.children {
            drop(c.stdin.take());
        }
        let mut failed = Vec::new();
        for (i, c) in self.children.iter_mut().enumerate() {
            match tokio::time::timeout(Duration::from_secs(30), c.wait()).await {
                Ok(Ok(s)) if s.success() => {}
                Ok(Ok(s)) => failed.push(format!("node-{i} exited with {s}")),
                Ok(Err(e)) => failed.push(format!("node-{i}: {e}")),
                Err(_) => {
                    let _ = c.start_kill();
                    let _ = c.wait().await;
                    failed.push(format!("node-{i} did not stop within 30 s"));
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; ").into())
        }
    }
}

/// utime + stime of a process, from `/proc/<pid>/stat` (0 if unreadable).
pub fn cpu_seconds_of(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at field 3.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds used so far by every PostgreSQL process (the server is shared: other users'
/// work counts too).
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == "postgres")
                .unwrap_or(false)
        })
        .map(cpu_seconds_of)
        .sum()
}
