//! A stable-toolchain smoke run of the WinRM fuzz targets (`orca_connectors::fuzzing`, the same
//! functions `cargo fuzz` drives): seeds, then thousands of mutated-seed and random inputs per
//! target. No input may panic (a broken property panics too) or take longer than a bound.
//!
//! `ORCA_FUZZ_SMOKE_ITERS` sets the inputs per target (default 3000); `ORCA_FUZZ_SMOKE_SEED`
//! the random seed (default fixed, so a failure reproduces).

use std::time::{Duration, Instant};

use orca_connectors::fuzzing::{Target, seeds};

/// Longest one input may take (debug build, a loaded 2-core machine).
const PER_INPUT: Duration = Duration::from_secs(2);

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Tokens that steer mutations toward the parsers' interesting branches.
const DICTIONARY: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&amp;",
    b"&#x",
    b"&#",
    b";",
    b"<![CDATA[",
    b"]]>",
    b"<!DOCTYPE",
    b"xmlns:",
    b"\"",
    b"=",
    b"_x",
    b"_x000A_",
    b"#< CLIXML",
    b"<S S=\"Error\">",
    b"</S>",
    b"<Obj ",
    b"</Obj>",
    b"<Objs>",
    b"--Encrypted Boundary",
    b"--Encrypted Boundary--\r\n",
    b"Length=",
    b"\r\n",
    b"NTLMSSP\0",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x10\x00\x00\x00",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = [0, 0xff, 0x7f, 0x80, b'<', b'&', b'"'][rng.below(7)];
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let b = rng.bytes(n);
                input.splice(at..at, b);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                input.drain(at..at + n);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let copy = input[at..at + n].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, copy);
            }
            5 => {
                let at = rng.below(len + 1);
                let tok = DICTIONARY[rng.below(DICTIONARY.len())];
                input.splice(at..at, tok.iter().copied());
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            7 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                let from = rng.below(other.len() + 1);
                let at = rng.below(len + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                // Keep the mode byte but change it, so every branch of a target gets inputs.
                if let Some(b) = input.first_mut() {
                    *b = rng.next() as u8;
                }
            }
        }
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn smoke(target: Target) {
    let iters = env_num("ORCA_FUZZ_SMOKE_ITERS", 3000) as usize;
    let mut rng = Rng(env_num("ORCA_FUZZ_SMOKE_SEED", 0x0DDC_0FFE_E0DD_F00D) | 1);
    let pool = seeds(target);
    assert!(!pool.is_empty(), "{}: no seeds", target.name());
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut run = |input: &[u8], what: &str, i: usize| {
        let t = Instant::now();
        if let Err(panic) = std::panic::catch_unwind(|| target.run(input)) {
            // Print the reproducer: `cargo fuzz run <target> FILE` with these bytes.
            let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
            eprintln!(
                "{}: {what} input #{i} failed; its bytes (hex): {hex}",
                target.name()
            );
            std::panic::resume_unwind(panic);
        }
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < PER_INPUT,
            "{}: {what} input #{i} ({} bytes) took {took:?}",
            target.name(),
            input.len()
        );
    };
    for (i, s) in pool.iter().enumerate() {
        run(s, "seed", i);
    }
    let mut corpus = pool.clone();
    for i in 0..iters {
        let input = if i % 4 == 3 {
            // Pure noise, with a mode byte for each branch.
            let n = rng.below(512);
            let mut v = rng.bytes(n);
            v.insert(0, (i / 4) as u8);
            v
        } else {
            let mut v = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &mut v, &pool);
            v
        };
        run(&input, "mutated", i);
        // Keep a bounded, changing corpus so mutations stack.
        if corpus.len() < 256 {
            corpus.push(input);
        } else {
            let j = rng.below(corpus.len());
            corpus[j] = input;
        }
    }
    eprintln!(
        "{}: {} inputs in {:?}, slowest {slowest:?}",
        target.name(),
        pool.len() + iters,
        started.elapsed()
    );
}

#[test]
fn soap_response_survives_hostile_input() {
    smoke(Target::SoapResponse);
}

#[test]
fn clixml_survives_hostile_input() {
    smoke(Target::Clixml);
}

#[test]
fn sealing_survives_hostile_input() {
    smoke(Target::Sealing);
}

#[test]
fn ntlm_survives_hostile_input() {
    smoke(Target::Ntlm);
}

#[test]
fn seeds_exercise_the_deep_paths() {
    use orca_connectors::winrm::response;
    // The SOAP seeds are real answers: they must parse, or the fuzzer starts shallow.
    let soap = seeds(Target::SoapResponse);
    let parsed = soap
        .iter()
        .filter(|s| response::parse(s, orca_connectors::fuzzing::MESSAGE_ID).is_ok())
        .count();
    assert!(parsed >= 5, "only {parsed} SOAP seeds parse");
    assert_eq!(
        seeds(Target::Ntlm).len(),
        4,
        "the NTLM seeds come from a real exchange"
    );
}
