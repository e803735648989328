//! `clerk-webhooks-get`: the reader (`crate::read`) on the command line, for operators and
//! scripts. One JSON object per line on stdout (`data` included, as Clerk sent it); with
//! `--sync`, an object the table lacks is fetched from the Backend API and written first
//! (`crate::sync`). `src/bin/get.rs` only wires.
//!
//! Exit status: 0 when something was printed or a list was read (even empty), 1 when a single
//! lookup found nothing (or a tombstone), 2 for a usage error or a failure.

use std::io::Write;

use clap::{ArgGroup, Parser, Subcommand};
use serde::Serialize;

use crate::read::{ReadError, Reader};
use crate::sync::{Answer, Object, SyncError, Syncer, Target};

/// Reads users, organizations, memberships and sessions from the table, one JSON object per
/// line.
#[derive(Debug, Parser)]
#[command(name = "clerk-webhooks-get", version)]
pub struct Args {
    /// The table (`make get` sets the local one).
    #[arg(long, env = "TABLE_NAME", default_value = "clerk-webhooks")]
    pub table: String,
    /// On a miss, fetch the object from Clerk's Backend API and write it to the table first
    /// (needs CLERK_SECRET_KEY; by id only).
    #[arg(long, global = true)]
    pub sync: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A user: by id, --email, --username or --external-id.
    #[command(group(ArgGroup::new("by").required(true).args(["id", "email", "username", "external_id"])))]
    User {
        id: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        external_id: Option<String>,
    },
    /// An organization: by id or --slug.
    #[command(group(ArgGroup::new("by").required(true).args(["id", "slug"])))]
    Org {
        id: Option<String>,
        #[arg(long)]
        slug: Option<String>,
    },
    /// One user's membership of one organization.
    Membership { org_id: String, user_id: String },
    /// An organization's members (memberships).
    Members { org_id: String },
    /// A user's organizations (memberships, each with its organization in `data`).
    Orgs { user_id: String },
    /// A user's sessions.
    Sessions { user_id: String },
    /// An organization's invitations.
    Invitations { org_id: String },
    /// An organization's domains.
    Domains { org_id: String },
    /// What a user or an organization pays for.
    Billing { payer_id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("--sync reads Clerk by id: give an id, not --email, --username, --external-id or --slug; lists are never synced")]
    SyncNeedsAnId,
    #[error("--sync needs CLERK_SECRET_KEY")]
    NoSyncer,
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Sync(#[from] std::sync::Arc<SyncError>),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// What one run printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    /// A single lookup found its object (or a list was read), `n` lines.
    Objects(usize),
    /// A single lookup found nothing live.
    Nothing,
}

impl Command {
    /// The object a single lookup by id names, which `--sync` can fetch.
    fn sync_target(&self) -> Option<Target> {
        match self {
            Self::User {
                id: Some(id),
                email: None,
                username: None,
                external_id: None,
            } => Some(Target::User(id.clone())),
            Self::Org {
                id: Some(id),
                slug: None,
            } => Some(Target::Organization(id.clone())),
            Self::Membership { org_id, user_id } => Some(Target::Membership {
                org_id: org_id.clone(),
                user_id: user_id.clone(),
            }),
            _ => None,
        }
    }
}

/// Runs one command against `reader` (and `syncer` with `--sync`), writing to `out`.
pub async fn run(
    args: &Args,
    reader: &Reader,
    syncer: Option<&Syncer>,
    out: &mut impl Write,
) -> Result<Printed, GetError> {
    if args.sync {
        let target = args.command.sync_target().ok_or(GetError::SyncNeedsAnId)?;
        let syncer = syncer.ok_or(GetError::NoSyncer)?;
        let answer = syncer.resolve(&target, false).await?;
        eprintln!("{}", answer.status());
        return match answer {
            Answer::Found(object) | Answer::Synced(object) => {
                print(out, &[object])?;
                Ok(Printed::Objects(1))
            }
            Answer::NotFound | Answer::Deleted => Ok(Printed::Nothing),
        };
    }
    use Command::*;
    match &args.command {
        User {
            id,
            email,
            username,
            external_id,
        } => {
            let user = match (id, email, username, external_id) {
                (Some(id), ..) => reader.user(id).await?,
                (_, Some(email), ..) => reader.user_by_email(email).await?,
                (_, _, Some(username), _) => reader.user_by_username(username).await?,
                (.., Some(external_id)) => reader.user_by_external_id(external_id).await?,
                _ => unreachable!("clap requires one"),
            };
            single(out, user.map(Object::User))
        }
        Org { id, slug } => {
            let org = match (id, slug) {
                (Some(id), _) => reader.organization(id).await?,
                (_, Some(slug)) => reader.organization_by_slug(slug).await?,
                _ => unreachable!("clap requires one"),
            };
            single(out, org.map(Object::Organization))
        }
        Membership { org_id, user_id } => single(
            out,
            reader
                .membership(org_id, user_id)
                .await?
                .map(Object::Membership),
        ),
        Members { org_id } => list(out, &reader.members(org_id).await?),
        Orgs { user_id } => list(out, &reader.organizations_of(user_id).await?),
        Sessions { user_id } => list(out, &reader.sessions(user_id).await?),
        Invitations { org_id } => list(out, &reader.invitations(org_id).await?),
        Domains { org_id } => list(out, &reader.domains(org_id).await?),
        Billing { payer_id } => list(out, &reader.billing(payer_id).await?),
    }
}

fn single(out: &mut impl Write, object: Option<Object>) -> Result<Printed, GetError> {
    match object {
        Some(object) => {
            print(out, &[object])?;
            Ok(Printed::Objects(1))
        }
        None => Ok(Printed::Nothing),
    }
}

fn list<T: Serialize>(out: &mut impl Write, objects: &[T]) -> Result<Printed, GetError> {
    print(out, objects)?;
    Ok(Printed::Objects(objects.len()))
}

/// One object per line: `data` is Clerk's text as sent, which may be laid out over lines (the
/// example events are), so each line is compacted; no value changes.
fn print<T: Serialize>(out: &mut impl Write, objects: &[T]) -> Result<(), GetError> {
    for object in objects {
        let line = serde_json::to_string(object).map_err(std::io::Error::from)?;
        writeln!(out, "{}", crate::json::compact(&line))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_takes_one_way_to_find_a_user() {
        let parse = |line: &str| Args::try_parse_from(line.split(' '));
        let args = parse("get user user_1").unwrap();
        assert_eq!(
            args.command.sync_target(),
            Some(Target::User("user_1".into()))
        );
        assert!(parse("get user --email a@b.c").is_ok());
        assert!(parse("get user --external-id ext-1 --sync").is_ok());
        assert!(
            parse("get user user_1 --email a@b.c").is_err(),
            "one way only"
        );
        assert!(parse("get user").is_err());
        assert!(parse("get org --slug acme")
            .unwrap()
            .command
            .sync_target()
            .is_none());
        assert!(parse("get members org_1").is_ok());
        assert!(parse("get nothing").is_err());
    }
}
