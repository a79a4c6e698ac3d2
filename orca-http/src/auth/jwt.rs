//! Access tokens: HS256 JWTs with the algorithm, issuer, audience and a `typ` claim pinned.
//! They are short-lived (at most 15 minutes) and name a session (`sid`), which is checked on
//! every request so logout takes effect at once.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use orca_core::ids::UserId;

use crate::config::AuthConfig;

/// The `typ` claim of access tokens.
pub const ACCESS_TYP: &str = "access";

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Token id.
    pub jti: String,
    /// Token type: always `access`.
    pub typ: String,
    /// The session (refresh-token family) the token belongs to.
    pub sid: String,
}

/// Clock skew tolerated on `iat` (seconds): a token may say it was issued this much in the
/// future, and live this much longer than `http.auth.access_ttl_seconds`.
pub const ISSUED_AT_SKEW: u64 = 60;

/// Signs and verifies access tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: u64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused (logged, never sent in detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

impl JwtKeys {
    /// Keys from validated settings (the secret must be set).
    pub fn new(secret: &[u8], cfg: &AuthConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = cfg.leeway_seconds.min(30);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[cfg.issuer.as_str()]);
        validation.set_audience(&[cfg.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            ttl: cfg.access_ttl_seconds.min(900),
        }
    }

    /// Lifetime of new tokens in seconds.
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    /// A new access token for `user` in session `sid`.
    pub fn issue(&self, user: UserId, sid: uuid::Uuid) -> orca_core::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.to_string(),
            exp: now + self.ttl,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            typ: ACCESS_TYP.to_string(),
            sid: sid.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| orca_core::Error::unexpected(format!("cannot sign a token: {e}")))
    }

    /// Verify a token: signature (HS256 only), `exp`/`nbf` with the leeway, issuer, audience,
    /// `typ == "access"`, `iat` not in the future and a lifetime (`exp - iat`) of at most the
    /// configured TTL (both give [`ISSUED_AT_SKEW`]). Returns the user and the session.
    pub fn verify(&self, token: &str) -> Result<(UserId, uuid::Uuid), Rejected> {
        self.verify_until(token).map(|(user, sid, _)| (user, sid))
    }

    /// [`JwtKeys::verify`], also returning until when (Unix seconds: `exp` plus the leeway)
    /// the token is accepted.
    pub fn verify_until(&self, token: &str) -> Result<(UserId, uuid::Uuid, u64), Rejected> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| Rejected(format!("{e}")))?;
        let c = data.claims;
        if c.typ != ACCESS_TYP {
            return Err(Rejected(format!("token type '{}' is not access", c.typ)));
        }
        // A token this server issued was issued in the past and lives `ttl`: one issued "later"
        // or living longer was made with the key, not by this server's login or refresh.
        if c.iat > jsonwebtoken::get_current_timestamp().saturating_add(ISSUED_AT_SKEW) {
            return Err(Rejected("token issued in the future".into()));
        }
        if c.exp > c.iat.saturating_add(self.ttl + ISSUED_AT_SKEW) {
            return Err(Rejected("token lifetime exceeds the maximum".into()));
        }
        let user = c
            .sub
            .parse::<UserId>()
            .map_err(|_| Rejected("bad subject".into()))?;
        let sid = uuid::Uuid::parse_str(&c.sid).map_err(|_| Rejected("bad session id".into()))?;
        Ok((user, sid, c.exp.saturating_add(self.validation.leeway)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"0123456789abcdef0123456789abcdef", &AuthConfig::default())
    }

    #[test]
    fn round_trip() {
        let k = keys();
        let u = UserId::new();
        let sid = uuid::Uuid::now_v7();
        let t = k.issue(u, sid).unwrap();
        assert_eq!(k.verify(&t).unwrap(), (u, sid));
    }

    fn forged(k: &JwtKeys, iat: u64, exp: u64) -> String {
        let claims = Claims {
            iss: "orca".into(),
            aud: "orca-api".into(),
            sub: UserId::new().to_string(),
            exp,
            iat,
            nbf: jsonwebtoken::get_current_timestamp() - 1,
            jti: "j".into(),
            typ: ACCESS_TYP.into(),
            sid: uuid::Uuid::nil().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &k.encoding).unwrap()
    }

    #[test]
    fn future_iat_and_long_lifetimes_fail() {
        let k = keys();
        let now = jsonwebtoken::get_current_timestamp();
        let ten_years = 10 * 365 * 24 * 3600;
        assert!(k.verify(&forged(&k, now, now + 600)).is_ok(), "control");
        assert!(
            k.verify(&forged(&k, now + 30, now + 600)).is_ok(),
            "within the skew"
        );
        let far = forged(&k, now + ten_years, now + ten_years + 600);
        assert!(k.verify(&far).unwrap_err().0.contains("future"));
        assert!(k.verify(&forged(&k, now + 120, now + 700)).is_err());
        let long = forged(&k, now, now + 900 + ISSUED_AT_SKEW + 1);
        assert!(k.verify(&long).unwrap_err().0.contains("lifetime"));
        // The bound follows the configured TTL.
        let short = JwtKeys::new(
            b"0123456789abcdef0123456789abcdef",
            &AuthConfig {
                access_ttl_seconds: 60,
                ..AuthConfig::default()
            },
        );
        assert!(short.verify(&forged(&short, now, now + 120)).is_ok());
        assert!(short.verify(&forged(&short, now, now + 600)).is_err());
    }

    #[test]
    fn other_key_and_tampering_fail() {
        let k = keys();
        let t = k.issue(UserId::new(), uuid::Uuid::now_v7()).unwrap();
        let other = JwtKeys::new(b"another-secret-another-secret-xx", &AuthConfig::default());
        assert!(other.verify(&t).is_err());
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(k.verify(&parts.join(".")).is_err());
    }
}
