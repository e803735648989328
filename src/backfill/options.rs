//! What to copy and how: command-line flags, the Lambda invocation payload, and the
//! environment. Pure; errors name the flag or variable, never a secret.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::kind::Kind;
use super::progress::Display;
use crate::clerk_api::{self, ApiBase, RetryPolicy, SecretKey, MAX_PAGE_SIZE};
use crate::env::{ConfigError, Env, TABLE_VAR};

pub(crate) const DEFAULT_CONCURRENCY: usize = 8;
pub(crate) const MAX_CONCURRENCY: usize = 64;

const ENVIRONMENT: &str = "\
environment: CLERK_SECRET_KEY (required), CLERK_API_URL (default https://api.clerk.com),
             TABLE_NAME, and the usual AWS variables (AWS_REGION, AWS_PROFILE, ...)";

/// Copies the users, organizations and memberships that already exist in Clerk into the
/// table, through the same sync rules as the webhooks. Safe to run twice and while webhooks
/// arrive.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "clerk-webhooks-backfill", after_help = ENVIRONMENT)]
pub struct Args {
    /// users, organizations, memberships, comma-separated [default: all three]
    #[arg(long, value_name = "KINDS", value_parser = kinds)]
    only: Option<Kinds>,
    /// Objects per Backend API request, 1 to 500
    #[arg(long, value_name = "N", default_value_t = MAX_PAGE_SIZE, value_parser = page_size)]
    page_size: u32,
    /// DynamoDB writes in flight, 1 to 64
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY, value_parser = concurrency)]
    concurrency: usize,
    /// Per Backend API request, in seconds, 1 to 600
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = timeout_secs)]
    timeout: u64,
    /// Read and check every object, count, write nothing (TABLE_NAME optional)
    #[arg(long)]
    dry_run: bool,
    /// Ignore the saved checkpoints and start from the first object
    #[arg(long)]
    restart: bool,
    /// Also tombstone what Clerk no longer has: list everything, then confirm each live item
    /// the listing did not return with its own lookup. With --dry-run: print those ids only
    #[arg(long)]
    reconcile: bool,
    /// With --reconcile: tombstone even more than 5 % of a kind's live items (at least 10)
    #[arg(long, requires = "reconcile")]
    allow_mass_delete: bool,
}

/// The kinds to copy, parents first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Kinds(Vec<Kind>);

impl Args {
    pub fn options(self) -> Options {
        let mut options = Options {
            page_size: self.page_size,
            concurrency: self.concurrency,
            dry_run: self.dry_run,
            restart: self.restart,
            reconcile: self.reconcile,
            allow_mass_delete: self.allow_mass_delete,
            ..Options::default()
        };
        if let Some(Kinds(kinds)) = self.only {
            options.kinds = kinds;
        }
        options.retry.request_timeout = Duration::from_secs(self.timeout);
        options
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// In this order (parents first, which keeps the table tidy while it fills; correctness
    /// does not depend on it).
    pub kinds: Vec<Kind>,
    pub page_size: u32,
    pub concurrency: usize,
    pub dry_run: bool,
    pub restart: bool,
    /// Deletions too ([`super::reconcile`]).
    pub reconcile: bool,
    /// Past the bound on tombstones.
    pub allow_mass_delete: bool,
    /// Only go on with an unfinished reconcile; start none (the scheduled continuation).
    pub resume_only: bool,
    pub retry: RetryPolicy,
    /// In Lambda: no new page is started once this is less than [`Options::margin`] away.
    pub deadline: Option<Instant>,
    pub margin: Duration,
    /// Back-off of DynamoDB writes that fail after the SDK's own retries.
    pub write_backoff: Duration,
    pub display: Display,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kinds: Kind::ALL.to_vec(),
            page_size: MAX_PAGE_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            dry_run: false,
            restart: false,
            reconcile: false,
            allow_mass_delete: false,
            resume_only: false,
            retry: RetryPolicy::default(),
            deadline: None,
            margin: Duration::from_secs(60),
            write_backoff: Duration::from_millis(200),
            display: Display::Off,
        }
    }
}

/// A value of the Lambda invocation payload that is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInvocation {
    field: &'static str,
    reason: String,
}

