//! Building WS-Management / WinRS request envelopes (MS-WSMV 3.1.4).
//!
//! Every request carries a fresh `MessageID`; the caller checks that the answer's `RelatesTo`
//! matches it (see [`super::response`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;

use super::xml::escape;

/// SOAP 1.2 envelope namespace.
pub const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing namespace.
pub const NS_ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// WS-Management namespace.
pub const NS_WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// Microsoft WS-Management extensions.
pub const NS_WSMAN_MS: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
/// WinRS shell namespace.
pub const NS_SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
/// Resource URI of the cmd shell.
pub const RESOURCE_CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
/// The anonymous reply address.
pub const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// WS-Transfer Create.
pub const ACTION_CREATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
/// WS-Transfer Delete.
pub const ACTION_DELETE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
/// WinRS Command.
pub const ACTION_COMMAND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
/// WinRS Send.
pub const ACTION_SEND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send";
/// WinRS Receive.
pub const ACTION_RECEIVE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
/// WinRS Signal.
pub const ACTION_SIGNAL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";
/// The fault action.
pub const ACTION_FAULT: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault";

/// `CommandState` value of a finished command.
pub const STATE_DONE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
/// `CommandState` value of a running command.
pub const STATE_RUNNING: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running";

/// Signals a client can send to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Terminate the command.
    Terminate,
    /// Ctrl+C.
    CtrlC,
}

impl Signal {
    /// The signal's URI.
    pub fn uri(self) -> &'static str {
        match self {
            Signal::Terminate => {
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
            }
            Signal::CtrlC => {
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
            }
        }
    }
}

/// What a shell is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellSpec {
    /// Console code page (65001 = UTF-8, 437 = OEM US).
    pub codepage: u32,
    /// Working directory, if any.
    pub working_dir: Option<String>,
    /// Environment variables of the shell.
    pub env: BTreeMap<String, String>,
    /// Whether to skip loading the user profile.
    pub no_profile: bool,
    /// Idle timeout asked of the server.
    pub idle_timeout: Option<Duration>,
}

impl Default for ShellSpec {
    fn default() -> Self {
        ShellSpec {
            codepage: 65001,
            working_dir: None,
            env: BTreeMap::new(),
            no_profile: true,
            idle_timeout: None,
        }
    }
}

/// Common header fields of a request.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// The endpoint URL (`a:To`).
    pub to: &'a str,
    /// `MaxEnvelopeSize` in bytes.
    pub max_envelope: u32,
    /// `OperationTimeout`.
    pub operation_timeout: Duration,
    /// `Locale` (e.g. `en-US`).
    pub locale: &'a str,
}

/// A request ready to send: its message id and body.
#[derive(Debug, Clone)]
pub struct Request {
    /// `uuid:...` message id.
    pub message_id: String,
    /// The SOAP envelope.
    pub body: String,
    /// The action, for logs and fault mapping.
    pub action: &'static str,
}

/// A fresh `uuid:` message id.
pub fn new_message_id() -> String {
    format!(
        "uuid:{}",
        uuid::Uuid::new_v4()
            .as_hyphenated()
            .to_string()
            .to_uppercase()
    )
}

/// `xs:duration` in seconds (`PT20.5S`).
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("PT{}S", ms / 1000)
    } else {
        format!("PT{}.{:03}S", ms / 1000, ms % 1000)
    }
}

