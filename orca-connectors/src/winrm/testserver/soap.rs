//! The test server's WS-Management shell service: Create, Command, Send, Receive, Signal,
//! Delete, with MessageID/RelatesTo, quotas, idle timeout and faults as Windows sends them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::script::{self, Output};
use super::{BadAnswer, ServerState};
use crate::winrm::error::{CODE_ACCESS_DENIED, CODE_SHELL_NOT_FOUND, CODE_TIMED_OUT};
use crate::winrm::protocol::{self as p, Signal};
use crate::winrm::xml::{self, Element, escape};

/// Raw output bytes gathered into one Receive answer at most.
const RECEIVE_BYTES: usize = 256 * 1024;

/// A running command.
#[derive(Debug)]
pub struct Command {
    rx: tokio::sync::Mutex<mpsc::Receiver<Output>>,
    stdin: mpsc::UnboundedSender<Option<Vec<u8>>>,
    cancel: CancellationToken,
}

/// A shell.
#[derive(Debug)]
pub struct ShellState {
    owner: String,
    codepage: u32,
    env: BTreeMap<String, String>,
    cwd: String,
    commands: HashMap<String, Arc<Command>>,
    last_used: Instant,
}

impl Drop for ShellState {
    fn drop(&mut self) {
        for c in self.commands.values() {
            c.cancel.cancel();
        }
    }
}

/// All shells of the server.
#[derive(Debug, Default)]
pub struct Shells {
    map: Mutex<HashMap<String, ShellState>>,
}

