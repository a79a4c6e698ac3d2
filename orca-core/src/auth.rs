//! Account rules shared by every frontend (HTTP, CLI admin verbs, Python): what a password must
//! look like. Hashing and tokens are the frontends' business; the rules are not.

use crate::{Error, Result};

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes (bounds the cost of hashing untrusted input).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Check a new password for `username` against the policy: 12 to 1024 bytes' worth of
/// characters, not the user name, not one repeated character, no control characters.
/// The error never contains the password.
pub fn check_password_policy(username: &str, password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid(format!(
            "the password is too long: use at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::invalid(
            "the password contains control characters; use printable characters only",
        ));
    }
    if password.to_lowercase().contains(&username.to_lowercase()) && !username.is_empty() {
        return Err(Error::invalid(
            "the password must not contain the user name",
        ));
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err(Error::invalid(
            "the password is one character repeated; choose a real password",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check_password_policy("alice", "correct horse battery").is_ok());
        for bad in [
            "tiny1",
            "aaaaaaaaaaaaaaaa",
            "xxalice-password",
            "tab\tinside-password",
        ] {
            let e = check_password_policy("alice", bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
            assert!(!e.message().contains(bad), "{e}");
        }
        assert!(check_password_policy("bob", &"ab".repeat(600)).is_err());
    }
}