fn envelope(
    h: &Header<'_>,
    action: &'static str,
    shell_id: Option<&str>,
    options: &[(&str, String)],
    body: &str,
) -> Request {
    let message_id = new_message_id();
    let mut s = String::with_capacity(1500 + body.len());
    let _ = write!(
        s,
        "<s:Envelope xmlns:s=\"{NS_SOAP}\" xmlns:a=\"{NS_ADDRESSING}\" xmlns:w=\"{NS_WSMAN}\" \
         xmlns:p=\"{NS_WSMAN_MS}\" xmlns:rsp=\"{NS_SHELL}\"><s:Header>\
         <a:To>{to}</a:To>\
         <a:ReplyTo><a:Address s:mustUnderstand=\"true\">{ANONYMOUS}</a:Address></a:ReplyTo>\
         <w:MaxEnvelopeSize s:mustUnderstand=\"true\">{max}</w:MaxEnvelopeSize>\
         <a:MessageID>{message_id}</a:MessageID>\
         <w:Locale xml:lang=\"{locale}\" s:mustUnderstand=\"false\"/>\
         <p:DataLocale xml:lang=\"{locale}\" s:mustUnderstand=\"false\"/>\
         <w:OperationTimeout>{timeout}</w:OperationTimeout>\
         <w:ResourceURI s:mustUnderstand=\"true\">{RESOURCE_CMD}</w:ResourceURI>\
         <a:Action s:mustUnderstand=\"true\">{action}</a:Action>",
        to = escape(h.to),
        max = h.max_envelope,
        locale = escape(h.locale),
        timeout = duration(h.operation_timeout),
    );
    if let Some(id) = shell_id {
        let _ = write!(
            s,
            "<w:SelectorSet><w:Selector Name=\"ShellId\">{}</w:Selector></w:SelectorSet>",
            escape(id)
        );
    }
    if !options.is_empty() {
        s.push_str("<w:OptionSet>");
        for (k, v) in options {
            let _ = write!(s, "<w:Option Name=\"{k}\">{}</w:Option>", escape(v));
        }
        s.push_str("</w:OptionSet>");
    }
    s.push_str("</s:Header><s:Body>");
    s.push_str(body);
    s.push_str("</s:Body></s:Envelope>");
    Request {
        message_id,
        body: s,
        action,
    }
}

/// Create a cmd shell.
pub fn create_shell(h: &Header<'_>, spec: &ShellSpec) -> Request {
    let mut body = String::from(
        "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams>\
         <rsp:OutputStreams>stdout stderr</rsp:OutputStreams>",
    );
    if let Some(dir) = &spec.working_dir {
        let _ = write!(
            body,
            "<rsp:WorkingDirectory>{}</rsp:WorkingDirectory>",
            escape(dir)
        );
    }
    if let Some(idle) = spec.idle_timeout {
        let _ = write!(
            body,
            "<rsp:IdleTimeOut>{}</rsp:IdleTimeOut>",
            duration(idle)
        );
    }
    if !spec.env.is_empty() {
        body.push_str("<rsp:Environment>");
        for (k, v) in &spec.env {
            let _ = write!(
                body,
                "<rsp:Variable Name=\"{}\">{}</rsp:Variable>",
                escape(k),
                escape(v)
            );
        }
        body.push_str("</rsp:Environment>");
    }
    body.push_str("</rsp:Shell>");
    let options = [
        (
            "WINRS_NOPROFILE",
            if spec.no_profile { "TRUE" } else { "FALSE" }.to_string(),
        ),
        ("WINRS_CODEPAGE", spec.codepage.to_string()),
    ];
    envelope(h, ACTION_CREATE, None, &options, &body)
}

/// Start `command` (a full command line, run by the shell's cmd) in `shell_id`.
pub fn command(h: &Header<'_>, shell_id: &str, command: &str, args: &[String]) -> Request {
    let mut body = format!(
        "<rsp:CommandLine><rsp:Command>{}</rsp:Command>",
        escape(command)
    );
    for a in args {
        let _ = write!(body, "<rsp:Arguments>{}</rsp:Arguments>", escape(a));
    }
    body.push_str("</rsp:CommandLine>");
    let options = [
        ("WINRS_CONSOLEMODE_STDIN", "TRUE".to_string()),
        ("WINRS_SKIP_CMD_SHELL", "FALSE".to_string()),
    ];
    envelope(h, ACTION_COMMAND, Some(shell_id), &options, &body)
}

/// Send `data` to the command's stdin; `end` closes stdin.
pub fn send(h: &Header<'_>, shell_id: &str, command_id: &str, data: &[u8], end: bool) -> Request {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let body = format!(
        "<rsp:Send><rsp:Stream Name=\"stdin\" CommandId=\"{}\"{}>{b64}</rsp:Stream></rsp:Send>",
        escape(command_id),
        if end { " End=\"true\"" } else { "" }
    );
    envelope(h, ACTION_SEND, Some(shell_id), &[], &body)
}

