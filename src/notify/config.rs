//! Environment -> [`NotifyConfig`]: which actions are on, where they go, and the welcome
//! window. Errors name the variable, never its value: two of them are credentials (the Resend
//! key, and the Slack webhook URL, which is its own credential).

use crate::env::{ConfigError, Env, TABLE_VAR};

use super::change::{ChangeKind, Window};
use super::change_event::{EventRules, Family, CASCADE};
use super::template::Template;
use crate::table::Writer;

pub(crate) const RESEND_API_KEY_VAR: &str = "RESEND_API_KEY";
/// The variable Resend's official Rust SDK reads for another base URL.
pub(crate) const RESEND_BASE_URL_VAR: &str = "RESEND_BASE_URL";
pub(crate) const FROM_VAR: &str = "WELCOME_EMAIL_FROM";
pub(crate) const SUBJECT_VAR: &str = "WELCOME_EMAIL_SUBJECT";
pub(crate) const HTML_VAR: &str = "WELCOME_EMAIL_HTML";
pub(crate) const SLACK_URL_VAR: &str = "SLACK_WEBHOOK_URL";
pub(crate) const SLACK_NOTIFY_VAR: &str = "SLACK_NOTIFY";
pub(crate) const MAX_AGE_VAR: &str = "WELCOME_MAX_AGE_HOURS";
pub(crate) const EVENT_BUS_VAR: &str = "EVENT_BUS_NAME";
pub(crate) const EVENT_SOURCE_VAR: &str = "EVENT_SOURCE";
pub(crate) const EVENT_SOURCES_VAR: &str = "EVENT_SOURCES";
pub(crate) const EVENT_DETAIL_VAR: &str = "EVENT_DETAIL";
pub(crate) const EVENT_FAMILIES_VAR: &str = "EVENT_FAMILIES";
/// The SDK's own override of EventBridge's endpoint: locally, a bus to put to (moto).
const EVENTBRIDGE_ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_EVENTBRIDGE";
/// The events' `source` unless `EVENT_SOURCE` says otherwise.
pub const DEFAULT_EVENT_SOURCE: &str = "clerk-webhooks";

/// A hundred years: local development widens the window this far so the example events
/// (created in 2024) count as new.
const MAX_AGE_HOURS: i64 = 100 * 365 * 24;

pub const DEFAULT_RESEND_BASE_URL: &str = "https://api.resend.com";
const DEFAULT_SUBJECT: &str = "Welcome!";
const DEFAULT_HTML: &str = "<p>Welcome aboard! Your account for {{email}} is ready.</p>";
/// Resend's own address for trying the API without a verified domain: the sender a preview
/// shows when `WELCOME_EMAIL_FROM` is not set.
const PREVIEW_FROM: &str = "onboarding@resend.dev";

/// A credential: shown as `***` by `Debug`, so no log line or panic message can hold it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where an action's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// To the provider, with this credential (the Resend key; the Slack webhook URL).
    Send(Secret),
    /// Nowhere: one log line says what would have been sent, personal values masked. Local
    /// development without keys (`make dev`).
    Preview,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    pub delivery: Delivery,
    /// Resend's API, without a trailing slash.
    pub base_url: String,
    pub from: String,
    pub subject: Template,
    pub html: Template,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackSettings {
    pub delivery: Delivery,
    /// The changes that are posted (`SLACK_NOTIFY`).
    pub notify: Vec<ChangeKind>,
}

/// Where change events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusDelivery {
    /// `PutEvents` on this bus (a name or an ARN).
    Put { bus: String },
    /// Nowhere: one log line per event, ids only. Local development without a bus.
    Preview,
}

/// The change events on EventBridge (`EVENT_BUS_NAME` and the `EVENT_*` variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSettings {
    pub delivery: BusDelivery,
    /// The events' `source` (`EVENT_SOURCE`).
    pub source: String,
    /// Which changes make events, and what their detail holds.
    pub rules: EventRules,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub table_name: String,
    pub metrics_namespace: String,
    /// `WELCOME_MAX_AGE_HOURS`: how recent Clerk's `created_at` must be for a first sight to
    /// count as a creation.
    pub max_age_hours: i64,
    /// The welcome email, when configured (or previewed).
    pub email: Option<EmailSettings>,
    /// Slack posts, when configured (or previewed).
    pub slack: Option<SlackSettings>,
    /// Change events on EventBridge, when configured (or previewed).
    pub events: Option<EventSettings>,
}

/// Without a credential, is an action off (deployed) or previewed (local development)?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutKeys {
    Off,
    Preview,
}

