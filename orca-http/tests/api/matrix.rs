//! The permission matrix (`permission_matrix.txt`), end to end.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};

use orca_core::ids::{JobId, UserId};
use orca_core::model::{JobSpec, NewSystem, Principal, Role, Scope, SystemType, Targets};
use poem::http::Method;
use serde_json::{Value, json};

use crate::common::{App, PASSWORD};

const TABLE: &str = include_str!("permission_matrix.txt");
const FP: &str = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Admin,
    Operator,
    Viewer,
    Anonymous,
}

impl Who {
    fn role(self) -> Role {
        match self {
            Who::Admin => Role::Admin,
            Who::Operator => Role::Operator,
            Who::Viewer | Who::Anonymous => Role::Viewer,
        }
    }
    fn user(self) -> &'static str {
        match self {
            Who::Admin => "admin",
            Who::Operator => "op",
            Who::Viewer | Who::Anonymous => "viewer",
        }
    }
}

struct Fixture {
    app: App,
    tokens: Vec<(Who, String)>,
    web: String,
    db: String,
    job_in: String,
    job_out: String,
    exec_in: String,
    exec_out: String,
    target: UserId,
    n: AtomicU32,
}

impl Fixture {
    fn token(&self, who: Who) -> Option<String> {
        self.tokens
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, t)| t.clone())
    }
    fn next(&self) -> u32 {
        self.n.fetch_add(1, Ordering::SeqCst)
    }
    async fn system(&self, tag: &str) -> String {
        let name = format!("t{}", self.next());
        self.app
            .orca
            .add_system(
                &Principal::system("t"),
                NewSystem {
                    name: name.clone(),
                    system_type: Some(SystemType::Local),
                    tags: vec![tag.into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        name
    }
    async fn job(app: &App, system: &str) -> (String, String) {
        let boot = Principal::system("t");
        let s = app
            .orca
            .submit(
                &boot,
                JobSpec {
                    name: None,
                    command: "echo out; exit 3".into(),
                    targets: Targets {
                        systems: vec![system.into()],
                        tags: vec![],
                    },
                    options: Default::default(),
                },
            )
            .await
            .unwrap();
        app.orca.wait_job(&boot, s.job.id).await.unwrap();
        (s.job.id.to_string(), s.executions[0].id.to_string())
    }
}

async fn fixture() -> Fixture {
    let app = App::new().await;
    let boot = Principal::system("t");
    for (name, tag) in [("web", "web"), ("db", "db")] {
        app.orca
            .add_system(
                &boot,
                NewSystem {
                    name: name.into(),
                    system_type: Some(SystemType::Local),
                    tags: vec![tag.into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let mut tokens = Vec::new();
    for who in [Who::Admin, Who::Operator, Who::Viewer] {
        let scopes = if who == Who::Admin {
            vec![]
        } else {
            vec![Scope::Tag("web".into())]
        };
        app.user(who.user(), who.role(), scopes).await;
        tokens.push((who, app.login(who.user()).await.0));
    }
    let target = app.user("target", Role::Viewer, vec![]).await;
    let (job_in, exec_in) = Fixture::job(&app, "web").await;
    let (job_out, exec_out) = Fixture::job(&app, "db").await;
    Fixture {
        app,
        tokens,
        web: "web".into(),
        db: "db".into(),
        job_in,
        job_out,
        exec_in,
        exec_out,
        target,
        n: AtomicU32::new(0),
    }
}

/// Perform `op` as `who` on an object in or out of scope; returns the status.
async fn perform(f: &Fixture, op: &str, who: Who, inside: bool) -> u16 {
    let tag = if inside { "web" } else { "db" };
    let sys = if inside { &f.web } else { &f.db };
    let job = if inside { &f.job_in } else { &f.job_out };
    let exec = if inside { &f.exec_in } else { &f.exec_out };
    let mut token = f.token(who);
    let t = f.target;
    let (m, path, body): (Method, String, Option<Value>) = match op {
        "logout" => {
            if who != Who::Anonymous {
                token = Some(f.app.login(who.user()).await.0);
            }
            (Method::POST, "/api/v1/auth/logout".into(), None)
        }
        "whoami" => (Method::GET, "/api/v1/auth/me".into(), None),
        "change_password" => {
            let name = format!("cp{}", f.next());
            f.app.user(&name, who.role(), vec![]).await;
            if who != Who::Anonymous {
                token = Some(f.app.login(&name).await.0);
            }
            (
                Method::POST,
                "/api/v1/auth/password".into(),
                Some(
                    json!({"current_password": PASSWORD, "new_password": "another good passphrase"}),
                ),
            )
        }
        "create_token" => (
            Method::POST,
            "/api/v1/tokens".into(),
            Some(json!({"name": "m"})),
        ),
        "list_tokens" => (Method::GET, "/api/v1/tokens".into(), None),
        "revoke_token" => {
            let user = f.app.orca.raw_store().find_user(who.user()).await.unwrap();
            let secret = f
                .app
                .state
                .issue_api_token(user.id, "r", Some(Role::Viewer), None)
                .await
                .unwrap();
            let me = f.app.get("/api/v1/tokens?limit=1000", &secret).await;
            let id = me.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["name"] == "r")
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            (Method::DELETE, format!("/api/v1/tokens/{id}"), None)
        }
        "create_ws_ticket" => (Method::POST, "/api/v1/ws/ticket".into(), None),
        "create_user" => (
            Method::POST,
            "/api/v1/users".into(),
            Some(
                json!({"username": format!("u{}", f.next()), "role": "viewer", "password": PASSWORD}),
            ),
        ),
        "list_users" => (Method::GET, "/api/v1/users".into(), None),
        "get_user" => (Method::GET, format!("/api/v1/users/{t}"), None),
        "update_user" => (
            Method::PATCH,
            format!("/api/v1/users/{t}"),
            Some(json!({"role": "viewer"})),
        ),
        "reset_password" => (
            Method::POST,
            format!("/api/v1/users/{t}/password"),
            Some(json!({"password": PASSWORD})),
        ),
        "get_grants" => (Method::GET, format!("/api/v1/users/{t}/grants"), None),
        "set_grants" => (
            Method::PUT,
            format!("/api/v1/users/{t}/grants"),
            Some(json!({"grants": [{"kind": "tag", "value": "web"}]})),
        ),
        "create_system" => (
            Method::POST,
            "/api/v1/systems".into(),
            Some(json!({"name": format!("n{}", f.next()), "type": "local", "tags": [tag]})),
        ),
        "list_systems" => (Method::GET, "/api/v1/systems".into(), None),
        "get_system" => (Method::GET, format!("/api/v1/systems/{sys}"), None),
        "update_system" => (
            Method::PATCH,
            format!("/api/v1/systems/{}", f.system(tag).await),
            Some(json!({"tags": [tag, "x"]})),
        ),
        "delete_system" => (
            Method::DELETE,
            format!("/api/v1/systems/{}", f.system(tag).await),
            None,
        ),
        "probe_system" => (Method::POST, format!("/api/v1/systems/{sys}/probe"), None),
        "list_host_keys" => (
            Method::GET,
            format!("/api/v1/systems/{sys}/host-keys"),
            None,
        ),
        "approve_host_key" => (
            Method::POST,
            format!("/api/v1/systems/{}/host-keys", f.system(tag).await),
            Some(json!({"algorithm": "ssh-ed25519", "fingerprint": FP})),
        ),
        "replace_host_keys" => (
            Method::PUT,
            format!("/api/v1/systems/{}/host-keys", f.system(tag).await),
            Some(json!({"keys": [{"algorithm": "ssh-ed25519", "fingerprint": FP}]})),
        ),
        "submit_job" => (
            Method::POST,
            "/api/v1/jobs".into(),
            Some(json!({"command": "true", "targets": {"systems": [sys]}})),
        ),
        "list_jobs" => (Method::GET, "/api/v1/jobs".into(), None),
        "get_job" => (Method::GET, format!("/api/v1/jobs/{job}"), None),
        "list_job_executions" => (Method::GET, format!("/api/v1/jobs/{job}/executions"), None),
        "cancel_job" => (Method::POST, format!("/api/v1/jobs/{job}/cancel"), None),
        "retry_job" => (Method::POST, format!("/api/v1/jobs/{job}/retry"), None),
        "get_execution" => (Method::GET, format!("/api/v1/executions/{exec}"), None),
        "read_output" => (
            Method::GET,
            format!("/api/v1/executions/{exec}/output"),
            None,
        ),
        "download_output" => (
            Method::GET,
            format!("/api/v1/executions/{exec}/output/download"),
            None,
        ),
        "cancel_execution" => (
            Method::POST,
            format!("/api/v1/executions/{exec}/cancel"),
            None,
        ),
        "list_audit" => (Method::GET, "/api/v1/audit".into(), None),
        other => panic!("operation {other} has no request in matrix.rs"),
    };
    f.app.call(m, &path, token.as_deref(), body).await.status
}

#[tokio::test]
async fn permission_matrix() {
    let f = fixture().await;
    let _ = JobId::new();
    let mut rows = Vec::new();
    for line in TABLE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols.len(), 7, "bad row: {line}");
        let n: Vec<u16> = cols[1..].iter().map(|c| c.parse().unwrap()).collect();
        rows.push((cols[0].to_string(), n));
    }
    // The table covers every authenticated operation of the OpenAPI document.
    let spec: Value = serde_json::from_str(&orca_http::openapi_json(&f.app.state)).unwrap();
    let mut secured = BTreeSet::new();
    for (_, item) in spec["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            if op
                .get("security")
                .is_some_and(|s| !s.as_array().unwrap().is_empty())
            {
                secured.insert(op["operationId"].as_str().unwrap().to_string());
            }
        }
    }
    let listed: BTreeSet<String> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(
        secured, listed,
        "permission_matrix.txt must list exactly the authenticated operations"
    );

    let mut wrong = Vec::new();
    for (op, want) in &rows {
        let cases = [
            (Who::Admin, true, want[0]),
            (Who::Admin, false, want[0]),
            (Who::Operator, true, want[1]),
            (Who::Operator, false, want[2]),
            (Who::Viewer, true, want[3]),
            (Who::Viewer, false, want[4]),
            (Who::Anonymous, true, want[5]),
        ];
        for (who, inside, expect) in cases {
            let got = perform(&f, op, who, inside).await;
            if got != expect {
                wrong.push(format!(
                    "{op} as {who:?} ({}): expected {expect}, got {got}",
                    if inside { "in" } else { "out" }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "permission matrix mismatches:\n{}",
        wrong.join("\n")
    );
}
