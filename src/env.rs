//! The one reader of the environment, for every function: a value is trimmed, a blank one is
//! unset, and an error names the variable, never its value (some are credentials).

use std::ops::RangeInclusive;
use std::str::FromStr;

/// A variable the configuration needs is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// The table every function reads and writes.
pub const TABLE_VAR: &str = "TABLE_NAME";
/// The CloudWatch namespace of every function's EMF metrics.
pub(crate) const METRICS_NAMESPACE_VAR: &str = "METRICS_NAMESPACE";

/// The environment, through a lookup: the process's ([`Env::process`]) or a test's map.
pub struct Env<L> {
    lookup: L,
}

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok()
        }
        Self { lookup: var }
    }
}

impl<L: Fn(&str) -> Option<String>> Env<L> {
    pub fn new(lookup: L) -> Self {
        Self { lookup }
    }

    /// The value, trimmed; `None` when unset or blank.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value, or [`ConfigError::Missing`].
    pub fn require(&self, var: &'static str) -> Result<String, ConfigError> {
        self.get(var).ok_or(ConfigError::Missing(var))
    }

    /// `true`/`1`/`yes` or `false`/`0`/`no` (any case); `default` when unset.
    pub fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(_) => Err(invalid(var, "expected true or false")),
        }
    }

    /// A whole number of `unit` within `range`; `default` when unset.
    pub fn number<T>(
        &self,
        var: &'static str,
        range: RangeInclusive<T>,
        default: T,
        unit: &str,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v
                .parse::<T>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    invalid(
                        var,
                        &format!(
                            "expected a whole number of {unit} from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        }
    }

    /// `METRICS_NAMESPACE`, or the default: CloudWatch's rules for a custom namespace (1 to
    /// 255 of letters, digits and `.-_/#: `, not starting with `:`, not in `AWS/`).
    pub fn metrics_namespace(&self) -> Result<String, ConfigError> {
        let Some(ns) = self.get(METRICS_NAMESPACE_VAR) else {
            return Ok(crate::metrics::DEFAULT_NAMESPACE.to_owned());
        };
        let valid = (1..=255).contains(&ns.len())
            && !ns.starts_with(':')
            && !ns.starts_with("AWS/")
            && ns
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c));
        if valid {
            Ok(ns)
        } else {
            Err(invalid(
                METRICS_NAMESPACE_VAR,
                "not a valid CloudWatch namespace",
            ))
        }
    }
}

/// [`ConfigError::Invalid`] for `var`, with a reason that holds no value.
pub(crate) fn invalid(var: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::new(move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn values_are_trimmed_and_blank_is_unset() {
        let env = env(&[("A", "  zq9  "), ("B", "   "), ("N", " 7 "), ("F", "YES")]);
        assert_eq!(env.get("A").as_deref(), Some("zq9"));
        assert_eq!(env.get("B"), None);
        assert_eq!(env.require("B"), Err(ConfigError::Missing("B")));
        assert_eq!(env.number("N", 1..=10, 3, "days"), Ok(7));
        assert_eq!(env.number("M", 1..=10, 3, "days"), Ok(3));
        assert_eq!(env.flag("F", false), Ok(true));
        let err = env.number("A", 1..=10, 3, "days").unwrap_err().to_string();
        assert_eq!(
            err,
            "A is invalid: expected a whole number of days from 1 to 10"
        );
        assert!(!err.contains("zq9"), "never the value");
    }
}
