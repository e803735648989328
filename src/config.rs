//! Environment -> [`Config`]. Errors name the variable, never its value.

use crate::env::{invalid, ConfigError, Env, TABLE_VAR};
use crate::plan::settings::{
    Settings, DEFAULT_EVENT_TTL_DAYS, DEFAULT_TOMBSTONE_TTL_DAYS, SECS_PER_DAY,
};
use crate::verify::{SecretError, SigningSecret, Verifier};

/// Clerk's documented name for the signing secret.
pub const SECRET_VAR: &str = "CLERK_WEBHOOK_SIGNING_SECRET";
/// The name many Clerk examples use; read when [`SECRET_VAR`] is unset.
pub const SECRET_FALLBACK_VAR: &str = "CLERK_WEBHOOK_SECRET";
pub(crate) const EVENT_TTL_VAR: &str = "EVENT_TTL_DAYS";
pub(crate) const TOMBSTONE_TTL_VAR: &str = "TOMBSTONE_TTL_DAYS";
/// `false` skips opening the DynamoDB connection at init (to measure what that saves).
pub(crate) const WARM_UP_VAR: &str = "DYNAMODB_WARM_UP";
/// Opt-in: keep metadata (never content) of the emails and SMS messages Clerk sends.
pub(crate) const MESSAGE_METADATA_VAR: &str = "STORE_MESSAGE_METADATA";
/// Optional: the Clerk instance (`ins_…`) whose events this function accepts.
pub const INSTANCE_VAR: &str = "CLERK_INSTANCE_ID";

#[derive(Debug, Clone)]
pub struct Config {
    pub verifier: Verifier,
    pub table_name: String,
    pub settings: Settings,
    /// CloudWatch namespace of the per-request EMF metrics.
    pub metrics_namespace: String,
    /// Open the DynamoDB connection during init (default on).
    pub warm_up: bool,
    /// `CLERK_INSTANCE_ID`: when set, a verified event from any other instance is refused.
    pub instance_id: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let (secret_var, secrets) = match env.get(SECRET_VAR) {
            Some(v) => (SECRET_VAR, v),
            None => (
                SECRET_FALLBACK_VAR,
                env.get(SECRET_FALLBACK_VAR)
                    .ok_or(ConfigError::Missing(SECRET_VAR))?,
            ),
        };
        let verifier = Verifier::new(
            parse_secrets(&secrets).map_err(|e| invalid(secret_var, &e.to_string()))?,
        );
        let days = |var, default| -> Result<i64, ConfigError> {
            Ok(i64::from(env.number(var, 1..=3650, default, "days")?) * SECS_PER_DAY)
        };
        let settings = Settings {
            event_secs: days(EVENT_TTL_VAR, DEFAULT_EVENT_TTL_DAYS)?,
            tombstone_secs: days(TOMBSTONE_TTL_VAR, DEFAULT_TOMBSTONE_TTL_DAYS)?,
            message_metadata: env.flag(MESSAGE_METADATA_VAR, false)?,
        };
        let instance_id = env
            .get(INSTANCE_VAR)
            .map(|id| instance(INSTANCE_VAR, &id))
            .transpose()?;
        Ok(Self {
            verifier,
            table_name: env.require(TABLE_VAR)?,
            settings,
            metrics_namespace: env.metrics_namespace()?,
            warm_up: env.get(WARM_UP_VAR).is_none_or(|v| v != "false"),
            instance_id,
        })
    }
}

/// A Clerk instance id, as `GET /v1/instance` answers it and envelopes carry it (`ins_…`).
pub(crate) fn instance(var: &'static str, id: &str) -> Result<String, ConfigError> {
    if crate::event::is_key_safe(id) {
        Ok(id.to_owned())
    } else {
        Err(ConfigError::Invalid {
            var,
            reason: "expected an instance id such as ins_2abc… (letters, digits and _)".into(),
        })
    }
}

