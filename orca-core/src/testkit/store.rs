//! The Store conformance suite.
//!
//! Every [`Store`] implementation runs it through [`crate::store_conformance!`] with a
//! [`StoreFactory`] that hands out fresh, empty stores:
//!
//! ```ignore
//! struct MyFactory;
//! #[orca_core::async_trait]
//! impl orca_core::testkit::store::StoreFactory for MyFactory {
//!     async fn fresh(&self, clock: Arc<ManualClock>) -> Arc<dyn Store> { /* ... */ }
//! }
//! orca_core::store_conformance!(MyFactory);
//! ```
//!
//! Each case is also a public `async fn(&dyn StoreFactory)` so a backend can run one on its
//! own. Every case talks to the store only through `Arc<dyn Store>`.
//!
//! The cases follow the area traits, one module each: `systems` ([`crate::SystemStore`]),
//! `jobs` ([`crate::JobStore`]), `queue` ([`crate::QueueStore`]), `output`
//! ([`crate::OutputStore`]), `audit` ([`crate::AuditStore`]) and `users`
//! ([`crate::UserStore`]); `races` holds the cases where callers of several areas race.
//!
//! Choices the suite pins down where the trait's contract leaves room:
//! - listings: systems and users by name; jobs and audit records newest first (`created_at`
//!   / `at`, then id, descending); executions oldest first (`created_at`, then id).
//! - `claim` takes the oldest pending execution first (`created_at`, then id).
//! - a lease is current while the execution is `running` with that token, even past its
//!   expiry, until `rescue_expired` ends it.
//! - `finish` accumulates `output_dropped`; a terminal finish clears the lease and stamps
//!   `completed_at`; a re-queue (`Pending`) clears the lease, adds one to `attempt` and sets
//!   `not_before` to `retry_at` (or now).
//! - `rescue_expired` re-queues only when the job has `requeue_lost`, `attempt <= retries`,
//!   the execution wrote no output and no cancel was requested; otherwise it ends `lost`.
//! - rows that reference a missing system/user/job answer `NotFound`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{ManualClock, Store};

mod audit;
mod fixtures;
mod jobs;
mod output;
mod queue;
mod races;
mod systems;
mod users;

pub use audit::*;
pub use jobs::*;
pub use output::*;
pub use queue::*;
pub use races::*;
pub use systems::*;
pub use users::*;

/// Makes fresh stores for the suite.
#[async_trait]
pub trait StoreFactory: Send + Sync + 'static {
    /// A fresh, empty store (its own database, schema or temp dir) whose time is `clock`.
    async fn fresh(&self, clock: Arc<ManualClock>) -> Arc<dyn Store>;
}

/// Expands to one `#[tokio::test]` per Store conformance case, each calling
/// `orca_core::testkit::store::<case>(&factory)` with a factory made by `$factory` (evaluated
/// once per test). The calling crate needs `tokio` (with `macros` and `rt-multi-thread`).
#[macro_export]
macro_rules! store_conformance {
    ($factory:expr) => {
        $crate::__store_conformance_cases!(
            $factory;
            // systems (SystemStore)
            system_crud,
            system_name_unique,
            system_not_found,
            system_filters,
            system_pagination,
            system_update,
            system_delete,
            system_delete_refused_while_busy,
            system_record_health,
            system_reseal,
            host_keys_pin_if_none_race,
            host_keys_replace,
            // jobs (JobStore)
            job_create_and_get,
            job_create_rejects_bad_rows,
            job_list_newest_first,
            job_list_filters_and_pages,
            job_status_follows_lifecycle,
            list_executions_oldest_first,
            cancel_job,
            cancel_execution,
            // queue (QueueStore)
            claim_basic,
            claim_exclusive_under_concurrency,
            claim_respects_job_concurrency,
            claim_respects_per_system,
            claim_respects_not_before,
            claim_oldest_first,
            heartbeat_renews,
            heartbeat_reports_lost_and_cancel,
            stale_lease_writes_rejected,
            expired_lease_current_until_rescued,
            rescue_expired_marks_lost,
            rescue_requeues_when_allowed,
            finish_transitions,
            finish_retry_requeues,
            finish_batch_independent,
            // output (OutputStore)
            output_order_and_continuity,
            output_read_from_limit,
            output_binary_round_trip,
            output_continues_across_attempts,
            // audit (AuditStore)
            audit_atomic_with_mutation,
            audit_list_filters_and_pages,
            // users and tokens (UserStore)
            user_crud,
            user_grants_replace,
            token_lifecycle,
            token_revoke_family_and_user,
            rate_limit_windows,
            timestamps_round_trip_micros,
            // races across areas
            claim_limits_hold_under_concurrency,
            finish_race_single_winner,
            rescue_race_once,
            unique_and_single_use_races,
        );
    };
}

/// Implementation detail of [`store_conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
    ($factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let factory = $factory;
                $crate::testkit::store::$case(&factory).await;
            }
        )*
    };
}
