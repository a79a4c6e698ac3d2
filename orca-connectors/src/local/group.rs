//! Process groups: is one gone, and kill it if a run is abandoned.

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Whether no live process is left in group `pgid`.
///
/// `killpg(pgid, 0)` still succeeds while dead members wait to be reaped (zombies), and an
/// orphaned member is reaped by PID 1, which in some containers never does it. So when the
/// kernel says the group exists, `/proc` tells whether any member is still alive.
pub(crate) fn group_gone(pgid: Pid) -> bool {
    match killpg(pgid, None) {
        Err(Errno::ESRCH) => true,
        Err(_) => false,
        Ok(()) => only_zombies(pgid).unwrap_or(false),
    }
}

/// `Some(true)` if every member of `pgid` listed in `/proc` is a zombie; `None` if `/proc`
/// cannot be read.
fn only_zombies(pgid: Pid) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // A process may vanish between the listing and the read: that is fine.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((state, pgrp)) = parse_stat(&stat)
            && pgrp == pgid.as_raw()
            && state != 'Z'
            && state != 'X'
        {
            return Some(false);
        }
    }
    Some(true)
}

/// The state and process group from a `/proc/<pid>/stat` line
/// (`pid (comm) state ppid pgrp ...`; `comm` may contain spaces and parentheses).
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Kills the process group with `SIGKILL` when dropped while armed, so a run whose future is
/// dropped (its caller gave up) leaves nothing running.
pub(crate) struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl GroupGuard {
    /// An armed guard for `pgid`.
    pub(crate) fn new(pgid: Pid) -> Self {
        GroupGuard { pgid, armed: true }
    }
    /// The group ended or was detached on purpose: do nothing on drop.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            tracing::debug!(
                pgid = self.pgid.as_raw(),
                "killing an abandoned local process group"
            );
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_odd_command_names() {
        assert_eq!(
            parse_stat("123 (sleep) S 1 120 120 0 -1 4194560"),
            Some(('S', 120))
        );
        assert_eq!(parse_stat("7 (a) b (c)) Z 1 99 99 0"), Some(('Z', 99)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_group_that_never_existed_is_gone() {
        // pid_max is at most 2^22 on Linux, so this group cannot exist.
        assert!(group_gone(Pid::from_raw(i32::MAX - 1)));
    }

    #[test]
    fn our_own_group_is_alive() {
        assert!(!group_gone(nix::unistd::getpgrp()));
    }
}
