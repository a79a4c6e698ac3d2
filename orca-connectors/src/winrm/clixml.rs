//! Decoding PowerShell's CLIXML on stderr into plain text, incrementally.
//!
//! A non-interactive `powershell.exe` whose stderr is redirected writes its error, warning,
//! verbose and progress records as `#< CLIXML` followed by an `<Objs>` document. The document
//! arrives in pieces across Receive polls; this decoder emits each record's text as soon as
//! the record is complete and drops progress records. Stderr that is not CLIXML passes through
//! unchanged.

/// The marker that starts a CLIXML stream.
pub const MARKER: &[u8] = b"#< CLIXML";
/// Cap on a single unfinished record; beyond it the buffer is passed through as raw text.
const MAX_PENDING: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Detect,
    Clixml,
    Raw,
}

/// Incremental stderr decoder.
#[derive(Debug)]
pub struct ClixmlDecoder {
    mode: Mode,
    buf: Vec<u8>,
}

impl Default for ClixmlDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClixmlDecoder {
    /// A decoder that detects CLIXML from the first bytes.
    pub fn new() -> Self {
        ClixmlDecoder {
            mode: Mode::Detect,
            buf: Vec::new(),
        }
    }

    /// Feed `data`; returns the text that is ready.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(data);
        if self.mode == Mode::Detect {
            let trimmed = trim_start(&self.buf);
            let n = trimmed.len().min(MARKER.len());
            if trimmed[..n] != MARKER[..n] {
                self.mode = Mode::Raw;
            } else if trimmed.len() >= MARKER.len() {
                self.mode = Mode::Clixml;
            } else {
                return Vec::new();
            }
        }
        match self.mode {
            Mode::Raw => std::mem::take(&mut self.buf),
            _ => {
                let out = self.drain_records();
                if self.buf.len() > MAX_PENDING {
                    self.mode = Mode::Raw;
                    let mut o = out;
                    o.append(&mut self.buf);
                    return o;
                }
                out
            }
        }
    }

    /// The command ended: whatever is left, as text.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.buf);
        let mode = std::mem::replace(&mut self.mode, Mode::Detect);
        match mode {
            Mode::Clixml => {
                let t = trim_start(&rest);
                if t.is_empty() || t.starts_with(b"</Objs>") {
                    Vec::new()
                } else {
                    rest
                }
            }
            _ => rest,
        }
    }

    fn drain_records(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        let buf = std::mem::take(&mut self.buf);
        loop {
            let rest = &buf[pos..];
            let skip = rest.len() - trim_start(rest).len();
            pos += skip;
            let rest = &buf[pos..];
            if rest.is_empty() {
                break;
            }
            if rest.len() < MARKER.len() && MARKER.starts_with(rest) {
                break;
            }
            if rest.starts_with(MARKER) {
                match find(rest, b"\n") {
                    Some(i) => pos += i + 1,
                    None if rest.len() > 64 => pos += MARKER.len(),
                    None => break,
                }
                continue;
            }
            if rest.starts_with(b"<S ") || rest.starts_with(b"<S>") {
                let Some(gt) = find(rest, b">") else { break };
                let open = &rest[..=gt];
                if open.ends_with(b"/>") {
                    pos += gt + 1;
                    continue;
                }
                let Some(end) = find(&rest[gt + 1..], b"</S>") else {
                    break;
                };
                let text = decode_text(&rest[gt + 1..gt + 1 + end]);
                let stream = attr(open, b"S").unwrap_or_default();
                let prefix: &[u8] = match stream.as_slice() {
                    b"Warning" => b"WARNING: ",
                    b"Verbose" => b"VERBOSE: ",
                    b"Debug" => b"DEBUG: ",
                    _ => b"",
                };
                out.extend_from_slice(prefix);
                out.extend_from_slice(text.as_bytes());
                pos += gt + 1 + end + 4;
                continue;
            }
            if rest.starts_with(b"<Obj") && !rest.starts_with(b"<Objs") {
                match skip_obj(rest) {
                    Some(n) => {
                        pos += n;
                        continue;
                    }
                    None => break,
                }
            }
            if rest.starts_with(b"<") {
                // <Objs ...>, </Objs> or another tag we do not render.
                match find(rest, b">") {
                    Some(i) => {
                        pos += i + 1;
                        continue;
                    }
                    None => break,
                }
            }
            // Text between records: not CLIXML after all; pass the rest through.
            match find(rest, b"<") {
                Some(i) => {
                    out.extend_from_slice(&rest[..i]);
                    pos += i;
                }
                None => {
                    out.extend_from_slice(rest);
                    pos = buf.len();
                }
            }
        }
        self.buf = buf[pos..].to_vec();
        out
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let i = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[i..]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of a complete (possibly nested) `<Obj>` element at the start of `b`.
fn skip_obj(b: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"</Obj>") {
            depth = depth.checked_sub(1)?;
            i += 6;
            if depth == 0 {
                return Some(i);
            }
        } else if rest.starts_with(b"<Obj ") || rest.starts_with(b"<Obj>") {
            let gt = find(rest, b">")?;
            if rest[..gt].ends_with(b"/") {
                if depth == 0 {
                    return Some(i + gt + 1);
                }
            } else {
                depth += 1;
            }
            i += gt + 1;
        } else {
            i += 1;
        }
    }
    None
}

