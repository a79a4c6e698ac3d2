//! A small, bounded XML tree for SOAP responses (namespace prefixes dropped, local names kept).
//!
//! WS-Management answers are small documents; a tree is simpler to query than a stream and
//! easy to fuzz. Limits on size, depth and element count keep hostile input cheap.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// Largest document accepted (a Receive answer with `MaxEnvelopeSize` 500 KiB is far smaller).
pub const MAX_DOC: usize = 16 * 1024 * 1024;
const MAX_DEPTH: usize = 64;
const MAX_ELEMENTS: usize = 200_000;

/// An element: local name, attributes (local names) and children; text is concatenated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (prefix removed).
    pub name: String,
    /// Attributes by local name, unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Concatenated text content directly inside this element, unescaped.
    pub text: String,
}

impl Element {
    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    /// All children called `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// The first element called `name` anywhere below (depth first), or self.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
    /// Follow a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        let mut cur = self;
        for n in names {
            cur = cur.child(n)?;
        }
        Some(cur)
    }
    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Trimmed text.
    pub fn text_trim(&self) -> &str {
        self.text.trim()
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn local(name: &[u8]) -> String {
    let n = match name.iter().rposition(|b| *b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(n).into_owned()
}

fn entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

/// Parse `doc` into its root element.
pub fn parse(doc: &[u8]) -> Result<Element, XmlError> {
    if doc.len() > MAX_DOC {
        return Err(XmlError(format!(
            "document of {} bytes exceeds the {MAX_DOC} byte limit",
            doc.len()
        )));
    }
    let mut reader = Reader::from_reader(doc);
    reader.config_mut().check_end_names = true;
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut buf = Vec::new();
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|e| {
            XmlError(format!(
                "malformed XML at byte {}: {e}",
                reader.error_position()
            ))
        })?;
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError("too many XML elements".into()));
                }
                if root.is_some() {
                    return Err(XmlError("content after the root element".into()));
                }
                let mut el = Element {
                    name: local(s.name().as_ref()),
                    ..Element::default()
                };
                for a in s.attributes() {
                    let a = a.map_err(|e| XmlError(format!("malformed XML attribute: {e}")))?;
                    let key = a.key.as_ref();
                    if key == b"xmlns" || key.starts_with(b"xmlns:") {
                        continue;
                    }
                    let v = a
                        .unescape_value()
                        .map_err(|e| XmlError(format!("malformed XML attribute value: {e}")))?;
                    el.attrs.push((local(key), v.into_owned()));
                }
                if matches!(ev, Event::Empty(_)) {
                    close(&mut stack, &mut root, el);
                } else {
                    if stack.len() >= MAX_DEPTH {
                        return Err(XmlError("XML nested too deeply".into()));
                    }
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let s = t
                    .xml10_content()
                    .map_err(|e| XmlError(format!("invalid text encoding: {e}")))?;
                push_text(&mut stack, &s)?;
            }
            Event::CData(c) => {
                let s = String::from_utf8_lossy(&c).into_owned();
                push_text(&mut stack, &s)?;
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| XmlError(format!("bad character reference: {e}")))?
                } else {
                    let name = r
                        .decode()
                        .map_err(|e| XmlError(format!("bad entity reference: {e}")))?;
                    entity(&name)
                };
                let c = c.ok_or_else(|| XmlError("unknown XML entity".into()))?;
                push_text(&mut stack, c.encode_utf8(&mut [0; 4]))?;
            }
            Event::DocType(_) => return Err(XmlError("DOCTYPE is not allowed".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(XmlError("XML document ended early".into()));
    }
    root.ok_or_else(|| XmlError("empty XML document".into()))
}

fn push_text(stack: &mut [Element], s: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(XmlError("text outside the root element".into())),
    }
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

/// Escape text for an XML element or attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaces_entities_and_attributes() {
        let doc = br#"<?xml version="1.0"?><s:Envelope xmlns:s="x"><s:Body a:k="v&amp;w" xmlns:a="y"><x>1 &lt; 2 &#x41;</x><e/></s:Body></s:Envelope>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Envelope");
        let body = root.child("Body").unwrap();
        assert_eq!(body.attr("k"), Some("v&w"));
        assert_eq!(body.child("x").unwrap().text, "1 < 2 A");
        assert!(body.child("e").is_some());
        assert_eq!(root.find("x").unwrap().text, "1 < 2 A");
    }

    #[test]
    fn refuses_bad_documents() {
        for bad in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"",
            b"<a/><b/>",
            b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
            b"<a>&unknown;</a>",
            b"text",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn escape_round_trips() {
        let s = "a<b>&\"c'\r\n";
        let doc = format!("<x v=\"{}\">{}</x>", escape(s), escape(s));
        let el = parse(doc.as_bytes()).unwrap();
        assert_eq!(el.text, s);
        assert_eq!(el.attr("v"), Some(s));
    }
}
