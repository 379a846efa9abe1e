//! The conversations of the demo organization, a batch at a time, written as the API would
//! have written them one request at a time: each counted message moves the conversation's
//! last message and count, writers become participants and have read up to their own
//! message, assignments and closes leave an audit entry and an activity line.
//!
//! Conversation `i` starts at `start + i·step`, so ids follow time. A customer comes back
//! `gap` conversations (30 days) later on the same channel, or never: their conversations
//! never overlap, so at most one of them is open, and only one that is less than 10 days old.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use domain::conversation::{self as rules, AuthorType, DeliveryStatus, Direction, MessageKind};
use domain::{ChannelType, ContactId, ConversationId, MessageId, TeamId, UserId};
use persistence::repo::bulk::{
    self, ActivityRow, AddressRow, ContactRow, ConversationRow, IdTable, MessageRow, ReadRow,
    ReceiptRow, TermRow,
};
use persistence::{DbConnection, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::words::{self, Topic};
use super::{Cast, States};

const DAY_MS: i64 = 24 * 3600 * 1000;
const MINUTE_MS: i64 = 60 * 1000;
/// How far back the history goes.
pub const HISTORY_DAYS: i64 = 90;
/// Conversations younger than this may still be open.
const OPEN_DAYS: i64 = 10;
/// A returning customer's next conversation starts this long after their previous one.
const RETURN_DAYS: i64 = 30;
const RETURN_RATE: f64 = 0.45;
const SPAM_RATE: f64 = 0.02;
const MAX_PINS: i32 = 6;

/// A customer met in an earlier conversation.
#[derive(Clone, Copy)]
struct Known {
    contact: ContactId,
    channel: usize,
    first_name: Option<&'static str>,
}

/// The rows of one batch, in the order they are inserted (foreign keys first).
#[derive(Default)]
pub struct Batch {
    pub contacts: Vec<ContactRow>,
    pub addresses: Vec<AddressRow>,
    /// What contact search looks up, as the API writes it for each contact it saves.
    pub terms: Vec<TermRow>,
    pub favorites: Vec<(UserId, ContactId)>,
    pub conversations: Vec<ConversationRow>,
    pub messages: Vec<MessageRow>,
    pub receipts: Vec<ReceiptRow>,
    pub activity: Vec<ActivityRow>,
    pub participants: Vec<(ConversationId, UserId)>,
    pub reads: Vec<ReadRow>,
    pub pins: Vec<(UserId, ConversationId, i32)>,
    pub tags: Vec<(ConversationId, domain::TagId)>,
    /// Conversations per inbox (index into the cast's inboxes) and state.
    pub states: Vec<States>,
}

impl Batch {
    pub fn write(&self, conn: &mut DbConnection) -> Result<(), StoreError> {
        bulk::insert_contacts(conn, &self.contacts)?;
        bulk::insert_addresses(conn, &self.addresses)?;
        bulk::insert_terms(conn, &self.terms)?;
        bulk::insert_favorites(conn, &self.favorites)?;
        bulk::insert_conversations(conn, &self.conversations)?;
        bulk::insert_messages(conn, &self.messages)?;
        bulk::insert_receipts(conn, &self.receipts)?;
        bulk::insert_activity(conn, &self.activity)?;
        bulk::insert_participants(conn, &self.participants)?;
        bulk::insert_reads(conn, &self.reads)?;
        bulk::insert_pins(conn, &self.pins)?;
        bulk::insert_conversation_tags(conn, &self.tags)?;
        Ok(())
    }
}

enum Step {
    Inbound(String),
    Outbound {
        by: UserId,
        body: String,
        canned: Option<domain::CannedResponseId>,
    },
    Note {
        by: UserId,
        body: String,
    },
    /// `by: None`: auto-assignment.
    Assign {
        by: Option<UserId>,
        to: UserId,
        team: Option<TeamId>,
    },
    Tag {
        by: UserId,
        tag: usize,
    },
    Close {
        by: UserId,
        spam: bool,
    },
}

pub struct Generator<'a> {
    cast: &'a Cast,
    seed: u64,
    rng: StdRng,
    total: u64,
    gap: u64,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    step_ms: f64,
    /// The customer of conversation `i - gap`, at `i % gap`.
    ring: Vec<Option<Known>>,
    /// Customers made so far: each gets addresses of their own from this ordinal.
    customers: u64,
    pins: HashMap<UserId, i32>,
    channel_weights: u32,
}

