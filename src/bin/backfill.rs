//! clerk-webhooks-backfill: copies the users, organizations and memberships that existed before
//! the webhook endpoint into the table. Wiring only; see `clerk_webhooks::backfill`.
//!
//! On a laptop it is a command (`--help`). Deployed as a Lambda (the runtime sets
//! `AWS_LAMBDA_RUNTIME_API`), each invocation is one run, with the flags as a JSON payload,
//! and answers with the summary.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use clerk_webhooks::backfill::options::{Args, BackfillConfig, Invocation, Options};
use clerk_webhooks::backfill::progress::Display;
use clerk_webhooks::backfill::{backfill_emf, Backfill, Summary};
use clerk_webhooks::clerk_api::ClerkApi;
use clerk_webhooks::store::{self, Store};
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs and progress on stderr; stdout carries only the summary.
    clerk_webhooks::logging::init_stderr();
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return match lambda_runtime::run(service_fn(backfill_invocation)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "the Lambda runtime stopped");
                ExitCode::FAILURE
            }
        };
    }
    // Usage errors exit with 2, --help with 0, as before.
    let options = Options {
        display: Display::auto(),
        ..Args::parse().options()
    };
    match run(options).await {
        // Every other object was copied; the skipped ones are listed by id in the summary.
        Ok(summary) if summary.skipped() > 0 => {
            println!("{summary}");
            eprintln!(
                "clerk-webhooks-backfill: {} objects skipped (ids above and in the log)",
                summary.skipped()
            );
            ExitCode::from(3)
        }
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("clerk-webhooks-backfill: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<Summary, Error> {
    Ok(run_with_config(options).await?.0)
}

async fn run_with_config(options: Options) -> Result<(Summary, BackfillConfig), Error> {
    let config = BackfillConfig::from_env(options.dry_run)?;
    let api = ClerkApi::new(config.base.clone(), config.key.clone(), options.retry)?;
    let store = match &config.table_name {
        Some(table) => Some(Store::new(store::client_from_env().await, table)),
        None => None,
    };
    let summary = Backfill::new(api, store, options).run().await?;
    Ok((summary, config))
}

/// One manual invocation (`aws lambda invoke --payload '{"only": ["users"]}'`). It stops
/// starting pages a minute before the function's timeout and answers `complete: false`; the
/// next invocation resumes from the checkpoint.
async fn backfill_invocation(event: LambdaEvent<serde_json::Value>) -> Result<Summary, Error> {
    let payload = match event.payload {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        payload => payload,
    };
    let invocation: Invocation = serde_json::from_value(payload)?;
    let remaining = event
        .context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    let options = Options {
        deadline: Some(Instant::now() + remaining),
        display: Display::Lines(Duration::from_secs(10)),
        ..invocation.options()?
    };
    let (summary, config) = run_with_config(options).await?;
    // The run's numbers as metrics: EMF lines on stdout, which Lambda ships to CloudWatch.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    for line in backfill_emf(&config.metrics_namespace, &summary, now_ms) {
        println!("{line}");
    }
    Ok(summary)
}
