//! NTLMv2 (client and server side) through the `sspi` crate, and the session security it
//! provides (sign + seal). No cryptography is written here.
//!
//! The [`SessionSecurity`] trait is the seam for Kerberos: a Kerberos context would implement
//! the same wrap/unwrap and plug into [`super::sealing`].

use secrecy::{ExposeSecret, SecretString};
use sspi::{
    AuthIdentity, AuthIdentityBuffers, BufferType, ClientRequestFlags, CredentialUse,
    DataRepresentation, EncryptionFlags, Ntlm, SecurityBuffer, SecurityBufferRef, SecurityStatus,
    ServerRequestFlags, Sspi, SspiImpl, Username,
};

use super::error::WinRmError;

/// Size of an NTLM message signature.
pub const SIGNATURE_LEN: usize = 16;
/// The largest NTLM token accepted from a peer.
pub const MAX_TOKEN: usize = 64 * 1024;

/// Message integrity and confidentiality of an authenticated session.
pub trait SessionSecurity: Send {
    /// Sign and encrypt `plain`: returns (signature, ciphertext).
    fn wrap(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), WinRmError>;
    /// Verify and decrypt: returns the plaintext, or an error if the signature does not match.
    fn unwrap(&mut self, signature: &[u8], cipher: &[u8]) -> Result<Vec<u8>, WinRmError>;
}

fn sspi_err(what: &str, e: impl std::fmt::Display) -> WinRmError {
    WinRmError::Auth(format!("{what}: {e}"))
}

fn identity(user: &str, password: &SecretString) -> Result<AuthIdentity, WinRmError> {
    let username = Username::parse(user).map_err(|e| {
        WinRmError::Config(format!(
            "invalid user name '{user}' ({e}): use USER, DOMAIN\\USER or USER@DOMAIN"
        ))
    })?;
    Ok(AuthIdentity {
        username,
        password: password.expose_secret().to_string().into(),
    })
}

/// The client side of an NTLM exchange.
pub struct NtlmClient {
    ctx: Ntlm,
    handle: Option<AuthIdentityBuffers>,
    target: String,
    done: bool,
}

impl std::fmt::Debug for NtlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtlmClient")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl NtlmClient {
    /// A client for `user` (USER, DOMAIN\USER or USER@DOMAIN) towards `HTTP/<host>`.
    pub fn new(user: &str, password: &SecretString, host: &str) -> Result<Self, WinRmError> {
        let mut ctx = Ntlm::new();
        let id = identity(user, password)?;
        let handle = ctx
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&id)
            .execute(&mut ctx)
            .map_err(|e| sspi_err("NTLM credentials", e))?
            .credentials_handle;
        Ok(NtlmClient {
            ctx,
            handle,
            target: format!("HTTP/{host}"),
            done: false,
        })
    }

    /// The next token to send, given the server's last token (`None` at the start).
    /// Returns the token and whether the exchange is complete on our side.
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<(Vec<u8>, bool), WinRmError> {
        if let Some(i) = input
            && i.len() > MAX_TOKEN
        {
            return Err(WinRmError::Auth(
                "the server's NTLM token is too large".into(),
            ));
        }
        let mut input_buf = vec![SecurityBuffer::new(
            input.unwrap_or_default().to_vec(),
            BufferType::Token,
        )];
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let target = self.target.clone();
        let mut builder = self
            .ctx
            .initialize_security_context()
            .with_credentials_handle(&mut self.handle)
            .with_context_requirements(
                ClientRequestFlags::MUTUAL_AUTH
                    | ClientRequestFlags::USE_SESSION_KEY
                    | ClientRequestFlags::INTEGRITY
                    | ClientRequestFlags::CONFIDENTIALITY,
            )
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(&target)
            .with_output(&mut output);
        if input.is_some() {
            builder = builder.with_input(&mut input_buf);
        }
        let result = self
            .ctx
            .initialize_security_context_impl(&mut builder)
            .map_err(|e| sspi_err("NTLM", e))?
            .resolve_to_result()
            .map_err(|e| sspi_err("the server's NTLM challenge was refused", e))?;
        self.done = matches!(
            result.status,
            SecurityStatus::Ok | SecurityStatus::CompleteNeeded
        );
        let token = output.pop().map(|b| b.buffer).unwrap_or_default();
        Ok((token, self.done))
    }
}

