//! Serves the test suite's fake Clerk Backend API (tests/it/helpers/fake_clerk.rs) on loopback,
//! for trying `clerk-webhooks-backfill` by hand and for `perf/backfill.sh`. Loopback only;
//! never talks to Clerk.
//!
//! ```text
//! cargo run --example fake_clerk -- [--port 8081] [--users 5000] [--organizations 500] [--members 10]
//! ```
//! It prints `CLERK_API_URL=… CLERK_SECRET_KEY=…` (a fake key) for the backfill, then serves until
//! killed.

#[path = "../tests/it/helpers/fake_clerk.rs"]
mod fake_clerk;
#[path = "../tests/it/helpers/http.rs"]
mod http;

use fake_clerk::{Data, FakeClerk, KEY};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut port, mut users, mut orgs, mut members) = (8081u16, 5_000usize, 500usize, 10usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = value.parse()?,
            "--users" => users = value.parse()?,
            "--organizations" => orgs = value.parse()?,
            "--members" => members = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    let data = Data::generate(users, orgs, members);
    let memberships = data.memberships.len();
    let fake = FakeClerk::bind(&format!("127.0.0.1:{port}"), data).await;
    eprintln!("fake Clerk API: {users} users, {orgs} organizations, {memberships} memberships");
    println!("CLERK_API_URL={} CLERK_SECRET_KEY={KEY}", fake.url);
    // Until killed (Ctrl-C or SIGTERM end the process).
    std::future::pending::<()>().await;
    drop(fake);
    Ok(())
}
