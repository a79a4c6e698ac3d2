//! The context of one HTTP request: its id, the client address and user agent (the facade's
//! [`orca_core::Ctx`], which also counts the audit records the facade wrote for it), and who is
//! calling. It lives in a task-local for the duration of the request, so error conversion,
//! logging and the handlers (which hand it to the facade in an [`orca_core::Actor`]) see it
//! without threading it through every call.

use std::sync::{Arc, Mutex};

use orca_core::ids::UserId;

/// Who made the request, once authenticated.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub name: String,
    pub user_id: Option<UserId>,
}

/// One request's context.
#[derive(Debug)]
pub(crate) struct RequestCtx {
    /// The request id (from a sane `x-request-id` header, or generated).
    pub request_id: String,
    /// The client address (peer, or `X-Forwarded-For` from a trusted proxy).
    pub client: String,
    /// The same, for the facade (shared audit count).
    pub core: orca_core::Ctx,
    actor: Mutex<Option<Actor>>,
}

impl RequestCtx {
    pub fn new(request_id: String, client: String, user_agent: Option<String>) -> Self {
        RequestCtx {
            core: orca_core::Ctx::new(request_id.clone(), client.clone(), user_agent),
            request_id,
            client,
            actor: Mutex::new(None),
        }
    }
    pub fn set_actor(&self, actor: Actor) {
        *self.actor.lock().unwrap_or_else(|e| e.into_inner()) = Some(actor);
    }
    pub fn actor(&self) -> Option<Actor> {
        self.actor.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// How many audit records the facade wrote for this request.
    pub fn audits(&self) -> u32 {
        self.core.audits()
    }
}

tokio::task_local! {
    static CTX: Arc<RequestCtx>;
}

/// The current request's context, if running inside a request.
pub(crate) fn current() -> Option<Arc<RequestCtx>> {
    CTX.try_with(|c| c.clone()).ok()
}

/// The facade's context of the current request (an empty one outside a request).
pub(crate) fn core() -> orca_core::Ctx {
    current().map(|c| c.core.clone()).unwrap_or_default()
}

/// The current request id, or `-` outside a request.
pub(crate) fn request_id() -> String {
    current()
        .map(|c| c.request_id.clone())
        .unwrap_or_else(|| "-".to_string())
}

/// Run `f` with `ctx` as the current request context.
pub(crate) async fn scope<F: std::future::Future>(ctx: Arc<RequestCtx>, f: F) -> F::Output {
    CTX.scope(ctx, f).await
}

/// A request id from the client is kept only if it is short and plain; otherwise a new one.
pub(crate) fn sanitize_request_id(given: Option<&str>) -> String {
    match given {
        Some(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') =>
        {
            s.to_string()
        }
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sanitized() {
        assert_eq!(sanitize_request_id(Some("abc-123")), "abc-123");
        let bad = sanitize_request_id(Some("evil\nheader: x"));
        assert!(uuid::Uuid::parse_str(&bad).is_ok());
        assert!(uuid::Uuid::parse_str(&sanitize_request_id(None)).is_ok());
        assert!(uuid::Uuid::parse_str(&sanitize_request_id(Some(&"a".repeat(65)))).is_ok());
    }

    #[tokio::test]
    async fn scope_is_visible_inside_only() {
        assert_eq!(request_id(), "-");
        let ctx = Arc::new(RequestCtx::new("r1".into(), "127.0.0.1".into(), None));
        scope(ctx.clone(), async {
            assert_eq!(request_id(), "r1");
            assert_eq!(core().request_id.as_deref(), Some("r1"));
        })
        .await;
        assert_eq!(core().request_id, None);
    }
}
