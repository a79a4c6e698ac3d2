//! `orca run`: submit a job, stream its output live prefixed by system name (over the
//! WebSocket, falling back to polling the output endpoint), show a progress bar on a terminal,
//! end with a summary table; exit 1 if any system did not complete.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use orca_core::{Error, Result};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::Client;
use super::resources::chunk_bytes;
use super::table::{self, s};
use super::ws;
use crate::cli::RunArgs;

const TERMINAL: &[&str] = &["completed", "failed", "timeout", "cancelled", "lost"];

/// System names by id, looked up once each.
#[derive(Default)]
pub struct SystemNames {
    cache: Mutex<HashMap<String, String>>,
}

impl SystemNames {
    /// The name of system `id` (its short id if it cannot be read, e.g. removed).
    pub async fn name(&self, c: &Client, id: &str) -> String {
        if let Some(n) = self.cache.lock().await.get(id) {
            return n.clone();
        }
        let n = match c.get(&format!("/api/v1/systems/{id}"), &[]).await {
            Ok(v) => s(&v, "name"),
            Err(_) => id.chars().take(8).collect(),
        };
        self.cache.lock().await.insert(id.to_string(), n.clone());
        n
    }
}

/// `orca run`.
pub async fn run(c: &Client, a: &RunArgs, json_out: bool) -> Result<ExitCode> {
    if a.systems.is_empty() && a.tags.is_empty() {
        return Err(Error::invalid(
            "say where to run it: --system NAME and/or --tag TAG (e.g. `orca run --system local -- uptime`)",
        ));
    }
    let command = a.command.join(" ");
    let mut options = serde_json::Map::new();
    if let Some(n) = a.concurrency {
        options.insert("concurrency".into(), json!(n));
    }
    if let Some(t) = a.timeout {
        options.insert("timeout_seconds".into(), json!(t));
    }
    let mut body = json!({
        "command": command,
        "targets": {"systems": a.systems, "tags": a.tags},
        "options": options,
    });
    if let Some(n) = &a.name {
        body["name"] = json!(n);
    }
    let submitted = c.post("/api/v1/jobs", &body).await?;
    follow_submitted(c, submitted, a.detach, json_out).await
}

