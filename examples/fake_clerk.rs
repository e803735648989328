//! Serves the test suite's fake Clerk Backend API (tests/it/helpers/fake_clerk.rs) on loopback,
//! for trying `clerk-webhooks-backfill` by hand and for `perf/backfill.sh`. Loopback only;
//! never talks to Clerk.
//!
//! ```text
//! cargo run --example fake_clerk -- [--port 8081] [--users 5000] [--organizations 500] [--members 10]
//! ```
//! It prints `CLERK_API_URL=… CLERK_SECRET_KEY=…` (a fake key) for the backfill, then serves until
//! killed.

// A tool uses part of a shared test helper; the suite itself uses all of it.
#[allow(dead_code)]
#[path = "../tests/it/helpers/fake_clerk.rs"]
mod fake_clerk;
#[path = "../tests/it/helpers/http.rs"]
mod http;

use clap::Parser;
use fake_clerk::{Data, FakeClerk, KEY};

/// Serves a fake Clerk Backend API on 127.0.0.1.
#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 8081)]
    port: u16,
    #[arg(long, default_value_t = 5_000)]
    users: usize,
    #[arg(long, default_value_t = 500)]
    organizations: usize,
    /// Members per organization.
    #[arg(long, default_value_t = 10)]
    members: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let data = Data::generate(args.users, args.organizations, args.members);
    let memberships = data.memberships.len();
    let fake = FakeClerk::bind(&format!("127.0.0.1:{}", args.port), data).await;
    eprintln!(
        "fake Clerk API: {} users, {} organizations, {memberships} memberships",
        args.users, args.organizations
    );
    println!("CLERK_API_URL={} CLERK_SECRET_KEY={KEY}", fake.url);
    // Until killed (Ctrl-C or SIGTERM end the process).
    std::future::pending::<()>().await;
    drop(fake);
}