impl SessionSecurity for NtlmClient {
    fn wrap(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), WinRmError> {
        wrap(&mut self.ctx, plain)
    }
    fn unwrap(&mut self, signature: &[u8], cipher: &[u8]) -> Result<Vec<u8>, WinRmError> {
        unwrap(&mut self.ctx, signature, cipher)
    }
}

/// The server side of an NTLM exchange (used by the test server).
pub struct NtlmServer {
    ctx: Ntlm,
    handle: Option<AuthIdentityBuffers>,
    user: String,
    authenticated: bool,
}

impl std::fmt::Debug for NtlmServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtlmServer")
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

/// What the server does after a client token.
#[derive(Debug)]
pub enum ServerStep {
    /// Send this challenge back in a 401.
    Challenge(Vec<u8>),
    /// The client is authenticated.
    Authenticated,
}

impl NtlmServer {
    /// A server that accepts `user` with `password`.
    pub fn new(user: &str, password: &SecretString) -> Result<Self, WinRmError> {
        let mut ctx = Ntlm::new();
        let id = identity(user, password)?;
        let handle = ctx
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Inbound)
            .with_auth_data(&id)
            .execute(&mut ctx)
            .map_err(|e| sspi_err("NTLM credentials", e))?
            .credentials_handle;
        Ok(NtlmServer {
            ctx,
            handle,
            user: user.to_string(),
            authenticated: false,
        })
    }

    /// Whether the exchange completed.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Process a client token (NEGOTIATE, then AUTHENTICATE).
    pub fn step(&mut self, input: &[u8]) -> Result<ServerStep, WinRmError> {
        if input.len() > MAX_TOKEN {
            return Err(WinRmError::Auth("NTLM token too large".into()));
        }
        let mut input_buf = vec![SecurityBuffer::new(input.to_vec(), BufferType::Token)];
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let builder = self
            .ctx
            .accept_security_context()
            .with_credentials_handle(&mut self.handle)
            .with_context_requirements(ServerRequestFlags::empty())
            .with_target_data_representation(DataRepresentation::Native)
            .with_input(&mut input_buf)
            .with_output(&mut output);
        let result = self
            .ctx
            .accept_security_context_impl(builder)
            .map_err(|e| sspi_err("NTLM", e))?
            .resolve_to_result()
            .map_err(|e| sspi_err("NTLM message refused", format!("{e:?}")))?;
        match result.status {
            SecurityStatus::ContinueNeeded => Ok(ServerStep::Challenge(
                output.pop().map(|b| b.buffer).unwrap_or_default(),
            )),
            SecurityStatus::CompleteNeeded
            | SecurityStatus::CompleteAndContinue
            | SecurityStatus::Ok => {
                self.ctx
                    .complete_auth_token(&mut [])
                    .map_err(|_| WinRmError::Auth("wrong user name or password".into()))?;
                let names = self
                    .ctx
                    .query_context_names()
                    .map_err(|e| sspi_err("NTLM names", e))?;
                let wire = names.username.account_name().to_string();
                let expected = Username::parse(&self.user)
                    .map(|u| u.account_name().to_string())
                    .unwrap_or_default();
                if !wire.eq_ignore_ascii_case(&expected) {
                    return Err(WinRmError::Auth("wrong user name or password".into()));
                }
                self.authenticated = true;
                Ok(ServerStep::Authenticated)
            }
            other => Err(WinRmError::Auth(format!(
                "unexpected NTLM status {other:?}"
            ))),
        }
    }
}

impl SessionSecurity for NtlmServer {
    fn wrap(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), WinRmError> {
        wrap(&mut self.ctx, plain)
    }
    fn unwrap(&mut self, signature: &[u8], cipher: &[u8]) -> Result<Vec<u8>, WinRmError> {
        unwrap(&mut self.ctx, signature, cipher)
    }
}