impl NotifyConfig {
    pub fn from_env(without_keys: WithoutKeys) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), without_keys)
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        without_keys: WithoutKeys,
    ) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let present = |name: &str| env.get(name);
        let table_name = env.require(TABLE_VAR)?;
        let delivery = |var: &'static str| match (present(var), without_keys) {
            (Some(value), _) => Some(Delivery::Send(Secret(value))),
            (None, WithoutKeys::Preview) => Some(Delivery::Preview),
            (None, WithoutKeys::Off) => None,
        };
        let email = match delivery(RESEND_API_KEY_VAR) {
            None => None,
            Some(delivery) => {
                let from = match (present(FROM_VAR), &delivery) {
                    (Some(from), _) => from,
                    (None, Delivery::Preview) => PREVIEW_FROM.to_owned(),
                    (None, Delivery::Send(_)) => return Err(ConfigError::Missing(FROM_VAR)),
                };
                let base_url = present(RESEND_BASE_URL_VAR)
                    .unwrap_or_else(|| DEFAULT_RESEND_BASE_URL.to_owned());
                Some(EmailSettings {
                    delivery,
                    base_url: http_url(RESEND_BASE_URL_VAR, &base_url)?
                        .trim_end_matches('/')
                        .to_owned(),
                    from,
                    subject: template(SUBJECT_VAR, present(SUBJECT_VAR), DEFAULT_SUBJECT)?,
                    html: template(HTML_VAR, present(HTML_VAR), DEFAULT_HTML)?,
                })
            }
        };
        let slack = match delivery(SLACK_URL_VAR) {
            None => None,
            Some(delivery) => {
                if let Delivery::Send(url) = &delivery {
                    http_url(SLACK_URL_VAR, url.expose())?;
                }
                let notify = match present(SLACK_NOTIFY_VAR) {
                    None => vec![ChangeKind::UserCreated],
                    Some(list) => kinds(&list)?,
                };
                Some(SlackSettings { delivery, notify })
            }
        };
        let max_age_hours = env.number(
            MAX_AGE_VAR,
            1..=MAX_AGE_HOURS,
            Window::DEFAULT_MAX_AGE_HOURS,
            "hours",
        )?;
        Ok(Self {
            table_name,
            metrics_namespace: env.metrics_namespace()?,
            max_age_hours,
            email,
            slack,
            events: events(&env, without_keys)?,
        })
    }
}

