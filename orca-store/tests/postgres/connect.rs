//! Start-up: bad URLs, foreign and newer schemas are refused with nothing written; the store
//! survives the server killing its sessions.

use std::sync::Arc;
use std::time::Duration;

use orca_core::model::JobOptions;
use orca_core::store::prelude::*;
use orca_core::{ErrorKind, ManualClock, SystemClock};
use orca_store::postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};

use crate::support::{self, SchemaGuard, admin, fresh_schema, options, store_in};

async fn table_names(schema: &str) -> Vec<String> {
    let mut c = admin().await;
    sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
    )
    .bind(schema)
    .fetch_all(&mut c)
    .await
    .expect("list tables")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_fail_clearly_without_leaking_the_password() {
    if !support::available() {
        return;
    }
    let clock = Arc::new(SystemClock);
    let connect = |url: &str| {
        let mut o = PostgresOptions::new(url);
        o.connect_timeout = Duration::from_secs(3);
        PostgresStore::connect(o, clock.clone())
    };
    let e = connect("not a url").await.expect_err("malformed");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    let e = connect("postgres://orca:hunter2@127.0.0.1:1/orca")
        .await
        .expect_err("nothing listens on port 1");
    assert_eq!(e.kind(), ErrorKind::ConnectionFailed, "{e}");
    assert!(e.message().contains("127.0.0.1:1"), "{e}");
    assert!(
        !e.to_string().contains("hunter2"),
        "the password leaked: {e}"
    );

    let missing_db: sqlx::postgres::PgConnectOptions = support::url().parse().expect("test URL");
    let url = format!(
        "postgres://{}@{}:{}/orca_no_such_database",
        missing_db.get_username(),
        missing_db.get_host(),
        missing_db.get_port()
    );
    let e = connect(&url).await.expect_err("missing database");
    assert_eq!(e.kind(), ErrorKind::ConnectionFailed, "{e}");
    assert!(e.message().contains("does not exist"), "{e}");

    let mut o = PostgresOptions::new(support::url()).schema("Bad-Name");
    o.connect_timeout = Duration::from_secs(3);
    let e = PostgresStore::connect(o, clock.clone())
        .await
        .expect_err("schema name");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_schema_is_refused_and_left_alone() {
    if !support::available() {
        return;
    }
    let schema = fresh_schema();
    let _guard = SchemaGuard(schema.clone());
    let mut c = admin().await;
    for sql in [
        format!("CREATE SCHEMA \"{schema}\""),
        format!("CREATE TABLE \"{schema}\".customers (id int PRIMARY KEY, name text)"),
        format!("INSERT INTO \"{schema}\".customers VALUES (1, 'acme')"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await
            .expect("set up a foreign schema");
    }
    let e = PostgresStore::connect(options(&schema), Arc::new(SystemClock))
        .await
        .expect_err("not Orca's");
    assert_eq!(e.kind(), ErrorKind::Incompatible, "{e}");
    assert!(
        e.message().contains("customers"),
        "names a foreign table: {e}"
    );
    assert_eq!(
        table_names(&schema).await,
        vec!["customers".to_string()],
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_with_nothing_written() {
    if !support::available() {
        return;
    }
    let clock = Arc::new(ManualClock::starting_now());
    let schema = fresh_schema();
    let first = store_in(&schema, clock.clone(), true).await;
    let s = support::system("kept", support::now(&*clock));
    first
        .create_system(&s, &support::audit(support::now(&*clock), "system"))
        .await
        .expect("create");

    // Reconnecting to an up-to-date schema is a no-op.
    let again = store_in(&schema, clock.clone(), false).await;
    assert_eq!(again.get_system(s.id).await.expect("get"), s);
    drop(again);

    let snapshot = || async {
        let mut c = admin().await;
        let q = format!(
            "SELECT (SELECT count(*) FROM \"{schema}\".orca_migrations),
                    (SELECT count(*) FROM \"{schema}\".systems),
                    (SELECT string_agg(key || '=' || value, ',' ORDER BY key)
                       FROM \"{schema}\".orca_meta)"
        );
        sqlx::query_as::<_, (i64, i64, String)>(sqlx::AssertSqlSafe(q))
            .fetch_one(&mut c)
            .await
            .expect("snapshot")
    };
    let mut c = admin().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{schema}\".orca_meta SET value = '{}' WHERE key = 'schema_version'",
        SCHEMA_VERSION + 1
    )))
    .execute(&mut c)
    .await
    .expect("pretend a newer Orca migrated");
    let before = snapshot().await;
    let e = PostgresStore::connect(options(&schema), clock.clone())
        .await
        .expect_err("newer schema");
    assert_eq!(e.kind(), ErrorKind::Incompatible, "{e}");
    assert!(e.message().contains("newer"), "{e}");
    assert_eq!(snapshot().await, before, "nothing written");

    // A newer migration recorded without the marker bump is refused too.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{schema}\".orca_meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version';
         INSERT INTO \"{schema}\".orca_migrations (version, description, success, checksum,
                execution_time) VALUES ({}, 'future', true, '\\x00', 0)",
        SCHEMA_VERSION + 1
    )))
    .execute(&mut c)
    .await
    .expect("pretend a newer migration");
    let e = PostgresStore::connect(options(&schema), clock.clone())
        .await
        .expect_err("newer migration");
    assert_eq!(e.kind(), ErrorKind::Incompatible, "{e}");
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_when_the_server_kills_its_sessions() {
    if !support::available() {
        return;
    }
    let clock = Arc::new(ManualClock::starting_now());
    let schema = fresh_schema();
    let store = store_in(&schema, clock.clone(), true).await;
    let at = support::now(&*clock);
    let systems = support::systems(&store, "victim", 3, at).await;
    let mut waker = store.work_waker().await.expect("waker");
    support::job_on(&store, &systems[..1], JobOptions::default(), at).await;
    assert!(
        waker.notified_within(Duration::from_secs(5)).await,
        "woken by new work"
    );

    let killed = support::terminate_sessions(&schema).await;
    assert!(
        killed >= 2,
        "pool and LISTEN sessions were killed ({killed})"
    );

    // Reads and writes work again without any intervention.
    let got = store
        .get_system(systems[0].id)
        .await
        .expect("read after termination");
    assert_eq!(got, systems[0]);
    // The LISTEN connection comes back by itself (and wakes waiters once when it does).
    assert!(
        waker.notified_within(Duration::from_secs(15)).await,
        "the LISTEN connection reconnects"
    );
    support::job_on(&store, &systems[1..2], JobOptions::default(), at).await;
    assert!(
        waker.notified_within(Duration::from_secs(5)).await,
        "new work wakes waiters after the reconnect"
    );
    let claims = store
        .claim(&orca_core::ClaimRequest {
            worker: "w".into(),
            limit: 10,
            lease_for: Duration::from_secs(30),
            per_system: None,
        })
        .await
        .expect("claim after termination");
    assert_eq!(claims.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_store_drops_its_schema() {
    if !support::available() {
        return;
    }
    let schema = fresh_schema();
    let exists = |schema: String| async move {
        let mut c = admin().await;
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
        )
        .bind(schema)
        .fetch_one(&mut c)
        .await
        .expect("query")
    };
    let owner = store_in(&schema, Arc::new(SystemClock), true).await;
    let _waker = owner.work_waker().await.expect("waker");
    let mut other = options(&schema);
    other.node_name = Some("node-1".into());
    let node = PostgresStore::connect(other, Arc::new(SystemClock))
        .await
        .expect("a named node");
    let _bus = orca_store::postgres::PgEventBus::new(&node)
        .await
        .expect("bus");
    assert!(exists(schema.clone()).await);
    // The owner goes first, while the other node still holds sessions.
    drop(owner);
    assert!(
        !exists(schema.clone()).await,
        "the schema is dropped with its owner"
    );
}
