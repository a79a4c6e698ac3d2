//! MS-WSMV message encryption (2.2.9.1): a SOAP message sealed by the session's security
//! context travels as `multipart/encrypted` with two MIME parts.
//!
//! ```text
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n
//! \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plain length>\r\n
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/octet-stream\r\n
//! <u32 LE signature length><signature><ciphertext>--Encrypted Boundary--\r\n
//! ```

use super::error::WinRmError;
use super::ntlm::SessionSecurity;

/// The protocol parameter for NTLM (and Kerberos) through SPNEGO.
pub const PROTOCOL_SPNEGO: &str = "application/HTTP-SPNEGO-session-encrypted";
/// The HTTP `Content-Type` of a sealed message.
pub const CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";
const BOUNDARY: &[u8] = b"--Encrypted Boundary";
const OCTET: &[u8] = b"\tContent-Type: application/octet-stream\r\n";
/// Largest plaintext accepted after decryption.
pub const MAX_PLAIN: usize = 64 * 1024 * 1024;

/// Seal `plain` into a multipart body.
pub fn seal(sec: &mut dyn SessionSecurity, plain: &[u8]) -> Result<Vec<u8>, WinRmError> {
    let (sig, cipher) = sec.wrap(plain)?;
    let mut out = Vec::with_capacity(plain.len() + 300);
    out.extend_from_slice(BOUNDARY);
    out.extend_from_slice(b"\r\n\tContent-Type: ");
    out.extend_from_slice(PROTOCOL_SPNEGO.as_bytes());
    out.extend_from_slice(
        format!(
            "\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={}\r\n",
            plain.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(BOUNDARY);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(OCTET);
    out.extend_from_slice(&(sig.len() as u32).to_le_bytes());
    out.extend_from_slice(&sig);
    out.extend_from_slice(&cipher);
    out.extend_from_slice(BOUNDARY);
    out.extend_from_slice(b"--\r\n");
    Ok(out)
}

/// Whether an HTTP `Content-Type` announces a sealed message.
pub fn is_sealed(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("multipart/encrypted") || ct.starts_with("multipart/x-multi-encrypted")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Unseal a multipart body (one encrypted part) into the SOAP message.
pub fn unseal(sec: &mut dyn SessionSecurity, body: &[u8]) -> Result<Vec<u8>, WinRmError> {
    let bad = |m: &str| WinRmError::Protocol(format!("malformed encrypted message: {m}"));
    let rest = body
        .strip_prefix(BOUNDARY)
        .and_then(|r| r.strip_prefix(b"\r\n"))
        .ok_or_else(|| bad("it does not start with the MIME boundary"))?;
    let second = find(rest, BOUNDARY).ok_or_else(|| bad("the second MIME part is missing"))?;
    let header =
        std::str::from_utf8(&rest[..second]).map_err(|_| bad("the MIME header is not text"))?;
    if !header.contains("session-encrypted") {
        return Err(bad(
            "the first part does not name a session encryption protocol",
        ));
    }
    let length: usize = header
        .split("Length=")
        .nth(1)
        .map(|s| s.trim().trim_end_matches(['\r', '\n', ';']).trim())
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("OriginalContent has no Length"))?;
    if length > MAX_PLAIN {
        return Err(bad("the announced length is too large"));
    }
    let part = &rest[second + BOUNDARY.len()..];
    let part = part
        .strip_prefix(b"\r\n")
        .ok_or_else(|| bad("bad MIME part separator"))?;
    let part = part
        .strip_prefix(OCTET)
        .ok_or_else(|| bad("the second part is not application/octet-stream"))?;
    let mut end = part.len();
    for trailer in [
        &b"--Encrypted Boundary--\r\n"[..],
        b"--Encrypted Boundary--",
    ] {
        if part.ends_with(trailer) {
            end = part.len() - trailer.len();
            break;
        }
    }
    if end == part.len() {
        return Err(bad(
            "the closing MIME boundary is missing (truncated message?)",
        ));
    }
    let payload = &part[..end];
    if payload.len() < 4 {
        return Err(bad("the encrypted part is too short"));
    }
    let sig_len = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
    if sig_len > 1024 || payload.len() < 4 + sig_len {
        return Err(bad("bad signature length"));
    }
    let (sig, cipher) = payload[4..].split_at(sig_len);
    if cipher.len() != length {
        return Err(bad(&format!(
            "{} encrypted bytes but OriginalContent says {length}",
            cipher.len()
        )));
    }
    sec.unwrap(sig, cipher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winrm::ntlm::{NtlmClient, NtlmServer, ServerStep};
    use secrecy::SecretString;

    fn pair() -> (NtlmClient, NtlmServer) {
        let mut c = NtlmClient::new("u", &SecretString::from("p"), "h").unwrap();
        let mut s = NtlmServer::new("u", &SecretString::from("p")).unwrap();
        let (t1, _) = c.step(None).unwrap();
        let ServerStep::Challenge(t2) = s.step(&t1).unwrap() else {
            panic!()
        };
        let (t3, _) = c.step(Some(&t2)).unwrap();
        s.step(&t3).unwrap();
        (c, s)
    }

    #[test]
    fn seal_unseal_round_trip_and_tamper() {
        let (mut c, mut s) = pair();
        let body = seal(&mut c, b"<s:Envelope/>").unwrap();
        assert!(
            body.starts_with(b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO")
        );
        assert_eq!(unseal(&mut s, &body).unwrap(), b"<s:Envelope/>");
        let mut body = seal(&mut s, b"answer").unwrap();
        let n = body.len();
        body[n - 30] ^= 0x55; // flip a ciphertext byte
        assert!(unseal(&mut c, &body).is_err());
    }

    #[test]
    fn truncated_and_garbage_are_errors() {
        let (mut c, mut s) = pair();
        let body = seal(&mut c, b"hello world").unwrap();
        for cut in [0, 10, 40, body.len() - 30, body.len() - 5] {
            assert!(unseal(&mut s, &body[..cut]).is_err(), "cut {cut}");
        }
        assert!(unseal(&mut s, b"--Encrypted Boundary\r\nxx").is_err());
        assert!(is_sealed(CONTENT_TYPE));
    }
}