impl Shells {
    /// How many shells exist.
    pub fn count(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
    /// Forget every shell (as after the server's idle timeout or a restart).
    pub fn expire_all(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }
}

/// An HTTP status and SOAP text.
pub struct Reply {
    /// 200 or 500.
    pub status: u16,
    /// The envelope.
    pub body: String,
}

struct Req {
    action: String,
    message_id: String,
    shell_id: Option<String>,
    timeout: Duration,
    body: Element,
    options: HashMap<String, String>,
}

fn parse_req(doc: &[u8]) -> Result<Req, Reply> {
    let root = xml::parse(doc).map_err(|e| {
        fault(
            "",
            "Sender",
            "SchemaValidationError",
            None,
            &format!("bad XML: {e}"),
        )
    })?;
    let header = root.child("Header").cloned().unwrap_or_default();
    let text = |n: &str| header.child(n).map(|e| e.text_trim().to_string());
    let message_id = text("MessageID").unwrap_or_default();
    if message_id.is_empty() {
        return Err(fault(
            "",
            "Sender",
            "InvalidMessageInformationHeader",
            None,
            "the request has no MessageID",
        ));
    }
    let resource = text("ResourceURI").unwrap_or_default();
    if !resource.eq_ignore_ascii_case(p::RESOURCE_CMD) {
        return Err(fault(
            &message_id,
            "Sender",
            "DestinationUnreachable",
            Some(2150858770),
            &format!("the test server serves only the cmd shell resource, not '{resource}'"),
        ));
    }
    let timeout = text("OperationTimeout")
        .and_then(|t| parse_duration(&t))
        .unwrap_or(Duration::from_secs(60));
    let shell_id = header
        .child("SelectorSet")
        .and_then(|s| {
            s.children_named("Selector")
                .find(|e| e.attr("Name") == Some("ShellId"))
        })
        .map(|e| e.text_trim().to_string());
    let options = header
        .child("OptionSet")
        .map(|o| {
            o.children_named("Option")
                .filter_map(|e| Some((e.attr("Name")?.to_string(), e.text_trim().to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(Req {
        action: text("Action").unwrap_or_default(),
        message_id,
        shell_id,
        timeout,
        body: root.child("Body").cloned().unwrap_or_default(),
        options,
    })
}

fn parse_duration(s: &str) -> Option<Duration> {
    let secs = s.strip_prefix("PT")?.strip_suffix('S')?;
    secs.parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0 && *v < 1e6)
        .map(Duration::from_secs_f64)
}

fn envelope(action: &str, relates: &str, body: &str) -> String {
    format!(
        "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"{}\" xmlns:a=\"{}\" xmlns:x=\"http://schemas.xmlsoap.org/ws/2004/09/transfer\" \
         xmlns:w=\"{}\" xmlns:rsp=\"{}\" xmlns:p=\"{}\"><s:Header><a:Action>{action}</a:Action>\
         <a:MessageID>{}</a:MessageID><a:To>{}</a:To><a:RelatesTo>{}</a:RelatesTo></s:Header>\
         <s:Body>{body}</s:Body></s:Envelope>",
        p::NS_SOAP,
        p::NS_ADDRESSING,
        p::NS_WSMAN,
        p::NS_SHELL,
        p::NS_WSMAN_MS,
        p::new_message_id(),
        p::ANONYMOUS,
        escape(relates)
    )
}

/// A SOAP fault reply (HTTP 500).
pub fn fault(relates: &str, code: &str, subcode: &str, wsman: Option<u64>, msg: &str) -> Reply {
    let detail = match wsman {
        Some(c) => format!(
            "<s:Detail><f:WSManFault xmlns:f=\"http://schemas.microsoft.com/wbem/wsman/1/wsmanfault\" Code=\"{c}\" \
             Machine=\"{}\"><f:Message>{}</f:Message></f:WSManFault></s:Detail>",
            script::HOSTNAME,
            escape(msg)
        ),
        None => String::new(),
    };
    let body = format!(
        "<s:Fault><s:Code><s:Value>s:{code}</s:Value><s:Subcode><s:Value>w:{subcode}</s:Value></s:Subcode></s:Code>\
         <s:Reason><s:Text xml:lang=\"en-US\">{}</s:Text></s:Reason>{detail}</s:Fault>",
        escape(msg)
    );
    let mut env = envelope(p::ACTION_FAULT, relates, &body);
    if relates.is_empty() {
        env = env.replace("<a:RelatesTo></a:RelatesTo>", "");
    }
    Reply {
        status: 500,
        body: env,
    }
}

fn ok(action: &str, relates: &str, body: &str) -> Reply {
    Reply {
        status: 200,
        body: envelope(action, relates, body),
    }
}

fn shell_not_found(r: &Req, id: &str) -> Reply {
    fault(
        &r.message_id,
        "Sender",
        "InvalidSelectors",
        Some(CODE_SHELL_NOT_FOUND),
        &format!(
            "The request for the Windows Remote Shell with ShellId {id} failed because the shell was not found on the server. \
             Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server."
        ),
    )
}

/// Handle one SOAP request of an authenticated `user`.
pub async fn handle(state: &Arc<ServerState>, user: &str, doc: &[u8]) -> Reply {
    let r = match parse_req(doc) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    state.count_action(&r.action);
    if state.faults.deny_access.load(Ordering::SeqCst) {
        return fault(
            &r.message_id,
            "Sender",
            "AccessDenied",
            Some(CODE_ACCESS_DENIED),
            "Access is denied.",
        );
    }
    match r.action.as_str() {
        p::ACTION_CREATE => create(state, user, &r),
        p::ACTION_DELETE => with_shell(state, &r, |shells, id| {
            shells.remove(id);
            ok(
                "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse",
                &r.message_id,
                "",
            )
        }),
        p::ACTION_COMMAND => command(state, &r),
        p::ACTION_SEND => send(state, &r),
        p::ACTION_SIGNAL => signal(state, &r),
        p::ACTION_RECEIVE => receive(state, &r).await,
        other => fault(
            &r.message_id,
            "Sender",
            "ActionNotSupported",
            Some(2150858771),
            &format!("the action '{other}' is not supported"),
        ),
    }
}

fn with_shell(
    state: &ServerState,
    r: &Req,
    f: impl FnOnce(&mut HashMap<String, ShellState>, &str) -> Reply,
) -> Reply {
    let Some(id) = r.shell_id.clone() else {
        return fault(
            &r.message_id,
            "Sender",
            "InvalidSelectors",
            None,
            "the request has no ShellId selector",
        );
    };
    let mut shells = state.shells.map.lock().unwrap_or_else(|p| p.into_inner());
    let idle = state.config.shell_idle_timeout;
    let expired = shells
        .get(&id)
        .is_some_and(|s| s.last_used.elapsed() > idle);
    if expired {
        shells.remove(&id);
    }
    match shells.get_mut(&id) {
        None => shell_not_found(r, &id),
        Some(s) => {
            s.last_used = Instant::now();
            f(&mut shells, &id)
        }
    }
}

fn create(state: &ServerState, user: &str, r: &Req) -> Reply {
    let Some(shell) = r.body.child("Shell") else {
        return fault(
            &r.message_id,
            "Sender",
            "SchemaValidationError",
            None,
            "Create has no rsp:Shell",
        );
    };
    let mut shells = state.shells.map.lock().unwrap_or_else(|p| p.into_inner());
    let idle = state.config.shell_idle_timeout;
    shells.retain(|_, s| s.last_used.elapsed() <= idle);
    let owned = shells
        .values()
        .filter(|s| s.owner.eq_ignore_ascii_case(user))
        .count();
    if owned >= state.config.max_shells_per_user {
        return fault(
            &r.message_id,
            "Receiver",
            "QuotaLimit",
            Some(2150859173),
            &format!(
                "The WS-Management service cannot process the request. This user is allowed a maximum number of {} concurrent shells, which has been exceeded.",
                state.config.max_shells_per_user
            ),
        );
    }
    let codepage = r
        .options
        .get("WINRS_CODEPAGE")
        .and_then(|c| c.parse().ok())
        .unwrap_or(437);
    let env = shell
        .child("Environment")
        .map(|e| {
            e.children_named("Variable")
                .filter_map(|v| Some((v.attr("Name")?.to_string(), v.text.clone())))
                .collect()
        })
        .unwrap_or_default();
    let cwd = shell
        .child("WorkingDirectory")
        .map(|w| w.text_trim().to_string())
        .unwrap_or_else(|| format!("C:\\Users\\{user}"));
    let id = uuid::Uuid::new_v4()
        .as_hyphenated()
        .to_string()
        .to_uppercase();
    shells.insert(
        id.clone(),
        ShellState {
            owner: user.to_string(),
            codepage,
            env,
            cwd,
            commands: HashMap::new(),
            last_used: Instant::now(),
        },
    );
    let endpoint = format!("http://{}/wsman", script::HOSTNAME);
    let body = format!(
        "<x:ResourceCreated><a:Address>{endpoint}</a:Address><a:ReferenceParameters><w:ResourceURI>{}</w:ResourceURI>\
         <w:SelectorSet><w:Selector Name=\"ShellId\">{id}</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>\
         <rsp:Shell><rsp:ShellId>{id}</rsp:ShellId><rsp:ResourceUri>{}</rsp:ResourceUri><rsp:Owner>{}</rsp:Owner>\
         <rsp:ClientIP>127.0.0.1</rsp:ClientIP><rsp:IdleTimeOut>PT{}S</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams>\
         <rsp:OutputStreams>stdout stderr</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>\
         <rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>",
        p::RESOURCE_CMD,
        p::RESOURCE_CMD,
        escape(user),
        idle.as_secs()
    );
    ok(
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
        &r.message_id,
        &body,
    )
}

fn command(state: &ServerState, r: &Req) -> Reply {
    let Some(line) = r.body.child("CommandLine") else {
        return fault(
            &r.message_id,
            "Sender",
            "SchemaValidationError",
            None,
            "Command has no rsp:CommandLine",
        );
    };
    let mut text = line
        .child("Command")
        .map(|c| c.text.trim().to_string())
        .unwrap_or_default();
    for a in line.children_named("Arguments") {
        text.push(' ');
        text.push_str(a.text.trim());
    }
    with_shell(state, r, |shells, id| {
        let Some(shell) = shells.get_mut(id) else {
            return shell_not_found(r, id);
        };
        let (tx, rx) = mpsc::channel(64);
        let (stdin_tx, stdin) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let ctx = script::Ctx {
            codepage: shell.codepage,
            env: shell.env.clone(),
            cwd: shell.cwd.clone(),
            stdin,
        };
        tokio::spawn(script::run(text.clone(), ctx, tx, cancel.clone()));
        let cmd_id = uuid::Uuid::new_v4()
            .as_hyphenated()
            .to_string()
            .to_uppercase();
        shell.commands.insert(
            cmd_id.clone(),
            Arc::new(Command {
                rx: tokio::sync::Mutex::new(rx),
                stdin: stdin_tx,
                cancel,
            }),
        );
        ok(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse",
            &r.message_id,
            &format!(
                "<rsp:CommandResponse><rsp:CommandId>{cmd_id}</rsp:CommandId></rsp:CommandResponse>"
            ),
        )
    })
}

fn find_command(state: &ServerState, r: &Req, cmd_id: &str) -> Result<Arc<Command>, Reply> {
    let mut found = None;
    let reply = with_shell(state, r, |shells, id| {
        match shells.get(id).and_then(|s| s.commands.get(cmd_id)) {
            Some(c) => {
                found = Some(c.clone());
                ok("", "", "")
            }
            None => fault(
                &r.message_id,
                "Sender",
                "InvalidParameter",
                Some(2150858843 + 1),
                &format!(
                    "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist: {cmd_id}"
                ),
            ),
        }
    });
    found.ok_or(reply)
}

fn remove_command(state: &ServerState, shell: &str, cmd_id: &str) {
    if let Ok(mut m) = state.shells.map.lock()
        && let Some(s) = m.get_mut(shell)
    {
        s.commands.remove(cmd_id);
    }
}

fn send(state: &ServerState, r: &Req) -> Reply {
    let Some(stream) = r.body.path(&["Send", "Stream"]) else {
        return fault(
            &r.message_id,
            "Sender",
            "SchemaValidationError",
            None,
            "Send has no rsp:Stream",
        );
    };
    let cmd_id = stream.attr("CommandId").unwrap_or_default().to_string();
    let cmd = match find_command(state, r, &cmd_id) {
        Ok(c) => c,
        Err(f) => return f,
    };
    let data = base64::engine::general_purpose::STANDARD
        .decode(stream.text.trim())
        .unwrap_or_default();
    if !data.is_empty() {
        let _ = cmd.stdin.send(Some(data));
    }
    if stream.attr("End") == Some("true") {
        let _ = cmd.stdin.send(None);
    }
    ok(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse",
        &r.message_id,
        "<rsp:SendResponse/>",
    )
}

fn signal(state: &ServerState, r: &Req) -> Reply {
    let Some(sig) = r.body.child("Signal") else {
        return fault(
            &r.message_id,
            "Sender",
            "SchemaValidationError",
            None,
            "Signal has no rsp:Signal",
        );
    };
    let cmd_id = sig.attr("CommandId").unwrap_or_default().to_string();
    let code = sig
        .child("Code")
        .map(|c| c.text_trim().to_string())
        .unwrap_or_default();
    let cmd = match find_command(state, r, &cmd_id) {
        Ok(c) => c,
        Err(f) => return f,
    };
    cmd.cancel.cancel();
    if code == Signal::Terminate.uri()
        && let Some(shell) = &r.shell_id
    {
        remove_command(state, shell, &cmd_id);
    }
    ok(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse",
        &r.message_id,
        "<rsp:SignalResponse/>",
    )
}

async fn receive(state: &Arc<ServerState>, r: &Req) -> Reply {
    let Some(desired) = r.body.path(&["Receive", "DesiredStream"]) else {
        return fault(
            &r.message_id,
            "Sender",
            "SchemaValidationError",
            None,
            "Receive has no rsp:DesiredStream",
        );
    };
    let cmd_id = desired.attr("CommandId").unwrap_or_default().to_string();
    let cmd = match find_command(state, r, &cmd_id) {
        Ok(c) => c,
        Err(f) => return f,
    };
    let timeout = r.timeout.min(state.config.max_operation_timeout);
    let mut rx = cmd.rx.lock().await;
    let first = match tokio::time::timeout(timeout, rx.recv()).await {
        Err(_) => {
            return fault(
                &r.message_id,
                "Receiver",
                "TimedOut",
                Some(CODE_TIMED_OUT),
                "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
            );
        }
        Ok(first) => first,
    };
    let mut items = Vec::new();
    let mut size = 0;
    let mut exit = None;
    let mut next = first;
    loop {
        match next {
            None => {
                exit = Some(None);
                break;
            }
            Some(Output::Exit(c)) => {
                exit = Some(Some(c));
                break;
            }
            Some(o) => {
                if let Output::Stdout(b) | Output::Stderr(b) = &o {
                    size += b.len();
                }
                items.push(o);
                if size >= RECEIVE_BYTES {
                    break;
                }
            }
        }
        next = match rx.try_recv() {
            Ok(o) => Some(o),
            Err(mpsc::error::TryRecvError::Empty) => break,
            Err(mpsc::error::TryRecvError::Disconnected) => None,
        };
    }
    drop(rx);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut body = String::from("<rsp:ReceiveResponse>");
    for o in &items {
        let (name, data) = match o {
            Output::Stdout(b) => ("stdout", b),
            Output::Stderr(b) => ("stderr", b),
            Output::Exit(_) => continue,
        };
        let _ = write!(
            body,
            "<rsp:Stream Name=\"{name}\" CommandId=\"{cmd_id}\">{}</rsp:Stream>",
            b64.encode(data)
        );
    }
    match exit {
        Some(code) => {
            let _ = write!(
                body,
                "<rsp:Stream Name=\"stdout\" CommandId=\"{cmd_id}\" End=\"true\"></rsp:Stream>\
                 <rsp:Stream Name=\"stderr\" CommandId=\"{cmd_id}\" End=\"true\"></rsp:Stream>\
                 <rsp:CommandState CommandId=\"{cmd_id}\" State=\"{}\">",
                p::STATE_DONE
            );
            if let Some(c) = code {
                let _ = write!(body, "<rsp:ExitCode>{}</rsp:ExitCode>", c as u32);
            }
            // Like Windows, the command stays until Signal terminate or the shell goes.
            body.push_str("</rsp:CommandState>");
        }
        None => {
            let _ = write!(
                body,
                "<rsp:CommandState CommandId=\"{cmd_id}\" State=\"{}\"/>",
                p::STATE_RUNNING
            );
        }
    }
    body.push_str("</rsp:ReceiveResponse>");
    let mut reply = ok(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse",
        &r.message_id,
        &body,
    );
    if let Some(bad) = state.faults.take_bad_answer() {
        reply = match bad {
            BadAnswer::MalformedXml => Reply {
                status: 200,
                body: reply.body[..reply.body.len() / 2].to_string(),
            },
            BadAnswer::WrongRelatesTo => Reply {
                status: 200,
                body: reply
                    .body
                    .replace(&r.message_id, "uuid:00000000-0000-0000-0000-000000000000"),
            },
            BadAnswer::BadBase64 => Reply {
                status: 200,
                body: corrupt_first_stream(&reply.body),
            },
            BadAnswer::InternalError => fault(
                &r.message_id,
                "Receiver",
                "InternalError",
                Some(2150858882),
                "injected internal error",
            ),
        };
    }
    reply
}

fn corrupt_first_stream(body: &str) -> String {
    match body
        .find("<rsp:Stream ")
        .and_then(|i| body[i..].find('>').map(|j| i + j + 1))
    {
        Some(at) => format!("{}@@{}", &body[..at], &body[at..]),
        None => body.to_string(),
    }
}
