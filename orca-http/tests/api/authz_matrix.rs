//! The authorization matrix, generated from the served OpenAPI document: every operation ×
//! every role × an object in scope, out of scope, and a job that mixes both, over SQLite and
//! PostgreSQL. Requests are built from the document (path parameters by the collection they
//! name, bodies from the schemas), so a new endpoint is covered without editing this file.
//!
//! What must hold, for every case:
//! - no 5xx;
//! - anonymous callers get 401 from every operation that declares security;
//! - a non-admin never sees, in any response, the name or id of an object outside their scope
//!   (the `db1-hidden` system, its executions, and the job that ran only there) unless the
//!   request itself named it;
//! - an out-of-scope object in the path is hidden (404) from non-admins — for a mixed job's
//!   execution on the out-of-scope system as well (F1);
//! - an in-scope object (and the mixed job) is never hidden (no 404) and never asks the caller
//!   to authenticate again (no 401); admins are never refused (401/403) and see every object.
//!
//! The exact statuses per role are in `permission_matrix.txt` (matrix.rs); this test adds the
//! scope and leak rules across everything the document offers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use orca_core::ids::ExecutionId;
use orca_core::model::{JobSpec, NewSystem, Principal, Role, Scope, SystemType, Targets};
use poem::http::Method;
use serde_json::{Map, Value, json};

use crate::common::{App, Backend, PASSWORD, config};

/// A full OpenSSH SHA256 fingerprint.
pub const FP: &str = "SHA256:/jkrb8HU2ZDopA5mOeBMlXCr6V334s3XJZRJly8mzIA";
/// The out-of-scope system's name: not made of hex digits, so it cannot appear by chance
/// inside an id.
pub const HIDDEN_SYSTEM: &str = "db1-hidden";
pub const HIDDEN_JOB_NAME: &str = "job-out-hidden";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Admin,
    Operator,
    Viewer,
    Anonymous,
}

impl Who {
    pub const ALL: [Who; 4] = [Who::Admin, Who::Operator, Who::Viewer, Who::Anonymous];
    pub fn user(self) -> &'static str {
        match self {
            Who::Admin => "admin",
            Who::Operator => "op1",
            Who::Viewer | Who::Anonymous => "view1",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Objects on `web1` (in the operator's and viewer's scope).
    In,
    /// Objects on `db1-hidden` (outside it).
    Out,
    /// The job on both systems; for execution paths, its execution on `db1-hidden`.
    Mixed,
}

/// A job and its executions on `web1` / `db1-hidden`.
#[derive(Debug, Clone)]
pub struct JobIds {
    pub id: String,
    pub on_web: Option<String>,
    pub on_db: Option<String>,
}

/// Systems `web1` (tag web) and `db1-hidden` (tag db), both of type `local`; `op1` (operator)
/// and `view1` (viewer) granted only the tag `web`; jobs on web1, on db1-hidden, and on both.
pub struct Fixture {
    pub app: App,
    pub tokens: std::sync::Mutex<BTreeMap<&'static str, String>>,
    pub web_id: String,
    pub db_id: String,
    pub job_in: JobIds,
    pub job_out: JobIds,
    pub job_mixed: JobIds,
    pub target_user: String,
    n: AtomicU32,
}

impl Fixture {
    pub async fn new(backend: Backend, command: &str) -> Option<Fixture> {
        let mut c = config();
        c.rate_limit.enabled = false;
        let app = App::on(backend, c).await?;
        let boot = Principal::system("t");
        let mut ids = Vec::new();
        for (name, tag) in [("web1", "web"), (HIDDEN_SYSTEM, "db")] {
            let s = app
                .orca
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
            ids.push(s.id.to_string());
        }
        let mut tokens = BTreeMap::new();
        app.user("admin", Role::Admin, vec![]).await;
        app.user("op1", Role::Operator, vec![Scope::Tag("web".into())])
            .await;
        app.user("view1", Role::Viewer, vec![Scope::Tag("web".into())])
            .await;
        for name in ["admin", "op1", "view1"] {
            tokens.insert(name, app.login(name).await.0);
        }
        let target_user = app.user("target", Role::Viewer, vec![]).await.to_string();
        let f = Fixture {
            web_id: ids[0].clone(),
            db_id: ids[1].clone(),
            job_in: JobIds {
                id: String::new(),
                on_web: None,
                on_db: None,
            },
            job_out: JobIds {
                id: String::new(),
                on_web: None,
                on_db: None,
            },
            job_mixed: JobIds {
                id: String::new(),
                on_web: None,
                on_db: None,
            },
            app,
            tokens: std::sync::Mutex::new(tokens),
            target_user,
            n: AtomicU32::new(0),
        };
        let job_in = f.job("job-in", &["web1"], command, true).await;
        let job_out = f
            .job(HIDDEN_JOB_NAME, &[HIDDEN_SYSTEM], command, true)
            .await;
        let job_mixed = f
            .job("job-mixed", &["web1", HIDDEN_SYSTEM], command, true)
            .await;
        Some(Fixture {
            job_in,
            job_out,
            job_mixed,
            ..f
        })
    }

