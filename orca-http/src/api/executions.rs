//! `/api/v1/executions/{id}`: an execution, its output (paged by seq, resumable), a download of
//! the whole output, and cancel.

use base64::Engine;
use futures::StreamExt;
use orca_core::Orca;
use orca_core::ids::ExecutionId;
use orca_core::model::{OutputChunk, Principal, Timestamp};
use poem::Body;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::enums::Stream;
use super::jobs::{CancelResult, ExecutionDto};
use super::{BearerAuth, Tag};
use crate::error::ApiResult;
use crate::state::AppState;

/// Execution operations.
pub(crate) struct ExecutionsApi(pub AppState);

/// How `data` is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub(crate) enum Encoding {
    /// UTF-8 text as it came.
    Utf8,
    /// The bytes were not UTF-8: standard base64.
    Base64,
}

/// A piece of output.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "OutputChunk", skip_serializing_if_is_none)]
pub(crate) struct ChunkDto {
    /// Position in the execution's output, from 0, without gaps.
    pub seq: u64,
    /// Stream.
    #[serde(serialize_with = "ser_stream")]
    pub stream: Stream,
    /// When it was received.
    pub at: Timestamp,
    /// The bytes, as text or base64 (see `encoding`).
    pub data: String,
    /// `utf8` or `base64`.
    #[serde(serialize_with = "ser_encoding")]
    pub encoding: Encoding,
}

fn ser_stream<S: serde::Serializer>(s: &Stream, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(orca_core::model::Stream::from(*s).as_str())
}
fn ser_encoding<S: serde::Serializer>(e: &Encoding, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(match e {
        Encoding::Utf8 => "utf8",
        Encoding::Base64 => "base64",
    })
}

impl From<&OutputChunk> for ChunkDto {
    fn from(c: &OutputChunk) -> Self {
        let (data, encoding) = match std::str::from_utf8(&c.data) {
            Ok(s) => (s.to_string(), Encoding::Utf8),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(&c.data),
                Encoding::Base64,
            ),
        };
        ChunkDto {
            seq: c.seq,
            stream: c.stream.into(),
            at: c.at,
            data,
            encoding,
        }
    }
}

/// A page of output.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct OutputPage {
    /// The execution.
    pub execution_id: uuid::Uuid,
    /// Chunks with `seq >= offset`, in order (only the asked stream, if any).
    pub chunks: Vec<ChunkDto>,
    /// The `offset` to ask for next.
    pub next_offset: u64,
    /// True when the execution has ended and everything up to `next_offset` was returned.
    pub complete: bool,
}

/// The whole output as a file.
#[derive(ApiResponse)]
pub(crate) enum Download {
    /// The bytes, in order.
    #[oai(status = 200)]
    Ok(
        Binary<Body>,
        /// `attachment; filename="<execution id>.log"`.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

fn output_stream(
    orca: Orca,
    p: Principal,
    id: ExecutionId,
    stream: Option<orca_core::model::Stream>,
) -> Body {
    let s = futures::stream::unfold(Some(0u64), move |from| {
        let orca = orca.clone();
        let p = p.clone();
        async move {
            let from = from?;
            match orca.read_output(&p, id, from, 1000).await {
                Ok(chunks) if chunks.is_empty() => None,
                Ok(chunks) => {
                    let next = chunks.last().map(|c| c.seq + 1).unwrap_or(from);
                    let full = chunks.len() == 1000;
                    let mut buf = Vec::new();
                    for c in chunks
                        .iter()
                        .filter(|c| stream.is_none_or(|s| c.stream == s))
                    {
                        buf.extend_from_slice(&c.data);
                    }
                    Some((
                        Ok::<_, std::io::Error>(bytes::Bytes::from(buf)),
                        full.then_some(next),
                    ))
                }
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    })
    .filter(|r| futures::future::ready(!matches!(r, Ok(b) if b.is_empty())));
    Body::from_bytes_stream(s)
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Executions")]
impl ExecutionsApi {
    /// Get an execution
    #[oai(
        path = "/executions/:id",
        method = "get",
        operation_id = "get_execution"
    )]
    async fn get(&self, auth: BearerAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<ExecutionDto>> {
        let caller = self.0.caller(&auth).await?;
        Ok(Json(
            self.0
                .orca
                .get_execution(&caller.actor(), ExecutionId(id.0))
                .await?
                .into(),
        ))
    }

    /// Read output
    ///
    /// Chunks from `offset` (a seq) on, at most `limit`. Resume with `next_offset`.
    #[oai(
        path = "/executions/:id/output",
        method = "get",
        operation_id = "read_output"
    )]
    async fn output(
        &self,
        auth: BearerAuth,
        id: Path<uuid::Uuid>,
        /// Only this stream.
        stream: Query<Option<Stream>>,
        /// The first seq to return.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000000")))]
        offset: Query<Option<u64>>,
        /// Most chunks (1-1000).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<OutputPage>> {
        let caller = self.0.caller(&auth).await?;
        let id = ExecutionId(id.0);
        let from = offset.0.unwrap_or(0);
        let limit = limit.0.unwrap_or(super::DEFAULT_LIMIT);
        let exec = self.0.orca.get_execution(&caller.actor(), id).await?;
        let chunks = self
            .0
            .orca
            .read_output(&caller.actor(), id, from, limit)
            .await?;
        let next_offset = chunks.last().map(|c| c.seq + 1).unwrap_or(from);
        let complete = exec.status.is_terminal() && (chunks.len() as u32) < limit;
        let want = stream.0.map(orca_core::model::Stream::from);
        Ok(Json(OutputPage {
            execution_id: id.as_uuid(),
            chunks: chunks
                .iter()
                .filter(|c| want.is_none_or(|s| c.stream == s))
                .map(ChunkDto::from)
                .collect(),
            next_offset,
            complete,
        }))
    }

    /// Download output
    ///
    /// The whole stored output (or one stream) as a file.
    #[oai(
        path = "/executions/:id/output/download",
        method = "get",
        operation_id = "download_output"
    )]
    async fn download(
        &self,
        auth: BearerAuth,
        id: Path<uuid::Uuid>,
        /// Only this stream.
        stream: Query<Option<Stream>>,
    ) -> ApiResult<Download> {
        let caller = self.0.caller(&auth).await?;
        let id = ExecutionId(id.0);
        self.0.orca.get_execution(&caller.actor(), id).await?;
        let body = output_stream(
            self.0.orca.clone(),
            caller.principal,
            id,
            stream.0.map(Into::into),
        );
        Ok(Download::Ok(
            Binary(body),
            format!("attachment; filename=\"{id}.log\""),
        ))
    }

    /// Cancel an execution
    #[oai(
        path = "/executions/:id/cancel",
        method = "post",
        operation_id = "cancel_execution"
    )]
    async fn cancel(
        &self,
        auth: BearerAuth,
        id: Path<uuid::Uuid>,
    ) -> ApiResult<Json<CancelResult>> {
        let caller = self.0.caller(&auth).await?;
        Ok(Json(
            self.0
                .orca
                .cancel_execution(&caller.actor(), ExecutionId(id.0))
                .await?
                .into(),
        ))
    }
}
