//! NTLM messages from a peer, client and server side (ntlm.rs through sspi). See `orca_connectors::fuzzing::Target::Ntlm`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orca_connectors::fuzzing::Target;

fuzz_target!(|data: &[u8]| Target::Ntlm.run(data));