/// A bijective mix of 64 bits (SplitMix64's finalizer): decisions that later batches must be
/// able to repeat are hashed from the conversation's index instead of drawn in sequence.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// A wait between two steps, in ms, spread between `low` and `high` minutes (more short
/// ones than long ones, as people answer).
fn wait(rng: &mut StdRng, low: i64, high: i64) -> i64 {
    let x: f64 = rng.random::<f64>();
    let minutes = low as f64 * ((high as f64 / low as f64).powf(x));
    (minutes * MINUTE_MS as f64) as i64
}

fn fill(rng: &mut StdRng, template: &str, first: Option<&str>, agent: &str) -> String {
    template
        .replace("{n}", &rng.random_range(1000..99_999).to_string())
        .replace("{first}", first.unwrap_or("there"))
        .replace("{agent}", agent)
}

impl<'a> Generator<'a> {
    pub fn new(cast: &'a Cast, seed: u64, total: u64, now: DateTime<Utc>) -> Generator<'a> {
        let span_ms = HISTORY_DAYS * DAY_MS;
        let gap = (total * RETURN_DAYS as u64)
            .div_ceil(HISTORY_DAYS as u64)
            .max(1);
        Generator {
            cast,
            seed,
            rng: StdRng::seed_from_u64(seed),
            total,
            gap,
            now,
            start: now - Duration::milliseconds(span_ms),
            step_ms: span_ms as f64 / total.max(1) as f64,
            ring: vec![None; gap as usize],
            customers: 0,
            pins: HashMap::new(),
            channel_weights: cast.channels.iter().map(|channel| channel.weight).sum(),
        }
    }

    fn hash(&self, i: u64, salt: u64) -> f64 {
        (mix(self.seed ^ mix(i.wrapping_mul(4) + salt)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn time_of(&self, i: u64) -> DateTime<Utc> {
        let at = (i as f64 + 0.9 * self.hash(i, 1)) * self.step_ms;
        self.start + Duration::milliseconds(at as i64)
    }

    /// Whether conversation `i` is a returning customer's (the one of `i - gap`).
    fn returns(&self, i: u64) -> bool {
        i >= self.gap && i < self.total && self.hash(i, 2) < RETURN_RATE
    }

    /// The conversations `range` with ids reserved on `conn`; call it first in the
    /// transaction (on SQLite, the reservation takes the write lock).
    pub fn batch(
        &mut self,
        conn: &mut DbConnection,
        range: std::ops::Range<u64>,
    ) -> Result<Batch, StoreError> {
        let new_customers = range.clone().filter(|i| !self.returns(*i)).count();
        let contact_ids = bulk::reserve_ids(conn, IdTable::Contacts, new_customers)?;
        let conversation_ids = bulk::reserve_ids(
            conn,
            IdTable::Conversations,
            (range.end - range.start) as usize,
        )?;
        let mut batch = Batch {
            states: vec![States::default(); self.cast.inboxes.len()],
            ..Batch::default()
        };
        let mut fresh = contact_ids.into_iter().map(ContactId);
        for (i, id) in range.zip(conversation_ids) {
            let slot = (i % self.gap) as usize;
            let known = match (self.returns(i), self.ring[slot]) {
                (true, Some(known)) => Some(known),
                _ => None,
            };
            let known = match known {
                Some(known) => known,
                None => {
                    let contact = fresh.next().ok_or_else(|| {
                        StoreError::Corrupt("fewer contact ids than customers".into())
                    })?;
                    self.customer(contact, i, &mut batch)
                }
            };
            self.ring[slot] = Some(known);
            self.conversation(i, ConversationId(id), known, &mut batch);
        }
        // Messages were numbered in the order they were written; now they get their ids.
        let ids = bulk::reserve_ids(conn, IdTable::Messages, batch.messages.len())?;
        for message in &mut batch.messages {
            message.id = MessageId(ids[message.id.get() as usize]);
        }
        for conversation in &mut batch.conversations {
            conversation.last_message_id = conversation
                .last_message_id
                .map(|local| MessageId(ids[local.get() as usize]));
        }
        for receipt in &mut batch.receipts {
            receipt.message_id = MessageId(ids[receipt.message_id.get() as usize]);
        }
        Ok(batch)
    }

    /// A new customer of conversation `i`: their channel, name and address.
    fn customer(&mut self, id: ContactId, i: u64, batch: &mut Batch) -> Known {
        let at = self.time_of(i);
        let rng = &mut self.rng;
        let mut roll = rng.random_range(0..self.channel_weights);
        let channel = self
            .cast
            .channels
            .iter()
            .position(|channel| {
                if roll < channel.weight {
                    true
                } else {
                    roll -= channel.weight;
                    false
                }
            })
            .unwrap_or(0);
        let channel_type = self.cast.channels[channel].channel_type;
        let named_rate = match channel_type {
            ChannelType::Sms | ChannelType::Whatsapp => 0.65,
            ChannelType::Facebook | ChannelType::Instagram => 0.85,
            ChannelType::Webchat => 0.5,
        };
        let first_name = rng
            .random_bool(named_rate)
            .then(|| pick(rng, words::FIRST_NAMES));
        let name = first_name.map(|first| format!("{first} {}", pick(rng, words::LAST_NAMES)));
        let email = name.as_ref().filter(|_| rng.random_bool(0.45)).map(|name| {
            format!(
                "{}{}@example.com",
                name.to_lowercase().replace(' ', "."),
                rng.random_range(1..100)
            )
        });
        let company = name
            .as_ref()
            .filter(|_| rng.random_bool(0.3))
            .map(|_| pick(rng, words::COMPANIES).to_string());
        let notes = name
            .as_ref()
            .filter(|_| rng.random_bool(0.05))
            .map(|_| pick(rng, words::CONTACT_NOTES).to_string());
        let ordinal = self.customers;
        self.customers += 1;
        let number = match channel_type {
            ChannelType::Sms | ChannelType::Whatsapp => phone_number(ordinal),
            ChannelType::Facebook => format!("facebook:{}", 7_100_000_000_000_000 + ordinal),
            ChannelType::Instagram => format!("instagram:{}", 17_841_500_000_000_000 + ordinal),
            ChannelType::Webchat => format!("webchat:v-{:012x}", mix(ordinal) >> 16),
        };
        let terms = domain::contacts::search_terms(
            name.as_deref(),
            email.as_deref(),
            company.as_deref(),
            std::slice::from_ref(&number),
        );
        batch.terms.extend(terms.into_iter().map(|term| TermRow {
            org_id: self.cast.org,
            contact_id: id,
            term,
        }));
        batch.contacts.push(ContactRow {
            id,
            org_id: self.cast.org,
            name,
            email,
            company,
            notes,
            // Set by the conversation if this customer texts STOP.
            opted_out_sms: false,
            created_at: at,
            updated_at: at,
        });
        batch.addresses.push(AddressRow {
            org_id: self.cast.org,
            contact_id: id,
            number,
        });
        if first_name.is_some() && rng.random_bool(0.03) {
            let inbox = &self.cast.inboxes[self.cast.channels[channel].inbox];
            let fans: Vec<UserId> = inbox
                .agents
                .iter()
                .chain(&inbox.managers)
                .copied()
                .collect();
            if !fans.is_empty() {
                batch.favorites.push((pick(rng, &fans), id));
            }
        }
        Known {
            contact: id,
            channel,
            first_name,
        }
    }

    fn conversation(&mut self, i: u64, id: ConversationId, who: Known, batch: &mut Batch) {
        let cast = self.cast;
        let t0 = self.time_of(i);
        let channel = &cast.channels[who.channel];
        let inbox_index = channel.inbox;
        let inbox = &cast.inboxes[inbox_index];
        let rehomed = channel.rehomed.filter(|(at, _)| t0 < *at);
        let age = self.now - t0;
        let first_of_customer = !self.returns(i);
        let last_of_customer = !self.returns(i + self.gap);
        let rng = &mut self.rng;
        let topic: &Topic = &words::TOPICS[rng.random_range(0..words::TOPICS.len())];

        let spam = rehomed.is_none() && rng.random_bool(SPAM_RATE);
        let opts_out = !spam
            && rehomed.is_none()
            && channel.channel_type == ChannelType::Sms
            && first_of_customer
            && last_of_customer
            && rng.random_bool(0.1);
        let open_rate = if age < Duration::days(1) {
            0.8
        } else if age < Duration::days(3) {
            0.6
        } else {
            0.35
        };
        let open = !spam
            && rehomed.is_none()
            && age < Duration::days(OPEN_DAYS)
            && rng.random_bool(open_rate);

        // Who answers: the owner of a personal number, else whoever the inbox gives it to.
        let fixed = rehomed.map(|(_, owner)| owner).or(inbox.owner);
        let responder = fixed.unwrap_or_else(|| pick(rng, &inbox.agents));
        // Canned responses and the appended line are the inbox's and channel's of today;
        // a personal number had neither.
        let canned: &[(domain::CannedResponseId, String)] = match fixed {
            None => &inbox.canned,
            Some(_) => &[],
        };
        let appended = channel.appended.filter(|_| rehomed.is_none());
        let mut steps: Vec<(i64, Step)> = Vec::new();
        let mut unassigned_open = false;

        if spam {
            steps.push((0, Step::Inbound(pick(rng, words::SPAM).to_string())));
            let closer = if inbox.managers.is_empty() || rng.random_bool(0.6) {
                responder
            } else {
                pick(rng, &inbox.managers)
            };
            steps.push((
                wait(rng, 1, 90),
                Step::Close {
                    by: closer,
                    spam: true,
                },
            ));
        } else {
            let outbound_first = channel.channel_type == ChannelType::Sms
                && who.first_name.is_some()
                && !opts_out
                && rng.random_bool(0.1);
            if outbound_first {
                let template = pick(rng, words::OUTBOUND_OPENERS);
                let body = fill(rng, template, who.first_name, cast.first_name(responder));
                steps.push((
                    0,
                    Step::Outbound {
                        by: responder,
                        body,
                        canned: None,
                    },
                ));
            } else {
                let opener = pick(rng, topic.openers);
                let body = fill(rng, opener, None, "");
                steps.push((0, Step::Inbound(body)));
            }
            if inbox.assignment_mode && fixed.is_none() {
                if !outbound_first && inbox.auto_assign && rng.random_bool(0.85) {
                    // In the same transaction as the customer's first message.
                    steps.push((
                        0,
                        Step::Assign {
                            by: None,
                            to: responder,
                            team: None,
                        },
                    ));
                } else if open && !outbound_first && rng.random_bool(0.35) {
                    unassigned_open = true;
                } else if outbound_first || rng.random_bool(0.7) {
                    steps.push((
                        wait(rng, 1, 45),
                        Step::Assign {
                            by: Some(responder),
                            to: responder,
                            team: None,
                        },
                    ));
                } else {
                    let manager = pick(rng, &inbox.managers);
                    let team = cast.team_of(responder).filter(|_| rng.random_bool(0.5));
                    steps.push((
                        wait(rng, 2, 90),
                        Step::Assign {
                            by: Some(manager),
                            to: responder,
                            team,
                        },
                    ));
                }
            }
            let rounds = if unassigned_open {
                0
            } else if open {
                rng.random_range(1..=3)
            } else {
                rng.random_range(1..=4)
            };
            let waiting_on_customer = open && rng.random_bool(0.4);
            if unassigned_open && rng.random_bool(0.3) {
                let follow_up = pick(rng, topic.follow_ups);
                let body = fill(rng, follow_up, None, "");
                steps.push((wait(rng, 1, 20), Step::Inbound(body)));
            }
            for round in 0..rounds {
                let last = round + 1 == rounds;
                if !(outbound_first && round == 0) {
                    let (body, canned) =
                        if !canned.is_empty() && round == 0 && rng.random_bool(0.25) {
                            let (id, body) = canned[0].clone();
                            (body, Some(id))
                        } else if !canned.is_empty() && rng.random_bool(0.1) {
                            let (id, body) = canned[rng.random_range(0..canned.len())].clone();
                            (body, Some(id))
                        } else {
                            let reply = topic.replies[round.min(topic.replies.len() - 1)];
                            (fill(rng, reply, who.first_name, ""), None)
                        };
                    steps.push((
                        wait(rng, 2, 180),
                        Step::Outbound {
                            by: responder,
                            body,
                            canned,
                        },
                    ));
                }
                if rng.random_bool(0.12) {
                    let by = if rng.random_bool(0.3) && !inbox.managers.is_empty() {
                        pick(rng, &inbox.managers)
                    } else {
                        responder
                    };
                    let body = pick(rng, topic.notes).to_string();
                    steps.push((wait(rng, 1, 15), Step::Note { by, body }));
                }
                if round == 0 && rng.random_bool(0.3) {
                    let tag = cast.tag_index(topic.tag);
                    steps.push((wait(rng, 1, 10), Step::Tag { by: responder, tag }));
                    if rng.random_bool(0.15) {
                        let urgent = cast.tag_index("urgent");
                        steps.push((
                            wait(rng, 1, 5),
                            Step::Tag {
                                by: responder,
                                tag: urgent,
                            },
                        ));
                    }
                }
                if last && waiting_on_customer {
                    break;
                }
                let body = if last && !open && rng.random_bool(0.6) {
                    pick(rng, words::THANKS).to_string()
                } else {
                    let follow_up = topic.follow_ups[round.min(topic.follow_ups.len() - 1)];
                    fill(rng, follow_up, None, "")
                };
                steps.push((wait(rng, 5, 24 * 60), Step::Inbound(body)));
            }
            if opts_out {
                steps.push((
                    wait(rng, 30, 2 * 24 * 60),
                    Step::Inbound(words::STOP.to_string()),
                ));
            }
            // A recent conversation still open when its number moved to a shared inbox was
            // closed by the move, by nobody; the others were closed by their owner.
            let closed_by_move = rehomed.is_some_and(|(at, _)| at - t0 < Duration::days(OPEN_DAYS))
                && rng.random_bool(0.3);
            if !open && !closed_by_move {
                let by = if fixed.is_none() && rng.random_bool(0.1) {
                    pick(rng, &inbox.managers)
                } else {
                    responder
                };
                steps.push((wait(rng, 5, 8 * 60), Step::Close { by, spam: false }));
            }
        }

        // Everything happened before now (or before the number moved).
        let limit = match rehomed {
            Some((at, _)) => at - Duration::seconds(1),
            None => self.now - Duration::seconds(30),
        };
        let total: i64 = steps.iter().map(|(gap, _)| *gap).sum();
        let room = (limit - t0).num_milliseconds().max(0);
        let scale = if total > room {
            room as f64 / total as f64
        } else {
            1.0
        };

        let org = cast.org;
        let mut at = t0;
        let mut count = 0i64;
        let mut last: Option<(usize, DateTime<Utc>, String)> = None;
        let mut assignee: Option<UserId> = None;
        let mut team: Option<TeamId> = None;
        let mut closed: Option<(DateTime<Utc>, Option<UserId>)> = None;
        let mut reads: Vec<(UserId, i64)> = Vec::new();
        let mut participants: Vec<UserId> = Vec::new();
        let mut tags: Vec<usize> = Vec::new();
        let mut stopped_at = None;
        for (number, (gap, step)) in steps.into_iter().enumerate() {
            at += Duration::milliseconds((gap as f64 * scale) as i64);
            let local = MessageId(batch.messages.len() as i64);
            match step {
                Step::Inbound(body) => {
                    count += 1;
                    last = Some((batch.messages.len(), at, rules::preview(&body)));
                    if body == words::STOP && opts_out {
                        stopped_at = Some(at);
                    }
                    let external_id = external_id(channel.channel_type, id, number);
                    batch.receipts.push(ReceiptRow {
                        channel_id: channel.id,
                        external_id: external_id.clone(),
                        conversation_id: id,
                        message_id: local,
                        created_at: at,
                    });
                    batch.messages.push(MessageRow {
                        id: local,
                        org_id: org,
                        conversation_id: id,
                        direction: Direction::Inbound,
                        kind: MessageKind::Message,
                        body,
                        author_type: AuthorType::Contact,
                        author_id: Some(who.contact.get()),
                        delivery_status: None,
                        external_id: Some(external_id),
                        canned_response_id: None,
                        created_at: at,
                    });
                }
                Step::Outbound { by, body, canned } => {
                    let body = rules::outbound_body(&body, appended);
                    count += 1;
                    last = Some((batch.messages.len(), at, rules::preview(&body)));
                    let status = delivery_status(rng, channel.channel_type, self.now - at);
                    batch.messages.push(MessageRow {
                        id: local,
                        org_id: org,
                        conversation_id: id,
                        direction: Direction::Outbound,
                        kind: MessageKind::Message,
                        body,
                        author_type: AuthorType::User,
                        author_id: Some(by.get()),
                        delivery_status: Some(status),
                        external_id: None,
                        canned_response_id: canned,
                        created_at: at,
                    });
                    wrote(&mut participants, &mut reads, by, count);
                }
                Step::Note { by, body } => {
                    batch.messages.push(MessageRow {
                        id: local,
                        org_id: org,
                        conversation_id: id,
                        direction: Direction::Internal,
                        kind: MessageKind::Note,
                        body,
                        author_type: AuthorType::User,
                        author_id: Some(by.get()),
                        delivery_status: None,
                        external_id: None,
                        canned_response_id: None,
                        created_at: at,
                    });
                    wrote(&mut participants, &mut reads, by, count);
                }
                Step::Assign {
                    by,
                    to,
                    team: to_team,
                } => {
                    let (data, line) = match by {
                        None => (
                            json!({"assignee_id": to.get(), "previous_assignee_id": null, "team_id": null, "automatic": true}),
                            format!("Assigned automatically to {}", cast.name(to)),
                        ),
                        Some(by) => (
                            json!({"assignee_id": to.get(), "previous_assignee_id": assignee.map(UserId::get), "team_id": to_team.map(TeamId::get)}),
                            if by == to {
                                format!("{} took this conversation", cast.name(by))
                            } else {
                                format!(
                                    "{} assigned this conversation to {}",
                                    cast.name(by),
                                    cast.name(to)
                                )
                            },
                        ),
                    };
                    batch.activity.push(ActivityRow {
                        org_id: org,
                        conversation_id: id,
                        action: "assigned",
                        actor_id: by,
                        data: data.to_string(),
                        at,
                    });
                    batch
                        .messages
                        .push(activity_line(local, org, id, by, line, at));
                    assignee = Some(to);
                    team = to_team;
                }
                Step::Tag { by, tag } => {
                    if !tags.contains(&tag) {
                        tags.push(tag);
                        batch.activity.push(ActivityRow {
                            org_id: org,
                            conversation_id: id,
                            action: "tagged",
                            actor_id: Some(by),
                            data: json!({"tag": cast.tags[tag].1}).to_string(),
                            at,
                        });
                        batch.tags.push((id, cast.tags[tag].0));
                    }
                }
                Step::Close { by, spam } => {
                    batch.activity.push(ActivityRow {
                        org_id: org,
                        conversation_id: id,
                        action: "closed",
                        actor_id: Some(by),
                        data: json!({"spam": spam}).to_string(),
                        at,
                    });
                    let line = if spam {
                        format!("{} closed this conversation as spam", cast.name(by))
                    } else {
                        format!("{} closed this conversation", cast.name(by))
                    };
                    batch
                        .messages
                        .push(activity_line(local, org, id, Some(by), line, at));
                    closed = Some((at, Some(by)));
                }
            }
        }
        let mut updated_at = at;
        if let Some((moved_at, _)) = rehomed {
            // The move closed what was still open, cleared assignments and archived it all.
            closed = closed.or(Some((moved_at, None)));
            assignee = None;
            team = None;
            updated_at = moved_at;
        }

        // Read state: whoever closed it, and most of those who wrote, read it to the end;
        // an open conversation's last customer message may still be unread for its agent.
        let mut marked_unread = None;
        if closed.is_some() {
            for (_, read) in reads.iter_mut() {
                if rng.random_bool(0.85) {
                    *read = count;
                }
            }
            if let Some((_, Some(closer))) = closed {
                read_up_to(&mut reads, closer, count);
            }
            for manager in &inbox.managers {
                if rng.random_bool(0.15) {
                    read_up_to(&mut reads, *manager, count);
                }
            }
        } else if let Some(agent) = assignee.or(inbox.owner) {
            if rng.random_bool(0.3) {
                read_up_to(&mut reads, agent, count);
            }
            if rng.random_bool(0.03) {
                marked_unread = Some(agent);
            }
            let pins = self.pins.entry(agent).or_insert(0);
            if *pins < MAX_PINS && rng.random_bool(0.15) {
                batch.pins.push((agent, id, *pins));
                *pins += 1;
            }
        }
        if let Some(agent) = marked_unread
            && !reads.iter().any(|(user, _)| *user == agent)
        {
            reads.push((agent, 0));
        }
        batch
            .reads
            .extend(reads.into_iter().map(|(user, read)| ReadRow {
                user_id: user,
                conversation_id: id,
                read_count: read,
                marked_unread: marked_unread == Some(user),
            }));
        batch
            .participants
            .extend(participants.into_iter().map(|user| (id, user)));

        if let Some(stopped_at) = stopped_at
            && let Some(contact) = batch
                .contacts
                .iter_mut()
                .rev()
                .find(|c| c.id == who.contact)
        {
            contact.opted_out_sms = true;
            contact.updated_at = stopped_at;
        }

        let state = &mut batch.states[inbox_index];
        if spam {
            state.spam += 1;
        } else if rehomed.is_some() {
            state.archived += 1;
        } else if closed.is_some() {
            state.closed += 1;
        } else {
            state.open += 1;
        }
        let (closed_at, closed_by) = match closed {
            Some((at, by)) => (Some(at), by),
            None => (None, None),
        };
        let (last_message_id, last_message_at, last_message_preview) = match last {
            Some((local, at, preview)) => (Some(MessageId(local as i64)), Some(at), Some(preview)),
            None => (None, None, None),
        };
        batch.conversations.push(ConversationRow {
            id,
            org_id: org,
            inbox_id: inbox.id,
            channel_id: channel.id,
            contact_id: who.contact,
            status: if closed.is_some() {
                rules::Status::Closed
            } else {
                rules::Status::Open
            },
            archived: rehomed.is_some(),
            spam,
            assignee_id: assignee,
            team_id: team,
            last_message_id,
            last_message_at,
            last_message_preview,
            message_count: count,
            created_at: t0,
            closed_at,
            closed_by,
            updated_at,
        });
    }
}

/// A user wrote with `count` counted messages in the conversation: they take part in it,
/// and have read it up to there.
fn wrote(participants: &mut Vec<UserId>, reads: &mut Vec<(UserId, i64)>, by: UserId, count: i64) {
    if !participants.contains(&by) {
        participants.push(by);
    }
    read_up_to(reads, by, count);
}

fn read_up_to(reads: &mut Vec<(UserId, i64)>, user: UserId, count: i64) {
    match reads.iter_mut().find(|(reader, _)| *reader == user) {
        Some((_, read)) => *read = count,
        None => reads.push((user, count)),
    }
}

fn activity_line(
    id: MessageId,
    org: domain::OrgId,
    conversation: ConversationId,
    by: Option<UserId>,
    body: String,
    at: DateTime<Utc>,
) -> MessageRow {
    MessageRow {
        id,
        org_id: org,
        conversation_id: conversation,
        direction: Direction::Internal,
        kind: MessageKind::Activity,
        body,
        author_type: AuthorType::System,
        author_id: by.map(UserId::get),
        delivery_status: None,
        external_id: None,
        canned_response_id: None,
        created_at: at,
    }
}

/// What the provider said about an outbound message: mostly delivered on phone channels,
/// now and then failed; social channels report less. The last minutes are still `sent`.
fn delivery_status(rng: &mut StdRng, channel: ChannelType, age: Duration) -> DeliveryStatus {
    let roll: f64 = rng.random();
    if age < Duration::minutes(2) {
        DeliveryStatus::Sent
    } else if channel.uses_phone_number() {
        match roll {
            r if r < 0.82 => DeliveryStatus::Delivered,
            r if r < 0.94 => DeliveryStatus::Sent,
            _ => DeliveryStatus::Failed,
        }
    } else if roll < 0.3 {
        DeliveryStatus::Delivered
    } else {
        DeliveryStatus::Sent
    }
}

/// The provider's id of an inbound message, in the provider's style, unique per channel.
fn external_id(channel: ChannelType, conversation: ConversationId, step: usize) -> String {
    let key = mix(conversation.get() as u64);
    match channel {
        ChannelType::Sms => format!("SM{key:016x}{step:016x}"),
        ChannelType::Whatsapp => format!("wamid.{key:016x}{step:04x}"),
        ChannelType::Facebook => format!("m_{key:016x}{step:04x}"),
        ChannelType::Instagram => format!("ig_{key:016x}{step:04x}"),
        ChannelType::Webchat => format!("wc_{key:016x}{step:04x}"),
    }
}

/// North American area codes and exchanges that are valid numbers (none of 555's fictional
/// range, which the demo's business numbers use).
const AREA_CODES: &[u32] = &[
    415, 628, 510, 650, 408, 212, 646, 718, 312, 773, 617, 206, 303, 512, 305, 404, 213, 310,
];
pub const MAX_CUSTOMERS: u64 = (AREA_CODES.len() * EXCHANGES.len() * 10_000) as u64;
const EXCHANGES: &[u32] = &[
    201, 202, 209, 226, 237, 240, 255, 260, 279, 286, 301, 316, 320, 332, 348, 360, 371, 385, 392,
    406, 421, 438, 452, 463, 470, 482, 497, 503, 519, 524, 531, 546, 563, 578, 582, 594, 602, 613,
    625, 637,
];

/// The `ordinal`-th customer's number, in E.164; different ordinals, different numbers up to
/// `MAX_CUSTOMERS`.
pub fn phone_number(ordinal: u64) -> String {
    let areas = AREA_CODES.len() as u64;
    let exchanges = EXCHANGES.len() as u64;
    let area = AREA_CODES[(ordinal % areas) as usize];
    let rest = ordinal / areas;
    let exchange = EXCHANGES[(rest % exchanges) as usize];
    let block = rest / exchanges;
    // 7919 is prime to 10000: the lines of a block are a permutation, not a counter.
    let line = (block * 7919 + 1234) % 10_000;
    format!("+1{area}{exchange}{line:04}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_numbers_are_valid_distinct_e164() {
        let mut seen = std::collections::HashSet::new();
        for ordinal in (0..200_000)
            .step_by(7)
            .chain(MAX_CUSTOMERS - 500..MAX_CUSTOMERS)
        {
            let number = phone_number(ordinal);
            assert_eq!(
                domain::phone::normalize(&number).as_deref(),
                Some(number.as_str()),
                "{number} is not a valid E.164 number"
            );
            assert!(seen.insert(number), "ordinal {ordinal} repeats a number");
        }
        for area in AREA_CODES {
            for exchange in EXCHANGES {
                let number = format!("+1{area}{exchange}0042");
                assert!(
                    domain::phone::normalize(&number).is_some(),
                    "{number} is not valid"
                );
            }
        }
    }

    #[test]
    fn provider_ids_differ_per_message() {
        let a = external_id(ChannelType::Sms, ConversationId(1), 0);
        let b = external_id(ChannelType::Sms, ConversationId(1), 1);
        let c = external_id(ChannelType::Sms, ConversationId(2), 0);
        assert!(a != b && a != c && b != c);
    }
}
