//! Reading OpenSSH `known_hosts` files, to import host keys as pins.
//!
//! Orca verifies host keys against fingerprints pinned through the Store (see
//! [`orca_core::HostKeyStore`]); this module turns an operator's `known_hosts` file (as
//! `ssh-keyscan` or `ssh` write it) into the `(algorithm, SHA256 fingerprint)` pairs to pin.
//!
//! Supported, as in OpenSSH's `sshd(8)` "SSH_KNOWN_HOSTS FILE FORMAT":
//! - plain host patterns, comma-separated, with `*` and `?` wildcards and `!` negation,
//!   matched without regard to case;
//! - the `[host]:port` form for servers not on port 22;
//! - hashed entries `|1|<base64 salt>|<base64 HMAC-SHA1>` (`HashKnownHosts yes`,
//!   `ssh-keygen -H`);
//! - `@revoked` lines: a revoked key is never returned; `@cert-authority` lines are skipped
//!   (Orca pins plain host keys, not certificate authorities);
//! - comments (`#`) and blank lines.
//!
//! Lines that cannot be read (unknown marker, bad base64, unknown key type) are collected in
//! [`KnownHosts::skipped`] with the reason, like OpenSSH, which ignores them.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orca_core::{Error, Result};
use russh::keys::PublicKey;
use sha1::{Digest, Sha1};

use super::hostkey::{algorithm, fingerprint};

/// A host key listed for a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHostKey {
    /// The algorithm as OpenSSH writes it (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`...).
    pub algorithm: String,
    /// `SHA256:<base64>`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// The line of the file it came from (1-based).
    pub line: usize,
}

/// A line that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// Line number (1-based).
    pub line: usize,
    /// What was wrong with it.
    pub reason: String,
}

#[derive(Debug, Clone)]
enum Pattern {
    /// `|1|salt|hash`.
    Hashed { salt: Vec<u8>, hash: [u8; 20] },
    /// A plain pattern, lower case, possibly negated.
    Plain { negated: bool, glob: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    patterns: Vec<Pattern>,
    key: KnownHostKey,
}

/// A parsed `known_hosts` file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
    skipped: Vec<SkippedLine>,
}

/// The name a host is listed under: `host` on port 22, `[host]:port` otherwise (lower case).
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

impl KnownHosts {
    /// Read and parse the file at `path`.
    pub fn read(path: &Path) -> Result<KnownHosts> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(format!(
                "cannot read the known_hosts file {}: {e}",
                path.display()
            ))
        })?;
        Ok(KnownHosts::parse(&text))
    }

    /// Parse the text of a `known_hosts` file.
    pub fn parse(text: &str) -> KnownHosts {
        let mut out = KnownHosts::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            match parse_line(l, line) {
                Ok(Some(e)) => out.entries.push(e),
                Ok(None) => {}
                Err(reason) => out.skipped.push(SkippedLine { line, reason }),
            }
        }
        out
    }

    /// Lines that were not used, with the reason.
    pub fn skipped(&self) -> &[SkippedLine] {
        &self.skipped
    }

    /// How many host key lines were read (revoked ones included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no host key line was read.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys listed for `host` on `port`, in file order, without revoked keys and without
    /// duplicates.
    pub fn keys_for(&self, host: &str, port: u16) -> Vec<KnownHostKey> {
        let name = lookup_name(host, port);
        let mut keys: Vec<KnownHostKey> = Vec::new();
        let mut revoked: Vec<String> = Vec::new();
        for e in &self.entries {
            if !matches_host(&e.patterns, &name) {
                continue;
            }
            match e.marker {
                Marker::Revoked => revoked.push(e.key.fingerprint.clone()),
                Marker::None => {
                    if !keys.iter().any(|k| k.fingerprint == e.key.fingerprint) {
                        keys.push(e.key.clone());
                    }
                }
            }
        }
        keys.retain(|k| !revoked.contains(&k.fingerprint));
        keys
    }
}

