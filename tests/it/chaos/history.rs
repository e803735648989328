//! A seeded, realistic Clerk history and the table it must leave behind.
//!
//! [`generate`] plays an instance's life one event at a time: users created, renamed, given a
//! new email, switched to another primary email, deleted; organizations created, renamed,
//! deleted; memberships added, re-roled, removed and re-added; sessions started and ended.
//! Each event's payload is a fixture from `events/` with its ids, names and times replaced.
//! Beside it, the generator keeps the [`Model`]: what the table holds once every event is
//! applied in order. It is written from docs/sync-rules.md's rules, not from the planner.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::helpers::rng::Rng;

/// One Svix message: its id, and the Clerk event it carries.
pub struct Message {
    pub svix_id: String,
    pub event_type: &'static str,
    pub body: Vec<u8>,
}

/// What one key of the table must hold at the end.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// A live item at `version` holding `data`. Several messages may carry the same version
    /// (a session carries its user as it is), so any of them may be the one that wrote it.
    Live {
        version: i64,
        svix_ids: BTreeSet<String>,
        data: Value,
    },
    /// A tombstone at `version`, written by the delete `svix_id`.
    Tombstone { version: i64, svix_id: String },
    /// A membership whose organization or user was deleted. A cascade removes live
    /// memberships, and a membership delete that arrives after the cascade still leaves its
    /// tombstone (it no longer matters: the parent's tombstone stops every later write, and it
    /// expires with its TTL). So: absent, or a tombstone of one of these versions.
    GoneOrTombstone { versions: BTreeSet<i64> },
}

pub type Key = (String, String);

#[derive(Default)]
pub struct Model {
    pub items: BTreeMap<Key, Expect>,
}

pub struct History {
    pub messages: Vec<Message>,
    pub model: Model,
}

const FIRST_NAMES: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Ritchie",
];
const ORG_NAMES: &[&str] = &[
    "Analytical Engines",
    "Difference Works",
    "Compiler Guild",
    "Lambda Labs",
    "Tabulating Co",
];
const ROLES: &[&str] = &["org:member", "org:admin", "org:billing"];

/// Past these, creations turn into updates: a small population gets many events each, so
/// deliveries of one object often overtake each other and meet its deletion.
const MAX_LIVE_USERS: usize = 60;
const MAX_LIVE_ORGS: usize = 12;

fn fixture(event_type: &str) -> Value {
    let path = format!("{}/events/{event_type}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str::<Value>(&text).unwrap()["data"].clone()
}

struct Templates {
    user: Value,
    organization: Value,
    membership: Value,
    session: Value,
}

struct UserState {
    id: String,
    data: Value,
    emails: Vec<(String, String)>,
    membership_orgs: BTreeSet<usize>,
    sessions: Vec<SessionState>,
    alive: bool,
}

struct SessionState {
    data: Value,
    ended: bool,
}

struct OrgState {
    id: String,
    data: Value,
    alive: bool,
}

struct MembershipState {
    data: Value,
    live: bool,
}

struct Generator<'a> {
    rng: &'a mut Rng,
    seed: u64,
    now_ms: i64,
    templates: Templates,
    users: Vec<UserState>,
    orgs: Vec<OrgState>,
    memberships: BTreeMap<(usize, usize), MembershipState>,
    /// Every tombstone version each membership key ever had.
    membership_deletes: BTreeMap<Key, BTreeSet<i64>>,
    messages: Vec<Message>,
    model: Model,
}

/// A history of `events` messages from `seed`, starting at `start_ms`.
pub fn generate(seed: u64, events: usize, start_ms: i64) -> History {
    let mut rng = Rng::new(seed);
    let mut g = Generator {
        rng: &mut rng,
        seed,
        now_ms: start_ms,
        templates: Templates {
            user: fixture("user.created"),
            organization: fixture("organization.created"),
            membership: fixture("organizationMembership.created"),
            session: fixture("session.created"),
        },
        users: Vec::new(),
        orgs: Vec::new(),
        memberships: BTreeMap::new(),
        membership_deletes: BTreeMap::new(),
        messages: Vec::new(),
        model: Model::default(),
    };
    while g.messages.len() < events {
        g.step();
    }
    History {
        messages: g.messages,
        model: g.model,
    }
}

fn user_key(id: &str) -> Key {
    (format!("USER#{id}"), "PROFILE".into())
}
fn org_key(id: &str) -> Key {
    (format!("ORG#{id}"), "PROFILE".into())
}
fn membership_key(org_id: &str, user_id: &str) -> Key {
    (format!("ORG#{org_id}"), format!("MEMBER#{user_id}"))
}
fn session_key(user_id: &str, session_id: &str) -> Key {
    (format!("USER#{user_id}"), format!("SESSION#{session_id}"))
}

