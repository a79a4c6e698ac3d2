//! Live updates over WebSocket: `GET /api/v1/ws?ticket=...`.
//!
//! The socket authenticates with a one-time ticket from `POST /api/v1/ws/ticket` (no bearer
//! token in URLs). The client subscribes to jobs or executions; each subscription replays what
//! is stored and then follows live ([`orca_core::Orca::watch`] / [`orca_core::Orca::watch_job`],
//! which read back from the store whatever the bus missed, so there are no gaps). Events are
//! coalesced into at most 20 frames per second.
//!
//! Client messages (JSON text):
//! - `{"type":"subscribe","execution_id":"…","from_seq":0,"id":"optional"}`
//! - `{"type":"subscribe","job_id":"…","offsets":{"<execution id>":<next seq>},"id":"optional"}`
//! - `{"type":"unsubscribe","id":"…"}`
//!
//! Server frames: `{"type":"events","events":[…]}`; each event has `sub` (the subscription id)
//! and a `type`: `output` (`execution_id`, `seq`, `stream`, `at`, `data`, `encoding`),
//! `execution` (`execution_id`, `system_id`, `status`), `job` (`job_id`, `status`), `end`
//! (the subscription finished after the terminal state) or `error` (`code`, `message`).

use std::collections::HashMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use orca_core::ids::{ExecutionId, JobId};
use orca_core::{WatchEvent, WatchStream};
use poem::web::websocket::{Message, WebSocket, WebSocketStream};
use poem::{FromRequest, IntoResponse, Request, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::api::executions::ChunkDto;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Frames at most this often (20 per second).
const FRAME_INTERVAL: Duration = Duration::from_millis(50);
/// Events per frame at most.
const MAX_EVENTS_PER_FRAME: usize = 2000;
/// Subscriptions per socket at most.
const MAX_SUBSCRIPTIONS: usize = 32;

#[derive(Debug, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMsg {
    Subscribe {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        job_id: Option<uuid::Uuid>,
        #[serde(default)]
        execution_id: Option<uuid::Uuid>,
        #[serde(default)]
        from_seq: Option<u64>,
        #[serde(default)]
        offsets: HashMap<uuid::Uuid, u64>,
    },
    Unsubscribe {
        id: String,
    },
}

/// The WebSocket endpoint.
pub(crate) async fn endpoint(state: AppState, req: Request) -> poem::Result<Response> {
    if !state.config.live_updates {
        return Err(ApiError::new(
            poem::http::StatusCode::NOT_FOUND,
            "not_found",
            "live updates are switched off on this server",
        )
        .into());
    }
    let ticket = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ticket=")))
        .unwrap_or("")
        .to_string();
    if ticket.is_empty() {
        return Err(ApiError::unauthenticated(
            "open the socket with ?ticket=… from POST /api/v1/ws/ticket",
        )
        .into());
    }
    let ws = WebSocket::from_request_without_body(&req).await?;
    let caller = state.redeem_ws_ticket(&ticket).await?;
    Ok(ws
        .on_upgrade(move |socket| serve(state, caller, socket))
        .into_response())
}

fn event_json(sub: &str, e: &WatchEvent) -> Value {
    match e {
        WatchEvent::Output(c) => {
            let mut v = serde_json::to_value(ChunkDto::from(c)).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("type".into(), "output".into());
                m.insert("sub".into(), sub.into());
                m.insert("execution_id".into(), c.execution_id.to_string().into());
            }
            v
        }
        WatchEvent::Execution {
            execution_id,
            system_id,
            status,
        } => json!({
            "sub": sub, "type": "execution", "execution_id": execution_id, "system_id": system_id, "status": status.as_str()
        }),
        WatchEvent::Job { job_id, status } => json!({
            "sub": sub, "type": "job", "job_id": job_id, "status": status.as_str()
        }),
    }
}

/// Forward one watch stream into the socket's event channel, skipping output already seen.
async fn forward(
    sub: String,
    mut stream: WatchStream,
    from: HashMap<ExecutionId, u64>,
    tx: mpsc::Sender<Value>,
) {
    while let Some(item) = stream.next().await {
        let v = match item {
            Ok(WatchEvent::Output(c)) if from.get(&c.execution_id).is_some_and(|n| c.seq < *n) => {
                continue;
            }
            Ok(e) => event_json(&sub, &e),
            Err(e) => {
                let api = ApiError::from(e);
                let b = api.body();
                let _ = tx
                    .send(
                        json!({"sub": sub, "type": "error", "code": b.code, "message": b.message}),
                    )
                    .await;
                return;
            }
        };
        if tx.send(v).await.is_err() {
            return;
        }
    }
    let _ = tx.send(json!({"sub": sub, "type": "end"})).await;
}

