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
//!
//! # Revocation
//! A socket acts for the credential that got its ticket (a login session or an API token) and
//! follows it: every subscribe re-reads the user (active), its role and grants and that
//! credential's record, and subscribes with the principal read then; and on every
//! [`orca_core::Event::AuthChanged`] for the socket's user or for anyone (this node's changes and, on
//! PostgreSQL, other nodes'), on a lag of the event bus, and at least every
//! [`RECHECK_INTERVAL`], the socket re-checks the same. When the user was disabled, their
//! role or grants changed, or the session or API token ended, the socket is closed with close
//! code 1008 (policy) and the reason; the client gets a new ticket and reconnects.

use std::collections::HashMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use orca_core::ids::{ExecutionId, JobId, UserId};
use orca_core::{WatchEvent, WatchStream};
use poem::web::websocket::{CloseCode, Message, WebSocket, WebSocketStream};
use poem::{FromRequest, IntoResponse, Request, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;

use crate::api::executions::ChunkDto;
use crate::auth::{Caller, Credential};
use crate::error::ApiError;
use crate::state::AppState;

/// Frames at most this often (20 per second).
const FRAME_INTERVAL: Duration = Duration::from_millis(50);
/// Events per frame at most.
const MAX_EVENTS_PER_FRAME: usize = 2000;
/// Subscriptions per socket at most.
const MAX_SUBSCRIPTIONS: usize = 32;
/// A socket re-checks its caller at least this often (credentials also expire without an
/// event).
const RECHECK_INTERVAL: Duration = Duration::from_secs(30);

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
    // Follow the bus before reading the caller, so no change after that read is missed.
    let changes = state.auth_changes.subscribe();
    let (caller, cred) = state.redeem_ws_ticket(&ticket).await?;
    let socket = Socket {
        state,
        caller,
        cred,
        changes: Some(changes),
    };
    Ok(ws
        .on_upgrade(move |stream| socket.serve(stream))
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
    p: &orca_core::model::Principal,
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

/// One open socket: who it acts for, and the bus it follows for changes of that.
struct Socket {
    state: AppState,
    caller: Caller,
    cred: Credential,
    /// `None` once the bus closed (the periodic re-check remains).
    changes: Option<broadcast::Receiver<Option<UserId>>>,
}

/// Whether a change (of `changed`, or of anyone) may change what the socket of `socket_user`
/// may do.
fn concerns(socket_user: UserId, changed: Option<UserId>) -> bool {
    changed.is_none_or(|u| u == socket_user)
}

impl Socket {
    /// The next change of users, grants or tokens that may concern this socket (a lag counts):
    /// waits forever once the bus closed.
    async fn changed(&mut self) {
        let user = self.caller.user_id;
        loop {
            let Some(rx) = self.changes.as_mut() else {
                return std::future::pending().await;
            };
            let (hit, mut open) = match rx.recv().await {
                Ok(changed) => (concerns(user, changed), true),
                Err(RecvError::Lagged(_)) => (true, true),
                Err(RecvError::Closed) => (false, false),
            };
            if hit {
                // One re-check for a burst of changes.
                while open {
                    match rx.try_recv() {
                        Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Closed) => open = false,
                    }
                }
            }
            if !open {
                self.changes = None;
            }
            if hit {
                return;
            }
        }
    }

    /// Re-check the caller: `Ok(())` if nothing changed (the fresh principal is kept), or
    /// why the socket must close. A store failure closes it too (it cannot be vouched for).
    async fn recheck(&mut self) -> Result<(), &'static str> {
        match self.state.recheck(&self.caller, &self.cred).await {
            Ok(Ok(fresh)) => {
                self.caller = fresh;
                Ok(())
            }
            Ok(Err(ended)) => Err(ended.reason()),
            Err(e) => {
                tracing::warn!(user_id = %self.caller.user_id, error = ?e.body().message, "could not re-check a WebSocket's credentials");
                Err("could not re-check the credentials; reconnect")
            }
        }
    }

    async fn serve(mut self, socket: WebSocketStream) {
        let (mut sink, mut incoming) = socket.split();
        let (tx, mut rx) = mpsc::channel::<Value>(1024);
        let mut subs: HashMap<String, AbortHandle> = HashMap::new();
        let mut buf: Vec<Value> = Vec::new();
        let mut next_frame = tokio::time::Instant::now();
        let mut recheck = tokio::time::interval_at(
            tokio::time::Instant::now() + RECHECK_INTERVAL,
            RECHECK_INTERVAL,
        );
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closing: Option<&'static str> = None;
        while closing.is_none() {
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
                        Ok(m) => {
                            // Every subscribe acts with the caller as stored now.
                            if let Err(reason) = self.recheck().await {
                                closing = Some(reason);
                                continue;
                            }
                            match subscribe(&self.state, &self.caller.principal, m, &tx).await {
                                Ok((sub, h)) => {
                                    if let Some(old) = subs.insert(sub, h) { old.abort(); }
                                    None
                                }
                                Err(v) => Some(v),
                            }
                        }
                        Err(e) => Some(json!({"type": "error", "code": "invalid_input", "message": format!("bad message: {e}")})),
                    };
                    if let Some(v) = reply {
                        buf.push(v);
                    }
                }
                () = self.changed() => {
                    if let Err(reason) = self.recheck().await {
                        closing = Some(reason);
                    }
                }
                _ = recheck.tick() => {
                    if let Err(reason) = self.recheck().await {
                        closing = Some(reason);
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
        match closing {
            Some(reason) => {
                // What was read for the old rights is not sent any more.
                tracing::info!(user_id = %self.caller.user_id, reason, "closing a WebSocket");
                let _ = sink
                    .send(Message::close_with(CloseCode::Policy, reason))
                    .await;
                let _ = sink.close().await;
            }
            None => {
                let _ = sink.close().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::EndReason;

    #[test]
    fn auth_changes_for_the_user_or_anyone_concern_a_socket() {
        let me = UserId::new();
        assert!(concerns(me, Some(me)));
        assert!(concerns(me, None));
        assert!(!concerns(me, Some(UserId::new())));
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        for e in [
            EndReason::UserDisabled,
            EndReason::SessionEnded,
            EndReason::TokenRevoked,
            EndReason::RightsChanged,
        ] {
            assert!(e.reason().len() <= 123, "{e:?}");
        }
    }
}
