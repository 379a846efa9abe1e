//! Presence belongs to a user, not to a socket: a user is online (or away, as they chose)
//! while they have at least one socket open on any instance, and offline otherwise.
//!
//! Across instances: each instance publishes, per organization, the whole set of users it
//! has sockets for (with their availability) on the bus's control channel, when that set
//! changes (at most once per tick) and every [`HEARTBEAT`] while it is not empty. Every
//! instance keeps the others' sets and forgets one that was not repeated within [`TTL`], so
//! a crashed instance's users go offline by themselves after at most `TTL`. A user is
//! online in an instance's view when its own sockets or any live remote set say so: the
//! snapshot (`GET /v1/presence`) is the same on every instance, up to one heartbeat.
//!
//! Changes are batched: every tick (one second) the hub asks [`Presence::take_changes`] for
//! what differs from what this instance's sockets were last told, and sends each socket of
//! the organization at most one `presence.updated` frame listing them. A mass reconnect of
//! n users therefore costs each socket about one frame per second, not one per connect.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How often an instance repeats its connected users.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long another instance's set counts without being repeated.
pub const TTL: Duration = Duration::from_secs(15);

/// What a connected user shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    Online,
    Away,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Online => "online",
            Availability::Away => "away",
        }
    }
}

struct Local {
    sockets: usize,
    availability: Availability,
}

struct Remote {
    expires: Instant,
    users: HashMap<i64, Availability>,
}

/// One instance's view of who is connected where.
pub struct Presence {
    instance: u64,
    /// org → user → this instance's sockets.
    local: HashMap<i64, HashMap<i64, Local>>,
    /// (instance, org) → that instance's users.
    remote: HashMap<(u64, i64), Remote>,
    /// org → user → what this instance's sockets were last told (absent: offline).
    announced: HashMap<i64, HashMap<i64, Availability>>,
    /// org → users whose presence may have changed.
    dirty: HashMap<i64, HashSet<i64>>,
    /// Organizations whose local set changed since it was last published.
    changed: HashSet<i64>,
}

/// Users of one organization and what they show now (`None`: offline), in user order.
pub type Changes = Vec<(i64, Option<Availability>)>;

/// An instance's set of connected users of one organization, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub instance: u64,
    pub org: i64,
    pub users: Vec<(i64, Availability)>,
}

impl Presence {
    pub fn new(instance: u64) -> Presence {
        Presence {
            instance,
            local: HashMap::new(),
            remote: HashMap::new(),
            announced: HashMap::new(),
            dirty: HashMap::new(),
            changed: HashSet::new(),
        }
    }

    pub fn instance(&self) -> u64 {
        self.instance
    }

    fn touch(&mut self, org: i64, user: i64) {
        self.dirty.entry(org).or_default().insert(user);
    }

    /// A socket of the user opened on this instance.
    pub fn connect(&mut self, org: i64, user: i64, availability: Availability) {
        let local = self
            .local
            .entry(org)
            .or_default()
            .entry(user)
            .or_insert(Local {
                sockets: 0,
                availability,
            });
        local.sockets += 1;
        if local.sockets == 1 {
            self.changed.insert(org);
            self.touch(org, user);
        }
    }

    /// A socket of the user closed on this instance.
    pub fn disconnect(&mut self, org: i64, user: i64) {
        let Some(users) = self.local.get_mut(&org) else {
            return;
        };
        let Some(local) = users.get_mut(&user) else {
            return;
        };
        local.sockets = local.sockets.saturating_sub(1);
        if local.sockets == 0 {
            users.remove(&user);
            if users.is_empty() {
                self.local.remove(&org);
            }
            self.changed.insert(org);
            self.touch(org, user);
        }
    }

    /// The user chose a status (from any instance).
    pub fn set_status(&mut self, org: i64, user: i64, availability: Availability) {
        if let Some(local) = self
            .local
            .get_mut(&org)
            .and_then(|users| users.get_mut(&user))
            && local.availability != availability
        {
            local.availability = availability;
            self.changed.insert(org);
        }
        for ((_, remote_org), remote) in self.remote.iter_mut() {
            if *remote_org == org
                && let Some(known) = remote.users.get_mut(&user)
            {
                *known = availability;
            }
        }
        self.touch(org, user);
    }

    /// Another instance's set for one organization.
    pub fn heard(&mut self, published: Published, now: Instant) {
        if published.instance == self.instance {
            return;
        }
        let org = published.org;
        let users: HashMap<i64, Availability> = published.users.into_iter().collect();
        let key = (published.instance, org);
        let before = self.remote.remove(&key);
        let mut touched: Vec<i64> = users.keys().copied().collect();
        if let Some(before) = before {
            touched.extend(before.users.keys().copied());
        }
        if !users.is_empty() {
            self.remote.insert(
                key,
                Remote {
                    expires: now + TTL,
                    users,
                },
            );
        }
        for user in touched {
            self.touch(org, user);
        }
    }

    /// Forgets the sets of instances that went quiet.
    pub fn expire(&mut self, now: Instant) {
        let gone: Vec<(u64, i64)> = self
            .remote
            .iter()
            .filter(|(_, remote)| remote.expires <= now)
            .map(|(key, _)| *key)
            .collect();
        for key in gone {
            if let Some(remote) = self.remote.remove(&key) {
                for user in remote.users.into_keys() {
                    self.touch(key.1, user);
                }
            }
        }
    }

