//! Prometheus metrics in the text exposition format, without a metrics library: HTTP requests
//! (count and latency by operation and status), executions by state, queue depth, executions
//! finished (from the event bus), and connector latency as last measured by health probes
//! (labelled by system id: system names are the operators' own words and may say more than a
//! scraper needs to know).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use orca_core::model::{JobFilter, JobStatus, Page, Principal, SystemFilter};
use orca_core::{Event, Orca};

const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct HttpCounters {
    requests: HashMap<(&'static str, &'static str, u16), u64>,
    latency: HashMap<&'static str, Histogram>,
}

/// The method as a static string (standard methods; anything else counts as `OTHER`).
pub(crate) fn method_name(m: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// Counters kept by the HTTP layer.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Keyed by static strings (method, operation id): counting a request allocates nothing.
    http: Mutex<HttpCounters>,
    finished: Arc<Mutex<BTreeMap<String, u64>>>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Count one request.
    pub fn observe(
        &self,
        method: &'static str,
        operation: &'static str,
        status: u16,
        seconds: f64,
    ) {
        let mut c = self.http.lock().unwrap_or_else(|e| e.into_inner());
        *c.requests.entry((method, operation, status)).or_default() += 1;
        let h = c.latency.entry(operation).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Follow the event bus and count executions reaching a terminal state.
    pub fn follow_bus(&self, orca: &Orca) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut rx = orca.bus().subscribe();
        let finished = self.finished.clone();
        handle.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        if let Event::Execution { status, .. } = ev.as_ref()
                            && status.is_terminal()
                        {
                            let mut f = finished.lock().unwrap_or_else(|e| e.into_inner());
                            *f.entry(status.as_str().to_string()).or_default() += 1;
                        }
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// The exposition text.
    pub async fn render(&self, orca: &Orca) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP orca_http_requests_total HTTP requests by method, operation and status."
        );
        let _ = writeln!(out, "# TYPE orca_http_requests_total counter");
        {
            let c = self.http.lock().unwrap_or_else(|e| e.into_inner());
            let mut rows: Vec<_> = c.requests.iter().collect();
            rows.sort();
            for ((method, op, status), n) in rows {
                let _ = writeln!(
                    out,
                    "orca_http_requests_total{{method=\"{}\",operation=\"{}\",status=\"{status}\"}} {n}",
                    escape(method),
                    escape(op)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP orca_http_request_duration_seconds HTTP request latency by operation."
        );
        let _ = writeln!(out, "# TYPE orca_http_request_duration_seconds histogram");
        {
            let c = self.http.lock().unwrap_or_else(|e| e.into_inner());
            let mut rows: Vec<_> = c.latency.iter().collect();
            rows.sort_by(|a, b| a.0.cmp(b.0));
            for (op, h) in rows {
                let op = escape(op);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "orca_http_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "orca_http_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "orca_http_request_duration_seconds_sum{{operation=\"{op}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "orca_http_request_duration_seconds_count{{operation=\"{op}\"}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP orca_executions_finished_total Executions that reached a terminal state, seen by this node."
        );
        let _ = writeln!(out, "# TYPE orca_executions_finished_total counter");
        {
            let f = self.finished.lock().unwrap_or_else(|e| e.into_inner());
            for (s, n) in f.iter() {
                let _ = writeln!(out, "orca_executions_finished_total{{status=\"{s}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP orca_engine_running_executions Executions running on this node."
        );
        let _ = writeln!(out, "# TYPE orca_engine_running_executions gauge");
        let _ = writeln!(
            out,
            "orca_engine_running_executions {}",
            orca.engine().running_count()
        );
        self.render_store(orca, &mut out).await;
        out
    }

    async fn render_store(&self, orca: &Orca, out: &mut String) {
        // The scrape reads through the facade as an internal reader (`/metrics` itself is
        // guarded by the policy: Action::MetricsRead, or no token when configured so).
        let reader = Principal::system("metrics");
        // Executions of unfinished jobs, by state (bounded scan of the newest 1000 such jobs).
        let mut pending = 0u64;
        let mut running = 0u64;
        let mut ok = true;
        for status in [JobStatus::Pending, JobStatus::Running] {
            let filter = JobFilter {
                status: Some(status),
                created_by: None,
            };
            match orca
                .list_jobs(
                    &reader,
                    &filter,
                    Page {
                        offset: 0,
                        limit: 1000,
                    },
                )
                .await
            {
                Ok(jobs) => {
                    for j in jobs {
                        if let Ok(c) = orca.job_counts(&reader, j.id).await {
                            pending += c.pending;
                            running += c.running;
                        }
                    }
                }
                Err(_) => ok = false,
            }
        }
        if ok {
            let _ = writeln!(
                out,
                "# HELP orca_executions Executions of unfinished jobs by state."
            );
            let _ = writeln!(out, "# TYPE orca_executions gauge");
            let _ = writeln!(out, "orca_executions{{state=\"pending\"}} {pending}");
            let _ = writeln!(out, "orca_executions{{state=\"running\"}} {running}");
            let _ = writeln!(
                out,
                "# HELP orca_queue_depth Executions waiting to be claimed."
            );
            let _ = writeln!(out, "# TYPE orca_queue_depth gauge");
            let _ = writeln!(out, "orca_queue_depth {pending}");
        }
        if let Ok(systems) = orca
            .list_systems(
                &reader,
                &SystemFilter::default(),
                Page {
                    offset: 0,
                    limit: 1000,
                },
            )
            .await
        {
            let mut by_health: BTreeMap<&str, u64> = BTreeMap::new();
            let _ = writeln!(
                out,
                "# HELP orca_connector_probe_latency_seconds Round trip of the last health probe, by system id."
            );
            let _ = writeln!(out, "# TYPE orca_connector_probe_latency_seconds gauge");
            for s in &systems {
                *by_health.entry(s.health.status.as_str()).or_default() += 1;
                if let Some(ms) = s.health.latency_ms {
                    let _ = writeln!(
                        out,
                        "orca_connector_probe_latency_seconds{{system_id=\"{}\",type=\"{}\"}} {}",
                        s.id,
                        s.system_type.as_str(),
                        ms as f64 / 1000.0
                    );
                }
            }
            let _ = writeln!(
                out,
                "# HELP orca_systems Registered systems by last health."
            );
            let _ = writeln!(out, "# TYPE orca_systems gauge");
            for (h, n) in by_health {
                let _ = writeln!(out, "orca_systems{{health=\"{h}\"}} {n}");
            }
        }
    }
}
