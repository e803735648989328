//! The signature verifier: arbitrary `svix-*` / `webhook-*` headers and bodies at a fixed
//! clock, checked against an oracle written from the scheme; and round trips of our own
//! signatures over arbitrary keys, ids, timestamps and bodies, which must verify and must
//! stop verifying when one bit changes. Input layout: `invariants::run_verify`.
#![no_main]

mod common;
// Each fuzz target uses part of the shared invariants; the suite uses all of them.
#[allow(dead_code)]
#[path = "../../tests/it/properties/invariants.rs"]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    invariants::run_verify(data, common::secrets());
});