/// The payload of a Lambda invocation: the flags as JSON, every field optional.
/// `{"only": ["users"], "page_size": 500, "concurrency": 8, "timeout_secs": 30,
///   "dry_run": false, "restart": false, "reconcile": false, "allow_mass_delete": false,
///   "resume_only": false}`. `resume_only` (with `reconcile`) goes on with an unfinished
/// reconcile and starts none: what the scheduled continuation sends.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    pub only: Option<Vec<String>>,
    pub page_size: Option<u32>,
    pub concurrency: Option<usize>,
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub restart: bool,
    #[serde(default)]
    pub reconcile: bool,
    #[serde(default)]
    pub allow_mass_delete: bool,
    #[serde(default)]
    pub resume_only: bool,
}

impl Invocation {
    pub fn options(self) -> Result<Options, InvalidInvocation> {
        if (self.allow_mass_delete || self.resume_only) && !self.reconcile {
            let field = if self.resume_only {
                "resume_only"
            } else {
                "allow_mass_delete"
            };
            return Err(invalid(field, "only with \"reconcile\": true".into()));
        }
        let mut options = Options {
            dry_run: self.dry_run,
            restart: self.restart,
            reconcile: self.reconcile,
            allow_mass_delete: self.allow_mass_delete,
            resume_only: self.resume_only,
            ..Options::default()
        };
        if let Some(only) = self.only {
            options.kinds = kinds(&only.join(",")).map_err(|r| invalid("only", r))?.0;
        }
        if let Some(n) = self.page_size {
            options.page_size = page_size(&n.to_string()).map_err(|r| invalid("page_size", r))?;
        }
        if let Some(n) = self.concurrency {
            options.concurrency =
                concurrency(&n.to_string()).map_err(|r| invalid("concurrency", r))?;
        }
        if let Some(n) = self.timeout_secs {
            options.retry.request_timeout = Duration::from_secs(
                timeout_secs(&n.to_string()).map_err(|r| invalid("timeout_secs", r))?,
            );
        }
        Ok(options)
    }
}

fn invalid(field: &'static str, reason: String) -> InvalidInvocation {
    InvalidInvocation { field, reason }
}

fn kinds(value: &str) -> Result<Kinds, String> {
    let mut kinds = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = Kind::parse(name)
            .ok_or_else(|| format!("{name} is not users, organizations or memberships"))?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err("name at least one kind".into());
    }
    // Always parents first, whatever order was given.
    kinds.sort_by_key(|k| Kind::ALL.iter().position(|a| a == k));
    Ok(Kinds(kinds))
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    value: &str,
    min: T,
    max: T,
) -> Result<T, String> {
    value
        .trim()
        .parse::<T>()
        .ok()
        .filter(|n| *n >= min && *n <= max)
        .ok_or_else(|| format!("expected a whole number from {min} to {max}"))
}

fn page_size(value: &str) -> Result<u32, String> {
    number(value, 1, MAX_PAGE_SIZE)
}

fn concurrency(value: &str) -> Result<usize, String> {
    number(value, 1, MAX_CONCURRENCY)
}

fn timeout_secs(value: &str) -> Result<u64, String> {
    number(value, 1u64, 600)
}

/// The environment the backfill needs.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    pub key: SecretKey,
    pub base: ApiBase,
    /// Required unless dry-running.
    pub table_name: Option<String>,
    /// Where a run's metrics go when it runs as a Lambda (`METRICS_NAMESPACE`).
    pub metrics_namespace: String,
}

