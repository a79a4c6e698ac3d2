//! The program of the README's "Using the library" section, built in CI so that the snippet
//! keeps compiling. Keep the two identical.
//!
//! ```text
//! cargo run --example readme     # creates ./orca-data/
//! ```

use orca::prelude::*;

#[tokio::main]
#[rustfmt::skip] // laid out as in the README
async fn main() -> orca::Result<()> {
    let orca = Orca::open("sqlite://orca-data/orca.db").await?; // store, keys, engine
    let me = Principal::system("my-script");
    orca.ensure_local_system(&me).await?;
    let job = orca.submit(&me, JobSpec {
        name: None,
        command: "uptime".into(),
        targets: Targets { systems: vec!["local".into()], tags: vec![] },
        options: JobOptions::default(),
    }).await?;
    let job = orca.wait_job(&me, job.job.id).await?; // or watch_job: replay, then live
    println!("{}", job.status.as_str());
    orca.shutdown(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