    pub fn token(&self, who: Who) -> Option<String> {
        match who {
            Who::Anonymous => None,
            w => self.tokens.lock().unwrap().get(w.user()).cloned(),
        }
    }

    /// Log everyone in again (after an operation that may have ended their sessions).
    pub async fn relogin(&self) {
        for name in ["admin", "op1", "view1"] {
            let t = self.app.login(name).await.0;
            self.tokens.lock().unwrap().insert(name, t);
        }
    }

    pub fn next(&self) -> u32 {
        self.n.fetch_add(1, Ordering::SeqCst)
    }

    /// Submit a job as the system principal (an admin); optionally wait for its end.
    pub async fn job(&self, name: &str, systems: &[&str], command: &str, wait: bool) -> JobIds {
        let boot = Principal::system("t");
        let s = self
            .app
            .orca
            .submit(
                &boot,
                JobSpec {
                    name: Some(name.into()),
                    command: command.into(),
                    targets: Targets {
                        systems: systems.iter().map(|s| s.to_string()).collect(),
                        tags: vec![],
                    },
                    options: Default::default(),
                },
            )
            .await
            .unwrap();
        if wait {
            self.app.orca.wait_job(&boot, s.job.id).await.unwrap();
        }
        let on = |id: &str| {
            s.executions
                .iter()
                .find(|e| e.system_id.to_string() == id)
                .map(|e| e.id.to_string())
        };
        JobIds {
            id: s.job.id.to_string(),
            on_web: on(&self.web_id),
            on_db: on(&self.db_id),
        }
    }

    /// A fresh system for a case that may change or delete it.
    async fn fresh_system(&self, tag: &str) -> String {
        let name = format!("s{}-{tag}", self.next());
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

    /// Strings no non-admin response may contain (unless the request named them).
    pub fn hidden_markers(&self) -> Vec<String> {
        let mut v = vec![
            HIDDEN_SYSTEM.to_string(),
            self.db_id.clone(),
            self.job_out.id.clone(),
            HIDDEN_JOB_NAME.to_string(),
        ];
        for j in [&self.job_out, &self.job_mixed] {
            v.extend(j.on_db.clone());
        }
        v
    }

    /// `hidden_markers` and, from the store, every execution on the hidden system and every
    /// job that ran only there (fresh ones included).
    pub async fn all_hidden_markers(&self) -> Vec<String> {
        let mut v = self.hidden_markers();
        let admin = Principal::system("t");
        let page = orca_core::model::Page {
            offset: 0,
            limit: 1000,
        };
        let jobs = self
            .app
            .orca
            .list_jobs(&admin, &Default::default(), page)
            .await
            .unwrap();
        for j in jobs {
            let execs = self
                .app
                .orca
                .job_executions(&admin, j.id, page)
                .await
                .unwrap();
            for e in &execs {
                if e.system_id.to_string() == self.db_id {
                    v.push(e.id.to_string());
                }
            }
            if execs.iter().all(|e| e.system_id.to_string() == self.db_id) {
                v.push(j.id.to_string());
            }
        }
        v.sort();
        v.dedup();
        v
    }
}

/// Follow `$ref`s into `components/schemas`.
fn resolve<'a>(spec: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or(r);
                s = &spec["components"]["schemas"][name];
            }
            None => break,
        }
    }
    s
}

