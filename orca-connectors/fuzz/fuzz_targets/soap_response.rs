//! The SOAP answer parser (xml.rs, response.rs). See `orca_connectors::fuzzing::Target::SoapResponse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orca_connectors::fuzzing::Target;

fuzz_target!(|data: &[u8]| Target::SoapResponse.run(data));
