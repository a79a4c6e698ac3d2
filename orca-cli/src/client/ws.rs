//! Following a job over the live-updates WebSocket (`/api/v1/ws`), authenticated with a
//! one-time ticket (no token in the URL).

use futures::{SinkExt, StreamExt};
use orca_core::{Error, ErrorKind, Result};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::Client;

/// Subscribe to `job_id` (resuming each execution at `offsets`) and hand every event to
/// `on_event` until the server ends the subscription (the job is over). An error means the
/// caller should fall back to polling from where it got.
pub async fn follow_job(
    c: &Client,
    job_id: uuid::Uuid,
    offsets: &std::collections::HashMap<uuid::Uuid, u64>,
    mut on_event: impl FnMut(&Value),
) -> Result<()> {
    let ticket = c.post_empty("/api/v1/ws/ticket").await?;
    let path = ticket["url"]
        .as_str()
        .ok_or_else(|| Error::unexpected("the ticket answer has no url"))?;
    let base = c.base();
    let ws_base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return Err(Error::invalid(format!("cannot open a WebSocket to {base}")));
    };
    let url = format!("{ws_base}{path}");
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::ConnectionFailed,
                format!("cannot open the live-updates socket: {e}"),
            )
        })?;
    let offsets: serde_json::Map<String, Value> = offsets
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let sub = json!({"type": "subscribe", "job_id": job_id, "offsets": offsets, "id": "job"});
    socket
        .send(Message::text(sub.to_string()))
        .await
        .map_err(|e| Error::new(ErrorKind::ConnectionFailed, format!("live updates: {e}")))?;
    while let Some(msg) = socket.next().await {
        let msg =
            msg.map_err(|e| Error::new(ErrorKind::ConnectionFailed, format!("live updates: {e}")))?;
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        let frame: Value = serde_json::from_str(text.as_str())
            .map_err(|e| Error::unexpected(format!("live updates: bad frame: {e}")))?;
        if frame["type"] == "error" {
            return Err(Error::unexpected(format!(
                "live updates: {}",
                frame["message"].as_str().unwrap_or("error")
            )));
        }
        for ev in frame["events"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            match ev["type"].as_str() {
                Some("end") => {
                    let _ = socket.close(None).await;
                    return Ok(());
                }
                Some("error") => {
                    return Err(Error::unexpected(format!(
                        "live updates: {}",
                        ev["message"].as_str().unwrap_or("error")
                    )));
                }
                _ => on_event(ev),
            }
        }
    }
    Err(Error::new(
        ErrorKind::ConnectionFailed,
        "the live-updates socket closed before the job ended",
    ))
}
