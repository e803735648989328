//! What a change makes the notifier send: which actions it needs, and the exact body of each
//! request. Pure: the HTTP call and the claim around it are the notifier's
//! ([`super::notifier`]).
//!
//! | change | welcome email (Resend) | Slack post |
//! | --- | --- | --- |
//! | `user.created` | to the user's primary address, when there is one | when `SLACK_NOTIFY` lists it (the default) |
//! | `organization.created` | - | when listed |
//! | `organizationMembership.created` | - | when listed |
//! | `user.deleted` | - | when listed |

use serde_json::Value;

use super::change::Change;
use super::config::{Delivery, NotifyConfig};
use super::slack::Slack;
use super::spec::ActionSpec;
pub use super::spec::View;
use super::welcome_email::WelcomeEmail;

/// One side effect of a change; each is claimed, and so done, once per change. A new action
/// is a file implementing [`ActionSpec`] and one arm in [`Action::spec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    WelcomeEmail,
    Slack,
}

impl Action {
    /// Every action, in the order a change's run.
    pub const ALL: [Self; 2] = [Self::WelcomeEmail, Self::Slack];

    /// What the action is: its file.
    pub(crate) fn spec(self) -> &'static dyn ActionSpec {
        match self {
            Self::WelcomeEmail => &WelcomeEmail,
            Self::Slack => &Slack,
        }
    }

    /// Where this action's requests go under `config`; `None` when the action is off.
    pub fn delivery(self, config: &NotifyConfig) -> Option<&Delivery> {
        self.spec().delivery(config)
    }

    /// The name in claims, logs and metrics.
    pub fn as_str(self) -> &'static str {
        self.spec().name()
    }
}

/// One request's content, before it knows where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub action: Action,
    pub body: Value,
    /// Resend's `Idempotency-Key`: the same on every attempt for the same change, so a
    /// resend within Resend's 24 hours is answered without sending again.
    pub idempotency_key: Option<String>,
}

/// The actions `change` needs under `config`, in the order they run.
pub fn actions(change: &Change, config: &NotifyConfig) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|action| action.spec().wanted(change, config))
        .collect()
}

/// The body of `action`'s request for `change`. `None` when the action does not apply (an
/// email for another change, or an action that is not configured).
pub fn message(
    action: Action,
    change: &Change,
    config: &NotifyConfig,
    view: View,
) -> Option<Message> {
    let (body, idempotency_key) = action.spec().body(change, config, view)?;
    Some(Message {
        action,
        body,
        idempotency_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::change::ChangeKind;
    use crate::notify::change::Person;
    use crate::notify::config::{EmailSettings, SlackSettings};
    use crate::notify::template::Template;
    use crate::notify::welcome_email::mask_sender;
    use serde_json::json;

    fn config(slack: &[ChangeKind]) -> NotifyConfig {
        NotifyConfig {
            table_name: "t".into(),
            metrics_namespace: "NS".into(),
            max_age_hours: 72,
            email: Some(EmailSettings {
                delivery: Delivery::Preview,
                base_url: "http://127.0.0.1:1".into(),
                from: "Acme <hello@acme.example>".into(),
                subject: Template::parse("Welcome, {{first_name}}!").unwrap(),
                html: Template::parse("<p>Hi {{name}} ({{email}})</p>").unwrap(),
            }),
            slack: Some(SlackSettings {
                delivery: Delivery::Preview,
                notify: slack.to_vec(),
            }),
            events: None,
        }
    }

    fn ada() -> Change {
        Change::UserCreated(Person {
            user_id: "user_1".into(),
            email: Some("ada@example.org".into()),
            first_name: Some("Ada".into()),
            last_name: Some("<!channel> & Co".into()),
        })
    }

    #[test]
    fn a_new_user_gets_an_email_and_a_post_with_the_default_list() {
        let c = config(&[ChangeKind::UserCreated]);
        assert_eq!(actions(&ada(), &c), [Action::WelcomeEmail, Action::Slack]);
        let email = message(Action::WelcomeEmail, &ada(), &c, View::Real).unwrap();
        assert_eq!(
            email.body,
            json!({"from": "Acme <hello@acme.example>", "to": ["ada@example.org"],
                   "subject": "Welcome, Ada!",
                   "html": "<p>Hi Ada &lt;!channel&gt; &amp; Co (ada@example.org)</p>"})
        );
        assert_eq!(
            email.idempotency_key.as_deref(),
            Some("welcome-user/user_1")
        );
        // The same change makes the same request, byte for byte: Resend refuses a reused
        // key with another body.
        assert_eq!(
            message(Action::WelcomeEmail, &ada(), &c, View::Real),
            Some(email)
        );
        let post = message(Action::Slack, &ada(), &c, View::Real).unwrap();
        assert_eq!(
            post.body["text"],
            "New user *Ada &lt;!channel&gt; &amp; Co* (ada@example.org), user_1"
        );
    }

    #[test]
    fn a_preview_shows_masked_values_only() {
        let c = config(&[ChangeKind::UserCreated]);
        let email = message(Action::WelcomeEmail, &ada(), &c, View::Masked).unwrap();
        let shown = email.body.to_string();
        assert!(shown.contains("a***@e***.org"), "{shown}");
        assert_eq!(email.body["from"], "Acme <h***@a***.example>");
        assert_eq!(mask_sender("onboarding@resend.dev"), "o***@r***.dev");
        assert!(!shown.contains("Ada") && !shown.contains("ada@"), "{shown}");
        let post = message(Action::Slack, &ada(), &c, View::Masked).unwrap();
        assert!(!post.body.to_string().contains("Ada"), "{}", post.body);
    }

    #[test]
    fn no_address_no_email_and_unlisted_changes_no_post() {
        let c = config(&[ChangeKind::UserDeleted]);
        let phone_only = Change::UserCreated(Person {
            user_id: "user_2".into(),
            email: None,
            first_name: None,
            last_name: None,
        });
        assert_eq!(actions(&phone_only, &c), []);
        let deleted = Change::UserDeleted {
            user_id: "user_2".into(),
        };
        assert_eq!(actions(&deleted, &c), [Action::Slack]);
        assert_eq!(
            message(Action::Slack, &deleted, &c, View::Real)
                .unwrap()
                .body,
            json!({"text": "User deleted: user_2"})
        );
        assert_eq!(
            message(Action::WelcomeEmail, &deleted, &c, View::Real),
            None
        );
        let unconfigured = NotifyConfig {
            email: None,
            slack: None,
            ..c
        };
        assert_eq!(actions(&ada(), &unconfigured), []);
    }

    #[test]
    fn organizations_and_members_are_posted_by_name_and_id() {
        let c = config(&ChangeKind::ALL);
        let org = Change::OrganizationCreated {
            org_id: "org_1".into(),
            name: Some("Acme".into()),
        };
        assert_eq!(actions(&org, &c), [Action::Slack]);
        assert_eq!(
            message(Action::Slack, &org, &c, View::Real).unwrap().body["text"],
            "New organization *Acme* (org_1)"
        );
        let joined = Change::MemberJoined {
            org_id: "org_1".into(),
            user_id: "user_1".into(),
            version: 5,
            role: Some("org:admin".into()),
            org_name: None,
        };
        assert_eq!(
            message(Action::Slack, &joined, &c, View::Real)
                .unwrap()
                .body["text"],
            "user_1 joined org_1 as org:admin"
        );
    }
}
