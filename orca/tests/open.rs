//! Opening an Orca from a location: SQLite by path or URL, PostgreSQL (skipped loudly when
//! unreachable, unless `ORCA_TEST_REQUIRE_ALL=1`), bad locations, the key-file rule, and a
//! local job through an opened Orca.

use std::time::Duration;

#[cfg(feature = "ssh")]
use orca::model::{Credential, NewSystem, SystemType};
use orca::prelude::*;

fn job(command: &str) -> JobSpec {
    JobSpec {
        name: None,
        command: command.into(),
        targets: Targets {
            systems: vec!["local".into()],
            tags: vec![],
        },
        options: JobOptions::default(),
    }
}

/// Run `echo` on the `local` system of `orca` and check its output.
async fn runs_a_local_job(orca: &Orca) {
    let me = Principal::system("orca-test");
    orca.ensure_local_system(&me).await.unwrap();
    let submitted = orca.submit(&me, job("echo opened-ok")).await.unwrap();
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        orca.wait_job(&me, submitted.job.id),
    )
    .await
    .expect("the job finishes")
    .unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    let execs = orca
        .job_executions(&me, done.id, Default::default())
        .await
        .unwrap();
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].exit_code, Some(0));
}

/// A system with a password, so the database holds an encrypted credential (an SSH system:
/// the facade refuses a system no connector of this build runs).
#[cfg(feature = "ssh")]
async fn add_secret(orca: &Orca) {
    let me = Principal::system("orca-test");
    orca.add_system(
        &me,
        NewSystem {
            name: "with-secret".into(),
            system_type: Some(SystemType::Linux),
            username: "deploy".into(),
            credential: Credential::Password(secrecy::SecretString::from("hunter2")),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_plain_path_opens_sqlite_and_runs_a_local_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orca.db");
    let orca = orca::open(db.to_str().unwrap()).await.unwrap();
    runs_a_local_job(&orca).await;
    orca.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(db.exists());
    assert!(
        dir.path().join("keys.json").exists(),
        "the key file goes beside the database"
    );
}

#[tokio::test]
async fn a_sqlite_url_opens_through_the_prelude() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub").join("orca.db");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let orca = Orca::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    runs_a_local_job(&orca).await;
    orca.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(db.exists());
}

#[tokio::test]
async fn a_directory_means_its_orca_db() {
    let dir = tempfile::tempdir().unwrap();
    let orca = Orca::open_with(OpenOptions::new(dir.path().to_str().unwrap()))
        .await
        .unwrap();
    orca.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(dir.path().join("orca.db").exists());
}

#[tokio::test]
async fn a_bad_location_is_a_clear_error() {
    for (location, says) in [
        ("mysql://db/orca", "unsupported database URL scheme 'mysql'"),
        ("   ", "the database location is empty"),
        ("sqlite://", "names no file"),
        ("sqlite:///tmp/x.db?mode=rwc", "query parameters"),
    ] {
        let e = orca::open(location).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{location}: {e}");
        assert!(e.message().contains(says), "{location}: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let e = OpenOptions::new(dir.path().join("orca.db").to_str().unwrap())
        .schema("s1")
        .open()
        .await
        .unwrap_err();
    assert!(e.message().contains("PostgreSQL only"), "{e}");
    // A directory that cannot hold the database: the message names the location.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let inside = file.join("orca.db");
    let e = orca::open(inside.to_str().unwrap()).await.unwrap_err();
    assert!(
        e.message().contains("cannot open the database sqlite://"),
        "{e}"
    );
}

#[cfg(feature = "ssh")]
#[tokio::test]
async fn the_key_file_rule() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orca.db");
    let at = db.to_str().unwrap();
    let engine = orca::open(at).await.unwrap();
    add_secret(&engine).await;

    // A client beside the running engine reads the engine's key file...
    let client = OpenOptions::new(at).engine(false).open().await.unwrap();
    let me = Principal::system("orca-test");
    assert!(
        client
            .list_systems(&me, &Default::default(), Default::default())
            .await
            .is_ok()
    );

    // ...and never makes a key file of its own.
    let missing = dir.path().join("missing.json");
    let e = OpenOptions::new(at)
        .engine(false)
        .key_file(&missing)
        .key_file_hint("keys=")
        .open()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("restore it from your backup"), "{e}");
    assert!(e.message().contains("keys="), "{e}");
    assert!(!missing.exists());

    // Another Orca's keys do not decrypt this database's credentials.
    let other = tempfile::tempdir().unwrap();
    let foreign = other.path().join("keys.json");
    orca::keyfile::load_or_create(&foreign).unwrap();
    let e = OpenOptions::new(at)
        .engine(false)
        .key_file(&foreign)
        .open()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Crypto, "{e}");
    assert!(e.message().contains("does not decrypt"), "{e}");
    engine.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_client_of_an_empty_database_needs_the_engines_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orca.db");
    let e = OpenOptions::new(db.to_str().unwrap())
        .engine(false)
        .open()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("does not exist"), "{e}");
    assert!(!dir.path().join("keys.json").exists());
}

