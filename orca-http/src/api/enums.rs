//! Wire enums mirroring orca-core's (snake_case names, as orca-core serialises them).

use orca_core::model;

macro_rules! mirror_enum {
    ($(#[$m:meta])* $dto:ident = $core:ty { $($v:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
        #[oai(rename_all = "snake_case")]
        pub(crate) enum $dto { $($v),* }
        impl From<$core> for $dto {
            fn from(x: $core) -> Self { match x { $(<$core>::$v => $dto::$v),* } }
        }
        impl From<$dto> for $core {
            fn from(x: $dto) -> Self { match x { $($dto::$v => <$core>::$v),* } }
        }
    };
}

mirror_enum!(
    /// How Orca reaches a system.
    SystemType = model::SystemType { Linux, Windows, Local }
);
mirror_enum!(
    /// Last known health of a system.
    HealthStatus = model::HealthStatus { Unknown, Healthy, Unhealthy }
);
mirror_enum!(
    /// What to do with an SSH host key that is not pinned yet: `strict` (must match a pinned
    /// key), `tofu` (pin on first contact), `insecure` (accept any).
    HostKeyPolicy = model::HostKeyPolicy { Strict, Tofu, Insecure }
);
mirror_enum!(
    /// A user's role.
    Role = model::Role { Viewer, Operator, Admin }
);
mirror_enum!(
    /// A job's status.
    JobStatus = model::JobStatus { Pending, Running, Completed, Failed, Cancelled }
);
mirror_enum!(
    /// An execution's status.
    ExecutionStatus = model::ExecutionStatus { Pending, Running, Completed, Failed, Timeout, Cancelled, Lost }
);
mirror_enum!(
    /// How a command is interpreted on the target.
    Shell = model::Shell { Default, Sh, Bash, Cmd, Powershell }
);
mirror_enum!(
    /// An output stream.
    Stream = model::Stream { Stdout, Stderr }
);
mirror_enum!(
    /// How an audited action ended.
    AuditOutcome = model::AuditOutcome { Success, Denied, Failure }
);