fn wrap(ctx: &mut Ntlm, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), WinRmError> {
    let mut token = vec![0u8; SIGNATURE_LEN];
    let mut data = plain.to_vec();
    {
        let mut bufs = [
            SecurityBufferRef::token_buf(token.as_mut_slice()),
            SecurityBufferRef::data_buf(data.as_mut_slice()),
        ];
        ctx.encrypt_message(EncryptionFlags::empty(), &mut bufs)
            .map_err(|e| WinRmError::Protocol(format!("NTLM sealing failed: {e}")))?;
    }
    Ok((token, data))
}

fn unwrap(ctx: &mut Ntlm, signature: &[u8], cipher: &[u8]) -> Result<Vec<u8>, WinRmError> {
    if signature.len() != SIGNATURE_LEN {
        return Err(WinRmError::Protocol(format!(
            "NTLM signature of {} bytes (expected {SIGNATURE_LEN})",
            signature.len()
        )));
    }
    let mut sig = signature.to_vec();
    let mut data = cipher.to_vec();
    {
        let mut bufs = [
            SecurityBufferRef::data_buf(data.as_mut_slice()),
            SecurityBufferRef::token_buf(sig.as_mut_slice()),
        ];
        ctx.decrypt_message(&mut bufs).map_err(|_| {
            WinRmError::Protocol(
                "the NTLM signature of an encrypted message does not match (tampered, or the session is out of step)"
                    .into(),
            )
        })?;
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn handshake(
        user: &str,
        client_pw: &str,
        server_pw: &str,
    ) -> Result<(NtlmClient, NtlmServer), WinRmError> {
        let mut c = NtlmClient::new(user, &SecretString::from(client_pw), "host").unwrap();
        let mut s = NtlmServer::new(user, &SecretString::from(server_pw)).unwrap();
        let (t1, _) = c.step(None)?;
        let ServerStep::Challenge(t2) = s.step(&t1)? else {
            panic!("expected a challenge")
        };
        let (t3, done) = c.step(Some(&t2))?;
        assert!(done);
        match s.step(&t3)? {
            ServerStep::Authenticated => Ok((c, s)),
            ServerStep::Challenge(_) => panic!("expected authentication"),
        }
    }

    #[test]
    fn handshake_and_sealing_both_ways() {
        let (mut c, mut s) = handshake("DOM\\alice", "pw", "pw").unwrap();
        for i in 0..3 {
            let msg = format!("hello {i} ünïcode");
            let (sig, enc) = c.wrap(msg.as_bytes()).unwrap();
            assert_ne!(enc, msg.as_bytes());
            assert_eq!(s.unwrap(&sig, &enc).unwrap(), msg.as_bytes());
            let (sig, enc) = s.wrap(b"answer").unwrap();
            assert_eq!(c.unwrap(&sig, &enc).unwrap(), b"answer");
        }
        let (mut sig, enc) = c.wrap(b"x").unwrap();
        sig[5] ^= 1;
        assert!(s.unwrap(&sig, &enc).is_err());
    }

    #[test]
    fn wrong_password_or_user_is_refused() {
        assert!(matches!(
            handshake("alice", "bad", "good"),
            Err(WinRmError::Auth(_))
        ));
        let mut c = NtlmClient::new("mallory", &SecretString::from("pw"), "host").unwrap();
        let mut s = NtlmServer::new("alice", &SecretString::from("pw")).unwrap();
        let (t1, _) = c.step(None).unwrap();
        let ServerStep::Challenge(t2) = s.step(&t1).unwrap() else {
            panic!()
        };
        let (t3, _) = c.step(Some(&t2)).unwrap();
        assert!(s.step(&t3).is_err());
    }

    #[test]
    fn garbage_tokens_are_errors_not_panics() {
        let mut s = NtlmServer::new("alice", &SecretString::from("pw")).unwrap();
        assert!(s.step(b"NTLMSSP\0garbage").is_err());
        let mut c = NtlmClient::new("alice", &SecretString::from("pw"), "h").unwrap();
        c.step(None).unwrap();
        assert!(c.step(Some(b"\x00\x01")).is_err());
    }
}