impl Generator<'_> {
    fn step(&mut self) {
        self.now_ms += self.rng.between(1, 5_000) as i64;
        let alive_users = self.alive_users();
        let alive_orgs = self.alive_orgs();
        if alive_users.len() < 3 {
            return self.create_user();
        }
        let user = *self.rng.pick(&alive_users);
        let org = (!alive_orgs.is_empty()).then(|| *self.rng.pick(&alive_orgs));
        match (self.rng.below(100), org) {
            (0..=14, _) if alive_users.len() < MAX_LIVE_USERS => self.create_user(),
            (0..=14, _) => self.update_user(user),
            (15..=34, _) => self.update_user(user),
            (35..=37, _) => self.delete_user(user),
            (44..=48, Some(org)) => self.rename_org(org),
            (49..=50, Some(org)) if alive_orgs.len() > 1 => self.delete_org(org),
            (51..=67, Some(org)) => match self.memberships.get(&(org, user)).map(|m| m.live) {
                Some(true) if self.rng.chance(0.6) => self.change_role(org, user),
                Some(true) => self.remove_member(org, user),
                // A first membership, or a re-add after a removal.
                _ => self.add_member(org, user),
            },
            (68..=84, _) => self.start_session(user),
            (85..=99, _) => self.end_session(user),
            _ if alive_orgs.len() < MAX_LIVE_ORGS => self.create_org(),
            _ => self.update_user(user),
        }
    }

    fn alive_users(&self) -> Vec<usize> {
        (0..self.users.len())
            .filter(|&i| self.users[i].alive)
            .collect()
    }
    fn alive_orgs(&self) -> Vec<usize> {
        (0..self.orgs.len())
            .filter(|&i| self.orgs[i].alive)
            .collect()
    }

    /// Records a message whose envelope timestamp is now; returns its svix id.
    fn emit(&mut self, event_type: &'static str, data: Value) -> String {
        let svix_id = format!("msg_chaos{}n{}", self.seed, self.messages.len());
        let body = serde_json::to_vec(&json!({
            "data": data, "instance_id": "ins_2NNEqL2nrIRdJ194ndJqAHwEfxF", "object": "event",
            "timestamp": self.now_ms, "type": event_type,
            "event_attributes": {"http_request": {"client_ip": "203.0.113.7", "user_agent": "chaos"}}
        }))
        .unwrap();
        self.messages.push(Message {
            svix_id: svix_id.clone(),
            event_type,
            body,
        });
        svix_id
    }

    fn live(&mut self, key: Key, version: i64, svix_id: String, data: Value) {
        let expect = Expect::Live {
            version,
            svix_ids: BTreeSet::from([svix_id]),
            data,
        };
        self.model.items.insert(key, expect);
    }

    // --- users ---

    fn create_user(&mut self) {
        let n = self.users.len();
        let id = format!("user_chaos{}u{n}", self.seed);
        let (first, last) = (*self.rng.pick(FIRST_NAMES), *self.rng.pick(LAST_NAMES));
        let email = (
            format!("idn_chaos{}u{n}e0", self.seed),
            format!(
                "{}.{}{n}@example.org",
                first.to_lowercase(),
                last.to_lowercase()
            ),
        );
        let mut data = self.templates.user.clone();
        data["id"] = json!(id);
        data["first_name"] = json!(first);
        data["last_name"] = json!(last);
        data["username"] = json!(format!("{}{n}", first.to_lowercase()));
        data["created_at"] = json!(self.now_ms);
        self.users.push(UserState {
            id,
            data,
            emails: vec![email],
            membership_orgs: BTreeSet::new(),
            sessions: Vec::new(),
            alive: true,
        });
        self.write_user(n, 0, "user.created");
    }

    fn update_user(&mut self, u: usize) {
        let user = &mut self.users[u];
        let mut primary = user.emails.iter().position(|(id, _)| {
            user.data["primary_email_address_id"].as_str() == Some(id.as_str())
        });
        match self.rng.below(3) {
            0 => {
                let (first, last) = (*self.rng.pick(FIRST_NAMES), *self.rng.pick(LAST_NAMES));
                user.data["first_name"] = json!(first);
                user.data["last_name"] = json!(last);
            }
            1 => {
                let k = user.emails.len();
                let address = format!(
                    "{}.alt{k}@example.com",
                    user.data["username"].as_str().unwrap()
                );
                user.emails
                    .push((format!("idn_{}e{k}", &user.id[5..]), address));
            }
            _ => primary = Some(self.rng.below(user.emails.len() as u64) as usize),
        }
        self.write_user(u, primary.unwrap_or(0), "user.updated");
    }

    /// Emits `event_type` with the user's current state and `primary` as primary email.
    fn write_user(&mut self, u: usize, primary: usize, event_type: &'static str) {
        let now = self.now_ms;
        let user = &mut self.users[u];
        user.data["updated_at"] = json!(now);
        user.data["primary_email_address_id"] = json!(user.emails[primary].0);
        let template = self.templates.user["email_addresses"][1].clone();
        user.data["email_addresses"] = Value::Array(
            user.emails
                .iter()
                .map(|(id, address)| {
                    let mut email = template.clone();
                    email["id"] = json!(id);
                    email["email_address"] = json!(address);
                    email
                })
                .collect(),
        );
        let (key, data) = (user_key(&user.id), user.data.clone());
        let svix_id = self.emit(event_type, data.clone());
        self.live(key, now, svix_id, data);
    }

    fn delete_user(&mut self, u: usize) {
        self.users[u].alive = false;
        let id = self.users[u].id.clone();
        let svix_id = self.emit(
            "user.deleted",
            json!({"deleted": true, "id": id, "object": "user"}),
        );
        let now = self.now_ms;
        self.model.items.insert(
            user_key(&id),
            Expect::Tombstone {
                version: now,
                svix_id,
            },
        );
        // The cascade: sessions go, memberships go (their tombstones may stay).
        for session in std::mem::take(&mut self.users[u].sessions) {
            let session_id = session.data["id"].as_str().unwrap().to_owned();
            self.model.items.remove(&session_key(&id, &session_id));
        }
        for org in std::mem::take(&mut self.users[u].membership_orgs) {
            self.orphan_membership(org, u);
        }
    }

    // --- organizations ---

    fn create_org(&mut self) {
        let n = self.orgs.len();
        let id = format!("org_chaos{}o{n}", self.seed);
        let mut data = self.templates.organization.clone();
        data["id"] = json!(id);
        data["name"] = json!(format!("{} {n}", self.rng.pick(ORG_NAMES)));
        data["slug"] = json!(format!("org-{}-{n}", self.seed));
        data["created_at"] = json!(self.now_ms);
        self.orgs.push(OrgState {
            id,
            data,
            alive: true,
        });
        self.write_org(n, "organization.created");
    }

    fn rename_org(&mut self, o: usize) {
        let name = format!(
            "{} {o} renamed at {}",
            self.rng.pick(ORG_NAMES),
            self.now_ms
        );
        self.orgs[o].data["name"] = json!(name);
        self.write_org(o, "organization.updated");
    }

    fn write_org(&mut self, o: usize, event_type: &'static str) {
        let now = self.now_ms;
        self.orgs[o].data["updated_at"] = json!(now);
        let (key, data) = (org_key(&self.orgs[o].id), self.orgs[o].data.clone());
        let svix_id = self.emit(event_type, data.clone());
        self.live(key, now, svix_id, data);
    }

    fn delete_org(&mut self, o: usize) {
        self.orgs[o].alive = false;
        let id = self.orgs[o].id.clone();
        let slug = self.orgs[o].data["slug"].clone();
        let svix_id = self.emit(
            "organization.deleted",
            json!({"deleted": true, "id": id, "object": "organization", "slug": slug}),
        );
        let now = self.now_ms;
        self.model.items.insert(
            org_key(&id),
            Expect::Tombstone {
                version: now,
                svix_id,
            },
        );
        for u in 0..self.users.len() {
            if self.users[u].membership_orgs.remove(&o) {
                self.orphan_membership(o, u);
            }
        }
    }

    // --- memberships ---

    /// The membership of `user` in `org` once one of them is deleted.
    fn orphan_membership(&mut self, o: usize, u: usize) {
        let key = membership_key(&self.orgs[o].id, &self.users[u].id);
        self.memberships.remove(&(o, u));
        match self.membership_deletes.get(&key) {
            Some(versions) => {
                let versions = versions.clone();
                self.model
                    .items
                    .insert(key, Expect::GoneOrTombstone { versions });
            }
            None => {
                self.model.items.remove(&key);
            }
        }
    }

    fn add_member(&mut self, o: usize, u: usize) {
        let k = self.messages.len();
        let mut data = self.templates.membership.clone();
        data["id"] = json!(format!("orgmem_chaos{}m{k}", self.seed));
        data["role"] = json!(self.rng.pick(ROLES));
        data["created_at"] = json!(self.now_ms);
        data["organization"] = self.orgs[o].data.clone();
        let user = &self.users[u];
        let public = &mut data["public_user_data"];
        public["user_id"] = json!(user.id);
        public["first_name"] = user.data["first_name"].clone();
        public["last_name"] = user.data["last_name"].clone();
        public["identifier"] = json!(user.emails[0].1);
        self.memberships
            .insert((o, u), MembershipState { data, live: true });
        self.users[u].membership_orgs.insert(o);
        self.write_membership(o, u, "organizationMembership.created");
    }

    fn change_role(&mut self, o: usize, u: usize) {
        let role = *self.rng.pick(ROLES);
        self.memberships.get_mut(&(o, u)).unwrap().data["role"] = json!(role);
        self.write_membership(o, u, "organizationMembership.updated");
    }

    fn write_membership(&mut self, o: usize, u: usize, event_type: &'static str) {
        let now = self.now_ms;
        let key = membership_key(&self.orgs[o].id, &self.users[u].id);
        let membership = self.memberships.get_mut(&(o, u)).unwrap();
        membership.data["updated_at"] = json!(now);
        let data = membership.data.clone();
        let svix_id = self.emit(event_type, data.clone());
        self.live(key, now, svix_id, data);
    }

    fn remove_member(&mut self, o: usize, u: usize) {
        let key = membership_key(&self.orgs[o].id, &self.users[u].id);
        let membership = self.memberships.get_mut(&(o, u)).unwrap();
        membership.live = false;
        // Clerk's delete carries the membership as it was, its last updated_at included.
        let data = membership.data.clone();
        self.users[u].membership_orgs.remove(&o);
        let svix_id = self.emit("organizationMembership.deleted", data);
        let version = self.now_ms;
        self.membership_deletes
            .entry(key.clone())
            .or_default()
            .insert(version);
        self.model
            .items
            .insert(key, Expect::Tombstone { version, svix_id });
    }

    // --- sessions ---

    fn start_session(&mut self, u: usize) {
        let k = self.messages.len();
        let mut data = self.templates.session.clone();
        data["id"] = json!(format!("sess_chaos{}s{k}", self.seed));
        data["user_id"] = json!(self.users[u].id);
        data["status"] = json!("active");
        data["created_at"] = json!(self.now_ms);
        data["expire_at"] = json!(self.now_ms + 7 * 86_400_000);
        data["abandon_at"] = json!(self.now_ms + 30 * 86_400_000);
        self.users[u]
            .sessions
            .push(SessionState { data, ended: false });
        let s = self.users[u].sessions.len() - 1;
        self.write_session(u, s, "session.created");
    }

    fn end_session(&mut self, u: usize) {
        let open: Vec<usize> = (0..self.users[u].sessions.len())
            .filter(|&s| !self.users[u].sessions[s].ended)
            .collect();
        if open.is_empty() {
            return self.start_session(u);
        }
        let s = *self.rng.pick(&open);
        let (event_type, status) = *self.rng.pick(&[
            ("session.ended", "ended"),
            ("session.removed", "removed"),
            ("session.revoked", "revoked"),
        ]);
        let session = &mut self.users[u].sessions[s];
        session.ended = true;
        session.data["status"] = json!(status);
        self.write_session(u, s, event_type);
    }

    /// Half the sessions carry their user, as Clerk's do; the others only `user_id`.
    fn write_session(&mut self, u: usize, s: usize, event_type: &'static str) {
        let now = self.now_ms;
        let carries_user = self.rng.chance(0.5);
        let session = &mut self.users[u].sessions[s];
        session.data["updated_at"] = json!(now);
        session.data["last_active_at"] = json!(now);
        let mut data = session.data.clone();
        let user = &self.users[u];
        let key = session_key(&user.id, data["id"].as_str().unwrap());
        let user_key = user_key(&user.id);
        if carries_user {
            data["user"] = user.data.clone();
        } else {
            data.as_object_mut().unwrap().remove("user");
        }
        // What the table keeps of a session: neither the user nor the IP address.
        let mut stored = data.clone();
        stored.as_object_mut().unwrap().remove("user");
        stored["latest_activity"]
            .as_object_mut()
            .unwrap()
            .remove("ip_address");
        let svix_id = self.emit(event_type, data);
        if carries_user {
            // The user as carried equals the user's latest version: either may write it.
            if let Some(Expect::Live { svix_ids, .. }) = self.model.items.get_mut(&user_key) {
                svix_ids.insert(svix_id.clone());
            }
        }
        self.live(key, now, svix_id, stored);
    }
}
