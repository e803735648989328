//! Slack posts, through an incoming webhook: one line per change `SLACK_NOTIFY` lists (a new
//! user by default), names escaped so no one can ping a channel.

use serde_json::{json, Value};

use super::change::{Change, Person};
use super::config::{Delivery, NotifyConfig, Secret};
use super::spec::{ActionSpec, Target, TargetUrl, View};

pub(crate) struct Slack;

impl ActionSpec for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn delivery<'c>(&self, config: &'c NotifyConfig) -> Option<&'c Delivery> {
        config.slack.as_ref().map(|s| &s.delivery)
    }

    fn wanted(&self, change: &Change, config: &NotifyConfig) -> bool {
        config
            .slack
            .as_ref()
            .is_some_and(|slack| slack.notify.contains(&change.kind()))
    }

    fn body(
        &self,
        change: &Change,
        config: &NotifyConfig,
        view: View,
    ) -> Option<(Value, Option<String>)> {
        config.slack.as_ref()?;
        let text = match change {
            Change::UserCreated(person) => user_created_text(&view.person(person)),
            Change::OrganizationCreated { org_id, name } => match name {
                Some(name) => format!("New organization *{}* ({org_id})", slack_escape(name)),
                None => format!("New organization {org_id}"),
            },
            Change::MemberJoined {
                org_id,
                user_id,
                role,
                org_name,
                ..
            } => {
                let org = match org_name {
                    Some(name) => format!("*{}* ({org_id})", slack_escape(name)),
                    None => org_id.clone(),
                };
                match role {
                    Some(role) => format!("{user_id} joined {org} as {}", slack_escape(role)),
                    None => format!("{user_id} joined {org}"),
                }
            }
            Change::UserDeleted { user_id } => format!("User deleted: {user_id}"),
        };
        Some((json!({ "text": text }), None))
    }

    fn target<'c>(&self, _: &'c NotifyConfig, credential: &'c Secret) -> Option<Target<'c>> {
        Some(Target {
            url: TargetUrl::Secret(credential),
            bearer: None,
        })
    }
}

/// `New user *Ada Lovelace* (ada@example.org), user_123`, with what there is of it.
fn user_created_text(person: &Person) -> String {
    let name: Vec<&str> = [&person.first_name, &person.last_name]
        .into_iter()
        .filter_map(|n| n.as_deref().map(str::trim).filter(|n| !n.is_empty()))
        .collect();
    let mut text = String::from("New user");
    if !name.is_empty() {
        text.push_str(&format!(" *{}*", slack_escape(&name.join(" "))));
    }
    if let Some(email) = &person.email {
        text.push_str(&format!(" ({})", slack_escape(email)));
    }
    text.push_str(&format!(", {}", person.user_id));
    text
}

/// Slack reads `&`, `<` and `>` as control characters (`<!channel>` pings everyone): a
/// user's name must not be able to do that.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