struct Ctx<'a> {
    f: &'a Fixture,
    system: String,
    tag: &'static str,
}

/// A value for a schema: the required properties (and a few well-known optional ones) with
/// values that make sense for the case, by property name where it matters.
fn example(spec: &Value, schema: &Value, prop: &str, cx: &Ctx<'_>, depth: u32) -> Value {
    let s = resolve(spec, schema);
    if depth > 8 {
        return Value::Null;
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array)
        && let Some(first) = all.first()
    {
        return example(spec, first, prop, cx, depth + 1);
    }
    if let Some(one) = s
        .get("oneOf")
        .or_else(|| s.get("anyOf"))
        .and_then(Value::as_array)
        && let Some(first) = one.first()
    {
        return example(spec, first, prop, cx, depth + 1);
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        let pick = match prop {
            "role" => e.iter().find(|v| *v == "viewer"),
            "type" => e.iter().find(|v| *v == "local"),
            _ => None,
        };
        return pick.or(e.first()).cloned().unwrap_or(Value::Null);
    }
    let n = cx.f.next();
    match s.get("type").and_then(Value::as_str).unwrap_or("object") {
        "object" => {
            let mut out = Map::new();
            let props = s.get("properties").and_then(Value::as_object);
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = props {
                for (k, v) in props {
                    let wanted = required.contains(&k.as_str())
                        || matches!(k.as_str(), "tags" | "type" | "systems");
                    if wanted {
                        out.insert(k.clone(), example(spec, v, k, cx, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let item = s.get("items").cloned().unwrap_or(json!({"type": "string"}));
            match prop {
                "systems" => json!([cx.system]),
                "tags" => json!([cx.tag]),
                "grants" => json!([{"kind": "tag", "value": cx.tag}]),
                _ => json!([example(spec, &item, prop, cx, depth + 1)]),
            }
        }
        "string" => match prop {
            "name" => json!(format!("n{n}")),
            "username" => json!(format!("u{n}")),
            "password" | "new_password" | "current_password" => json!(PASSWORD),
            "command" => json!("echo matrix"),
            "hostname" => json!("localhost"),
            "fingerprint" => json!(FP),
            "algorithm" => json!("ssh-ed25519"),
            "system" => json!(cx.system),
            "value" | "tag" => json!(cx.tag),
            _ if s.get("format").and_then(Value::as_str) == Some("uuid") => {
                json!(uuid::Uuid::now_v7())
            }
            _ => json!(format!("x{n}")),
        },
        "integer" | "number" => json!(s.get("minimum").and_then(Value::as_u64).unwrap_or(1)),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

/// One operation of the document.
#[derive(Debug, Clone)]
pub struct Op {
    pub id: String,
    pub method: Method,
    pub path: String,
    pub secured: bool,
    pub body: Option<Value>,
}

pub fn operations(spec: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let body = op["requestBody"]["content"].as_object().and_then(|c| {
                c.iter()
                    .find(|(k, _)| k.starts_with("application/json"))
                    .map(|(_, v)| v["schema"].clone())
            });
            ops.push(Op {
                id: op["operationId"].as_str().unwrap_or(path).to_string(),
                method: m,
                path: path.clone(),
                secured: op
                    .get("security")
                    .is_some_and(|s| !s.as_array().unwrap().is_empty()),
                body,
            });
        }
    }
    ops
}

/// What a path parameter names, by the collection before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    System,
    Job,
    Execution,
    User,
    Other,
}

fn kinds(path: &str) -> Vec<Kind> {
    let segs: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        if s.starts_with('{') {
            out.push(match i.checked_sub(1).map(|j| segs[j]) {
                Some("systems") => Kind::System,
                Some("jobs") => Kind::Job,
                Some("executions") => Kind::Execution,
                Some("users") => Kind::User,
                _ => Kind::Other,
            });
        }
    }
    out
}

/// The request for `op` in `variant`: (path, body, whether the path names a hidden object).
async fn request(
    f: &Fixture,
    spec: &Value,
    op: &Op,
    variant: Variant,
) -> (String, Option<Value>, bool) {
    let mutating = op.method != Method::GET;
    let tag = if variant == Variant::Out { "db" } else { "web" };
    let mut path = String::new();
    let mut hidden = false;
    let mut kinds = kinds(&op.path).into_iter();
    for seg in op.path.split('/').skip(1) {
        path.push('/');
        if !seg.starts_with('{') {
            path.push_str(seg);
            continue;
        }
        let value = match kinds.next().unwrap_or(Kind::Other) {
            Kind::System => {
                hidden |= variant == Variant::Out;
                if mutating {
                    f.fresh_system(tag).await
                } else if variant == Variant::Out {
                    HIDDEN_SYSTEM.to_string()
                } else {
                    "web1".to_string()
                }
            }
            Kind::Job => {
                hidden |= variant == Variant::Out;
                let shared = match variant {
                    Variant::In => &f.job_in,
                    Variant::Out => &f.job_out,
                    Variant::Mixed => &f.job_mixed,
                };
                if mutating {
                    let systems: &[&str] = match variant {
                        Variant::In => &["web1"],
                        Variant::Out => &[HIDDEN_SYSTEM],
                        Variant::Mixed => &["web1", HIDDEN_SYSTEM],
                    };
                    f.job(&format!("fresh-{}", f.next()), systems, "exit 3", true)
                        .await
                        .id
                } else {
                    shared.id.clone()
                }
            }
            Kind::Execution => {
                hidden |= variant != Variant::In;
                let job = match (variant, mutating) {
                    (Variant::In, false) => f.job_in.clone(),
                    (Variant::Out, false) => f.job_out.clone(),
                    (Variant::Mixed, false) => f.job_mixed.clone(),
                    (_, true) => {
                        f.job(
                            &format!("fresh-{}", f.next()),
                            &["web1", HIDDEN_SYSTEM],
                            "sleep 2",
                            false,
                        )
                        .await
                    }
                };
                if variant == Variant::In {
                    job.on_web.unwrap()
                } else {
                    job.on_db.unwrap()
                }
            }
            Kind::User => f.target_user.clone(),
            Kind::Other => uuid::Uuid::now_v7().to_string(),
        };
        path.push_str(&value);
    }
    let cx = Ctx {
        f,
        system: if variant == Variant::Out {
            HIDDEN_SYSTEM.into()
        } else {
            "web1".into()
        },
        tag,
    };
    let body = op
        .body
        .as_ref()
        .map(|schema| example(spec, schema, "", &cx, 0));
    (path, body, hidden)
}

/// Run the matrix on one backend; returns the list of broken rules.
async fn run(backend: Backend) -> Option<Vec<String>> {
    let f = Fixture::new(backend, "echo out; exit 3").await?;
    let spec: Value = serde_json::from_str(&orca_http::openapi_json(&f.app.state)).unwrap();
    let ops = operations(&spec);
    assert!(ops.len() > 30, "the document has {} operations", ops.len());
    let mut wrong = Vec::new();
    let mut cases = 0;
    let mut markers = f.all_hidden_markers().await;
    let mut admin_failed = Vec::new();
    for op in &ops {
        for variant in [Variant::In, Variant::Out, Variant::Mixed] {
            for who in Who::ALL {
                let (path, body, hidden) = request(&f, &spec, op, variant).await;
                let sent = format!("{path} {}", body.clone().unwrap_or_default());
                // Operations on the caller's own session (logout, password change) run on a
                // session of their own.
                let own = match who {
                    Who::Anonymous => None,
                    _ if op.secured && op.path.starts_with("/api/v1/auth/") => {
                        Some(f.app.login(who.user()).await.0)
                    }
                    _ => f.token(who),
                };
                let a = f
                    .app
                    .call(op.method.clone(), &path, own.as_deref(), body)
                    .await;
                if op.secured && op.path.starts_with("/api/v1/auth/") && op.method != Method::GET {
                    f.relogin().await;
                }
                if op.method != Method::GET {
                    markers = f.all_hidden_markers().await;
                }
                cases += 1;
                let case = format!(
                    "[{backend:?}] {} {} ({}) as {who:?} {variant:?}: {}",
                    op.method, path, op.id, a.status
                );
                if a.status >= 500 {
                    wrong.push(format!("{case}: server error {:?}", a.body));
                    continue;
                }
                if !op.secured {
                    continue;
                }
                match who {
                    Who::Anonymous => {
                        if a.status != 401 {
                            wrong.push(format!("{case}: anonymous must get 401"));
                        }
                        continue;
                    }
                    Who::Admin => {
                        if !(200..300).contains(&a.status) {
                            admin_failed.push(format!("{case} {}", a.body["message"]));
                        }
                        if matches!(a.status, 401 | 403 | 415) {
                            wrong.push(format!("{case}: admin refused {:?}", a.body));
                        }
                        if a.status == 404 && kinds(&op.path).iter().any(|k| *k != Kind::Other) {
                            wrong.push(format!("{case}: admin must see every object"));
                        }
                        continue;
                    }
                    Who::Operator | Who::Viewer => {}
                }
                if hidden && a.status != 404 {
                    wrong.push(format!(
                        "{case}: an object outside the scope must be hidden (404) {:?}",
                        a.body
                    ));
                }
                if !hidden && kinds(&op.path).iter().any(|k| *k != Kind::Other) {
                    if a.status == 404 && kinds(&op.path).iter().all(|k| *k != Kind::User) {
                        wrong.push(format!(
                            "{case}: an object in scope was hidden {:?}",
                            a.body
                        ));
                    }
                    if a.status == 401 {
                        wrong.push(format!("{case}: a valid caller asked to log in"));
                    }
                }
                let text = String::from_utf8_lossy(&a.raw);
                for m in &markers {
                    if text.contains(m.as_str()) && !sent.contains(m.as_str()) {
                        wrong.push(format!("{case}: the response names '{m}': {text}"));
                    }
                }
            }
        }
    }
    eprintln!(
        "[{backend:?}] authorization matrix: {} operations, {cases} cases, {} broken; \
         admin's requests that did not succeed:\n{}",
        ops.len(),
        wrong.len(),
        admin_failed.join("\n")
    );
    // The generated requests are valid: an admin's succeed, but for the few that cannot (an
    // unknown token id, a retry of a job still running...).
    if admin_failed.len() > cases / 4 / 5 {
        wrong.push(format!(
            "[{backend:?}] too many of the admin's generated requests failed: the generator \
             no longer builds valid requests"
        ));
    }
    Some(wrong)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_authorization_matrix() {
    let mut wrong = Vec::new();
    for backend in Backend::ALL {
        if let Some(w) = run(backend).await {
            wrong.extend(w);
        }
    }
    assert!(
        wrong.is_empty(),
        "authorization matrix: {} broken rules:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The generator itself: path parameters map to the right collections, and bodies carry the
/// required fields.
#[test]
fn requests_are_built_from_the_document() {
    assert_eq!(kinds("/api/v1/systems/{system}/host-keys"), [Kind::System]);
    assert_eq!(kinds("/api/v1/executions/{id}/output"), [Kind::Execution]);
    assert_eq!(kinds("/api/v1/tokens/{id}"), [Kind::Other]);
    let _ = ExecutionId::new();
}