    /// What the user shows now: `None` is offline.
    pub fn effective(&self, org: i64, user: i64) -> Option<Availability> {
        if let Some(local) = self.local.get(&org).and_then(|users| users.get(&user)) {
            return Some(local.availability);
        }
        self.remote
            .iter()
            .filter(|((_, remote_org), _)| *remote_org == org)
            .filter_map(|(_, remote)| remote.users.get(&user).copied())
            .min_by_key(|availability| *availability == Availability::Away)
    }

    /// The organization's connected users, on any instance.
    pub fn snapshot(&self, org: i64) -> HashMap<i64, Availability> {
        let mut users: HashMap<i64, Availability> = HashMap::new();
        for ((_, remote_org), remote) in &self.remote {
            if *remote_org == org {
                users.extend(remote.users.iter().map(|(user, at)| (*user, *at)));
            }
        }
        if let Some(local) = self.local.get(&org) {
            users.extend(
                local
                    .iter()
                    .map(|(user, local)| (*user, local.availability)),
            );
        }
        users
    }

    /// Per organization, the users whose presence differs from what this instance's
    /// sockets were last told, with what they show now (`None`: offline), in user order.
    pub fn take_changes(&mut self) -> Vec<(i64, Changes)> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut changes = Vec::new();
        for (org, users) in dirty {
            let mut users: Vec<i64> = users.into_iter().collect();
            users.sort_unstable();
            let mut changed = Vec::new();
            for user in users {
                let now = self.effective(org, user);
                let told = self.announced.entry(org).or_default();
                if told.get(&user).copied() != now {
                    match now {
                        Some(availability) => told.insert(user, availability),
                        None => told.remove(&user),
                    };
                    changed.push((user, now));
                }
            }
            if self.announced.get(&org).is_some_and(HashMap::is_empty) {
                self.announced.remove(&org);
            }
            if !changed.is_empty() {
                changes.push((org, changed));
            }
        }
        changes.sort_by_key(|(org, _)| *org);
        changes
    }

    /// This instance's sets to publish: those that changed, or (`heartbeat`) every one. An
    /// organization whose last socket closed is published once, empty.
    pub fn take_publications(&mut self, heartbeat: bool) -> Vec<Published> {
        let mut orgs: HashSet<i64> = std::mem::take(&mut self.changed);
        if heartbeat {
            orgs.extend(self.local.keys().copied());
        }
        let mut published: Vec<Published> = orgs
            .into_iter()
            .map(|org| {
                let mut users: Vec<(i64, Availability)> = self
                    .local
                    .get(&org)
                    .map(|users| {
                        users
                            .iter()
                            .map(|(user, local)| (*user, local.availability))
                            .collect()
                    })
                    .unwrap_or_default();
                users.sort_unstable_by_key(|(user, _)| *user);
                Published {
                    instance: self.instance,
                    org,
                    users,
                }
            })
            .collect();
        published.sort_by_key(|published| published.org);
        published
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_online_from_the_first_socket_to_the_last() {
        let mut presence = Presence::new(1);
        presence.connect(1, 7, Availability::Online);
        presence.connect(1, 7, Availability::Online);
        assert_eq!(
            presence.take_changes(),
            vec![(1, vec![(7, Some(Availability::Online))])]
        );
        presence.disconnect(1, 7);
        assert!(presence.take_changes().is_empty());
        presence.disconnect(1, 7);
        assert_eq!(presence.take_changes(), vec![(1, vec![(7, None)])]);
    }

    #[test]
    fn a_burst_of_connects_is_one_change_list() {
        let mut presence = Presence::new(1);
        for user in 0..1000 {
            presence.connect(1, user, Availability::Online);
        }
        let changes = presence.take_changes();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].1.len(), 1000);
        assert!(presence.take_changes().is_empty());
    }

    #[test]
    fn another_instances_users_count_until_its_set_expires() {
        let mut a = Presence::new(1);
        let mut b = Presence::new(2);
        b.connect(5, 9, Availability::Away);
        let now = Instant::now();
        for published in b.take_publications(false) {
            a.heard(published, now);
        }
        assert_eq!(a.effective(5, 9), Some(Availability::Away));
        assert_eq!(a.snapshot(5).get(&9), Some(&Availability::Away));
        assert_eq!(
            a.take_changes(),
            vec![(5, vec![(9, Some(Availability::Away))])]
        );
        a.expire(now + TTL / 2);
        assert_eq!(a.effective(5, 9), Some(Availability::Away));
        // B crashed: no heartbeat came.
        a.expire(now + TTL);
        assert_eq!(a.effective(5, 9), None);
        assert_eq!(a.take_changes(), vec![(5, vec![(9, None)])]);
    }

    #[test]
    fn an_instance_ignores_its_own_publications() {
        let mut a = Presence::new(1);
        a.connect(5, 9, Availability::Online);
        let published = a.take_publications(true);
        a.disconnect(5, 9);
        for published in published {
            a.heard(published, Instant::now());
        }
        assert_eq!(a.effective(5, 9), None);
    }
}
