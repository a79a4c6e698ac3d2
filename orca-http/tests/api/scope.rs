//! Regression tests of the outside security pass, with its exact requests, over SQLite and
//! PostgreSQL: per-execution scope (F1, F2), the orchestrator outside `all` grants (F3's policy
//! half) and input hygiene (F10). Setup: `web1` (tag web) and `db1-hidden` (tag db), both of type
//! `local`; `op1` (operator) and `view1` (viewer) granted only the tag `web`.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use orca_core::model::{Principal, Role, Scope};
use poem::http::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::authz_matrix::{Fixture, HIDDEN_JOB_NAME, HIDDEN_SYSTEM, Who};
use crate::common::{App, Backend, Socket, config};

fn assert_no_leak(f: &Fixture, what: &str, raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    for m in f.hidden_markers() {
        assert!(!text.contains(&m), "{what}: names '{m}': {text}");
    }
}

/// F1: `view1` reads nothing of the `db1-hidden` execution of a job that touched both
/// systems, and the job view shows only what is in scope and says that some is hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_executions_are_scoped_by_their_own_system() {
    for backend in Backend::ALL {
        let Some(f) = Fixture::new(backend, "echo secret-output; exit 0").await else {
            continue;
        };
        let view1 = f.token(Who::Viewer).unwrap();
        let db_exec = f.job_mixed.on_db.clone().unwrap();
        let web_exec = f.job_mixed.on_web.clone().unwrap();
        for path in [
            format!("/api/v1/executions/{db_exec}"),
            format!("/api/v1/executions/{db_exec}/output"),
            format!("/api/v1/executions/{db_exec}/output/download"),
        ] {
            let a = f.app.get(&path, &view1).await;
            assert_eq!(a.status, 404, "[{backend:?}] GET {path}: {:?}", a.body);
            assert!(
                !String::from_utf8_lossy(&a.raw).contains("secret-output"),
                "{path}"
            );
            // In scope: readable.
            let ok = f.app.get(&path.replace(&db_exec, &web_exec), &view1).await;
            assert_eq!(ok.status, 200, "[{backend:?}] {path} (web1)");
        }
        let job = f
            .app
            .get(&format!("/api/v1/jobs/{}", f.job_mixed.id), &view1)
            .await;
        assert_eq!(job.status, 200);
        assert_eq!(job.body["hidden_executions"], 1, "{:?}", job.body);
        assert_eq!(job.body["counts"]["completed"], 1, "{:?}", job.body);
        assert_eq!(job.body["targets"]["systems"], json!(["web1"]));
        assert_no_leak(&f, "job view", &job.raw);
        let execs = f
            .app
            .get(
                &format!("/api/v1/jobs/{}/executions", f.job_mixed.id),
                &view1,
            )
            .await;
        assert_eq!(execs.status, 200);
        let items = execs.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], json!(web_exec));
        assert_no_leak(&f, "job executions", &execs.raw);
        let list = f.app.get("/api/v1/jobs", &view1).await;
        assert_no_leak(&f, "job list", &list.raw);
        // Admins see everything.
        let admin = f.token(Who::Admin).unwrap();
        let all = f
            .app
            .get(&format!("/api/v1/jobs/{}", f.job_mixed.id), &admin)
            .await;
        assert_eq!(all.body["counts"]["completed"], 2);
        assert!(all.body.get("hidden_executions").is_none());

        // WebSocket subscriptions: by execution id (hidden) and by job id (filtered).
        let url = f.app.serve_ws().await;
        let mut ws = f.app.ws_connect(&url, &view1).await;
        send(
            &mut ws,
            json!({"type": "subscribe", "execution_id": db_exec, "id": "x"}),
        )
        .await;
        let ev = events_until(&mut ws, "x").await;
        assert_eq!(ev.last().unwrap()["type"], "error", "{ev:?}");
        assert_eq!(ev.last().unwrap()["code"], "not_found");
        send(
            &mut ws,
            json!({"type": "subscribe", "job_id": f.job_mixed.id, "id": "j"}),
        )
        .await;
        let ev = events_until(&mut ws, "j").await;
        assert_eq!(ev.last().unwrap()["type"], "end", "{ev:?}");
        let text = serde_json::to_string(&ev).unwrap();
        assert!(text.contains(&web_exec), "{text}");
        for m in f.hidden_markers() {
            assert!(
                !text.contains(&m),
                "[{backend:?}] socket names '{m}': {text}"
            );
        }
        let out: String = ev
            .iter()
            .filter(|e| e["type"] == "output")
            .map(|e| e["data"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(out, "secret-output\n", "only web1's output");
    }
}

