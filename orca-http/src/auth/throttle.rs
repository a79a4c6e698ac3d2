//! Throttling of password checks (login, and the current password of a password change),
//! counted in the database so it holds across nodes.
//!
//! - Per client address, and per account name *and* client address: 429 with `Retry-After`
//!   beyond `http.rate_limit.login_per_address_per_minute` / `login_per_account_per_minute`.
//! - Per account from all addresses: never refused (a refusal would let anyone lock the admin
//!   out by failing to log in as it), but past `login_account_delay_after` attempts in a
//!   minute each further one waits `login_account_delay_ms`, doubling, at most
//!   `login_account_delay_max_ms`. A guesser spread over many addresses is slowed down; the
//!   owner, from their own address, still gets in.
//!
//! Account names are counted known or not, lower-cased, so answers do not tell which exist.

use std::time::Duration;

use crate::config::RateLimitConfig;
use crate::context;
use crate::error::ApiResult;
use crate::state::AppState;

/// The wait before the `n`th password check of an account in the current window.
pub(crate) fn account_delay(n: u64, rl: &RateLimitConfig) -> Duration {
    let after = u64::from(rl.login_account_delay_after);
    if n <= after || rl.login_account_delay_ms == 0 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(n - after - 1).unwrap_or(u32::MAX).min(32);
    let ms = rl
        .login_account_delay_ms
        .saturating_mul(1u64 << doublings)
        .min(rl.login_account_delay_max_ms);
    Duration::from_millis(ms)
}

impl AppState {
    /// Count a password check for `account` from the current client, refuse it (429) when the
    /// client is over its limits, and make it wait when the account is over its own.
    pub(crate) async fn throttle_password_check(&self, account: &str) -> ApiResult<()> {
        let rl = &self.config.rate_limit;
        if !rl.enabled {
            return Ok(());
        }
        let client = context::current()
            .map(|c| c.client.clone())
            .unwrap_or_default();
        let account: String = account.to_lowercase().chars().take(128).collect();
        self.db_limit(
            &format!("login:addr:{client}"),
            rl.login_per_address_per_minute,
            "login attempts from this address",
        )
        .await?;
        // The address first: it holds no `|`, so the key is unambiguous.
        self.db_limit(
            &format!("login:addr_user:{client}|{account}"),
            rl.login_per_account_per_minute,
            "login attempts for this account from this address",
        )
        .await?;
        let (n, _) = self.db_hit(&format!("login:user:{account}")).await?;
        let wait = account_delay(n, rl);
        if !wait.is_zero() {
            tracing::debug!(
                request_id = %context::request_id(),
                attempts = n,
                wait_ms = wait.as_millis() as u64,
                "many password checks for one account: slowing down"
            );
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let rl = RateLimitConfig::default();
        let ms = |n| account_delay(n, &rl).as_millis() as u64;
        assert_eq!((1..=5).map(ms).sum::<u64>(), 0);
        assert_eq!(ms(6), 250);
        assert_eq!(ms(7), 500);
        assert_eq!(ms(8), 1000);
        assert_eq!(ms(9), 2000);
        assert_eq!(ms(10), 4000);
        assert_eq!(ms(11), 4000);
        assert_eq!(ms(u64::MAX), 4000);
        let off = RateLimitConfig {
            login_account_delay_ms: 0,
            ..RateLimitConfig::default()
        };
        assert_eq!(account_delay(100, &off), Duration::ZERO);
    }
}
