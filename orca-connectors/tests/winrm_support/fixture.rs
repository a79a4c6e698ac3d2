//! A conformance fixture: a WinRM test server and a connector whose target points at it.

use std::collections::BTreeMap;
use std::sync::Arc;

use orca_connectors::winrm::WinRmConnector;
use orca_connectors::winrm::testserver::{TestServer, TestServerConfig};
use orca_core::ids::SystemId;
use orca_core::model::{Credential, Health, HostKeyPolicy, System, SystemType};
use orca_core::testkit::connector::ConnectorFixture;
use orca_core::{Connector, Target};
use secrecy::SecretString;

/// A server, a connector, and the options of the target.
pub struct Fx {
    pub server: TestServer,
    pub connector: Arc<WinRmConnector>,
    pub options: BTreeMap<String, String>,
    pub id: SystemId,
}

pub fn system(
    id: SystemId,
    server: &TestServer,
    user: &str,
    options: &BTreeMap<String, String>,
) -> System {
    System {
        id,
        name: format!("win-{}", server.addr().port()),
        hostname: "127.0.0.1".into(),
        port: server.addr().port(),
        system_type: SystemType::Windows,
        username: user.into(),
        credential: None,
        tags: vec![],
        active: true,
        health: Health::default(),
        host_key_policy: HostKeyPolicy::Strict,
        options: options.clone(),
        created_at: Default::default(),
        updated_at: Default::default(),
    }
}

pub fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Fx {
    /// NTLM with message sealing over plain HTTP (the Windows default).
    pub async fn ntlm() -> Fx {
        Self::with(
            TestServerConfig::default(),
            opts(&[("operation_timeout_secs", "2")]),
        )
        .await
    }

    /// Basic over HTTPS, the server certificate checked against the test CA.
    pub async fn https_basic() -> Fx {
        let cfg = TestServerConfig {
            https: true,
            allow_basic: true,
            ..TestServerConfig::default()
        };
        let server = TestServer::start(cfg)
            .await
            .expect("start the WinRM test server");
        let ca = write_ca(&server);
        let options = opts(&[
            ("transport", "basic"),
            ("scheme", "https"),
            ("ca_file", &ca),
            ("operation_timeout_secs", "2"),
        ]);
        Fx {
            server,
            connector: Arc::new(WinRmConnector::new()),
            options,
            id: SystemId::new(),
        }
    }

    /// A server with `cfg` and a target with `options`.
    pub async fn with(cfg: TestServerConfig, options: BTreeMap<String, String>) -> Fx {
        let server = TestServer::start(cfg)
            .await
            .expect("start the WinRM test server");
        Fx {
            server,
            connector: Arc::new(WinRmConnector::new()),
            options,
            id: SystemId::new(),
        }
    }

    /// The target with a given password.
    pub fn target_with_password(&self, password: &str) -> Target {
        let cfg = &self.server.state().config;
        Target {
            system: system(self.id, &self.server, &cfg.user, &self.options),
            credential: Credential::Password(SecretString::from(password.to_string())),
            execution_id: None,
            host_keys: None,
        }
    }
}

/// Write the server's CA certificate to a file and return its path.
pub fn write_ca(server: &TestServer) -> String {
    let tls = server.tls().expect("an HTTPS server");
    let path = std::env::temp_dir().join(format!(
        "orca-winrm-ca-{}-{}.pem",
        std::process::id(),
        server.addr().port()
    ));
    std::fs::write(&path, &tls.ca_pem).expect("write the CA file");
    path.to_string_lossy().into_owned()
}

impl ConnectorFixture for Fx {
    fn connector(&self) -> Arc<dyn Connector> {
        self.connector.clone()
    }
    fn target(&self) -> Target {
        let pw = self.server.state().config.password.clone();
        self.target_with_password(&pw)
    }
    fn bad_target(&self) -> Target {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut t = self.target();
        t.system.port = port;
        t
    }
    fn cmd_exit(&self, code: i32) -> String {
        format!("exit /b {code}")
    }
    fn cmd_echo_both(&self) -> String {
        "echo out1& >&2 echo err1& echo out2& >&2 echo err2& echo out3".to_string()
    }
    fn cmd_print_and_exit(&self, text: &str, code: i32) -> String {
        format!("echo {text}& exit /b {code}")
    }
    fn cmd_sleep_forever(&self) -> String {
        "echo ready& ping -n 601 127.0.0.1 >nul& exit /b 0".to_string()
    }
    fn cmd_large_output(&self, lines: u64) -> String {
        format!("for /l %i in (1,1,{lines}) do @echo %i")
    }
}
