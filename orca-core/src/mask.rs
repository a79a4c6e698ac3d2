//! Output masking: secrets used by an execution never appear in its stored or live output.
//!
//! A [`Masker`] replaces every occurrence of any secret with `***`, including occurrences split
//! across chunk boundaries: it holds back the shortest tail that could still be the start of a
//! secret until the next chunk (or the end) decides.

/// What a secret is replaced with.
pub const MASK: &[u8] = b"***";

/// Secrets shorter than this are not masked (masking a one-letter password would rewrite every
/// occurrence of that letter and tell more than it hides).
pub const MIN_SECRET_LEN: usize = 4;

/// Streaming secret masker for one output stream.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Vec<Vec<u8>>,
    held: Vec<u8>,
}

impl Masker {
    /// A masker for these secrets (each also masked line by line, so a multi-line secret such
    /// as a private key is hidden even if printed in parts).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut v: Vec<Vec<u8>> = Vec::new();
        for s in secrets {
            let s = s.as_ref();
            let mut push = |b: &[u8]| {
                let b = b.to_vec();
                if b.len() >= MIN_SECRET_LEN && !v.contains(&b) {
                    v.push(b);
                }
            };
            push(s);
            if s.contains(&b'\n') {
                for line in s.split(|c| *c == b'\n') {
                    push(line.strip_suffix(b"\r").unwrap_or(line));
                }
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        v.sort_by_key(|b| std::cmp::Reverse(b.len()));
        Masker {
            secrets: v,
            held: Vec::new(),
        }
    }

    /// Whether there is anything to mask.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Feed bytes; returns the bytes that are final (masked), holding back a possible secret
    /// prefix.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return data.to_vec();
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(data);
        let (out, keep) = self.scan(&buf, false);
        self.held = buf[keep..].to_vec();
        out
    }

    /// Flush what is held back at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.held);
        self.scan(&buf, true).0
    }

    /// Masks `buf`; returns the output and the index from which bytes must be held back.
    fn scan(&self, buf: &[u8], at_end: bool) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        'outer: while i < buf.len() {
            let rest = &buf[i..];
            for s in &self.secrets {
                if rest.first() == s.first() {
                    if rest.starts_with(s) {
                        out.extend_from_slice(MASK);
                        i += s.len();
                        continue 'outer;
                    }
                    if !at_end && rest.len() < s.len() && s.starts_with(rest) {
                        return (out, i);
                    }
                }
            }
            out.push(buf[i]);
            i += 1;
        }
        (out, buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(m: &mut Masker, parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend(m.push(p));
        }
        out.extend(m.finish());
        out
    }

    #[test]
    fn masks_whole_and_split_occurrences() {
        let mut m = Masker::new(["s3cret!"]);
        assert_eq!(run(&mut m, &[b"pw=s3cret! ok"]), b"pw=*** ok");
        let mut m = Masker::new(["s3cret!"]);
        assert_eq!(
            run(&mut m, &[b"pw=s3c", b"re", b"t! ok s3cr"]),
            b"pw=*** ok s3cr"
        );
        let mut m = Masker::new(["s3cret!"]);
        assert_eq!(
            run(&mut m, &[b"s", b"3", b"c", b"r", b"e", b"t", b"!"]),
            b"***"
        );
    }

    #[test]
    fn every_split_point_is_masked() {
        let text = b"a hunter22 b hunter22hunter22 c hunte";
        for cut in 0..text.len() {
            let mut m = Masker::new(["hunter22"]);
            let out = run(&mut m, &[&text[..cut], &text[cut..]]);
            assert_eq!(out, b"a *** b ****** c hunte", "cut at {cut}");
        }
    }

    #[test]
    fn short_secrets_and_none_pass_through() {
        let mut m = Masker::new(["ab"]);
        assert!(m.is_empty());
        assert_eq!(run(&mut m, &[b"abc"]), b"abc");
    }

    #[test]
    fn multi_line_secret_lines_are_masked() {
        let key = "-----BEGIN KEY-----\nAAAAline2\n-----END KEY-----";
        let mut m = Masker::new([key]);
        assert_eq!(run(&mut m, &[b"x AAAAline2 y"]), b"x *** y");
        let mut m = Masker::new([key]);
        assert_eq!(run(&mut m, &[key.as_bytes()]), b"***");
    }

    #[test]
    fn non_utf8_passes() {
        let mut m = Masker::new(["secret"]);
        assert_eq!(
            run(&mut m, &[&[0xff, 0xfe, b's'], b"ecret", &[0x80]]),
            vec![0xff, 0xfe, b'*', b'*', b'*', 0x80]
        );
    }
}