/// The change events' settings: on with `EVENT_BUS_NAME`; locally without it, put to the
/// `default` bus when `AWS_ENDPOINT_URL_EVENTBRIDGE` names a local one, else previewed.
fn events<L: Fn(&str) -> Option<String>>(
    env: &Env<L>,
    without_keys: WithoutKeys,
) -> Result<Option<EventSettings>, ConfigError> {
    let delivery = match (env.get(EVENT_BUS_VAR), without_keys) {
        (Some(bus), _) => BusDelivery::Put { bus },
        (None, WithoutKeys::Off) => return Ok(None),
        (None, WithoutKeys::Preview) => match env.get(EVENTBRIDGE_ENDPOINT_VAR) {
            Some(_) => BusDelivery::Put {
                bus: "default".into(),
            },
            None => BusDelivery::Preview,
        },
    };
    let invalid = |var: &'static str, reason: String| ConfigError::Invalid { var, reason };
    let source = env
        .get(EVENT_SOURCE_VAR)
        .unwrap_or_else(|| DEFAULT_EVENT_SOURCE.to_owned());
    // EventBridge's own rules for a `Source`: 1 to 256 characters, `aws.` is AWS's.
    if source.len() > 256 || source.starts_with("aws.") {
        return Err(invalid(
            EVENT_SOURCE_VAR,
            "at most 256 characters, not starting with aws.".into(),
        ));
    }
    let mut rules = EventRules::default();
    if let Some(list) = env.get(EVENT_SOURCES_VAR) {
        let known = [
            Writer::Webhook.as_str(),
            Writer::Sync.as_str(),
            Writer::Backfill.as_str(),
            Writer::Reconcile.as_str(),
            CASCADE,
        ];
        rules.sources = names(&list)
            .map(|name| match known.contains(&name) {
                true => Ok(name.to_owned()),
                false => Err(invalid(
                    EVENT_SOURCES_VAR,
                    format!("unknown writer {name:?}: use {}", known.join(", ")),
                )),
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(list) = env.get(EVENT_FAMILIES_VAR) {
        rules.families = names(&list)
            .map(|name| {
                Family::parse(name).ok_or_else(|| {
                    invalid(
                        EVENT_FAMILIES_VAR,
                        format!(
                            "unknown family {name:?}: use {}",
                            Family::ALL.map(|f| f.name).join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
    }
    rules.attributes = match env.get(EVENT_DETAIL_VAR).as_deref() {
        None | Some("ids") => false,
        Some("attributes") => true,
        Some(_) => {
            return Err(invalid(
                EVENT_DETAIL_VAR,
                "expected ids (the default) or attributes".into(),
            ))
        }
    };
    Ok(Some(EventSettings {
        delivery,
        source,
        rules,
    }))
}

/// The names of a list separated by commas or spaces.
fn names(list: &str) -> impl Iterator<Item = &str> {
    list.split([',', ' ']).filter(|n| !n.is_empty())
}

/// An absolute `http(s)://` URL with a host. Checked by its shape only: the value is never
/// quoted, since one of them is a credential.
fn http_url<'a>(var: &'static str, value: &'a str) -> Result<&'a str, ConfigError> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !value.contains(' ') => {
            Ok(value)
        }
        _ => Err(ConfigError::Invalid {
            var,
            reason: "expected an https:// URL".into(),
        }),
    }
}

fn template(
    var: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<Template, ConfigError> {
    Template::parse(value.as_deref().unwrap_or(default)).map_err(|e| ConfigError::Invalid {
        var,
        reason: e.to_string(),
    })
}

/// `SLACK_NOTIFY`: change types separated by commas or spaces; `none` for no posts.
fn kinds(list: &str) -> Result<Vec<ChangeKind>, ConfigError> {
    let mut kinds = Vec::new();
    for name in list.split([',', ' ']).filter(|n| !n.is_empty()) {
        if name == "none" {
            continue;
        }
        let kind = ChangeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| ConfigError::Invalid {
                var: SLACK_NOTIFY_VAR,
                reason: format!(
                    "unknown change {name:?}: use {}",
                    ChangeKind::ALL.map(ChangeKind::as_str).join(", ")
                ),
            })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const KEY: &str = "re_test_0123456789abcdefghij";
    const HOOK: &str = "https://hooks.slack.example/services/T000/B000/XXXXXXXX";

    fn config(
        vars: &[(&str, &str)],
        without_keys: WithoutKeys,
    ) -> Result<NotifyConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NotifyConfig::from_lookup(|k| map.get(k).cloned(), without_keys)
    }

    #[test]
    fn each_action_is_on_only_with_its_credential_when_deployed() {
        let none = config(&[(TABLE_VAR, "t")], WithoutKeys::Off).unwrap();
        assert_eq!((none.email, none.slack), (None, None));
        assert_eq!(none.max_age_hours, 72);
        let both = config(
            &[
                (TABLE_VAR, "t"),
                (RESEND_API_KEY_VAR, KEY),
                (FROM_VAR, "Acme <hello@acme.example>"),
                (SLACK_URL_VAR, HOOK),
            ],
            WithoutKeys::Off,
        )
        .unwrap();
        let email = both.email.unwrap();
        assert_eq!(email.delivery, Delivery::Send(Secret::new(KEY)));
        assert_eq!(email.base_url, "https://api.resend.com");
        let slack = both.slack.unwrap();
        assert_eq!(slack.notify, [ChangeKind::UserCreated]);
        // A key without a sender is a configuration error naming the variable.
        let err = config(
            &[(TABLE_VAR, "t"), (RESEND_API_KEY_VAR, KEY)],
            WithoutKeys::Off,
        )
        .unwrap_err();
        assert_eq!(err, ConfigError::Missing(FROM_VAR));
    }

    #[test]
    fn locally_without_keys_both_actions_are_previewed() {
        let c = config(&[(TABLE_VAR, "t")], WithoutKeys::Preview).unwrap();
        assert_eq!(c.email.unwrap().delivery, Delivery::Preview);
        assert_eq!(c.slack.unwrap().delivery, Delivery::Preview);
    }

    #[test]
    fn change_events_are_on_with_a_bus_and_previewed_or_put_locally() {
        assert_eq!(
            config(&[(TABLE_VAR, "t")], WithoutKeys::Off)
                .unwrap()
                .events,
            None
        );
        let deployed = config(
            &[
                (TABLE_VAR, "t"),
                (EVENT_BUS_VAR, "arn:aws:events:us-east-1:1:event-bus/b"),
            ],
            WithoutKeys::Off,
        )
        .unwrap()
        .events
        .unwrap();
        assert_eq!(
            deployed.delivery,
            BusDelivery::Put {
                bus: "arn:aws:events:us-east-1:1:event-bus/b".into()
            }
        );
        assert_eq!(deployed.source, DEFAULT_EVENT_SOURCE);
        assert_eq!(deployed.rules, EventRules::default());
        let local = |vars: &[(&str, &str)]| config(vars, WithoutKeys::Preview).unwrap().events;
        assert_eq!(
            local(&[(TABLE_VAR, "t")]).unwrap().delivery,
            BusDelivery::Preview
        );
        assert_eq!(
            local(&[
                (TABLE_VAR, "t"),
                (EVENTBRIDGE_ENDPOINT_VAR, "http://127.0.0.1:5055")
            ])
            .unwrap()
            .delivery,
            BusDelivery::Put {
                bus: "default".into()
            }
        );
        let shaped = config(
            &[
                (TABLE_VAR, "t"),
                (EVENT_BUS_VAR, "b"),
                (EVENT_SOURCE_VAR, "acme.auth"),
                (EVENT_SOURCES_VAR, "webhook, reconcile"),
                (EVENT_FAMILIES_VAR, "user,session"),
                (EVENT_DETAIL_VAR, "attributes"),
            ],
            WithoutKeys::Off,
        )
        .unwrap()
        .events
        .unwrap();
        assert_eq!(shaped.source, "acme.auth");
        assert_eq!(shaped.rules.sources, ["webhook", "reconcile"]);
        assert_eq!(
            shaped
                .rules
                .families
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>(),
            ["user", "session"]
        );
        assert!(shaped.rules.attributes);
        for (var, value) in [
            (EVENT_SOURCE_VAR, "aws.events"),
            (EVENT_SOURCES_VAR, "webhooks"),
            (EVENT_FAMILIES_VAR, "users"),
            (EVENT_DETAIL_VAR, "all"),
        ] {
            let err = config(
                &[(TABLE_VAR, "t"), (EVENT_BUS_VAR, "b"), (var, value)],
                WithoutKeys::Off,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(var), "{err}");
        }
    }

    #[test]
    fn errors_never_show_a_credential() {
        let bad_hook = "hooks.slack.example/services/T000/B000/SECRETPART";
        let err = config(
            &[(TABLE_VAR, "t"), (SLACK_URL_VAR, bad_hook)],
            WithoutKeys::Off,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "SLACK_WEBHOOK_URL is invalid: expected an https:// URL"
        );
        let shown = format!(
            "{:?}",
            config(
                &[
                    (TABLE_VAR, "t"),
                    (SLACK_URL_VAR, HOOK),
                    (RESEND_API_KEY_VAR, KEY),
                    (FROM_VAR, "a@b.example")
                ],
                WithoutKeys::Off
            )
            .unwrap()
        );
        assert!(
            !shown.contains("XXXXXXXX") && !shown.contains(KEY),
            "{shown}"
        );
    }

    #[test]
    fn slack_notify_lists_changes_and_refuses_unknown_ones() {
        let c = config(
            &[
                (TABLE_VAR, "t"),
                (SLACK_URL_VAR, HOOK),
                (
                    SLACK_NOTIFY_VAR,
                    "user.created, organization.created,user.deleted",
                ),
            ],
            WithoutKeys::Off,
        )
        .unwrap();
        assert_eq!(
            c.slack.unwrap().notify,
            [
                ChangeKind::UserCreated,
                ChangeKind::OrganizationCreated,
                ChangeKind::UserDeleted
            ]
        );
        let none = config(
            &[
                (TABLE_VAR, "t"),
                (SLACK_URL_VAR, HOOK),
                (SLACK_NOTIFY_VAR, "none"),
            ],
            WithoutKeys::Off,
        )
        .unwrap();
        assert!(none.slack.unwrap().notify.is_empty());
        let err = config(
            &[
                (TABLE_VAR, "t"),
                (SLACK_URL_VAR, HOOK),
                (SLACK_NOTIFY_VAR, "user.updated"),
            ],
            WithoutKeys::Off,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("SLACK_NOTIFY is invalid: unknown change \"user.updated\""),
            "{err}"
        );
    }

    #[test]
    fn templates_base_url_and_window_are_checked() {
        let base = [
            (TABLE_VAR, "t"),
            (RESEND_API_KEY_VAR, KEY),
            (FROM_VAR, "a@b.example"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut vars = base.to_vec();
            vars.push(extra);
            config(&vars, WithoutKeys::Off)
        };
        let err = with((SUBJECT_VAR, "Hi {{frist_name}}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("WELCOME_EMAIL_SUBJECT is invalid: unknown placeholder"),
            "{err}"
        );
        let local = with((RESEND_BASE_URL_VAR, "http://127.0.0.1:9/")).unwrap();
        assert_eq!(local.email.unwrap().base_url, "http://127.0.0.1:9");
        assert!(with((RESEND_BASE_URL_VAR, "api.resend.com")).is_err());
        assert_eq!(with((MAX_AGE_VAR, "24")).unwrap().max_age_hours, 24);
        assert!(with((MAX_AGE_VAR, "0")).is_err());
    }
}
