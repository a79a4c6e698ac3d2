//! Live updates over WebSocket: ticket authentication, replay-then-follow without gaps,
//! coalescing (at most 20 frames per second), resuming from an offset.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use orca_core::model::Principal;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{App, Socket};

/// Read frames until the subscription ends; returns (events, frame arrival times).
async fn collect(ws: &mut Socket) -> (Vec<Value>, Vec<Instant>) {
    let mut events = Vec::new();
    let mut times = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let msg = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .expect("the subscription ended in time");
        let Some(Ok(Message::Text(t))) = msg else {
            panic!("unexpected {msg:?}")
        };
        times.push(Instant::now());
        let frame: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(frame["type"], "events");
        for e in frame["events"].as_array().unwrap() {
            assert_ne!(e["type"], "error", "{e}");
            events.push(e.clone());
            if e["type"] == "end" {
                return (events, times);
            }
        }
    }
}

fn output(events: &[Value]) -> (Vec<u64>, String) {
    let mut seqs = Vec::new();
    let mut text = String::new();
    for e in events.iter().filter(|e| e["type"] == "output") {
        seqs.push(e["seq"].as_u64().unwrap());
        assert_eq!(e["encoding"], "utf8");
        text.push_str(e["data"].as_str().unwrap());
    }
    (seqs, text)
}

#[tokio::test]
async fn replay_then_follow_without_gaps() {
    let app = App::new().await;
    let admin = app.admin().await;
    app.orca
        .ensure_local_system(&Principal::system("t"))
        .await
        .unwrap();
    let url = app.serve_ws().await;

    let n = 400;
    let cmd = format!(
        "i=1; while [ $i -le {n} ]; do echo line-$i; i=$((i+1)); if [ $((i % 20)) -eq 0 ]; then sleep 0.05; fi; done"
    );
    let job = app
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"command": cmd, "targets": {"systems": ["local"]}}),
        )
        .await;
    assert_eq!(job.status, 201, "{:?}", job.body);
    let job_id = job.body["job"]["id"].as_str().unwrap().to_string();
    let exec_id = job.body["executions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Let some output be stored first, so the subscription replays and then follows.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{url}?ticket={}", app.ws_ticket(&admin).await))
            .await
            .unwrap();
    ws.send(Message::Text(
        json!({"type": "subscribe", "job_id": job_id})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let (events, times) = collect(&mut ws).await;
    let (seqs, text) = output(&events);
    let expected: String = (1..=n).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "seqs from 0 without gaps or duplicates"
    );
    assert_eq!(text, expected);
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "execution" && e["status"] == "completed")
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "job" && e["status"] == "completed"),
        "{events:?}"
    );
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(40),
            "frames are coalesced to at most 20/s"
        );
    }

    // Resume from an offset: a new ticket, an execution subscription from seq k.
    let k = seqs.len() as u64 / 2;
    let (mut ws2, _) =
        tokio_tungstenite::connect_async(format!("{url}?ticket={}", app.ws_ticket(&admin).await))
            .await
            .unwrap();
    ws2.send(Message::Text(
        json!({"type": "subscribe", "execution_id": exec_id, "from_seq": k, "id": "tail"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let (events2, _) = collect(&mut ws2).await;
    let (seqs2, _) = output(&events2);
    assert_eq!(seqs2.first().copied(), Some(k));
    assert_eq!(seqs2, (k..seqs.len() as u64).collect::<Vec<_>>());
    assert!(events2.iter().all(|e| e["sub"] == "tail"));
}

#[tokio::test]
async fn tickets_are_one_time_and_required() {
    let app = App::new().await;
    let admin = app.admin().await;
    let url = app.serve_ws().await;
    let t = app.ws_ticket(&admin).await;
    let first = tokio_tungstenite::connect_async(format!("{url}?ticket={t}")).await;
    assert!(first.is_ok());
    for bad in [
        format!("{url}?ticket={t}"),
        format!("{url}?ticket=orca_wt_bogus"),
        url.clone(),
    ] {
        match tokio_tungstenite::connect_async(bad.clone()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 401, "{bad}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // Subscriptions follow the policy: an unknown job is an error event, not a crash.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{url}?ticket={}", app.ws_ticket(&admin).await))
            .await
            .unwrap();
    ws.send(Message::Text(
        json!({"type": "subscribe", "job_id": uuid::Uuid::nil()})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!()
    };
    let frame: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(frame["events"][0]["type"], "error");
    assert_eq!(frame["events"][0]["code"], "not_found");
}
