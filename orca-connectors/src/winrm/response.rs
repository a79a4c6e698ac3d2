//! Parsing WS-Management answers: envelopes, `RelatesTo`, shell/command ids, Receive streams,
//! command state and SOAP faults. Never panics on hostile input.

use base64::Engine as _;
use orca_core::model::Stream;

use super::error::{Fault, WinRmError};
use super::protocol::STATE_DONE;
use super::xml::{self, Element};

/// A parsed answer that is not a fault.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The SOAP body.
    pub body: Element,
    /// The SOAP header.
    pub header: Element,
}

/// What one Receive returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// Output pieces in document order.
    pub chunks: Vec<(Stream, Vec<u8>)>,
    /// `Some(exit code)` once the command is done (`Some(None)`: done without an exit code).
    pub done: Option<Option<i32>>,
}

/// Parse `doc` as the answer to the request `message_id`. Faults become `Err(Fault)`.
pub fn parse(doc: &[u8], message_id: &str) -> Result<Answer, WinRmError> {
    let root =
        xml::parse(doc).map_err(|e| WinRmError::Protocol(format!("the answer is not XML: {e}")))?;
    if root.name != "Envelope" {
        return Err(WinRmError::Protocol(format!(
            "the answer is not a SOAP envelope (root element '{}')",
            truncate(&root.name)
        )));
    }
    let header = root.child("Header").cloned().unwrap_or_default();
    let body = root
        .child("Body")
        .cloned()
        .ok_or_else(|| WinRmError::Protocol("the SOAP answer has no Body".into()))?;
    let relates = header.child("RelatesTo").map(|e| e.text_trim().to_string());
    if let Some(fault) = body.child("Fault") {
        // A fault about this very request, or one the server could not tie to it.
        if let Some(r) = &relates
            && !r.eq_ignore_ascii_case(message_id)
        {
            return Err(WinRmError::Protocol(format!(
                "a SOAP fault relates to '{}', not to our request '{message_id}'",
                truncate(r)
            )));
        }
        return Err(WinRmError::Fault(parse_fault(fault)));
    }
    match relates {
        Some(r) if r.eq_ignore_ascii_case(message_id) => Ok(Answer { body, header }),
        Some(r) => Err(WinRmError::Protocol(format!(
            "the answer relates to '{}', not to our request '{message_id}'",
            truncate(&r)
        ))),
        None => Err(WinRmError::Protocol(
            "the answer has no RelatesTo header; refusing an answer that cannot be matched to its request".into(),
        )),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Parse a `s:Fault` element.
pub fn parse_fault(fault: &Element) -> Fault {
    let code = fault.child("Code");
    let value = code
        .and_then(|c| c.child("Value"))
        .map(|v| v.text_trim().to_string())
        .unwrap_or_default();
    let subcode = code
        .and_then(|c| c.path(&["Subcode", "Value"]))
        .map(|v| strip_prefix(v.text_trim()))
        .unwrap_or_default();
    let reason = fault
        .child("Reason")
        .and_then(|r| r.child("Text"))
        .map(|t| t.text_trim().to_string())
        .unwrap_or_default();
    let wsman = fault.find("WSManFault");
    let wsman_code = wsman
        .and_then(|w| w.attr("Code"))
        .and_then(|c| c.trim().parse::<u64>().ok());
    let message = wsman
        .and_then(|w| w.find("Message"))
        .map(|m| collect_text(m).trim().to_string())
        .filter(|m| !m.is_empty());
    Fault {
        code: strip_prefix(&value),
        subcode,
        wsman_code,
        reason: truncate_long(&message.unwrap_or(reason)),
    }
}

fn collect_text(e: &Element) -> String {
    let mut s = e.text.clone();
    for c in &e.children {
        s.push_str(&collect_text(c));
    }
    s
}

fn truncate_long(s: &str) -> String {
    s.chars().take(500).collect()
}

fn strip_prefix(v: &str) -> String {
    match v.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => v.to_string(),
    }
}

/// The shell id in a Create answer (either `rsp:Shell/rsp:ShellId` or the `ShellId` selector of
/// `ResourceCreated`).
pub fn shell_id(a: &Answer) -> Result<String, WinRmError> {
    let from_selector = a
        .body
        .find("Selector")
        .filter(|s| s.attr("Name") == Some("ShellId"))
        .map(|s| s.text_trim().to_string());
    let from_shell = a.body.find("ShellId").map(|s| s.text_trim().to_string());
    from_shell
        .or(from_selector)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WinRmError::Protocol("the Create answer has no ShellId".into()))
}

/// The command id in a Command answer.
pub fn command_id(a: &Answer) -> Result<String, WinRmError> {
    a.body
        .find("CommandId")
        .map(|s| s.text_trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WinRmError::Protocol("the Command answer has no CommandId".into()))
}

