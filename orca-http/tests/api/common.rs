//! The test harness: the HTTP app in-process over the SQLite store and the local connector.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orca_connectors::local::{LocalConfig, LocalConnector};
use orca_core::ids::UserId;
use orca_core::model::{NewUser, Principal, Role, Scope};
use orca_core::{Clock, ErrorKind, KeyRing, Orca, Store, SystemClock};
use orca_http::{AppState, HttpConfig, JwtSecret};
use orca_store::postgres::{PgEventBus, PostgresOptions, PostgresStore};
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

/// A client WebSocket.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Which store an [`App`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];
}

impl App {
    /// An app on `backend` with the engine running and the local connector; `None` (after
    /// saying so loudly) when PostgreSQL is unreachable, unless `ORCA_TEST_REQUIRE_ALL=1`.
    pub async fn on(backend: Backend, config: HttpConfig) -> Option<App> {
        match backend {
            Backend::Sqlite => Some(Self::with_config(config).await),
            Backend::Postgres => {
                let store = pg_store(&fresh_schema(), true).await?;
                Some(Self::over_postgres(store, config, true).await)
            }
        }
    }

    /// An app over a PostgreSQL store with its own `PgEventBus`; with `engine`, the engine runs
    /// with the local connector.
    pub async fn over_postgres(store: PostgresStore, config: HttpConfig, engine: bool) -> App {
        logs();
        let bus = PgEventBus::new(&store).await.expect("event bus");
        let store: Arc<dyn Store> = Arc::new(store);
        let mut b = Orca::builder()
            .store(store)
            .bus(Arc::new(bus))
            .keyring(KeyRing::ephemeral())
            .clock(Arc::new(SystemClock));
        if engine {
            b = b.connector(Arc::new(
                LocalConnector::new(LocalConfig::default()).unwrap(),
            ));
        }
        let orca = b.build().expect("orca");
        if engine {
            orca.start().await.unwrap();
        }
        let state = AppState::new(orca.clone(), config).expect("app state");
        App {
            client: TestClient::new(orca_http::router(state.clone())),
            state,
            orca,
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }

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
            .store(store)
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
            .raw_store()
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

// PostgreSQL for the tests that run there too.

pub fn url() -> String {
    std::env::var("ORCA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

pub fn require_all() -> bool {
    std::env::var("ORCA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// A fresh schema name in the form the PostgreSQL store tests sweep when a killed run left it.
pub fn fresh_schema() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "orca_test_{secs}_{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

/// `host:port` of a `postgres://[user[:password]@]host[:port][/db][?...]` URL.
pub fn server_address(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() {
        return None;
    }
    let has_port = match hostport.rfind(']') {
        Some(end) => hostport[end..].contains(':'),
        None => hostport.contains(':'),
    };
    Some(if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    })
}

/// Whether something listens at the server's address (checked once, quickly: a missing server
/// does not cost the connect timeout). An address that cannot be parsed is left to the
/// connection attempt.
pub fn reachable() -> Result<(), String> {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    UP.get_or_init(|| {
        let Some(addr) = server_address(&url()) else {
            return Ok(());
        };
        let addrs: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(&addr)
            .map_err(|e| format!("{addr}: {e}"))?
            .collect();
        if addrs
            .iter()
            .any(|a| std::net::TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok())
        {
            Ok(())
        } else {
            Err(format!("nothing listens on {addr}"))
        }
    })
    .clone()
}

/// Skip loudly, or fail under `ORCA_TEST_REQUIRE_ALL=1`.
pub fn unavailable(why: &str) {
    if require_all() {
        panic!(
            "PostgreSQL is required (ORCA_TEST_REQUIRE_ALL=1) but unreachable at \
             ORCA_TEST_POSTGRES_URL: {why}"
        );
    }
    eprintln!(
        "\n*** SKIPPED: PostgreSQL unreachable ({why}); set ORCA_TEST_POSTGRES_URL or start \
         PostgreSQL to run the multi-node HTTP tests ***\n"
    );
}

/// A store on `schema`; `owner` drops the schema when its last handle goes. `None` (after
/// saying so) when the server cannot be reached, unless `ORCA_TEST_REQUIRE_ALL=1`.
pub async fn pg_store(schema: &str, owner: bool) -> Option<PostgresStore> {
    if let Err(why) = reachable() {
        unavailable(&why);
        return None;
    }
    let mut o = PostgresOptions::new(url())
        .schema(schema)
        .max_connections(4);
    o.connect_timeout = Duration::from_secs(10);
    o.ephemeral = owner;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match PostgresStore::connect(o, clock).await {
        Ok(s) => Some(s),
        Err(e) if e.kind() == ErrorKind::ConnectionFailed => {
            unavailable(&e.to_string());
            None
        }
        Err(e) => panic!("opening the PostgreSQL store at ORCA_TEST_POSTGRES_URL: {e}"),
    }
}

// Requests from a chosen client address, and a real listener for WebSocket tests.

/// `req` as if it came over a connection from `peer`.
fn from_peer(req: poem::Request, peer: std::net::SocketAddr) -> poem::Request {
    let (parts, body) = req.into_parts();
    let mut b = poem::http::Request::builder()
        .method(parts.method)
        .uri(parts.uri)
        .version(parts.version);
    if let Some(h) = b.headers_mut() {
        *h = parts.headers;
    }
    let (mut http_parts, ()) = b.body(()).expect("request parts").into_parts();
    http_parts.extensions = parts.extensions;
    let parts = poem::RequestParts::from((
        http_parts,
        poem::web::LocalAddr::default(),
        poem::web::RemoteAddr(poem::Addr::SocketAddr(peer)),
        poem::http::uri::Scheme::HTTP,
    ));
    poem::Request::from_parts(parts, body)
}

impl App {
    /// [`App::call`] over a connection from `peer` (the client address the server sees).
    pub async fn call_from(
        &self,
        peer: std::net::IpAddr,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        use poem::{Endpoint, EndpointExt};
        let peer = std::net::SocketAddr::new(peer, 40000);
        let ep = orca_http::router(self.state.clone())
            .around(move |ep, req| async move { ep.call(from_peer(req, peer)).await })
            .boxed();
        let client = TestClient::new(ep);
        let mut rb = client.request(method, path.to_string());
        if let Some(t) = token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            rb = rb.body_json(&b);
        }
        self.finish(rb.send().await).await
    }

    /// Serve the app on a free loopback port (for WebSocket clients); returns the socket URL
    /// `ws://127.0.0.1:PORT/api/v1/ws`. The server runs until the test's runtime ends.
    pub async fn serve_ws(&self) -> String {
        use poem::listener::{Acceptor, Listener, TcpListener};
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind");
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .expect("socket address");
        let ep = orca_http::router(self.state.clone());
        tokio::spawn(async move { poem::Server::new_with_acceptor(acceptor).run(ep).await });
        format!("ws://{addr}/api/v1/ws")
    }

    /// A WebSocket at `url` (from [`App::serve_ws`]) opened with a ticket for `token`.
    pub async fn ws_connect(&self, url: &str, token: &str) -> Socket {
        let ticket = self.ws_ticket(token).await;
        tokio_tungstenite::connect_async(format!("{url}?ticket={ticket}"))
            .await
            .expect("the socket opens")
            .0
    }

    /// A one-time WebSocket ticket for `token`.
    pub async fn ws_ticket(&self, token: &str) -> String {
        let t = self
            .post("/api/v1/ws/ticket", token, serde_json::json!(null))
            .await;
        assert_eq!(t.status, 201, "{:?}", t.body);
        t.body["ticket"].as_str().unwrap().to_string()
    }
}
