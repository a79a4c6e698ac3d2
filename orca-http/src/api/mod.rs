//! The REST operations, grouped by resource. Each handler authenticates, converts the request,
//! calls the [`orca_core::Orca`] facade (which asks the policy and writes the audit record) and
//! converts the answer.

pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod console;
pub(crate) mod enums;
pub(crate) mod executions;
pub(crate) mod jobs;
pub(crate) mod ops;
pub(crate) mod systems;
pub(crate) mod text;
pub(crate) mod users;

use orca_core::model::Page;
use poem_openapi::auth::Bearer;
use poem_openapi::{SecurityScheme, Tags};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;

/// Operation groups in the OpenAPI document.
#[derive(Tags)]
pub(crate) enum Tag {
    /// Log in, refresh, log out; API tokens; WebSocket tickets.
    Auth,
    /// Users and their grants (admins).
    Users,
    /// Registered systems and their SSH host keys.
    Systems,
    /// Jobs: a command run on a set of systems.
    Jobs,
    /// Executions (one per job and system) and their output.
    Executions,
    /// The audit log (admins).
    Audit,
    /// Health, readiness and metrics.
    Operations,
}

/// `Authorization: Bearer <access token or API token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT or orca_at_ API token")]
pub(crate) struct BearerAuth(Bearer);

impl AppState {
    /// Authenticate the bearer of an operation.
    pub(crate) async fn caller(&self, auth: &BearerAuth) -> ApiResult<Caller> {
        self.authenticate(&auth.0.token).await
    }
}

/// The default page size.
pub(crate) const DEFAULT_LIMIT: u32 = 100;

/// A page from the `offset` and `limit` query parameters (validated by the schema).
pub(crate) fn page(offset: Option<u64>, limit: Option<u32>) -> Page {
    Page {
        offset: offset.unwrap_or(0),
        limit: limit.unwrap_or(DEFAULT_LIMIT),
    }
}

/// The offset of the next page, if this one was full.
pub(crate) fn next_offset(page: Page, len: usize) -> Option<u64> {
    (len as u64 >= u64::from(page.limit)).then(|| page.offset + len as u64)
}

/// Declares a paginated list object.
macro_rules! list_type {
    ($name:ident, $item:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, poem_openapi::Object)]
        #[oai(skip_serializing_if_is_none)]
        pub(crate) struct $name {
            /// The items of this page.
            pub items: Vec<$item>,
            /// The offset of this page.
            pub offset: u64,
            /// The page size asked for.
            pub limit: u32,
            /// The offset of the next page; absent on the last page.
            pub next_offset: Option<u64>,
        }

        impl $name {
            pub(crate) fn new(items: Vec<$item>, page: orca_core::model::Page) -> Self {
                let next_offset = $crate::api::next_offset(page, items.len());
                $name {
                    items,
                    offset: page.offset,
                    limit: page.limit,
                    next_offset,
                }
            }
        }
    };
}
pub(crate) use list_type;

/// The API as one poem-openapi object.
pub(crate) fn apis(
    state: &AppState,
) -> (
    auth::AuthApi,
    console::ConsoleApi,
    users::UsersApi,
    systems::SystemsApi,
    jobs::JobsApi,
    executions::ExecutionsApi,
    audit::AuditApi,
    ops::OpsApi,
) {
    (
        auth::AuthApi(state.clone()),
        console::ConsoleApi(state.clone()),
        users::UsersApi(state.clone()),
        systems::SystemsApi(state.clone()),
        jobs::JobsApi(state.clone()),
        executions::ExecutionsApi(state.clone()),
        audit::AuditApi(state.clone()),
        ops::OpsApi(state.clone()),
    )
}
