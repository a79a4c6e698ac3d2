//! The test harness: the HTTP app in-process over the SQLite store and the local connector.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use orca_connectors::local::{LocalConfig, LocalConnector};
use orca_core::ids::UserId;
use orca_core::model::{NewUser, Principal, Role, Scope};
use orca_core::{Clock, KeyRing, Orca, Store, SystemClock};
use orca_http::{AppState, AuditContextLayer, HttpConfig, JwtSecret};
use orca_store::sqlite::SqliteStore;
use poem::Response;
use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem::test::TestClient;
use secrecy::SecretString;
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Everything the server logged, for leak checks.
pub fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(b.clone()))
            .try_init();
        buf
    })
}

pub struct LogWriter(Arc<Mutex<Vec<u8>>>);
impl Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct App {
    pub client: TestClient<BoxEndpoint<'static, Response>>,
    pub state: AppState,
    pub orca: Orca,
    pub _dir: tempfile::TempDir,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub raw: Vec<u8>,
    pub headers: poem::http::HeaderMap,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    pub fn request_id(&self) -> String {
        self.headers["x-request-id"].to_str().unwrap().to_string()
    }
}

pub fn config() -> HttpConfig {
    let mut c = HttpConfig::default();
    c.auth.jwt_secret = Some(JwtSecret::new(SecretString::from(JWT_SECRET.to_string())));
    c
}

impl App {
    pub async fn new() -> App {
        Self::with_config(config()).await
    }

    pub async fn with_config(config: HttpConfig) -> App {
        logs();
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open_path(dir.path().join("orca.db"), clock.clone())
                .await
                .unwrap(),
        );
        let orca = Orca::builder()
            .store(AuditContextLayer::wrap(store))
            .connector(Arc::new(
                LocalConnector::new(LocalConfig::default()).unwrap(),
            ))
            .keyring(KeyRing::ephemeral())
            .clock(clock)
            .build()
            .unwrap();
        orca.start().await.unwrap();
        let state = AppState::new(orca.clone(), config).unwrap();
        let client = TestClient::new(orca_http::router(state.clone()));
        App {
            client,
            state,
            orca,
            _dir: dir,
        }
    }

    /// Create a user with `PASSWORD`, role and grants (directly through the facade).
    pub async fn user(&self, name: &str, role: Role, scopes: Vec<Scope>) -> UserId {
        let boot = Principal::system("test");
        let hash =
            orca_http::auth::hash_password_async(name, SecretString::from(PASSWORD.to_string()))
                .await
                .unwrap();
        let u = self
            .orca
            .create_user(
                &boot,
                NewUser {
                    username: name.into(),
                    role,
                    password_hash: Some(hash),
                },
            )
            .await
            .unwrap();
        if !scopes.is_empty() {
            self.orca.set_grants(&boot, u.id, scopes).await.unwrap();
        }
        u.id
    }

    /// Log in; returns (access token, refresh token).
    pub async fn login(&self, name: &str) -> (String, String) {
        let a = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(serde_json::json!({"username": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(a.status, 200, "login {name}: {:?}", a.body);
        (
            a.body["access_token"].as_str().unwrap().to_string(),
            a.body["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    /// An admin user logged in; returns its access token.
    pub async fn admin(&self) -> String {
        self.user("admin", Role::Admin, vec![]).await;
        self.login("admin").await.0
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut rb = self.client.request(method, path.to_string());
        if let Some(t) = token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            rb = rb.body_json(&b);
        }
        self.finish(rb.send().await).await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut rb = self
            .client
            .request(method, path.to_string())
            .content_type(content_type)
            .body(body);
        if let Some(t) = token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        self.finish(rb.send().await).await
    }

    async fn finish(&self, r: poem::test::TestResponse) -> Answer {
        let resp = r.0;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.into_body().into_vec().await.unwrap();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            raw,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Every audit record, newest first (straight from the store).
    pub async fn audit(&self) -> Vec<orca_core::model::AuditRecord> {
        self.orca
            .store()
            .list_audit(
                &Default::default(),
                orca_core::model::Page {
                    offset: 0,
                    limit: 1000,
                },
            )
            .await
            .unwrap()
    }

    /// Audit records written for one request id.
    pub async fn audit_for(&self, request_id: &str) -> Vec<orca_core::model::AuditRecord> {
        self.audit()
            .await
            .into_iter()
            .filter(|r| r.details["request_id"] == request_id)
            .collect()
    }
}