/// F2: `op1` cannot cancel the `db1-hidden` execution; a job cancel stops only the in-scope
/// executions and says how many it left alone; a retry runs only on systems in scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f2_cancel_and_retry_act_only_in_scope() {
    for backend in Backend::ALL {
        let Some(f) = Fixture::new(backend, "exit 3").await else {
            continue;
        };
        let op1 = f.token(Who::Operator).unwrap();
        let running = f
            .job("long", &["web1", HIDDEN_SYSTEM], "sleep 30", false)
            .await;
        let db_exec = running.on_db.clone().unwrap();
        let a = f
            .app
            .post(
                &format!("/api/v1/executions/{db_exec}/cancel"),
                &op1,
                json!(null),
            )
            .await;
        assert_eq!(a.status, 404, "[{backend:?}] {:?}", a.body);
        assert_no_leak(&f, "execution cancel", &a.raw);

        let c = f
            .app
            .post(
                &format!("/api/v1/jobs/{}/cancel", running.id),
                &op1,
                json!(null),
            )
            .await;
        assert_eq!(c.status, 200, "[{backend:?}] {:?}", c.body);
        assert_eq!(c.body["left_alone"], 1, "{:?}", c.body);
        let touched: Vec<&str> = c.body["cancelled"]
            .as_array()
            .unwrap()
            .iter()
            .chain(c.body["signalled"].as_array().unwrap())
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(touched, [running.on_web.as_deref().unwrap()]);
        assert_no_leak(&f, "job cancel", &c.raw);
        // The out-of-scope execution is still going.
        let admin = f.token(Who::Admin).unwrap();
        let e = f
            .app
            .get(&format!("/api/v1/executions/{db_exec}"), &admin)
            .await;
        assert!(
            matches!(e.body["status"].as_str(), Some("pending" | "running")),
            "[{backend:?}] {:?}",
            e.body
        );
        assert_eq!(e.body["cancel_requested"], false);
        // Clean up as admin.
        let done = f
            .app
            .post(
                &format!("/api/v1/jobs/{}/cancel", running.id),
                &admin,
                json!(null),
            )
            .await;
        assert_eq!(done.status, 200);

        // Retry of the failed mixed job: only web1, the other left alone, nothing named.
        let r = f
            .app
            .post(
                &format!("/api/v1/jobs/{}/retry", f.job_mixed.id),
                &op1,
                json!(null),
            )
            .await;
        assert_eq!(r.status, 201, "[{backend:?}] {:?}", r.body);
        assert_eq!(r.body["left_alone"], 1);
        assert_eq!(r.body["executions"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["executions"][0]["system_id"], json!(f.web_id));
        assert_no_leak(&f, "retry", &r.raw);
    }
}

/// F3 (policy): an operator with an `all` grant cannot target, see or read the orchestrator's
/// own `local` systems; a grant naming one (by id) can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_all_grants_do_not_reach_local_systems() {
    for backend in Backend::ALL {
        let Some(app) = App::on(backend, config()).await else {
            continue;
        };
        let admin = app.admin().await;
        let local = app
            .orca
            .ensure_local_system(&Principal::system("t"))
            .await
            .unwrap();
        app.user("opall", Role::Operator, vec![Scope::All]).await;
        let op = app.login("opall").await.0;
        let a = app
            .post(
                "/api/v1/jobs",
                &op,
                json!({"command": "cat /etc/hostname", "targets": {"systems": ["local"]}}),
            )
            .await;
        assert_eq!(a.status, 404, "[{backend:?}] {:?}", a.body);
        let by_tag = app
            .post(
                "/api/v1/jobs",
                &op,
                json!({"command": "true", "targets": {"tags": ["local"]}}),
            )
            .await;
        assert!(
            by_tag.status == 400 || by_tag.status == 404,
            "{:?}",
            by_tag.body
        );
        let list = app.get("/api/v1/systems", &op).await;
        assert!(
            !String::from_utf8_lossy(&list.raw).contains(&local.id.to_string()),
            "{:?}",
            list.body
        );
        // The admin's job on local is hidden from the all-grant operator.
        let j = app
            .post(
                "/api/v1/jobs",
                &admin,
                json!({"command": "echo admin-only", "targets": {"systems": ["local"]}}),
            )
            .await;
        assert_eq!(j.status, 201);
        let exec = j.body["executions"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(
            app.get(&format!("/api/v1/executions/{exec}/output"), &op)
                .await
                .status,
            404
        );
        // Named explicitly, local is reachable.
        let grant = app
            .call(
                Method::PUT,
                &format!(
                    "/api/v1/users/{}/grants",
                    app.orca.raw_store().find_user("opall").await.unwrap().id
                ),
                Some(&admin),
                Some(json!({"grants": [{"kind": "all"}, {"kind": "system", "value": local.id}]})),
            )
            .await;
        assert_eq!(grant.status, 200, "{:?}", grant.body);
        let op = app.login("opall").await.0;
        let ok = app
            .post(
                "/api/v1/jobs",
                &op,
                json!({"command": "true", "targets": {"systems": ["local"]}}),
            )
            .await;
        assert_eq!(ok.status, 201, "[{backend:?}] {:?}", ok.body);
    }
}

