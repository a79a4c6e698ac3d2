//! Seed inputs for the fuzz targets: well-formed answers as Windows sends them, so coverage
//! starts deep inside the parsers.

use base64::Engine as _;

use super::{COMMAND_ID, MESSAGE_ID, Target};
use crate::winrm::clixml;
use crate::winrm::ntlm::{NtlmClient, NtlmServer, ServerStep};
use crate::winrm::protocol as p;
use secrecy::SecretString;

fn envelope(action: &str, body: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <s:Envelope xml:lang=\"en-US\" xmlns:s=\"{}\" xmlns:a=\"{}\" xmlns:x=\"http://schemas.xmlsoap.org/ws/2004/09/transfer\" \
         xmlns:w=\"{}\" xmlns:rsp=\"{}\" xmlns:p=\"{}\"><s:Header><a:Action>{action}</a:Action>\
         <a:MessageID>uuid:9F1B2C3D-0000-4000-8000-000000000042</a:MessageID><a:To>{}</a:To>\
         <a:RelatesTo>{MESSAGE_ID}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>",
        p::NS_SOAP,
        p::NS_ADDRESSING,
        p::NS_WSMAN,
        p::NS_SHELL,
        p::NS_WSMAN_MS,
        p::ANONYMOUS,
    )
    .into_bytes()
}

fn fault(subcode: &str, code: u64, msg: &str) -> Vec<u8> {
    envelope(
        p::ACTION_FAULT,
        &format!(
            "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:{subcode}</s:Value></s:Subcode></s:Code>\
             <s:Reason><s:Text xml:lang=\"en-US\">{msg}</s:Text></s:Reason><s:Detail>\
             <f:WSManFault xmlns:f=\"http://schemas.microsoft.com/wbem/wsman/1/wsmanfault\" Code=\"{code}\" Machine=\"WIN01\">\
             <f:Message>{msg}</f:Message></f:WSManFault></s:Detail></s:Fault>"
        ),
    )
}

fn soap_seeds() -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let stream = |name: &str, data: &[u8]| {
        format!(
            "<rsp:Stream Name=\"{name}\" CommandId=\"{COMMAND_ID}\">{}</rsp:Stream>",
            b64.encode(data)
        )
    };
    let receive = |streams: &str, state: &str| {
        envelope(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse",
            &format!("<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"),
        )
    };
    let done = |code: &str| {
        format!(
            "<rsp:CommandState CommandId=\"{COMMAND_ID}\" State=\"{}\"><rsp:ExitCode>{code}</rsp:ExitCode></rsp:CommandState>",
            p::STATE_DONE
        )
    };
    vec![
        envelope(
            "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
            "<x:ResourceCreated><a:Address>http://WIN01:5985/wsman</a:Address><a:ReferenceParameters>\
             <w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>\
             <w:SelectorSet><w:Selector Name=\"ShellId\">7C5C1E0F-1A2B-4C3D-8E9F-0A1B2C3D4E5F</w:Selector>\
             </w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>\
             <rsp:Shell><rsp:ShellId>7C5C1E0F-1A2B-4C3D-8E9F-0A1B2C3D4E5F</rsp:ShellId>\
             <rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>",
        ),
        envelope(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse",
            &format!(
                "<rsp:CommandResponse><rsp:CommandId>{COMMAND_ID}</rsp:CommandId></rsp:CommandResponse>"
            ),
        ),
        receive(
            &format!(
                "{}{}{}",
                stream("stdout", b"hello \xc3\xa9t\xc3\xa9\r\n"),
                stream("stderr", b"oops\r\n"),
                stream("stdout", b"")
            ),
            &done("0"),
        ),
        receive(&stream("stdout", &[b'x'; 300]), &done("3221225786")),
        receive(
            &stream("stderr", b"#< CLIXML\r\n<Objs><S S=\"Error\">x</S></Objs>"),
            &format!(
                "<rsp:CommandState CommandId=\"{COMMAND_ID}\" State=\"{}\"/>",
                p::STATE_RUNNING
            ),
        ),
        fault(
            "TimedOut",
            2150858793,
            "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
        ),
        fault(
            "InvalidSelectors",
            2150858843,
            "The request for the Windows Remote Shell with ShellId 7C5C failed because the shell was not found on the server.",
        ),
        fault(
            "QuotaLimit",
            2150859174,
            "The WS-Management service cannot process the request. This user is allowed a maximum number of 30 concurrent shells, which has been exceeded. &amp; &lt;b&gt;",
        ),
        envelope(
            p::ACTION_FAULT,
            "<s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text>&#x41;&#65;<![CDATA[<raw>]]></s:Text></s:Reason></s:Fault>",
        ),
    ]
}