fn parse_line(l: &str, line: usize) -> std::result::Result<Option<Entry>, String> {
    let mut fields = l.split_ascii_whitespace();
    let mut first = fields.next().unwrap_or_default();
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => return Ok(None),
        m if m.starts_with('@') => return Err(format!("unknown marker '{m}'")),
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next().ok_or("no host patterns after the marker")?;
    }
    let (Some(alg), Some(b64)) = (fields.next(), fields.next()) else {
        return Err("expected 'hosts key-type base64-key'".into());
    };
    let key = russh::keys::parse_public_key_base64(b64)
        .map_err(|e| format!("cannot decode the {alg} key: {e}"))?;
    if !key_type_matches(alg, &key) {
        return Err(format!(
            "the line says {alg} but the key is {}",
            algorithm(&key)
        ));
    }
    let patterns = first
        .split(',')
        .filter(|p| !p.is_empty())
        .map(parse_pattern)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if patterns.is_empty() {
        return Err("no host patterns".into());
    }
    Ok(Some(Entry {
        marker,
        patterns,
        key: KnownHostKey {
            algorithm: algorithm(&key),
            fingerprint: fingerprint(&key),
            line,
        },
    }))
}

/// The type word of the line against the decoded key (RSA keys are `ssh-rsa` on the line
/// whatever signature algorithm is used).
fn key_type_matches(alg: &str, key: &PublicKey) -> bool {
    alg == algorithm(key)
}

fn parse_pattern(p: &str) -> std::result::Result<Pattern, String> {
    if let Some(rest) = p.strip_prefix("|1|") {
        let (salt, hash) = rest
            .split_once('|')
            .ok_or_else(|| format!("malformed hashed host '{p}'"))?;
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| format!("malformed salt in hashed host '{p}'"))?;
        let hash: [u8; 20] = STANDARD
            .decode(hash)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| format!("malformed hash in hashed host '{p}'"))?;
        return Ok(Pattern::Hashed { salt, hash });
    }
    if p.starts_with('|') {
        return Err(format!("unsupported hashed host format '{p}'"));
    }
    let (negated, glob) = match p.strip_prefix('!') {
        Some(g) => (true, g),
        None => (false, p),
    };
    Ok(Pattern::Plain {
        negated,
        glob: glob.to_ascii_lowercase(),
    })
}

/// OpenSSH's rule: the line matches if some pattern matches and no negated pattern does.
fn matches_host(patterns: &[Pattern], name: &str) -> bool {
    let mut hit = false;
    for p in patterns {
        match p {
            Pattern::Hashed { salt, hash } => {
                if hmac_sha1(salt, name.as_bytes()) == *hash {
                    hit = true;
                }
            }
            Pattern::Plain { negated, glob } => {
                if wildcard(glob.as_bytes(), name.as_bytes()) {
                    if *negated {
                        return false;
                    }
                    hit = true;
                }
            }
        }
    }
    hit
}