/// The streams and state in a Receive answer for `command_id`.
pub fn received(a: &Answer, command_id: &str) -> Result<Received, WinRmError> {
    let resp = a
        .body
        .child("ReceiveResponse")
        .ok_or_else(|| WinRmError::Protocol("the Receive answer has no ReceiveResponse".into()))?;
    let mut out = Received::default();
    let b64 = base64::engine::general_purpose::STANDARD;
    for s in resp.children_named("Stream") {
        if let Some(id) = s.attr("CommandId")
            && !id.eq_ignore_ascii_case(command_id)
        {
            continue;
        }
        let stream = match s.attr("Name") {
            Some("stdout") => Stream::Stdout,
            Some("stderr") => Stream::Stderr,
            Some(other) => {
                return Err(WinRmError::Protocol(format!(
                    "the Receive answer has an unknown stream '{}'",
                    truncate(other)
                )));
            }
            None => return Err(WinRmError::Protocol("a Receive stream has no Name".into())),
        };
        let text: String = s
            .text
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if text.is_empty() {
            continue;
        }
        let data = b64.decode(text.as_bytes()).map_err(|e| {
            WinRmError::Protocol(format!(
                "a Receive stream has invalid or truncated base64: {e}"
            ))
        })?;
        out.chunks.push((stream, data));
    }
    if let Some(state) = resp.child("CommandState") {
        if let Some(id) = state.attr("CommandId")
            && !id.eq_ignore_ascii_case(command_id)
        {
            return Err(WinRmError::Protocol(format!(
                "the Receive answer reports the state of command '{}', not ours",
                truncate(id)
            )));
        }
        if state.attr("State") == Some(STATE_DONE) {
            let code = match state.child("ExitCode") {
                Some(c) => Some(parse_exit_code(c.text_trim())?),
                None => None,
            };
            out.done = Some(code);
        }
    }
    Ok(out)
}

/// Windows exit codes are 32-bit; values above `i32::MAX` (e.g. 3221225786 = 0xC000013A) keep
/// their bit pattern.
pub fn parse_exit_code(s: &str) -> Result<i32, WinRmError> {
    if let Ok(v) = s.parse::<i32>() {
        return Ok(v);
    }
    s.parse::<u32>()
        .map(|v| v as i32)
        .map_err(|_| WinRmError::Protocol(format!("invalid ExitCode '{}'", truncate(s))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winrm::error::FaultKind;

    fn env(relates: &str, body: &str) -> String {
        format!(
            "<s:Envelope xmlns:s=\"x\" xmlns:a=\"y\" xmlns:rsp=\"z\"><s:Header><a:RelatesTo>{relates}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
        )
    }

    #[test]
    fn receive_with_streams_and_exit() {
        let doc = env(
            "uuid:1",
            "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\" CommandId=\"C\">aGk=</rsp:Stream>\
             <rsp:Stream Name=\"stderr\" CommandId=\"C\">ZXJy</rsp:Stream>\
             <rsp:Stream Name=\"stdout\" CommandId=\"C\" End=\"true\"></rsp:Stream>\
             <rsp:CommandState CommandId=\"C\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done\"><rsp:ExitCode>3221225786</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>",
        );
        let a = parse(doc.as_bytes(), "uuid:1").unwrap();
        let r = received(&a, "C").unwrap();
        assert_eq!(
            r.chunks,
            vec![
                (Stream::Stdout, b"hi".to_vec()),
                (Stream::Stderr, b"err".to_vec())
            ]
        );
        assert_eq!(r.done, Some(Some(0xC000013Au32 as i32)));
    }

    #[test]
    fn wrong_relates_to_and_bad_base64_are_errors() {
        let doc = env("uuid:2", "<rsp:ReceiveResponse/>");
        assert!(matches!(
            parse(doc.as_bytes(), "uuid:1"),
            Err(WinRmError::Protocol(_))
        ));
        let doc = env(
            "uuid:1",
            "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\">aGk</rsp:Stream></rsp:ReceiveResponse>",
        );
        let a = parse(doc.as_bytes(), "uuid:1").unwrap();
        assert!(received(&a, "C").is_err());
        assert!(parse(b"<html>no</html>", "uuid:1").is_err());
        assert!(parse(b"\xff\xfe<", "uuid:1").is_err());
    }

    #[test]
    fn faults_are_classified() {
        let fault = |sub: &str, code: u64| {
            env(
                "uuid:1",
                &format!(
                    "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:{sub}</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"\">r</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f=\"q\" Code=\"{code}\"><f:Message>m <b>x</b></f:Message></f:WSManFault></s:Detail></s:Fault>"
                ),
            )
        };
        let kind = |d: String| match parse(d.as_bytes(), "uuid:1") {
            Err(WinRmError::Fault(f)) => (f.kind(), f.reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(fault("TimedOut", 2150858793)).0, FaultKind::TimedOut);
        assert_eq!(kind(fault("AccessDenied", 5)).0, FaultKind::AccessDenied);
        assert_eq!(
            kind(fault("InvalidSelectors", 2150858843)).0,
            FaultKind::ShellNotFound
        );
        assert_eq!(
            kind(fault("QuotaLimit", 2150859174)),
            (FaultKind::QuotaExceeded, "m x".into())
        );
        assert_eq!(kind(fault("InternalError", 1)).0, FaultKind::Other);
    }
}