/// Several secrets, separated by spaces or commas, so a secret can be rotated without downtime.
pub fn parse_secrets(value: &str) -> Result<Vec<SigningSecret>, SecretError> {
    let secrets = value
        .split([' ', ',', '\n', '\t'])
        .filter(|s| !s.is_empty())
        .map(SigningSecret::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if secrets.is_empty() {
        return Err(SecretError::Empty);
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::METRICS_NAMESPACE_VAR;
    use std::collections::HashMap;

    const A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn reads_secret_table_and_defaults() {
        let c = config(&[(SECRET_VAR, A), (TABLE_VAR, "clerk")]).unwrap();
        assert_eq!(c.table_name, "clerk");
        assert_eq!(c.settings, Settings::default());
        assert_eq!(c.settings.event_secs, 30 * 86_400);
        assert!(!c.settings.message_metadata, "message metadata is opt-in");
    }

    #[test]
    fn falls_back_to_the_older_secret_name() {
        assert!(config(&[(SECRET_FALLBACK_VAR, A), (TABLE_VAR, "t")]).is_ok());
        assert_eq!(
            config(&[(TABLE_VAR, "t")]).unwrap_err(),
            ConfigError::Missing(SECRET_VAR)
        );
    }

    #[test]
    fn several_secrets_by_space_or_comma() {
        assert_eq!(parse_secrets(&format!("{A} {B}")).unwrap().len(), 2);
        assert_eq!(parse_secrets(&format!("{A},{B}")).unwrap().len(), 2);
        assert_eq!(parse_secrets(&format!(" {A} , {B} ")).unwrap().len(), 2);
    }

    #[test]
    fn errors_name_the_variable_and_never_the_value() {
        let err = config(&[(SECRET_VAR, "whsec_not*base64"), (TABLE_VAR, "t")]).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains(SECRET_VAR), "{shown}");
        assert!(!shown.contains("not*base64"), "{shown}");
        let err = config(&[(SECRET_VAR, A)]).unwrap_err();
        assert_eq!(err.to_string(), "TABLE_NAME is not set");
        let err = config(&[(SECRET_VAR, A), (TABLE_VAR, "t"), (EVENT_TTL_VAR, "0")]).unwrap_err();
        assert!(err.to_string().starts_with("EVENT_TTL_DAYS is invalid"));
    }

    #[test]
    fn ttl_days_are_configurable() {
        let c = config(&[(SECRET_VAR, A), (TABLE_VAR, "t"), (TOMBSTONE_TTL_VAR, "7")]).unwrap();
        assert_eq!(c.settings.tombstone_secs, 7 * 86_400);
    }

    #[test]
    fn metrics_namespace_defaults_and_is_checked() {
        let c = config(&[(SECRET_VAR, A), (TABLE_VAR, "t")]).unwrap();
        assert_eq!(c.metrics_namespace, "ClerkWebhooks");
        assert!(c.warm_up, "the warm-up is on unless turned off");
        let off = config(&[(SECRET_VAR, A), (TABLE_VAR, "t"), (WARM_UP_VAR, "false")]);
        assert!(!off.unwrap().warm_up);
        let c = config(&[
            (SECRET_VAR, A),
            (TABLE_VAR, "t"),
            (METRICS_NAMESPACE_VAR, "Acme/Auth"),
        ]);
        assert_eq!(c.unwrap().metrics_namespace, "Acme/Auth");
        for bad in ["AWS/Lambda", ":x", "a\u{e9}"] {
            let err = config(&[
                (SECRET_VAR, A),
                (TABLE_VAR, "t"),
                (METRICS_NAMESPACE_VAR, bad),
            ]);
            assert!(err.is_err(), "{bad}");
        }
    }

    #[test]
    fn the_instance_pin_is_optional_and_checked() {
        let c = config(&[(SECRET_VAR, A), (TABLE_VAR, "t")]).unwrap();
        assert_eq!(c.instance_id, None);
        let c = config(&[
            (SECRET_VAR, A),
            (TABLE_VAR, "t"),
            (INSTANCE_VAR, " ins_2abc "),
        ]);
        assert_eq!(c.unwrap().instance_id.as_deref(), Some("ins_2abc"));
        let bad = config(&[(SECRET_VAR, A), (TABLE_VAR, "t"), (INSTANCE_VAR, "ins#1")]);
        assert!(bad
            .unwrap_err()
            .to_string()
            .starts_with("CLERK_INSTANCE_ID is invalid"));
    }

    #[test]
    fn message_metadata_is_a_strict_flag() {
        let on = config(&[
            (SECRET_VAR, A),
            (TABLE_VAR, "t"),
            (MESSAGE_METADATA_VAR, "true"),
        ]);
        assert!(on.unwrap().settings.message_metadata);
        let bad = config(&[
            (SECRET_VAR, A),
            (TABLE_VAR, "t"),
            (MESSAGE_METADATA_VAR, "maybe"),
        ]);
        assert!(bad
            .unwrap_err()
            .to_string()
            .starts_with("STORE_MESSAGE_METADATA is invalid"));
    }
}
