//! Start-up: connect, check that the schema is Orca's and not from a newer version, migrate.
//! Nothing is written before the checks pass.

use std::str::FromStr;

use orca_core::{Error, ErrorKind, Result};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};

use super::config::PostgresOptions;
use super::error::db;

/// The schema version this build writes (the version of its last migration).
pub const SCHEMA_VERSION: i64 = 2;

/// The oldest PostgreSQL server supported (`server_version_num`).
const MIN_SERVER_VERSION: i32 = 120000;

/// The embedded migrations.
pub(crate) fn migrator() -> Migrator {
    let mut m = sqlx::migrate!("./migrations/postgres");
    m.dangerous_set_table_name("orca_migrations");
    m
}

/// Connect options for `schema` (its `search_path`) from the URL.
pub(crate) fn connect_options(options: &PostgresOptions, schema: &str) -> Result<PgConnectOptions> {
    let base = PgConnectOptions::from_str(&options.url).map_err(|e| {
        Error::invalid(format!(
            "the database URL is not a valid PostgreSQL URL \
             (postgres://user:password@host:port/database): {e}"
        ))
    })?;
    Ok(base
        .options([("search_path", schema)])
        .application_name(&options.application_name()?))
}

/// A human description of where the options point (no password).
pub(crate) fn describe(o: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or(o.get_username())
    )
}

/// Open the pool, inspect the schema, create and migrate it if needed.
pub(crate) async fn open(
    options: &PostgresOptions,
    schema: &str,
) -> Result<(PgPool, PgConnectOptions)> {
    options.validate()?;
    let connect = connect_options(options, schema)?;
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.connect_timeout)
        .test_before_acquire(options.test_before_acquire)
        .connect_with(connect.clone())
        .await
        .map_err(|e| {
            let e: Error = db("connecting to PostgreSQL")(e);
            Error::new(
                if e.kind() == ErrorKind::AuthFailed {
                    ErrorKind::AuthFailed
                } else {
                    ErrorKind::ConnectionFailed
                },
                format!("{} (database {})", e.message(), describe(&connect)),
            )
        })?;
    match prepare(&pool, schema).await {
        Ok(()) => Ok((pool, connect)),
        Err(e) => {
            pool.close().await;
            Err(e)
        }
    }
}

async fn prepare(pool: &PgPool, schema: &str) -> Result<()> {
    let state = inspect(pool, schema).await?;
    if !state.schema_exists {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(pool)
        .await
        .map_err(db("creating the database schema"))?;
    }
    if state.version < SCHEMA_VERSION {
        migrate(pool).await?;
        // Another node may have raced us to a newer version in between: check again.
        inspect(pool, schema).await?;
    }
    Ok(())
}

/// What is in the schema.
#[derive(Debug)]
struct Inspection {
    schema_exists: bool,
    /// Orca schema version found (0: none yet).
    version: i64,
}

