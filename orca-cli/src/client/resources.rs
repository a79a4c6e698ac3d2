//! `orca systems | hostkeys | jobs | logs | audit`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use orca_core::{Error, Result};
use serde_json::{Value, json};

use super::Client;
use super::run;
use super::table::{self, s, time};
use crate::cli::{AuditArgs, HostkeysCmd, JobsCmd, LogsArgs, SystemAddArgs, SystemsCmd};

const OK: Result<ExitCode> = Ok(ExitCode::SUCCESS);

/// A path segment for a system name or id (names are letters, digits and `-_.@`).
pub fn seg(s: &str) -> Result<String> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(Error::invalid(format!(
            "'{s}' is not a system name or id (letters, digits, '-', '_', '.', '@')"
        )));
    }
    Ok(s.to_string())
}

/// A job or execution id.
pub fn uuid(s: &str, what: &str) -> Result<uuid::Uuid> {
    s.trim().parse().map_err(|_| {
        Error::invalid(format!(
            "'{s}' is not {what} id (a UUID like 0195f3c2-7b4a-7c1e-9a7e-3f1c2b3a4d5e); list \
             them with `orca jobs list`"
        ))
    })
}

/// `orca systems`.
pub async fn systems(c: &Client, cmd: &SystemsCmd, json_out: bool) -> Result<ExitCode> {
    match cmd {
        SystemsCmd::List { tag } => {
            let mut q: Vec<(&str, String)> = tag.iter().map(|t| ("tag", t.clone())).collect();
            q.push(("limit", "1000".into()));
            let v = c.get("/api/v1/systems", &q).await?;
            if json_out {
                table::json(&v["items"]);
                return OK;
            }
            let rows: Vec<Vec<String>> = items(&v)
                .iter()
                .map(|x| {
                    let user = s(x, "username");
                    vec![
                        s(x, "name"),
                        s(x, "type"),
                        if x["type"] == "local" {
                            "-".into()
                        } else {
                            format!("{}@{}:{}", user, s(x, "hostname"), s(x, "port"))
                        },
                        x["tags"]
                            .as_array()
                            .map(|t| {
                                t.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(",")
                            })
                            .unwrap_or_default(),
                        s(&x["health"], "status"),
                        s(x, "host_key_policy"),
                    ]
                })
                .collect();
            table::print(
                &["NAME", "TYPE", "ADDRESS", "TAGS", "HEALTH", "HOST KEYS"],
                &rows,
            );
            OK
        }
        SystemsCmd::Add(a) => add_system(c, a, json_out).await,
        SystemsCmd::Rm { system } => {
            c.delete(&format!("/api/v1/systems/{}", seg(system)?))
                .await?;
            println!("Removed system '{system}'.");
            OK
        }
        SystemsCmd::Probe { system } => {
            let h = c
                .post_empty(&format!("/api/v1/systems/{}/probe", seg(system)?))
                .await?;
            if json_out {
                table::json(&h);
            } else if h["status"] == "healthy" {
                println!("{system}: healthy ({} ms)", s(&h, "latency_ms"));
            } else {
                println!("{system}: {}: {}", s(&h, "status"), s(&h, "reason"));
            }
            Ok(if h["status"] == "healthy" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn add_system(c: &Client, a: &SystemAddArgs, json_out: bool) -> Result<ExitCode> {
    let credential = if let Some(path) = &a.key_file {
        let key = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(format!("cannot read the key file {}: {e}", path.display()))
        })?;
        Some(json!({"private_key": key}))
    } else if a.password_stdin {
        use secrecy::ExposeSecret;
        let pw = crate::admin::read_stdin_line()?;
        Some(json!({"password": pw.expose_secret()}))
    } else {
        None
    };
    let mut body = json!({
        "name": a.name,
        "type": a.system_type,
        "tags": a.tag,
        "host_key_policy": a.host_key_policy,
    });
    if let Some(h) = &a.host {
        body["hostname"] = json!(h);
    }
    if let Some(p) = a.port {
        body["port"] = json!(p);
    }
    if let Some(u) = &a.user {
        body["username"] = json!(u);
    }
    if let Some(cred) = credential {
        body["credential"] = cred;
    }
    let v = c.post("/api/v1/systems", &body).await?;
    if json_out {
        table::json(&v);
        return OK;
    }
    println!(
        "Registered system '{}' ({}, {}@{}:{}, host key policy {}).",
        s(&v, "name"),
        s(&v, "type"),
        s(&v, "username"),
        s(&v, "hostname"),
        s(&v, "port"),
        s(&v, "host_key_policy")
    );
    if v["type"] == "linux" && v["host_key_policy"] == "strict" {
        println!(
            "Jobs run on it once its SSH host key is approved: `orca hostkeys approve {}`.",
            s(&v, "name")
        );
    }
    OK
}

/// `orca hostkeys`.
pub async fn hostkeys(c: &Client, cmd: &HostkeysCmd, json_out: bool) -> Result<ExitCode> {
    match cmd {
        HostkeysCmd::List { system } => {
            let v = c
                .get(&format!("/api/v1/systems/{}/host-keys", seg(system)?), &[])
                .await?;
            if json_out {
                table::json(&v["items"]);
                return OK;
            }
            let rows: Vec<Vec<String>> = items(&v)
                .iter()
                .map(|k| {
                    vec![
                        s(k, "algorithm"),
                        s(k, "fingerprint"),
                        time(k, "created_at"),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No host key is pinned for '{system}'.");
            } else {
                table::print(&["ALGORITHM", "FINGERPRINT", "PINNED"], &rows);
            }
            OK
        }
        HostkeysCmd::Approve {
            system,
            fingerprint,
            algorithm,
            yes,
        } => {
            let (algorithm, fingerprint) = match fingerprint {
                Some(f) => (algorithm.clone(), f.clone()),
                None => match offered_key(c, system).await? {
                    Some((alg, fp)) => {
                        println!("{system} offers the host key {alg} {fp}");
                        if !*yes
                            && !confirm(
                                "Approve it? Compare it with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the host. [y/N] ",
                            )?
                        {
                            return Err(Error::invalid("not approved; nothing was changed"));
                        }
                        (alg, fp)
                    }
                    None => {
                        println!(
                            "{system} did not offer an unknown host key (it answers with a \
                             pinned key, or its policy accepts keys by itself); nothing to approve."
                        );
                        return OK;
                    }
                },
            };
            let k = c
                .post(
                    &format!("/api/v1/systems/{}/host-keys", seg(system)?),
                    &json!({"algorithm": algorithm, "fingerprint": fingerprint}),
                )
                .await?;
            println!(
                "Pinned {} {} for '{system}'.",
                s(&k, "algorithm"),
                s(&k, "fingerprint")
            );
            OK
        }
    }
}

/// Probe `system`; if its host key was refused as unknown, the key it offered.
async fn offered_key(c: &Client, system: &str) -> Result<Option<(String, String)>> {
    let h = c
        .post_empty(&format!("/api/v1/systems/{}/probe", seg(system)?))
        .await?;
    let reason = h["reason"].as_str().unwrap_or("");
    if !reason.contains("offered") {
        if h["status"] != "healthy" && !reason.is_empty() {
            return Err(Error::new(
                orca_core::ErrorKind::ConnectionFailed,
                format!("cannot read the host key of '{system}': {reason}"),
            ));
        }
        return Ok(None);
    }
    // "... the server offered <algorithm> SHA256:<base64> ..."
    let words: Vec<&str> = reason.split_whitespace().collect();
    let found = words.windows(2).find_map(|w| {
        w[1].starts_with("SHA256:").then(|| {
            (
                w[0].to_string(),
                w[1].trim_end_matches([',', '.', ')', ';']).to_string(),
            )
        })
    });
    Ok(found)
}

fn confirm(prompt: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::invalid(
            "cannot ask for confirmation without a terminal: give the fingerprint, or --yes",
        ));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::invalid(format!("cannot read the answer: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

/// `orca jobs`.
pub async fn jobs(c: &Client, cmd: &JobsCmd, json_out: bool) -> Result<ExitCode> {
    match cmd {
        JobsCmd::List { status, limit } => {
            let mut q = vec![("limit", limit.to_string())];
            if let Some(st) = status {
                q.push(("status", st.clone()));
            }
            let v = c.get("/api/v1/jobs", &q).await?;
            if json_out {
                table::json(&v["items"]);
                return OK;
            }
            let rows: Vec<Vec<String>> = items(&v)
                .iter()
                .map(|j| {
                    vec![
                        s(j, "id"),
                        s(j, "status"),
                        s(j, "created_by"),
                        time(j, "created_at"),
                        s(j, "name").chars().take(60).collect(),
                    ]
                })
                .collect();
            table::print(&["ID", "STATUS", "BY", "CREATED", "NAME"], &rows);
            OK
        }
        JobsCmd::Show { id } => {
            let id = uuid(id, "a job")?;
            let job = c.get(&format!("/api/v1/jobs/{id}"), &[]).await?;
            let ex = c
                .get(
                    &format!("/api/v1/jobs/{id}/executions"),
                    &[("limit", "1000".into())],
                )
                .await?;
            if json_out {
                let mut j = job.clone();
                j["executions"] = ex["items"].clone();
                table::json(&j);
                return OK;
            }
            println!("job       {}", s(&job, "id"));
            println!("name      {}", s(&job, "name"));
            println!("command   {}", s(&job, "command"));
            println!("status    {}", s(&job, "status"));
            println!(
                "by        {} at {}",
                s(&job, "created_by"),
                time(&job, "created_at")
            );
            if let Some(k) = job["hidden_executions"].as_u64().filter(|k| *k > 0) {
                println!("hidden    {k} execution(s) on systems outside your scope");
            }
            let names = run::SystemNames::default();
            run::print_summary(c, &names, &items(&ex), &mut std::io::stdout()).await;
            OK
        }
        JobsCmd::Cancel { id } => {
            let id = uuid(id, "a job")?;
            let r = c.post_empty(&format!("/api/v1/jobs/{id}/cancel")).await?;
            let n = |k: &str| r[k].as_array().map(Vec::len).unwrap_or(0);
            println!(
                "Cancelled {} pending execution(s); told {} running one(s) to stop.",
                n("cancelled"),
                n("signalled")
            );
            if let Some(k) = r["left_alone"].as_u64().filter(|k| *k > 0) {
                println!("Left alone {k} unfinished execution(s) on systems outside your scope.");
            }
            OK
        }
        JobsCmd::Retry { id, detach } => {
            let id = uuid(id, "a job")?;
            let submitted = c.post_empty(&format!("/api/v1/jobs/{id}/retry")).await?;
            if let Some(k) = submitted["left_alone"].as_u64().filter(|k| *k > 0) {
                eprintln!("Left alone {k} execution(s) on systems outside your scope.");
            }
            run::follow_submitted(c, submitted, *detach, json_out).await
        }
    }
}

/// `orca logs`.
pub async fn logs(c: &Client, a: &LogsArgs) -> Result<ExitCode> {
    let id = uuid(&a.execution, "an execution")?;
    let mut offset = 0u64;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    loop {
        let page = c
            .get(
                &format!("/api/v1/executions/{id}/output"),
                &[("offset", offset.to_string()), ("limit", "1000".into())],
            )
            .await?;
        let chunks = page["chunks"].as_array().cloned().unwrap_or_default();
        for ch in &chunks {
            let data = chunk_bytes(ch);
            let w: &mut dyn Write = if ch["stream"] == "stderr" {
                &mut err
            } else {
                &mut out
            };
            let _ = w.write_all(&data);
        }
        let _ = out.flush();
        offset = page["next_offset"].as_u64().unwrap_or(offset);
        if page["complete"].as_bool().unwrap_or(false) {
            break;
        }
        if chunks.is_empty() {
            if !a.follow {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    OK
}

/// The bytes of an output chunk (`utf8` text or `base64`).
pub fn chunk_bytes(ch: &Value) -> Vec<u8> {
    let data = ch["data"].as_str().unwrap_or("");
    if ch["encoding"] == "base64" {
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap_or_default()
    } else {
        data.as_bytes().to_vec()
    }
}

/// `orca audit`.
pub async fn audit(c: &Client, a: &AuditArgs, json_out: bool) -> Result<ExitCode> {
    let mut q = vec![("limit", a.limit.to_string())];
    for (k, v) in [
        ("actor", &a.actor),
        ("action", &a.action),
        ("resource_type", &a.resource_type),
        ("since", &a.since),
    ] {
        if let Some(v) = v {
            q.push((k, v.clone()));
        }
    }
    let v = c.get("/api/v1/audit", &q).await?;
    if json_out {
        table::json(&v["items"]);
        return OK;
    }
    let rows: Vec<Vec<String>> = items(&v)
        .iter()
        .map(|r| {
            let mut details = r["details"].clone();
            if let Some(m) = details.as_object_mut() {
                m.remove("request_id");
                m.remove("client_address");
            }
            let d = details.to_string();
            vec![
                time(r, "at"),
                s(r, "actor"),
                s(r, "action"),
                format!("{}:{}", s(r, "resource_type"), s(r, "resource_id")),
                s(r, "outcome"),
                d.chars().take(80).collect(),
            ]
        })
        .collect();
    table::print(
        &["AT", "ACTOR", "ACTION", "RESOURCE", "OUTCOME", "DETAILS"],
        &rows,
    );
    OK
}