async fn subscribe(
    state: &AppState,
    caller: &Caller,
    msg: ClientMsg,
    tx: &mpsc::Sender<Value>,
) -> Result<(String, AbortHandle), Value> {
    let ClientMsg::Subscribe {
        id,
        job_id,
        execution_id,
        from_seq,
        offsets,
    } = msg
    else {
        return Err(
            json!({"type": "error", "code": "invalid_input", "message": "not a subscribe message"}),
        );
    };
    let p = &caller.principal;
    let (sub, stream, from) = match (job_id, execution_id) {
        (Some(j), None) => {
            let sub = id.unwrap_or_else(|| j.to_string());
            let from = offsets
                .into_iter()
                .map(|(k, v)| (ExecutionId(k), v))
                .collect();
            (
                sub.clone(),
                state
                    .orca
                    .watch_job(p, JobId(j))
                    .await
                    .map_err(|e| err(&sub, e))?,
                from,
            )
        }
        (None, Some(x)) => {
            let sub = id.unwrap_or_else(|| x.to_string());
            let from = HashMap::from([(ExecutionId(x), from_seq.unwrap_or(0))]);
            (
                sub.clone(),
                state
                    .orca
                    .watch(p, ExecutionId(x))
                    .await
                    .map_err(|e| err(&sub, e))?,
                from,
            )
        }
        _ => {
            return Err(
                json!({"type": "error", "code": "invalid_input", "message": "subscribe to exactly one of job_id or execution_id"}),
            );
        }
    };
    let task = tokio::spawn(forward(sub.clone(), stream, from, tx.clone()));
    Ok((sub, task.abort_handle()))
}

fn err(sub: &str, e: orca_core::Error) -> Value {
    let api = ApiError::from(e);
    let b = api.body();
    json!({"sub": sub, "type": "error", "code": b.code, "message": b.message})
}

async fn serve(state: AppState, caller: Caller, socket: WebSocketStream) {
    let (mut sink, mut incoming) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Value>(1024);
    let mut subs: HashMap<String, AbortHandle> = HashMap::new();
    let mut buf: Vec<Value> = Vec::new();
    let mut next_frame = tokio::time::Instant::now();
    loop {
        let flush_at = next_frame;
        tokio::select! {
            msg = incoming.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let reply = match serde_json::from_str::<ClientMsg>(&text) {
                    Ok(ClientMsg::Unsubscribe { id }) => {
                        if let Some(h) = subs.remove(&id) { h.abort(); }
                        None
                    }
                    Ok(m) if subs.len() >= MAX_SUBSCRIPTIONS => {
                        drop(m);
                        Some(json!({"type": "error", "code": "invalid_input", "message": format!("at most {MAX_SUBSCRIPTIONS} subscriptions per socket")}))
                    }
                    Ok(m) => match subscribe(&state, &caller, m, &tx).await {
                        Ok((sub, h)) => {
                            if let Some(old) = subs.insert(sub, h) { old.abort(); }
                            None
                        }
                        Err(v) => Some(v),
                    },
                    Err(e) => Some(json!({"type": "error", "code": "invalid_input", "message": format!("bad message: {e}")})),
                };
                if let Some(v) = reply {
                    buf.push(v);
                }
            }
            ev = rx.recv(), if buf.len() < MAX_EVENTS_PER_FRAME => {
                let mut next = ev;
                while let Some(v) = next.take() {
                    if matches!(v["type"].as_str(), Some("end" | "error"))
                        && let Some(sub) = v["sub"].as_str()
                    {
                        subs.remove(sub);
                    }
                    buf.push(v);
                    if buf.len() < MAX_EVENTS_PER_FRAME {
                        next = rx.try_recv().ok();
                    }
                }
            }
            _ = tokio::time::sleep_until(flush_at), if !buf.is_empty() => {
                let frame = json!({"type": "events", "events": std::mem::take(&mut buf)});
                if sink.send(Message::Text(frame.to_string())).await.is_err() {
                    break;
                }
                next_frame = tokio::time::Instant::now() + FRAME_INTERVAL;
            }
        }
    }
    for (_, h) in subs {
        h.abort();
    }
    let _ = sink.close().await;
}
