//! clerk-webhooks-get: reads the table from the command line (`--help`). Wiring only; see
//! `clerk_webhooks::get`.

use std::process::ExitCode;

use clap::Parser;
use clerk_webhooks::clerk_api::{self, ClerkApi, RetryPolicy};
use clerk_webhooks::env::Env;
use clerk_webhooks::get::{run, Args, Printed};
use clerk_webhooks::read::Reader;
use clerk_webhooks::store::{self, Store};
use clerk_webhooks::sync::Syncer;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    clerk_webhooks::logging::init_stderr();
    let args = Args::parse();
    let store = Store::new(store::client_from_env().await, &args.table);
    let syncer = match args.sync.then(|| syncer(store.clone())).transpose() {
        Ok(syncer) => syncer,
        Err(error) => {
            eprintln!("clerk-webhooks-get: {error}");
            return ExitCode::from(2);
        }
    };
    let reader = Reader::from_store(store);
    match run(
        &args,
        &reader,
        syncer.as_ref(),
        &mut std::io::stdout().lock(),
    )
    .await
    {
        Ok(Printed::Objects(_)) => ExitCode::SUCCESS,
        Ok(Printed::Nothing) => ExitCode::from(1),
        Err(error) => {
            eprintln!("clerk-webhooks-get: {error}");
            ExitCode::from(2)
        }
    }
}

/// The Backend API from `CLERK_SECRET_KEY` (and `CLERK_API_URL`), for `--sync`.
fn syncer(store: Store) -> Result<Syncer, Box<dyn std::error::Error>> {
    let (base, key) = clerk_api::settings(&Env::process())?;
    Ok(Syncer::new(
        store,
        ClerkApi::new(base, key, RetryPolicy::default())?,
    ))
}
