//! Log setup. One JSON object per line when `AWS_LAMBDA_LOG_FORMAT=JSON` (Lambda's advanced
//! logging controls), plain text otherwise; level from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`.

use tracing_subscriber::filter::{LevelFilter, Targets};

/// Our own lines at `level`; every other crate at most INFO, whatever `level` says. At TRACE
/// the AWS SDK and the Lambda runtime print request and response bodies: with them, emails,
/// names and metadata (and DynamoDB's copy of the old item) would reach the logs.
pub fn filter(level: LevelFilter) -> Targets {
    Targets::new()
        .with_default(level.min(LevelFilter::INFO))
        .with_target(env!("CARGO_CRATE_NAME"), level)
}

/// Installs the global subscriber, writing to stdout. Call once, first thing in `main`.
pub fn init() {
    install(std::io::stdout, None);
}

/// As [`init`], but to stderr, with colours only on a terminal: for a command whose stdout is
/// its result (`clerk-webhooks-backfill` prints its summary there).
pub fn init_stderr() {
    use std::io::IsTerminal;
    install(std::io::stderr, Some(std::io::stderr().is_terminal()));
}

fn install<W>(writer: W, ansi: Option<bool>)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Lambda adds its own timestamps; without_time keeps lines short.
    let mut fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(writer);
    if let Some(ansi) = ansi {
        fmt = fmt.with_ansi(ansi);
    }
    let registry = tracing_subscriber::registry().with(filter(level));
    if json {
        registry.with(fmt.json()).init();
    } else {
        registry.with(fmt).init();
    }
}
