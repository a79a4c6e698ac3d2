//! Fuzz targets for every parser of untrusted input in the WinRM connector (feature `fuzzing`).
//!
//! The same functions are driven by `cargo fuzz` (`orca-connectors/fuzz`, nightly, libFuzzer)
//! and by the stable smoke test `tests/winrm_fuzz_smoke.rs`. Each takes arbitrary bytes, must
//! never panic, and asserts the properties that must hold for any input (round trips, that a
//! tampered sealed message is refused, that a forged NTLM message never authenticates, that
//! error messages stay short). See `docs/fuzzing.md`.

mod seeds;

use crate::winrm::clixml::{self, ClixmlDecoder};
use crate::winrm::error::WinRmError;
use crate::winrm::ntlm::{NtlmClient, NtlmServer, ServerStep, SessionSecurity};
use crate::winrm::{response, sealing, xml};
use secrecy::SecretString;

pub use seeds::seeds;

/// The `MessageID` the SOAP target's answers must relate to.
pub const MESSAGE_ID: &str = "uuid:0F6C7A1E-5B7D-4C1A-9D43-3E1F00000001";
/// The `CommandId` the SOAP target reads streams for.
pub const COMMAND_ID: &str = "1A2B3C4D-0000-4000-8000-00000000C0DE";
/// Longest error message a parser may produce (they end up in an execution's reason).
pub const MAX_ERROR_MESSAGE: usize = 4096;

/// A fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The SOAP answer parser (`xml.rs`, `response.rs`).
    SoapResponse,
    /// The CLIXML stderr decoder (`clixml.rs`).
    Clixml,
    /// The MS-WSMV `multipart/encrypted` parser and NTLM unsealing (`sealing.rs`).
    Sealing,
    /// NTLM messages from a peer, both sides (`ntlm.rs` through `sspi`).
    Ntlm,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 4] = [
        Target::SoapResponse,
        Target::Clixml,
        Target::Sealing,
        Target::Ntlm,
    ];

    /// The name of its `cargo fuzz` target.
    pub fn name(self) -> &'static str {
        match self {
            Target::SoapResponse => "soap_response",
            Target::Clixml => "clixml",
            Target::Sealing => "sealing",
            Target::Ntlm => "ntlm",
        }
    }

    /// Run one input.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::SoapResponse => soap_response(data),
            Target::Clixml => clixml(data),
            Target::Sealing => sealing(data),
            Target::Ntlm => ntlm(data),
        }
    }
}

/// The message of the `orca_core::Error` a parser error becomes is an execution's reason, kept
/// in the database: it must stay short and hold no NUL (PostgreSQL text cannot store one),
/// whatever the peer sent.
fn check_message(what: &str, e: &WinRmError) {
    let m = e.clone().into_error(true).message().to_string();
    assert!(
        m.len() <= MAX_ERROR_MESSAGE,
        "{what}: an error message of {} bytes echoes too much of the input",
        m.len()
    );
    assert!(
        !m.contains('\0'),
        "{what}: an error message holds a NUL: {m:?}"
    );
}

/// The SOAP answer parser: any bytes as the answer to [`MESSAGE_ID`], then the Create,
/// Command and Receive readers. A UTF-8 input is also escaped and parsed back.
pub fn soap_response(data: &[u8]) {
    match response::parse(data, MESSAGE_ID) {
        Ok(answer) => {
            let _ = response::shell_id(&answer);
            let _ = response::command_id(&answer);
            match response::received(&answer, COMMAND_ID) {
                Ok(r) => {
                    let decoded: usize = r.chunks.iter().map(|(_, d)| d.len()).sum();
                    assert!(decoded <= data.len(), "base64 decoding grew the input");
                }
                Err(e) => check_message("received", &e),
            }
        }
        Err(WinRmError::Fault(f)) => {
            let _ = f.kind();
            assert!(
                f.reason.chars().count() <= 500,
                "fault reason not truncated"
            );
            check_message("fault", &WinRmError::Fault(f));
        }
        Err(e @ WinRmError::Protocol(_)) => check_message("parse", &e),
        Err(other) => panic!("the SOAP parser returned a non-protocol error: {other:?}"),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let e = xml::escape(text);
        let doc = format!("<x v=\"{e}\">{e}</x>");
        let el = xml::parse(doc.as_bytes()).expect("escaped text parses");
        assert_eq!(el.text, text, "element text round trip");
        assert_eq!(el.attr("v"), Some(text), "attribute round trip");
    }
}

