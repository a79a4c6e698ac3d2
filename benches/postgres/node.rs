//! One engine process: a `PostgresStore`, a `PgEventBus`, the no-op scripted connector and the
//! store's NOTIFY waker, like an `orca worker`. It prints `ready synchronous_commit=<value>` on
//! stdout once it claims work, and runs until its stdin closes.

use std::sync::Arc;
use std::time::Duration;

use clap::Args as ClapArgs;
use orca_core::scripted::ScriptedConnector;
use orca_core::{Clock, Executor, KeyRing, Orca, SystemClock};
use orca_store::postgres::{PgEventBus, PostgresOptions, PostgresStore};
use tokio::io::AsyncReadExt;

use crate::{Common, Res};

#[derive(Debug, Clone, ClapArgs)]
pub struct NodeArgs {
    #[command(flatten)]
    pub common: Common,
    /// The scratch schema.
    #[arg(long)]
    pub schema: String,
    /// The node's name.
    #[arg(long)]
    pub name: String,
}

pub async fn run(a: NodeArgs) -> Res<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut o = PostgresOptions::new(a.common.url()?)
        .schema(&a.schema)
        .max_connections(a.common.pool);
    o.node_name = Some(a.name.clone());
    let store = PostgresStore::connect(o, clock.clone()).await?;
    let sc: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(store.pool())
        .await?;
    let bus = PgEventBus::new(&store).await?;
    let orca = Orca::builder()
        .store(Arc::new(store.clone()))
        .bus(Arc::new(bus))
        .connector(Arc::new(ScriptedConnector::new()))
        .keyring(KeyRing::ephemeral())
        .clock(clock)
        .engine_config(a.common.engine(&a.name))
        .build()?;
    let mut waker = store.work_waker().await?;
    orca.start().await?;
    let engine = orca.engine().clone();
    tokio::spawn(async move {
        while waker.notified().await {
            engine.wake();
        }
    });
    println!("ready synchronous_commit={sc}");
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while stdin.read(&mut buf).await.unwrap_or(0) > 0 {}
    orca.shutdown(Duration::from_secs(10)).await?;
    store.close().await;
    Ok(())
}
