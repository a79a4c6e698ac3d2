//! PgEventBus: events reach subscribers on every node, in order, output by reference; the
//! bus comes back after the server kills its LISTEN session.

use std::sync::Arc;
use std::time::Duration;

use orca_core::ids::{ExecutionId, JobId, SystemId, UserId};
use orca_core::model::{ExecutionStatus, JobStatus, OutputChunk, Stream};
use orca_core::{Event, EventBus, SystemClock};
use orca_store::postgres::PgEventBus;
use tokio::sync::broadcast;

use crate::support::{self, fresh_schema, store_in};

fn events(job_id: JobId, n: u64) -> Vec<Event> {
    let execution_id = ExecutionId::new();
    (0..n)
        .map(|i| match i % 4 {
            0 => Event::Execution {
                execution_id,
                job_id,
                system_id: SystemId::new(),
                status: ExecutionStatus::Running,
            },
            1 => Event::Output {
                execution_id,
                job_id,
                first_seq: i,
                last_seq: i + 1,
                chunks: vec![OutputChunk {
                    execution_id,
                    seq: i,
                    stream: Stream::Stdout,
                    data: vec![b'x'; 5000].into(),
                    at: chrono::Utc::now(),
                }],
            },
            2 => Event::Job {
                job_id,
                status: JobStatus::Running,
            },
            _ => Event::AuthChanged {
                user_id: (i % 8 == 3).then(UserId::new),
            },
        })
        .collect()
}

async fn recv_n(rx: &mut broadcast::Receiver<Arc<Event>>, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived", out.len()))
            .expect("recv");
        out.push((*e).clone());
    }
    out
}

fn by_reference(e: &Event) -> Event {
    match e {
        Event::Output {
            execution_id,
            job_id,
            first_seq,
            last_seq,
            ..
        } => Event::Output {
            execution_id: *execution_id,
            job_id: *job_id,
            first_seq: *first_seq,
            last_seq: *last_seq,
            chunks: vec![],
        },
        other => other.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_reach_every_node_in_order() {
    if !support::available() {
        return;
    }
    let clock = Arc::new(SystemClock);
    let schema = fresh_schema();
    let node_a = store_in(&schema, clock.clone(), true).await;
    let node_b = store_in(&schema, clock.clone(), false).await;
    let bus_a = PgEventBus::new(&node_a).await.expect("bus a");
    let bus_b = PgEventBus::new(&node_b).await.expect("bus b");
    let mut on_a = bus_a.subscribe();
    let mut on_b = bus_b.subscribe();

    let job = JobId::new();
    let sent = events(job, 300);
    for batch in sent.chunks(37) {
        bus_a.publish(batch.to_vec()).await.expect("publish");
    }
    // Node B follows node A's events live, in order, output by reference.
    let got_b = recv_n(&mut on_b, sent.len()).await;
    let want_b: Vec<Event> = sent.iter().map(by_reference).collect();
    assert_eq!(got_b, want_b);
    // Node A's own subscribers get them at once, chunks inline, and not twice.
    let got_a = recv_n(&mut on_a, sent.len()).await;
    assert_eq!(got_a, sent);

    // And the other way round.
    let back = events(job, 5);
    bus_b.publish(back.clone()).await.expect("publish");
    let got = recv_n(&mut on_a, back.len()).await;
    assert_eq!(got, back.iter().map(by_reference).collect::<Vec<_>>());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), on_a.recv())
            .await
            .is_err(),
        "no duplicates on node A"
    );
    drop((bus_b, node_b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bus_reconnects_after_its_session_is_killed() {
    if !support::available() {
        return;
    }
    let clock = Arc::new(SystemClock);
    let schema = fresh_schema();
    let node_a = store_in(&schema, clock.clone(), true).await;
    let node_b = store_in(&schema, clock.clone(), false).await;
    let bus_a = PgEventBus::new(&node_a).await.expect("bus a");
    let bus_b = PgEventBus::new(&node_b).await.expect("bus b");
    let mut on_b = bus_b.subscribe();

    let killed = support::terminate_sessions(&schema).await;
    assert!(killed >= 2, "LISTEN sessions killed ({killed})");

    // Publish until node B hears again (its listener reconnects with a short backoff).
    let job = JobId::new();
    let ev = Event::Job {
        job_id: job,
        status: JobStatus::Completed,
    };
    let mut heard = false;
    let mut told_of_the_gap = false;
    'publish: for _ in 0..100 {
        bus_a
            .publish(vec![ev.clone()])
            .await
            .expect("publish after the kill");
        while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), on_b.recv()).await {
            if *e == (Event::AuthChanged { user_id: None }) {
                told_of_the_gap = true;
                continue;
            }
            assert_eq!(*e, ev);
            heard = true;
            break 'publish;
        }
    }
    assert!(
        heard,
        "node B hears node A again after its LISTEN session was killed"
    );
    // Notifications sent while it was away are lost: B's subscribers were told that users,
    // grants or tokens may have changed, before anything it heard after the reconnection.
    assert!(
        told_of_the_gap,
        "node B's subscribers get an AuthChanged without a user after the reconnection"
    );
    drop((bus_b, node_b));
}
