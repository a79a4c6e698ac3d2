//! Input hygiene shared by every frontend: names, hostnames and keys that reach logs, terminals
//! and other tools must not carry control characters or bidirectional overrides (which make
//! `evil\u{202e}moc.elgoog` display as `evilgoogle.com`), and must not be mistaken for ids.

use crate::{Error, Result};

/// Whether `c` is a Unicode bidirectional formatting character (embeddings, overrides,
/// isolates and marks): they reorder what a terminal or a browser shows.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Refuse control characters (NUL, CR, LF, ESC...) and bidirectional controls in `value`;
/// the error names `field` and shows the value escaped.
pub fn printable(field: &str, value: &str) -> Result<()> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() || is_bidi_control(*c))
    {
        return Err(Error::invalid(format!(
            "{field} {value:?} is invalid: it contains the control character U+{:04X}",
            c as u32
        )));
    }
    Ok(())
}

/// A hostname: a DNS name (labels of letters, digits, '-' and '_', each 1-63 characters and
/// not starting or ending with '-'; 253 characters at most, an optional final dot) or an IPv4
/// or IPv6 address (optionally in brackets).
pub fn hostname(field: &str, h: &str) -> Result<()> {
    printable(field, h)?;
    let bad = |why: &str| {
        Err(Error::invalid(format!(
            "{field} {h:?} is invalid: {why}; give a DNS name or an IP address"
        )))
    };
    if h.is_empty() {
        return bad("it is empty");
    }
    let bare = h
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(h);
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if bare.len() != h.len() {
        return bad("only an IPv6 address may be written in brackets");
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    if name.len() > 253 {
        return bad("it is longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each dot-separated label must be 1-63 characters");
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad("use letters, digits, '-', '_' and dots");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label may not start or end with '-'");
        }
    }
    // All-numeric dotted names are neither valid IPv4 addresses nor DNS names.
    if name
        .split('.')
        .all(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return bad("it looks like an IPv4 address but is not one");
    }
    Ok(())
}

/// A name that must not be mistaken for an id: one that parses as a UUID is refused.
pub fn not_an_id(field: &str, value: &str) -> Result<()> {
    if uuid::Uuid::parse_str(value).is_ok() {
        return Err(Error::invalid(format!(
            "{field} '{value}' is invalid: it has the form of an id (a UUID), which would shadow \
             the object with that id; choose another"
        )));
    }
    Ok(())
}

/// An option key: 1-64 letters, digits, '_', '-' or '.'.
pub fn option_key(field: &str, key: &str) -> Result<()> {
    printable(field, key)?;
    if key.is_empty()
        || key.len() > 64
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(Error::invalid(format!(
            "{field} {key:?} is invalid: use 1-64 letters, digits, '_', '-' or '.'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_refused() {
        for bad in [
            "a\0b",
            "a\rb",
            "a\nb",
            "a\u{1b}[31m",
            "evil\u{202e}moc.elgoog",
            "x\u{2066}y",
            "x\u{200f}",
        ] {
            let e = printable("name", bad).unwrap_err();
            assert!(e.message().starts_with("name "), "{e}");
            assert!(!e.message().contains(bad), "echoed raw: {e}");
        }
        printable("name", "web-1 (prod) é 日本").unwrap();
    }

    #[test]
    fn hostnames_are_dns_names_or_addresses() {
        for ok in [
            "localhost",
            "web1.example.com",
            "web1.example.com.",
            "a_b.internal",
            "127.0.0.1",
            "::1",
            "[::1]",
            "fe80::1",
            "xn--bcher-kva.example",
            "1host.example",
        ] {
            hostname("hostname", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "evil\u{202e}moc.elgoog",
            "a b",
            "a..b",
            "-a.example",
            "a-.example",
            "host/path",
            "user@host",
            "256.1.1.1",
            "1.2.3",
            "[web1]",
            "日本.example",
            &"a".repeat(64),
        ] {
            let e = hostname("hostname", bad).unwrap_err();
            assert!(e.message().starts_with("hostname"), "{bad}: {e}");
        }
    }

    #[test]
    fn uuids_are_not_names() {
        assert!(not_an_id("system name", "0190c5c2-0000-7000-8000-000000000000").is_err());
        assert!(not_an_id("system name", "0190c5c200007000800000000000000a").is_err());
        not_an_id("system name", "web1").unwrap();
    }

    #[test]
    fn option_keys() {
        option_key("option key", "cwd").unwrap();
        option_key("option key", "winrm.transport").unwrap();
        for bad in ["", "a b", "a\nb", "k\u{202e}", &"k".repeat(65)] {
            assert!(option_key("option key", bad).is_err(), "{bad:?}");
        }
    }
}