#[tokio::test]
async fn a_given_key_ring_needs_no_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orca.db");
    let orca = OpenOptions::new(db.to_str().unwrap())
        .keyring(KeyRing::ephemeral())
        .open()
        .await
        .unwrap();
    runs_a_local_job(&orca).await;
    orca.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(!dir.path().join("keys.json").exists());
}

fn require_all() -> bool {
    std::env::var("ORCA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Skip loudly, or fail under `ORCA_TEST_REQUIRE_ALL=1`.
fn skip(why: &str) {
    assert!(
        !require_all(),
        "PostgreSQL is required (ORCA_TEST_REQUIRE_ALL=1): {why}"
    );
    eprintln!("\n*** SKIPPED: {why} ***\n");
}

fn postgres_url() -> String {
    std::env::var("ORCA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh schema, named as the PostgreSQL store tests sweep when a killed run left one.
fn fresh_schema() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("orca_test_{secs}_{nanos:09}_{}", std::process::id())
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_postgres_url_opens_postgres_in_a_fresh_schema() {
    use orca::stores::postgres::{PostgresOptions, PostgresStore};
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    let url = postgres_url();
    let opened = OpenOptions::new(&url)
        .schema(&schema)
        .key_file(dir.path().join("keys.json"))
        .connect_timeout(Duration::from_secs(5))
        .open()
        .await;
    let orca = match opened {
        Ok(o) => o,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionFailed | ErrorKind::Timeout | ErrorKind::Unauthenticated
            ) =>
        {
            return skip(&format!("PostgreSQL unreachable at {url}: {e}"));
        }
        Err(e) => panic!("{e}"),
    };
    runs_a_local_job(&orca).await;
    #[cfg(feature = "ssh")]
    add_secret(&orca).await;
    // A client on another node: same schema, the engine's key file.
    let client = OpenOptions::new(&url)
        .schema(&schema)
        .key_file(dir.path().join("keys.json"))
        .engine(false)
        .open()
        .await
        .unwrap();
    let me = Principal::system("orca-test");
    let systems = client
        .list_systems(&me, &Default::default(), Default::default())
        .await
        .unwrap();
    assert!(systems.iter().any(|s| s.name == "local"));
    orca.shutdown(Duration::from_secs(5)).await.unwrap();
    drop((orca, client));
    // Leave nothing behind: an ephemeral store on the schema drops it.
    let mut o = PostgresOptions::new(&url).schema(&schema);
    o.ephemeral = true;
    let store = PostgresStore::connect(o, std::sync::Arc::new(orca::SystemClock))
        .await
        .unwrap();
    drop(store);
}

#[cfg(not(feature = "postgres"))]
#[tokio::test]
async fn a_postgres_url_needs_the_postgres_feature() {
    let e = orca::open(&postgres_url()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains("`postgres` feature"), "{e}");
    let _ = fresh_schema;
    skip(
        "PostgreSQL test: built without the `postgres` feature (cargo test -p orca --all-features)",
    );
}
