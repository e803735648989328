//! The planner on decoded events, with arbitrary settings (as `Config` allows them), clock
//! and svix id. Bodies are either raw bytes or a fixture mutated as JSON (retyped, fields
//! replaced, removed, added, `data` swapped), which reaches far more plans than bytes do.
//! Input layout: `invariants::run_plan`.
#![no_main]

mod common;
// Each fuzz target uses part of the shared invariants; the suite uses all of them.
#[allow(dead_code)]
#[path = "../../tests/it/properties/invariants.rs"]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    invariants::run_plan(data, common::fixtures());
});
