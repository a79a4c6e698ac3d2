//! MS-WSMV multipart/encrypted parsing and NTLM unsealing (sealing.rs). See `orca_connectors::fuzzing::Target::Sealing`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orca_connectors::fuzzing::Target;

fuzz_target!(|data: &[u8]| Target::Sealing.run(data));
