//! What the fuzz targets share besides the checks: the fixtures and the secrets.
#![allow(dead_code)] // each target uses a different part of this module

use std::path::Path;
use std::sync::OnceLock;

use clerk_webhooks::verify::SigningSecret;
use serde_json::Value;

use crate::invariants::{configured_secrets, load_fixtures};

/// The Clerk fixtures of the repository's `events/`, read once per process.
pub fn fixtures() -> &'static [Value] {
    static FIXTURES: OnceLock<Vec<Value>> = OnceLock::new();
    FIXTURES.get_or_init(|| load_fixtures(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")))
}

/// The configured secrets, made once per process.
pub fn secrets() -> &'static [SigningSecret] {
    static SECRETS: OnceLock<Vec<SigningSecret>> = OnceLock::new();
    SECRETS.get_or_init(configured_secrets)
}
