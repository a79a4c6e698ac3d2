//! # orca-http
//!
//! Orca's HTTP API: a REST API under `/api/v1` described by an OpenAPI 3 document generated
//! from the code (`/api/openapi.json`, Swagger UI at `/api/docs`), with authentication (argon2id
//! passwords, short-lived JWT access tokens, rotating refresh tokens, API tokens), role- and
//! scope-based authorisation through [`orca_core::policy`], one audit record per mutating or
//! denied request, rate limits, Prometheus metrics (`/metrics`), `/healthz`, `/readyz`, and live
//! updates over WebSocket (`/api/v1/ws`).
//!
//! Handlers are thin: authenticate, convert, call the [`orca_core::Orca`] facade (which asks
//! the policy and writes the audit record), convert back. Errors map to HTTP statuses through
//! one table ([`error::status_for`]); every error body is `{code, message, request_id}`.
//!
//! ```no_run
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use orca_core::{MemoryStore, Orca, Store, SystemClock};
//! use orca_http::{AppState, HttpConfig, JwtSecret};
//!
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new(Arc::new(SystemClock)));
//! let orca = Orca::builder().store(store).build()?;
//! let mut config = HttpConfig::default();
//! config.auth.jwt_secret = Some(JwtSecret::generate());
//! let listen = config.listen;
//! let app = orca_http::router(AppState::new(orca, config)?);
//! poem::Server::new(poem::listener::TcpListener::bind(listen)).run(app).await?;
//! # Ok(()) }
//! ```

mod api;
pub mod auth;
pub mod config;
mod context;
mod csp;
pub mod error;
mod metrics;
mod middleware;
mod ratelimit;
mod state;
mod ui;
mod ws;

pub use config::{AuthConfig, CorsConfig, HttpConfig, JwtSecret, RateLimitConfig};
pub use error::{ApiError, ErrorBody};
pub use state::AppState;
pub use ui::embedded as console_embedded;

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::{EndpointExt, Response, Route};
use poem_openapi::OpenApiService;

/// The OpenAPI service (the document and the operations).
fn service(state: &AppState) -> OpenApiService<impl poem_openapi::OpenApi, ()> {
    OpenApiService::new(api::apis(state), "Orca API", env!("CARGO_PKG_VERSION"))
        .description(
            "Run commands on fleets of machines and keep every job, execution, output chunk and \
             audit record. Authenticate with `POST /api/v1/auth/login` and send \
             `Authorization: Bearer <access_token>` (or an API token). Errors are \
             `{code, message, request_id}`.",
        )
        .server("/")
}

/// The OpenAPI document as JSON (for clients and tests; the server serves it at
/// `/api/openapi.json`). Request objects reject unknown fields, so the document says
/// `additionalProperties: false` for every object schema with fixed properties.
pub fn openapi_json(state: &AppState) -> String {
    patch_spec(&service(state).spec()).to_string()
}

fn patch_spec(spec: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
    if let Some(schemas) = v
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        for (_, schema) in schemas.iter_mut() {
            if let Some(o) = schema.as_object_mut()
                && o.get("type").and_then(|t| t.as_str()) == Some("object")
                && o.contains_key("properties")
                && !o.contains_key("additionalProperties")
            {
                o.insert("additionalProperties".into(), false.into());
            }
            nullable_optionals(schema);
        }
    }
    unwrap_described_refs(&mut v);
    v
}

/// Keys that only describe a schema (no constraint of their own).
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
    "nullable",
];

/// poem-openapi attaches a description to a referenced schema by wrapping the reference:
/// `allOf: [{"$ref": …}, {"description": …}]`. Several mainstream client generators cannot take
/// `allOf` of a non-object (every enum here) and drop the schema and every operation that uses
/// it. Write such a property as the reference itself, with its description beside it (which
/// OpenAPI 3.0 tools read as an annotation). Applied to the whole document.
fn unwrap_described_refs(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            let reference = o.get("allOf").and_then(|a| a.as_array()).and_then(|items| {
                let refs: Vec<&serde_json::Value> =
                    items.iter().filter(|i| i.get("$ref").is_some()).collect();
                let only_annotations = items.iter().all(|i| {
                    i.get("$ref").is_some()
                        || i.as_object()
                            .is_some_and(|m| m.keys().all(|k| ANNOTATIONS.contains(&k.as_str())))
                });
                (refs.len() == 1 && only_annotations)
                    .then(|| refs[0]["$ref"].clone())
                    .filter(|r| r.is_string())
            });
            let outer_ok = o
                .keys()
                .all(|k| k == "allOf" || ANNOTATIONS.contains(&k.as_str()));
            if let (Some(r), true) = (reference, outer_ok) {
                let description = o.get("description").cloned().or_else(|| {
                    o["allOf"]
                        .as_array()
                        .and_then(|items| items.iter().find_map(|i| i.get("description").cloned()))
                });
                o.clear();
                o.insert("$ref".into(), r);
                if let Some(d) = description {
                    o.insert("description".into(), d);
                }
                return;
            }
            for (_, x) in o.iter_mut() {
                unwrap_described_refs(x);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                unwrap_described_refs(x);
            }
        }
        _ => {}
    }
}

/// Optional properties accept an explicit `null` (the same as leaving them out): say so.
fn nullable_optionals(schema: &mut serde_json::Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (name, prop) in props.iter_mut() {
        if required.contains(name) {
            continue;
        }
        let Some(o) = prop.as_object_mut() else {
            continue;
        };
        // A reference stays a plain reference (see `unwrap_described_refs`): OpenAPI 3.0 has no
        // way to make it nullable that generators take, and leaving it out means the same.
        if o.contains_key("$ref") || o.contains_key("allOf") {
            continue;
        }
        o.insert("nullable".into(), true.into());
    }
}

/// The whole HTTP application: the API, its document and UI, health, readiness, metrics and
/// the WebSocket, wrapped in the request pipeline (request ids, logs, rate and body limits,
/// JSON errors, audit, metrics) and CORS when configured.
pub fn router(state: AppState) -> BoxEndpoint<'static, Response> {
    let svc = service(&state);
    let spec_value = patch_spec(&svc.spec());
    let routes = Arc::new(middleware::Routes::from_spec(&spec_value));
    let spec_text = spec_value.to_string();
    let spec = poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(spec_text.clone())
    });
    let docs = svc.swagger_ui();
    let ws_state = state.clone();
    let app = Route::new()
        .at(
            "/api/v1/ws",
            poem::endpoint::make(move |req| ws::endpoint(ws_state.clone(), req)),
        )
        .at("/api/openapi.json", spec)
        .nest("/api/docs", csp::docs(docs))
        .nest(
            "/",
            ui::with_console(poem::IntoEndpoint::into_endpoint(svc)),
        );
    let cors = &state.config().cors;
    let pipeline_state = state.clone();
    let app = app
        .around(move |ep, req| middleware::handle(pipeline_state.clone(), routes.clone(), ep, req));
    if cors.allowed_origins.is_empty() {
        app.boxed()
    } else {
        let c = poem::middleware::Cors::new()
            .allow_origins(cors.allowed_origins.iter().map(String::as_str))
            .allow_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
            .allow_headers(["authorization", "content-type", "x-request-id"])
            .expose_headers(["x-request-id", "retry-after"])
            .max_age(cors.max_age_seconds as i32);
        app.with(c).map_to_response().boxed()
    }
}