/// Follow a submitted job (`{job, executions}`) to its end, then summarise.
pub async fn follow_submitted(
    c: &Client,
    submitted: Value,
    detach: bool,
    json_out: bool,
) -> Result<ExitCode> {
    let job_id: Uuid = submitted["job"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::unexpected("the server's answer has no job id"))?;
    if detach {
        if json_out {
            table::json(&submitted);
        } else {
            println!("{job_id}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let names = SystemNames::default();
    let execs = submitted["executions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut labels = HashMap::new();
    for e in &execs {
        if let (Some(id), Some(sys)) = (
            e["id"].as_str().and_then(|s| s.parse::<Uuid>().ok()),
            e["system_id"].as_str(),
        ) {
            labels.insert(id, names.name(c, sys).await);
        }
    }
    let tty = std::io::stderr().is_terminal();
    if !json_out {
        eprintln!(
            "job {job_id}: `{}` on {} system(s)",
            s(&submitted["job"], "command"),
            execs.len()
        );
    }
    let mut printer = Printer::new(labels, tty && execs.len() > 1 && !json_out, json_out);
    let bar = printer.bar.clone();
    let note = |m: &str| match &bar {
        Some(pb) => pb.println(m),
        None => eprintln!("{m}"),
    };
    let interrupted = {
        let followed = follow(c, job_id, &mut printer);
        tokio::pin!(followed);
        let mut cancelled = false;
        loop {
            tokio::select! {
                r = &mut followed => { r?; break false; }
                _ = tokio::signal::ctrl_c() => {
                    if cancelled {
                        break true;
                    }
                    cancelled = true;
                    note("cancelling the job (Ctrl-C again to stop following)");
                    if let Err(e) = c.post_empty(&format!("/api/v1/jobs/{job_id}/cancel")).await {
                        note(&format!("cannot cancel: {}", e.message()));
                    }
                }
            }
        }
    };
    if interrupted {
        printer.finish();
        eprintln!("stopped following; the job is being cancelled on the server");
        return Ok(ExitCode::from(130));
    }
    printer.finish();
    let ex = c
        .get(
            &format!("/api/v1/jobs/{job_id}/executions"),
            &[("limit", "1000".into())],
        )
        .await?;
    let items = ex["items"].as_array().cloned().unwrap_or_default();
    let all_ok = !items.is_empty() && items.iter().all(|e| e["status"] == "completed");
    if json_out {
        let job = c.get(&format!("/api/v1/jobs/{job_id}"), &[]).await?;
        table::json(&json!({"job": job, "executions": items}));
    } else {
        print_summary(c, &names, &items, &mut std::io::stderr()).await;
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Stream the job's output into `printer` until every execution has ended.
async fn follow(c: &Client, job_id: Uuid, printer: &mut Printer) -> Result<()> {
    let mut next: HashMap<Uuid, u64> = printer.labels.keys().map(|k| (*k, 0)).collect();
    let ws_result = ws::follow_job(c, job_id, &next.clone(), |ev| {
        let Some(exec) = ev["execution_id"]
            .as_str()
            .and_then(|s| s.parse::<Uuid>().ok())
        else {
            return;
        };
        match ev["type"].as_str() {
            Some("output") => {
                let seq = ev["seq"].as_u64().unwrap_or(0);
                let want = next.entry(exec).or_insert(0);
                if seq < *want {
                    return;
                }
                *want = seq + 1;
                printer.output(exec, ev["stream"] == "stderr", &chunk_bytes(ev));
            }
            Some("execution") => {
                if let Some(st) = ev["status"].as_str() {
                    printer.status(exec, st);
                }
            }
            _ => {}
        }
    })
    .await;
    if let Err(e) = &ws_result {
        tracing::debug!(error = %e, "following over polling");
    }
    // Poll what the socket did not deliver (everything, if it failed).
    poll(c, &mut next, printer).await
}

/// Poll each unfinished execution's output until all have ended.
async fn poll(c: &Client, next: &mut HashMap<Uuid, u64>, printer: &mut Printer) -> Result<()> {
    let mut done: HashSet<Uuid> = HashSet::new();
    let ids: Vec<Uuid> = printer.labels.keys().copied().collect();
    while done.len() < ids.len() {
        let mut progressed = false;
        let pending: Vec<Uuid> = ids.iter().filter(|i| !done.contains(i)).copied().collect();
        for id in &pending {
            let from = next.get(id).copied().unwrap_or(0);
            let page = c
                .get(
                    &format!("/api/v1/executions/{id}/output"),
                    &[("offset", from.to_string()), ("limit", "1000".into())],
                )
                .await?;
            for ch in page["chunks"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                printer.output(*id, ch["stream"] == "stderr", &chunk_bytes(ch));
                progressed = true;
            }
            next.insert(*id, page["next_offset"].as_u64().unwrap_or(from));
            if page["complete"].as_bool().unwrap_or(false) {
                let e = c.get(&format!("/api/v1/executions/{id}"), &[]).await?;
                printer.status(*id, e["status"].as_str().unwrap_or("failed"));
                done.insert(*id);
                progressed = true;
            }
        }
        if !progressed {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// Prints output lines prefixed by system name, and the progress bar.
struct Printer {
    labels: HashMap<Uuid, String>,
    width: usize,
    partial: HashMap<(Uuid, bool), Vec<u8>>,
    finished: HashSet<Uuid>,
    failed: usize,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Printer {
    fn new(labels: HashMap<Uuid, String>, bar: bool, quiet: bool) -> Self {
        let width = labels
            .values()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        let total = labels.len() as u64;
        let bar = bar.then(|| {
            let pb = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} systems done {msg} ({elapsed})",
            ) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        Printer {
            labels,
            width,
            partial: HashMap::new(),
            finished: HashSet::new(),
            failed: 0,
            bar,
            quiet,
        }
    }

    fn output(&mut self, exec: Uuid, stderr: bool, data: &[u8]) {
        let buf = self.partial.entry((exec, stderr)).or_default();
        buf.extend_from_slice(data);
        let mut lines = Vec::new();
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            lines.push(buf.drain(..=pos).collect::<Vec<u8>>());
        }
        for l in lines {
            self.emit(exec, stderr, &l);
        }
    }

    fn emit(&self, exec: Uuid, stderr: bool, line: &[u8]) {
        if self.quiet {
            return;
        }
        let label = self.labels.get(&exec).map(String::as_str).unwrap_or("?");
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\n', '\r']);
        let line = format!("[{label:<w$}] {text}\n", w = self.width);
        let write = || {
            if stderr {
                let _ = std::io::stderr().write_all(line.as_bytes());
            } else {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(line.as_bytes());
                let _ = o.flush();
            }
        };
        match &self.bar {
            Some(pb) => pb.suspend(write),
            None => write(),
        }
    }

    fn flush_exec(&mut self, exec: Uuid) {
        for stderr in [false, true] {
            if let Some(rest) = self.partial.remove(&(exec, stderr))
                && !rest.is_empty()
            {
                self.emit(exec, stderr, &rest);
            }
        }
    }

    fn status(&mut self, exec: Uuid, status: &str) {
        if !TERMINAL.contains(&status) || !self.finished.insert(exec) {
            return;
        }
        self.flush_exec(exec);
        if status != "completed" {
            self.failed += 1;
        }
        if let Some(pb) = &self.bar {
            pb.inc(1);
            if self.failed > 0 {
                pb.set_message(format!("({} failed)", self.failed));
            }
        }
    }

    fn finish(&mut self) {
        let ids: Vec<Uuid> = self.labels.keys().copied().collect();
        for id in ids {
            self.flush_exec(id);
        }
        if let Some(pb) = self.bar.take() {
            pb.finish_and_clear();
        }
    }
}

/// The table of a job's executions and a closing line.
pub async fn print_summary(c: &Client, names: &SystemNames, execs: &[Value], out: &mut dyn Write) {
    let mut rows = Vec::new();
    for e in execs {
        let name = names.name(c, e["system_id"].as_str().unwrap_or("")).await;
        let exit = match (&e["exit_code"], &e["signal"]) {
            (Value::Number(n), _) => n.to_string(),
            (_, Value::String(sig)) => sig.clone(),
            _ => "-".into(),
        };
        rows.push(vec![
            name,
            s(e, "status"),
            exit,
            table::duration(e, "started_at", "completed_at"),
            short(e["error"].as_str().unwrap_or("")),
            s(e, "id"),
        ]);
    }
    rows.sort();
    let text = table::render(
        &["SYSTEM", "STATUS", "EXIT", "TIME", "ERROR", "EXECUTION"],
        &rows,
    );
    let failed = execs.iter().filter(|e| e["status"] != "completed").count();
    let closing = if execs.is_empty() {
        "no executions".to_string()
    } else if failed == 0 {
        format!("all {} system(s) completed", execs.len())
    } else {
        format!("{failed} of {} system(s) did not complete", execs.len())
    };
    let mut errors = String::new();
    for r in &rows {
        let full = execs
            .iter()
            .find(|e| s(e, "id") == r[5])
            .and_then(|e| e["error"].as_str())
            .unwrap_or("");
        if short(full) != full {
            errors.push_str(&format!("{}: {full}\n", r[0]));
        }
    }
    let _ = write!(out, "\n{text}{errors}{closing}\n");
    let _ = out.flush();
}

/// The first 60 characters of an error, with `…` if cut.
fn short(e: &str) -> String {
    if e.chars().count() <= 60 {
        e.to_string()
    } else {
        e.chars().take(59).collect::<String>() + "…"
    }
}