/// A tiny reader of structured choices from fuzz bytes.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Feed `doc` to a decoder in pieces whose sizes come from `sizes` (cycled; 0 = 1 byte).
fn decode_in_pieces(doc: &[u8], sizes: &[u8]) -> Vec<u8> {
    let mut d = ClixmlDecoder::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < doc.len() {
        let n = match sizes.get(i % sizes.len().max(1)) {
            Some(s) => usize::from(*s).max(1),
            None => doc.len(),
        };
        let end = (pos + n).min(doc.len());
        out.extend(d.push(&doc[pos..end]));
        pos = end;
        i += 1;
    }
    out.extend(d.finish());
    out
}

/// The CLIXML decoder. First byte even: arbitrary stderr split into pieces, which must decode
/// without panicking to at most three bytes per input byte. Odd: a CLIXML document built from
/// the input (error, warning, verbose and progress records), split anywhere, must decode to
/// exactly the records' text.
pub fn clixml(data: &[u8]) {
    let mut u = Bytes(data);
    let mode = u.byte();
    if mode % 2 == 0 {
        let split = usize::from(u.byte() % 8);
        let sizes = u.take(split).to_vec();
        let input = u.0;
        let out = decode_in_pieces(input, &sizes);
        assert!(
            out.len() <= 3 * input.len() + 16,
            "{} bytes of stderr decoded to {} bytes",
            input.len(),
            out.len()
        );
        return;
    }
    let split = usize::from(u.byte() % 16);
    let sizes = u.take(split).to_vec();
    let mut doc = String::from(
        "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">",
    );
    let mut expected = String::new();
    let mut n = 0;
    while !u.is_empty() && n < 64 {
        n += 1;
        let kind = u.byte();
        let len = usize::from(u.byte());
        let text = String::from_utf8_lossy(u.take(len)).into_owned();
        let record = clixml::encode_error_record(&text);
        match kind % 5 {
            0 => {
                doc.push_str(&record);
                expected.push_str(&text);
            }
            1 => {
                doc.push_str(&record.replacen("S=\"Error\"", "S=\"Warning\"", 1));
                expected.push_str("WARNING: ");
                expected.push_str(&text);
            }
            2 => {
                doc.push_str(&record.replacen("S=\"Error\"", "S=\"Verbose\"", 1));
                expected.push_str("VERBOSE: ");
                expected.push_str(&text);
            }
            3 => {
                let escaped = &record["<S S=\"Error\">".len()..record.len() - "</S>".len()];
                doc.push_str(&format!(
                    "<Obj S=\"progress\" RefId=\"{n}\"><TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T>\
                     <T>System.Object</T></TN><MS><I64 N=\"SourceId\">1</I64><PR N=\"Record\"><AV>{escaped}</AV>\
                     <AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>"
                ));
            }
            _ => doc.push_str("\r\n"),
        }
    }
    doc.push_str("</Objs>");
    let out = decode_in_pieces(doc.as_bytes(), &sizes);
    assert_eq!(
        String::from_utf8_lossy(&out),
        expected,
        "CLIXML round trip (document {doc:?}, pieces {sizes:?})"
    );
}

fn ntlm_pair() -> (NtlmClient, NtlmServer) {
    let pw = SecretString::from("Fuzz-Pass-1");
    let mut c = NtlmClient::new("FUZZ\\orca", &pw, "winrm.example").expect("client");
    let mut s = NtlmServer::new("FUZZ\\orca", &pw).expect("server");
    let (t1, _) = c.step(None).expect("negotiate");
    let ServerStep::Challenge(t2) = s.step(&t1).expect("challenge") else {
        panic!("the server did not challenge")
    };
    let (t3, _) = c.step(Some(&t2)).expect("authenticate");
    assert!(matches!(s.step(&t3), Ok(ServerStep::Authenticated)));
    (c, s)
}

