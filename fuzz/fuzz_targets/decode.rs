//! The envelope and payload decoder on arbitrary bytes: never panics; a decoded event agrees
//! with the body and carries only key-safe ids; an error never quotes the body.
#![no_main]

// Each fuzz target uses part of the shared invariants; the suite uses all of them.
#[allow(dead_code)]
#[path = "../../tests/it/properties/invariants.rs"]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    invariants::check_decode(data);
});
