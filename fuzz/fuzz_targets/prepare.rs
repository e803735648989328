//! The whole pure request path, `handler::prepare`: method, size, signature headers, HMAC,
//! decoding and planning, with requests that are signed right unless the input says
//! otherwise, so the fuzzer gets past the signature. Checks that `prepare` plans what the
//! planner does, keeps only verified ids, and answers bad input with a 4xx. Input layout:
//! `invariants::run_prepare`.
#![no_main]

mod common;
// Each fuzz target uses part of the shared invariants; the suite uses all of them.
#[allow(dead_code)]
#[path = "../../tests/it/properties/invariants.rs"]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    invariants::run_prepare(data, common::fixtures(), common::secrets());
});