/// Receive stdout and stderr of a command.
pub fn receive(h: &Header<'_>, shell_id: &str, command_id: &str) -> Request {
    let body = format!(
        "<rsp:Receive><rsp:DesiredStream CommandId=\"{}\">stdout stderr</rsp:DesiredStream></rsp:Receive>",
        escape(command_id)
    );
    let options = [("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE".to_string())];
    envelope(h, ACTION_RECEIVE, Some(shell_id), &options, &body)
}

/// Signal a command.
pub fn signal(h: &Header<'_>, shell_id: &str, command_id: &str, sig: Signal) -> Request {
    let body = format!(
        "<rsp:Signal CommandId=\"{}\"><rsp:Code>{}</rsp:Code></rsp:Signal>",
        escape(command_id),
        sig.uri()
    );
    envelope(h, ACTION_SIGNAL, Some(shell_id), &[], &body)
}

/// Delete a shell.
pub fn delete_shell(h: &Header<'_>, shell_id: &str) -> Request {
    envelope(h, ACTION_DELETE, Some(shell_id), &[], "")
}

/// The PowerShell command line that runs `script` (`-EncodedCommand`, UTF-16LE base64).
pub fn powershell_command(script: &str) -> String {
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    format!(
        "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand {}",
        base64::engine::general_purpose::STANDARD.encode(utf16)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winrm::xml;

    fn header() -> Header<'static> {
        Header {
            to: "http://host:5985/wsman",
            max_envelope: 153600,
            operation_timeout: Duration::from_secs(20),
            locale: "en-US",
        }
    }

    #[test]
    fn create_has_codepage_env_and_dir() {
        let mut spec = ShellSpec {
            working_dir: Some("C:\\a&b".into()),
            ..ShellSpec::default()
        };
        spec.env.insert("K".into(), "v<1>".into());
        let r = create_shell(&header(), &spec);
        let doc = xml::parse(r.body.as_bytes()).unwrap();
        let h = doc.child("Header").unwrap();
        assert_eq!(h.child("MessageID").unwrap().text, r.message_id);
        assert_eq!(h.child("Action").unwrap().text, ACTION_CREATE);
        assert_eq!(h.child("OperationTimeout").unwrap().text, "PT20S");
        let opts: Vec<_> = h.child("OptionSet").unwrap().children.iter().collect();
        assert!(
            opts.iter()
                .any(|o| o.attr("Name") == Some("WINRS_CODEPAGE") && o.text == "65001")
        );
        let shell = doc.path(&["Body", "Shell"]).unwrap();
        assert_eq!(shell.child("WorkingDirectory").unwrap().text, "C:\\a&b");
        let var = shell.path(&["Environment", "Variable"]).unwrap();
        assert_eq!((var.attr("Name"), var.text.as_str()), (Some("K"), "v<1>"));
    }

    #[test]
    fn command_send_receive_signal_delete() {
        let h = header();
        let c = command(&h, "S1", "echo <hi>", &[]);
        let doc = xml::parse(c.body.as_bytes()).unwrap();
        assert_eq!(doc.find("Selector").unwrap().text, "S1");
        assert_eq!(doc.find("Command").unwrap().text, "echo <hi>");
        let s = send(&h, "S1", "C1", b"abc", true);
        let doc = xml::parse(s.body.as_bytes()).unwrap();
        let st = doc.find("Stream").unwrap();
        assert_eq!((st.attr("End"), st.text.as_str()), (Some("true"), "YWJj"));
        let r = receive(&h, "S1", "C1");
        let doc = xml::parse(r.body.as_bytes()).unwrap();
        assert_eq!(
            doc.find("DesiredStream").unwrap().attr("CommandId"),
            Some("C1")
        );
        let g = signal(&h, "S1", "C1", Signal::Terminate);
        assert!(g.body.contains("signal/terminate"));
        let d = delete_shell(&h, "S1");
        assert!(xml::parse(d.body.as_bytes()).is_ok());
        assert_ne!(c.message_id, s.message_id);
    }

    #[test]
    fn powershell_is_utf16le_base64() {
        let line = powershell_command("Write-Output 'é'");
        let b64 = line.rsplit(' ').next().unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let units: Vec<u16> = raw
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(String::from_utf16(&units).unwrap(), "Write-Output 'é'");
        assert_eq!(duration(Duration::from_millis(1500)), "PT1.500S");
    }
}