fn attr(tag: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut pat = name.to_vec();
    pat.extend_from_slice(b"=\"");
    let start = find(tag, &pat)? + pat.len();
    let len = find(&tag[start..], b"\"")?;
    Some(tag[start..start + len].to_vec())
}

/// Unescape XML entities and PowerShell's `_xHHHH_` escapes.
pub fn decode_text(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let s = s
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let mut units: Vec<u16> = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    let mut plain_start = 0;
    while i < b.len() {
        if b[i] == b'_'
            && i + 7 <= b.len()
            && b[i + 1] == b'x'
            && b[i + 6] == b'_'
            && b[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit)
        {
            units.extend(s[plain_start..i].encode_utf16());
            let hex = &s[i + 2..i + 6];
            units.push(u16::from_str_radix(hex, 16).unwrap_or(0xFFFD));
            i += 7;
            plain_start = i;
        } else {
            i += 1;
        }
    }
    units.extend(s[plain_start..].encode_utf16());
    String::from_utf16_lossy(&units)
}

/// Encode `text` as one CLIXML error record (used by the test server and tests).
pub fn encode_error_record(text: &str) -> String {
    let mut s = String::new();
    for c in text.chars() {
        match c {
            '_' => s.push_str("_x005F_"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '&' => s.push_str("&amp;"),
            c if (c as u32) < 0x20 => s.push_str(&format!("_x{:04X}_", c as u32)),
            c => s.push(c),
        }
    }
    format!("<S S=\"Error\">{s}</S>")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T></TN><MS><I64 N=\"SourceId\">1</I64><PR N=\"Record\"><AV>Preparing modules for first use.</AV></PR></MS></Obj><S S=\"Error\">boom &lt;1&gt; caf\u{e9}_x000D__x000A_</S><S S=\"Warning\">careful_x005F_x_x000D__x000A_</S></Objs>";

    #[test]
    fn decodes_whole_document() {
        let mut d = ClixmlDecoder::new();
        let mut out = d.push(DOC.as_bytes());
        out.extend(d.finish());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "boom <1> caf\u{e9}\r\nWARNING: careful_x\r\n"
        );
    }

    #[test]
    fn decodes_split_at_every_byte() {
        for split in 1..DOC.len() {
            let mut d = ClixmlDecoder::new();
            let (a, b) = DOC.as_bytes().split_at(split);
            let mut out = d.push(a);
            out.extend(d.push(b));
            out.extend(d.finish());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "boom <1> caf\u{e9}\r\nWARNING: careful_x\r\n",
                "split at {split}"
            );
        }
    }

    #[test]
    fn plain_stderr_passes_through() {
        let mut d = ClixmlDecoder::new();
        assert_eq!(d.push(b"#"), b"");
        assert_eq!(d.push(b" not clixml"), b"# not clixml");
        assert_eq!(d.push(b"more"), b"more");
        let mut d = ClixmlDecoder::new();
        let mut out = d.push(b"#< CLI");
        out.extend(d.finish());
        assert_eq!(out, b"#< CLI");
    }

    #[test]
    fn encoder_round_trips() {
        let doc = format!(
            "#< CLIXML\r\n<Objs>{}</Objs>",
            encode_error_record("a_x0041_<b>\r\n")
        );
        let mut d = ClixmlDecoder::new();
        let out = d.push(doc.as_bytes());
        assert_eq!(String::from_utf8(out).unwrap(), "a_x0041_<b>\r\n");
    }
}