/// The sealing parser. First byte `0`/`1`: the rest is a sealed body for the server/client to
/// unseal: it can never verify (the fuzzer cannot forge a signature). Else: the rest is a
/// plaintext that one side seals; the body is mutated as the second byte says (none, flip a
/// byte of the encrypted part, truncate, or change a header byte) and the other side unseals.
/// Untouched, the plaintext comes back exactly; a flipped payload byte or a cut into the
/// message is refused.
pub fn sealing(data: &[u8]) {
    let mut u = Bytes(data);
    let mode = u.byte();
    let (mut c, mut s) = ntlm_pair();
    let (sender, receiver): (&mut dyn SessionSecurity, &mut dyn SessionSecurity) = if mode % 2 == 0
    {
        (&mut c, &mut s)
    } else {
        (&mut s, &mut c)
    };
    if mode < 2 {
        match sealing::unseal(receiver, u.0) {
            Ok(plain) => panic!("an unsigned body of {} bytes was accepted", plain.len()),
            Err(e) => check_message("unseal", &e),
        }
        return;
    }
    let op = u.byte();
    let at = usize::from(u16::from_le_bytes([u.byte(), u.byte()]));
    let plain = u.0;
    let mut body = sealing::seal(sender, plain).expect("seal");
    // The encrypted part: after the second part's header, before the closing boundary.
    let trailer = b"--Encrypted Boundary--\r\n".len();
    let payload_start = body.len() - trailer - plain.len() - 16 - 4;
    let payload_len = plain.len() + 16 + 4;
    let must_fail = match op % 4 {
        0 => false,
        1 => {
            body[payload_start + at % payload_len] ^= 1 << (at % 8);
            true
        }
        2 => {
            // Cutting only the final CRLF leaves a complete message (both endings are valid).
            let cut = at % body.len();
            body.truncate(cut);
            !body.ends_with(b"--Encrypted Boundary--")
        }
        _ => {
            let i = at % payload_start;
            body[i] = body[i].wrapping_add(1);
            false
        }
    };
    match sealing::unseal(receiver, &body) {
        Ok(got) => {
            assert!(!must_fail, "a tampered sealed message was accepted");
            assert_eq!(got, plain, "seal/unseal round trip");
        }
        Err(e) => {
            assert!(op % 4 != 0, "an intact sealed message was refused: {e}");
            check_message("unseal", &e);
        }
    }
}

/// NTLM messages from a peer. By the first byte: the client reads the input as the server's
/// CHALLENGE; a fresh server reads it as NEGOTIATE; a server that sent a real CHALLENGE reads
/// it as AUTHENTICATE (which must never authenticate: it cannot know the password); or a real
/// exchange whose CHALLENGE the input mutates (byte, position pairs) before the client reads it.
pub fn ntlm(data: &[u8]) {
    let mut u = Bytes(data);
    let mode = u.byte();
    let pw = SecretString::from("Fuzz-Pass-1");
    match mode % 4 {
        0 => {
            let mut c = NtlmClient::new("FUZZ\\orca", &pw, "winrm.example").expect("client");
            c.step(None).expect("negotiate");
            if let Err(e) = c.step(Some(u.0)) {
                check_message("client", &e);
            }
        }
        1 => {
            let mut s = NtlmServer::new("FUZZ\\orca", &pw).expect("server");
            if let Err(e) = s.step(u.0) {
                check_message("server", &e);
            }
        }
        2 => {
            let mut c = NtlmClient::new("FUZZ\\orca", &pw, "winrm.example").expect("client");
            let mut s = NtlmServer::new("FUZZ\\orca", &pw).expect("server");
            let (t1, _) = c.step(None).expect("negotiate");
            assert!(matches!(s.step(&t1), Ok(ServerStep::Challenge(_))));
            match s.step(u.0) {
                Ok(ServerStep::Authenticated) => {
                    panic!("a forged AUTHENTICATE message was accepted")
                }
                Ok(ServerStep::Challenge(_)) => {}
                Err(e) => check_message("server", &e),
            }
            assert!(!s.is_authenticated());
        }
        _ => {
            let mut c = NtlmClient::new("FUZZ\\orca", &pw, "winrm.example").expect("client");
            let mut s = NtlmServer::new("FUZZ\\orca", &pw).expect("server");
            let (t1, _) = c.step(None).expect("negotiate");
            let Ok(ServerStep::Challenge(mut t2)) = s.step(&t1) else {
                panic!("the server did not challenge")
            };
            while !u.is_empty() && !t2.is_empty() {
                let (v, at) = (u.byte(), usize::from(u.byte()));
                match v {
                    0 => t2.truncate(at % t2.len()),
                    _ => {
                        let i = at % t2.len();
                        t2[i] ^= v;
                    }
                }
            }
            if let Err(e) = c.step(Some(&t2)) {
                check_message("client", &e);
            }
        }
    }
}