/// `*` (any run) and `?` (one character) matching, as OpenSSH's `match_pattern`.
fn wildcard(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// HMAC-SHA1 (RFC 2104), as OpenSSH hashes host names.
fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha1::new().chain_update(&ipad).chain_update(msg).finalize();
    Sha1::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by OpenSSH 9.2: `ssh-keygen -H` of a file with `[127.0.0.5]:2222` (ed25519) and
    // `example.com` (ecdsa); fingerprints from `ssh-keygen -lf`.
    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIIxi2MkrcQdPBdvRDzOMcOp82lEFjlsCmb8X2KuoMuib";
    const ED_FP: &str = "SHA256:Dk5aEglfQmy5Yxr9TO9I07sJ782WedYA5YsLeaxVwTA";
    const EC: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNmJzfSsWiQXD2H+raPB1mpkUuwrbofWQDiQ/06WRMHp2MyScN+4ky4JxLe5KMppeg5B4YY8Z7tVNYfAFmTMenQ=";
    const EC_FP: &str = "SHA256:Ur4YVFRS2fyahVaZJV1HthrNh2uPrm3L/pxifOlqTh4";
    const HASHED_ED: &str = "|1|cFrMd32KlZZ6pK/zlqLL6mbCMD4=|KIsqfS8oGetu/S5+l/A450c3qQE=";
    const HASHED_EC: &str = "|1|rl+tvKEBR7w+0/BvQEkMH/gnaDk=|lCJiB9eNQawnmDnxYEan18KDYfw=";

    fn fps(k: &KnownHosts, host: &str, port: u16) -> Vec<String> {
        k.keys_for(host, port)
            .into_iter()
            .map(|k| k.fingerprint)
            .collect()
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        let out = hmac_sha1(b"Jefe", b"what do ya want for nothing?");
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        let long_key = [0xaau8; 80];
        let out = hmac_sha1(
            &long_key,
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "aa4ae5e15272d00e95705637ce8a3b55ed402112");
    }

    #[test]
    fn hashed_entries_written_by_openssh_match() {
        let k = KnownHosts::parse(&format!(
            "{HASHED_ED} ssh-ed25519 {ED}\n{HASHED_EC} ecdsa-sha2-nistp256 {EC}\n"
        ));
        assert!(k.skipped().is_empty(), "{:?}", k.skipped());
        assert_eq!(fps(&k, "127.0.0.5", 2222), vec![ED_FP]);
        assert_eq!(fps(&k, "EXAMPLE.com", 22), vec![EC_FP]);
        let ec = &k.keys_for("example.com", 22)[0];
        assert_eq!(ec.algorithm, "ecdsa-sha2-nistp256");
        assert_eq!(ec.line, 2);
        // The same host on another port, or the port form on 22, is another entry.
        assert!(fps(&k, "127.0.0.5", 22).is_empty());
        assert!(fps(&k, "127.0.0.5", 2223).is_empty());
        assert!(fps(&k, "example.com", 2222).is_empty());
    }

    #[test]
    fn plain_patterns_ports_wildcards_and_negation() {
        let k = KnownHosts::parse(&format!(
            "# comment\n\n\
             [127.0.0.5]:2222,Web1.Example.COM ssh-ed25519 {ED} root@vm\n\
             *.db.example.com,!secret.db.example.com\tecdsa-sha2-nistp256   {EC}\n\
             [10.0.0.?]:2200 ssh-ed25519 {ED}\n"
        ));
        assert!(k.skipped().is_empty(), "{:?}", k.skipped());
        assert_eq!(k.len(), 3);
        assert_eq!(fps(&k, "127.0.0.5", 2222), vec![ED_FP]);
        assert_eq!(fps(&k, "web1.example.com", 22), vec![ED_FP]);
        assert_eq!(fps(&k, "a.db.example.com", 22), vec![EC_FP]);
        assert!(fps(&k, "secret.db.example.com", 22).is_empty());
        assert!(fps(&k, "db.example.com", 22).is_empty());
        assert_eq!(fps(&k, "10.0.0.7", 2200), vec![ED_FP]);
        assert!(fps(&k, "10.0.0.17", 2200).is_empty());
    }

    #[test]
    fn revoked_and_ca_lines_and_duplicates() {
        let k = KnownHosts::parse(&format!(
            "h1,h2 ssh-ed25519 {ED}\n\
             h1 ssh-ed25519 {ED}\n\
             h1 ecdsa-sha2-nistp256 {EC}\n\
             @revoked h1 ecdsa-sha2-nistp256 {EC}\n\
             @cert-authority *.example.com ssh-ed25519 {ED}\n"
        ));
        assert!(k.skipped().is_empty(), "{:?}", k.skipped());
        assert_eq!(fps(&k, "h1", 22), vec![ED_FP]);
        assert_eq!(fps(&k, "h2", 22), vec![ED_FP]);
        assert!(fps(&k, "x.example.com", 22).is_empty());
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let k = KnownHosts::parse(&format!(
            "h1 ssh-ed25519\n\
             h2 ssh-ed25519 not-base64!!\n\
             h3 ssh-rsa {ED}\n\
             @weird h4 ssh-ed25519 {ED}\n\
             |1|bad|hash ssh-ed25519 {ED}\n\
             |2|x|y ssh-ed25519 {ED}\n\
             h7 ssh-ed25519 {ED}\n"
        ));
        let lines: Vec<usize> = k.skipped().iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 6]);
        assert!(
            k.skipped()[2].reason.contains("ssh-ed25519"),
            "{:?}",
            k.skipped()
        );
        assert_eq!(fps(&k, "h7", 22), vec![ED_FP]);
        assert!(fps(&k, "h3", 22).is_empty());
    }

    #[test]
    fn wildcard_matching() {
        assert!(wildcard(b"*", b"anything"));
        assert!(wildcard(b"a*c", b"abbbc"));
        assert!(wildcard(b"a*c*", b"acxc"));
        assert!(!wildcard(b"a*c", b"abbbd"));
        assert!(wildcard(b"?b", b"ab"));
        assert!(!wildcard(b"?b", b"b"));
        assert!(wildcard(b"", b""));
        assert!(!wildcard(b"", b"a"));
    }

    #[test]
    fn lookup_names() {
        assert_eq!(lookup_name("Host", 22), "host");
        assert_eq!(lookup_name("host", 2222), "[host]:2222");
    }

    #[test]
    fn read_reports_missing_file() {
        let e = KnownHosts::read(Path::new("/nonexistent/known_hosts")).unwrap_err();
        assert_eq!(e.kind(), orca_core::ErrorKind::InvalidInput);
        assert!(e.message().contains("/nonexistent/known_hosts"), "{e}");
    }
}