fn clixml_seeds() -> Vec<Vec<u8>> {
    let doc = format!(
        "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">\
         <Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T></TN><MS>\
         <I64 N=\"SourceId\">1</I64><PR N=\"Record\"><AV>Preparing modules for first use.</AV></PR></MS></Obj>\
         {}<S S=\"Warning\">careful_x000D__x000A_</S></Objs>",
        clixml::encode_error_record("boom <1> caf\u{e9}\r\n")
    );
    let mut raw = vec![0u8, 3, 5, 1, 40];
    raw.extend_from_slice(doc.as_bytes());
    let mut plain = vec![2u8, 0];
    plain.extend_from_slice("not CLIXML at all\r\n\u{e9}\r\n".as_bytes());
    // Structured: three pieces of sizes 7, 1, 64; then records (kind, length, text).
    let mut structured = vec![1u8, 3, 7, 1, 64];
    for (kind, text) in [
        (0u8, "err_x0041_ <&>\r\n"),
        (1, "warn"),
        (3, "progress"),
        (4, ""),
        (2, "v\u{e9}rbose\x01"),
    ] {
        structured.push(kind);
        structured.push(text.len() as u8);
        structured.extend_from_slice(text.as_bytes());
    }
    vec![raw, plain, structured]
}

fn sealing_seeds() -> Vec<Vec<u8>> {
    let soap = envelope(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse",
        "",
    );
    let mut out = Vec::new();
    for (op, at) in [(0u8, 0u16), (1, 17), (2, 100), (3, 30)] {
        for dir in [2u8, 3] {
            let mut v = vec![dir, op];
            v.extend_from_slice(&at.to_le_bytes());
            v.extend_from_slice(&soap[..soap.len().min(200)]);
            out.push(v);
        }
    }
    let mut raw = vec![0u8];
    raw.extend_from_slice(
        b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n\
          \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=5\r\n--Encrypted Boundary\r\n\
          \tContent-Type: application/octet-stream\r\n\x10\x00\x00\x00\x01\x00\x00\x00\x8a\x1b\x2c\x3d\x4e\x5f\x60\x71\x00\x00\x00\x00hello--Encrypted Boundary--\r\n",
    );
    out.push(raw);
    out
}

fn ntlm_seeds() -> Vec<Vec<u8>> {
    let pw = SecretString::from("Fuzz-Pass-1");
    let mut out = Vec::new();
    let (Ok(mut c), Ok(mut s)) = (
        NtlmClient::new("FUZZ\\orca", &pw, "winrm.example"),
        NtlmServer::new("FUZZ\\orca", &pw),
    ) else {
        return out;
    };
    let Ok((t1, _)) = c.step(None) else {
        return out;
    };
    let Ok(ServerStep::Challenge(t2)) = s.step(&t1) else {
        return out;
    };
    let Ok((t3, _)) = c.step(Some(&t2)) else {
        return out;
    };
    for (mode, token) in [(0u8, &t2), (1, &t1), (2, &t3)] {
        let mut v = vec![mode];
        v.extend_from_slice(token);
        out.push(v);
    }
    out.push(vec![3, 7, 0, 255, 40, 1, 20]);
    out
}

/// Well-formed seed inputs for `target`.
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    match target {
        Target::SoapResponse => soap_seeds(),
        Target::Clixml => clixml_seeds(),
        Target::Sealing => sealing_seeds(),
        Target::Ntlm => ntlm_seeds(),
    }
}