impl BackfillConfig {
    pub fn from_env(dry_run: bool) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), dry_run)
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        dry_run: bool,
    ) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let (base, key) = clerk_api::settings(&env)?;
        let table_name = env.get(TABLE_VAR);
        if table_name.is_none() && !dry_run {
            return Err(ConfigError::Missing(TABLE_VAR));
        }
        Ok(Self {
            key,
            base,
            table_name,
            metrics_namespace: env.metrics_namespace()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::clerk_api::{API_URL_VAR, SECRET_KEY_VAR};
    use std::collections::HashMap;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        let args = std::iter::once("clerk-webhooks-backfill").chain(args.iter().copied());
        Args::try_parse_from(args).map(Args::options)
    }

    fn run(args: &[&str]) -> Options {
        parse(args).unwrap()
    }

    #[test]
    fn defaults_copy_everything_in_pages_of_500_with_8_writes_in_flight() {
        let o = run(&[]);
        assert_eq!(o, Options::default());
        assert_eq!(
            o.kinds,
            [Kind::Users, Kind::Organizations, Kind::Memberships]
        );
        assert_eq!((o.page_size, o.concurrency), (500, 8));
        assert!(!o.dry_run && !o.restart);
        assert_eq!(o.retry.request_timeout, Duration::from_secs(30));
    }

    #[test]
    fn flags_with_spaces_or_equals() {
        let o = run(&[
            "--only",
            "memberships,users",
            "--page-size=100",
            "--concurrency",
            "16",
            "--timeout=5",
            "--dry-run",
            "--restart",
        ]);
        assert_eq!(o.kinds, [Kind::Users, Kind::Memberships], "parents first");
        assert_eq!((o.page_size, o.concurrency), (100, 16));
        assert_eq!(o.retry.request_timeout, Duration::from_secs(5));
        assert!(o.dry_run && o.restart);
        assert_eq!(run(&["--only", "orgs"]).kinds, [Kind::Organizations]);
        let help = parse(&["-h"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("CLERK_SECRET_KEY (required)"));
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--page-size", "501"],
                "'--page-size <N>': expected a whole number from 1 to 500",
            ),
            (
                &["--page-size", "0"],
                "'--page-size <N>': expected a whole number from 1 to 500",
            ),
            (
                &["--concurrency", "x"],
                "'--concurrency <N>': expected a whole number from 1 to 64",
            ),
            (
                &["--only", "sessions"],
                "'--only <KINDS>': sessions is not users, organizations or memberships",
            ),
            (&["--only", ","], "'--only <KINDS>': name at least one kind"),
            (
                &["--page-size"],
                "a value is required for '--page-size <N>'",
            ),
            (&["--users"], "unexpected argument '--users'"),
        ];
        for (args, message) in cases {
            let error = parse(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
            let text = error.to_string();
            assert!(text.contains(message), "{args:?}: {text}");
        }
    }

    #[test]
    fn a_lambda_invocation_takes_the_same_options_as_json() {
        let o: Invocation = serde_json::from_str(
            r#"{"only": ["organizations"], "page_size": 50, "dry_run": true}"#,
        )
        .unwrap();
        let o = o.options().unwrap();
        assert_eq!(
            (o.kinds.as_slice(), o.page_size),
            ([Kind::Organizations].as_slice(), 50)
        );
        assert!(o.dry_run);
        let empty: Invocation = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.options().unwrap(), Options::default());
        assert!(serde_json::from_str::<Invocation>(r#"{"pagesize": 5}"#).is_err());
        let big: Invocation = serde_json::from_str(r#"{"concurrency": 1000}"#).unwrap();
        assert!(big.options().is_err());
    }

    fn config(vars: &[(&str, &str)], dry_run: bool) -> Result<BackfillConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BackfillConfig::from_lookup(|k| map.get(k).cloned(), dry_run)
    }

    #[test]
    fn the_environment() {
        let c = config(
            &[(SECRET_KEY_VAR, "sk_test_0123456789"), (TABLE_VAR, "t")],
            false,
        )
        .unwrap();
        assert_eq!(c.base.as_str(), "https://api.clerk.com");
        assert_eq!(c.table_name.as_deref(), Some("t"));
        assert!(
            !format!("{c:?}").contains("0123456789"),
            "Debug hides the key"
        );
        assert_eq!(
            config(&[(TABLE_VAR, "t")], false).unwrap_err(),
            ConfigError::Missing(SECRET_KEY_VAR)
        );
        assert_eq!(
            config(&[(SECRET_KEY_VAR, "sk_test_0123456789")], false).unwrap_err(),
            ConfigError::Missing(TABLE_VAR)
        );
        assert!(config(&[(SECRET_KEY_VAR, "sk_test_0123456789")], true).is_ok());
        let c = config(
            &[
                (SECRET_KEY_VAR, "sk_test_0123456789"),
                (API_URL_VAR, "http://127.0.0.1:9/v1"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(c.base.as_str(), "http://127.0.0.1:9");
    }

    #[test]
    fn reconcile_by_flag_and_by_payload() {
        let o = run(&["--reconcile", "--allow-mass-delete"]);
        assert!(o.reconcile && o.allow_mass_delete && !o.resume_only);
        // The bound can only be lifted for a reconcile.
        assert!(parse(&["--allow-mass-delete"]).is_err());
        let scheduled: Invocation =
            serde_json::from_str(r#"{"reconcile": true, "resume_only": true}"#).unwrap();
        let o = scheduled.options().unwrap();
        assert!(o.reconcile && o.resume_only && !o.allow_mass_delete);
        let alone: Invocation = serde_json::from_str(r#"{"resume_only": true}"#).unwrap();
        assert_eq!(
            alone.options().unwrap_err().to_string(),
            "resume_only: only with \"reconcile\": true"
        );
    }
}
