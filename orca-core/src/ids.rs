//! Typed identifiers (UUIDv7, so they sort by creation time).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|e| {
                    crate::Error::invalid(format!("'{s}' is not a valid {}: {e}", stringify!($name)))
                })
            }
        }
        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

typed_id!(
    /// Identifies a system (a target machine).
    SystemId
);
typed_id!(
    /// Identifies a job.
    JobId
);
typed_id!(
    /// Identifies one execution of a job on one system.
    ExecutionId
);
typed_id!(
    /// Identifies a user.
    UserId
);
typed_id!(
    /// Identifies an audit record.
    AuditId
);
typed_id!(
    /// Identifies a lease (a claim of an execution by a worker); acts as a fencing token.
    LeaseToken
);
typed_id!(
    /// Identifies a pinned host key.
    HostKeyId
);
