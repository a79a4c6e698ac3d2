//! The CLIXML stderr decoder (clixml.rs). See `orca_connectors::fuzzing::Target::Clixml`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orca_connectors::fuzzing::Target;

fuzz_target!(|data: &[u8]| Target::Clixml.run(data));