/// F10: control characters and bidirectional overrides, UUID-shaped names, case-twin users and
/// short fingerprints are refused with a 4xx naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f10_input_hygiene() {
    for backend in Backend::ALL {
        let Some(app) = App::on(backend, config()).await else {
            continue;
        };
        let admin = app.admin().await;
        let cases = [
            (
                json!({"name": "evil", "hostname": "evil\u{202e}moc.elgoog", "username": "u"}),
                "hostname",
            ),
            (
                json!({"name": "crlf", "hostname": "a.example\r\nX-Injected: 1", "username": "u"}),
                "hostname",
            ),
            (
                json!({"name": "nul", "hostname": "a\u{0}b", "username": "u"}),
                "hostname",
            ),
            (
                json!({"name": "sp", "hostname": "not a host", "username": "u"}),
                "hostname",
            ),
            (
                json!({"name": "bidi\u{202e}", "hostname": "h.example", "username": "u"}),
                "name",
            ),
            (
                json!({"name": "ok1", "hostname": "h.example", "username": "u\nroot"}),
                "username",
            ),
            (
                json!({"name": "ok2", "hostname": "h.example", "username": "u", "options": {"k\u{202e}": "v"}}),
                "option key",
            ),
            (
                json!({"name": "ok3", "hostname": "h.example", "username": "u", "options": {"cwd": "/tmp\n"}}),
                "option",
            ),
        ];
        for (body, field) in cases {
            let a = app.post("/api/v1/systems", &admin, body.clone()).await;
            assert!(
                (400..500).contains(&a.status),
                "[{backend:?}] {body}: {} {:?}",
                a.status,
                a.body
            );
            let msg = a.body["message"].as_str().unwrap_or("");
            assert!(
                msg.contains(field),
                "[{backend:?}] {body}: message does not name {field}: {msg}"
            );
        }
        // A system named like another system's id would shadow it.
        let web = app
            .post(
                "/api/v1/systems",
                &admin,
                json!({"name": "web1", "type": "local", "tags": ["web"]}),
            )
            .await;
        assert_eq!(web.status, 201, "{:?}", web.body);
        let id = web.body["id"].as_str().unwrap();
        let twin = app
            .post(
                "/api/v1/systems",
                &admin,
                json!({"name": id, "type": "local"}),
            )
            .await;
        assert_eq!(twin.status, 400, "{:?}", twin.body);
        assert!(twin.body["message"].as_str().unwrap().contains("name"));
        // Users `Admin` and `admin` cannot coexist.
        let dup = app
            .post(
                "/api/v1/users",
                &admin,
                json!({"username": "Admin", "role": "viewer", "password": "a long enough passphrase"}),
            )
            .await;
        assert_eq!(dup.status, 409, "[{backend:?}] {:?}", dup.body);
        // Host keys: a full fingerprint or a public key, nothing shorter.
        let short = app
            .post(
                "/api/v1/systems/web1/host-keys",
                &admin,
                json!({"algorithm": "ssh-ed25519", "fingerprint": "SHA256:C"}),
            )
            .await;
        assert_eq!(short.status, 400, "{:?}", short.body);
        assert!(
            short.body["message"]
                .as_str()
                .unwrap()
                .contains("fingerprint")
        );
        let public = app
            .post(
                "/api/v1/systems/web1/host-keys",
                &admin,
                json!({"algorithm": "ssh-ed25519", "fingerprint":
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq9YIPtZWPbLtvv3t7QI5cB6Vx/Lx6tCHTuwJCsoo/R test"}),
            )
            .await;
        assert_eq!(public.status, 201, "{:?}", public.body);
        assert_eq!(
            public.body["fingerprint"],
            crate::authz_matrix::FP,
            "computed as ssh-keygen -lf does"
        );
        // A job name with a bidi override.
        let j = app
            .post(
                "/api/v1/jobs",
                &admin,
                json!({"name": "x\u{202e}y", "command": "true", "targets": {"systems": ["web1"]}}),
            )
            .await;
        assert_eq!(j.status, 400, "{:?}", j.body);
        assert!(j.body["message"].as_str().unwrap().contains("job name"));
    }
}

async fn send(ws: &mut Socket, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// Events of subscription `sub` until its `end` or `error`.
async fn events_until(ws: &mut Socket, sub: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .expect("the subscription ended in time");
        let Some(Ok(Message::Text(t))) = msg else {
            panic!("unexpected {msg:?}")
        };
        let frame: Value = serde_json::from_str(&t).unwrap();
        for e in frame["events"].as_array().cloned().unwrap_or_default() {
            if e["sub"] == sub {
                let last = matches!(e["type"].as_str(), Some("end" | "error"));
                out.push(e);
                if last {
                    return out;
                }
            }
        }
    }
}

#[test]
fn hidden_names_are_not_hex() {
    for m in [HIDDEN_SYSTEM, HIDDEN_JOB_NAME] {
        assert!(m.chars().any(|c| !c.is_ascii_hexdigit() && c != '-'));
    }
}