async fn inspect(pool: &PgPool, schema: &str) -> Result<Inspection> {
    let row = sqlx::query(
        "SELECT current_setting('server_version_num')::int AS server_version,
                current_database() AS database,
                EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema_exists,
                (SELECT min(c.relname::text) FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                    AND c.relname NOT IN ('orca_meta', 'orca_migrations')) AS foreign_table,
                to_regclass(format('%I.orca_meta', $1)) IS NOT NULL AS has_meta,
                to_regclass(format('%I.orca_migrations', $1)) IS NOT NULL AS has_migrations",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .map_err(db("inspecting the database"))?;
    let get_err = |e: sqlx::Error| db("inspecting the database")(e);
    let server_version: i32 = row.try_get("server_version").map_err(get_err)?;
    let database: String = row.try_get("database").map_err(get_err)?;
    let schema_exists: bool = row.try_get("schema_exists").map_err(get_err)?;
    let foreign_table: Option<String> = row.try_get("foreign_table").map_err(get_err)?;
    let has_meta: bool = row.try_get("has_meta").map_err(get_err)?;
    let has_migrations: bool = row.try_get("has_migrations").map_err(get_err)?;
    let incompatible = |msg: String| Error::new(ErrorKind::Incompatible, msg);

    if server_version < MIN_SERVER_VERSION {
        return Err(incompatible(format!(
            "PostgreSQL {} is too old: Orca needs PostgreSQL 12 or newer",
            server_version / 10000
        )));
    }
    let mut version = 0;
    if has_meta {
        let rows = sqlx::query("SELECT key, value FROM orca_meta")
            .fetch_all(pool)
            .await
            .map_err(db("reading the Orca marker"))?;
        let mut marker = None;
        for r in rows {
            let key: String = r.try_get("key").map_err(get_err)?;
            let value: String = r.try_get("value").map_err(get_err)?;
            match key.as_str() {
                "marker" => marker = Some(value),
                "schema_version" => {
                    version = value.parse().map_err(|_| {
                        incompatible(format!(
                            "schema '{schema}' of database '{database}' has an unreadable Orca \
                             schema version '{value}'"
                        ))
                    })?
                }
                _ => {}
            }
        }
        if marker.as_deref() != Some("orca") {
            return Err(incompatible(format!(
                "schema '{schema}' of database '{database}' has an orca_meta table without the \
                 Orca marker: it is not Orca's database; point Orca at an empty database or \
                 schema"
            )));
        }
    } else if let Some(table) = foreign_table {
        return Err(incompatible(format!(
            "schema '{schema}' of database '{database}' already holds tables that are not Orca's \
             (for example '{table}') and no Orca marker: point Orca at an empty database, or set \
             a dedicated schema (database.schema)"
        )));
    }
    if has_migrations {
        let newest: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM orca_migrations")
            .fetch_one(pool)
            .await
            .map_err(db("reading the applied migrations"))?;
        version = version.max(newest.unwrap_or(0));
    }
    if version > SCHEMA_VERSION {
        return Err(incompatible(format!(
            "schema '{schema}' of database '{database}' was written by a newer Orca (schema \
             version {version}); this Orca knows schema version {SCHEMA_VERSION} at most: \
             upgrade Orca on this node"
        )));
    }
    Ok(Inspection {
        schema_exists,
        version,
    })
}

/// Apply the embedded migrations through a dedicated one-connection pool (the migrator holds
/// a session lock, which must not stay behind on a pooled connection if it fails).
async fn migrate(pool: &PgPool) -> Result<()> {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .connect_with((*pool.connect_options()).clone())
        .await
        .map_err(db("connecting to migrate the schema"))?;
    let result = migrator().run(&own).await;
    own.close().await;
    result.map_err(|e| {
        Error::new(
            ErrorKind::Incompatible,
            format!("migrating the Orca schema failed: {e}"),
        )
    })
}

/// Drop `schema` and everything in it, closing the sessions of its store first
/// (used by ephemeral test stores). Runs on its own thread and runtime, so it also works from
/// `Drop`.
pub(crate) fn drop_schema_blocking(connect: PgConnectOptions, schema: String) {
    let run = move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::warn!(error = %e, "cannot drop ephemeral schema");
                return;
            }
        };
        rt.block_on(async move {
            let connect = connect.application_name("orca-drop-schema");
            let Ok(mut conn) = sqlx::PgConnection::connect_with(&connect).await else {
                tracing::warn!(%schema, "cannot connect to drop ephemeral schema");
                return;
            };
            let app = format!("orca/{schema}");
            let _ = sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE (application_name = $1 OR starts_with(application_name, $1 || '/'))
                    AND pid <> pg_backend_pid() AND datname = current_database()",
            )
            .bind(&app)
            .execute(&mut conn)
            .await;
            let _ = sqlx::query("SET lock_timeout = '10s'")
                .execute(&mut conn)
                .await;
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            )))
            .execute(&mut conn)
            .await
            {
                tracing::warn!(%schema, error = %e, "cannot drop ephemeral schema");
            }
            let _ = conn.close().await;
        });
    };
    match std::thread::Builder::new()
        .name("orca-drop-schema".into())
        .spawn(run)
    {
        Ok(h) => {
            let _ = h.join();
        }
        Err(e) => tracing::warn!(error = %e, "cannot drop ephemeral schema"),
    }
}
