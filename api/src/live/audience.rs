//! Who receives an event: one function for the live fan-out, the WebSocket `resume` and
//! `GET /v1/events`, deciding a whole page of events at once. It applies the REST list's
//! rules (`domain::conversation::{inbox_scope, scope_admits}`) to the conversation as the
//! event describes it, plus three of its own: the previous assignee hears the
//! `conversation.assigned` that takes a conversation from them, a chat's events reach its
//! members only, and a deactivated user hears nothing. The facts (users, inboxes, inbox
//! memberships, teams, conversations, chat memberships) are loaded once per page: at most six
//! queries, whatever the number of events or users.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use domain::conversation::{inbox_scope, scope_admits};
use domain::{ChatId, ConversationId, Inbox, InboxId, OrgId, TeamId, User, UserId};
use persistence::repo::{audience, conversations, events, inboxes, users};
use persistence::{DbConnection, Store};
use realtime::{Audience, BusEvent, EventType};
use serde::Deserialize;

use super::stored_to_bus;
use crate::error::ApiError;

/// The conversation facts visibility needs, as of the event when it carries them.
#[derive(Debug, Clone, Copy, Deserialize)]
struct ConversationFacts {
    inbox_id: i64,
    assignee_id: Option<i64>,
    team_id: Option<i64>,
}

#[derive(Deserialize)]
struct Payload {
    conversation: Option<ConversationFacts>,
    previous_assignee_id: Option<i64>,
    chat_id: Option<i64>,
}

/// What an event says about its conversation, or its chat.
struct Described {
    facts: Option<ConversationFacts>,
    previous_assignee: Option<i64>,
    chat: Option<i64>,
}

fn describe(event: &BusEvent) -> Described {
    let payload: Option<Payload> = serde_json::from_str(&event.payload).ok();
    Described {
        facts: payload.as_ref().and_then(|payload| payload.conversation),
        previous_assignee: payload
            .as_ref()
            .and_then(|payload| payload.previous_assignee_id),
        chat: payload.and_then(|payload| payload.chat_id),
    }
}

/// Events of an internal chat: its members' business only, never the organization's.
fn is_chat_event(event_type: EventType) -> bool {
    matches!(event_type, EventType::ChatMessageCreated)
}

/// Decides, for each event (all of organization `org`), which of `users` may receive it.
pub fn decide(
    conn: &mut DbConnection,
    org: OrgId,
    events: &[Arc<BusEvent>],
    users: &[i64],
) -> Result<Vec<Vec<i64>>, ApiError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    if users.is_empty() {
        return Ok(vec![Vec::new(); events.len()]);
    }
    let ids: Vec<UserId> = users.iter().copied().map(UserId).collect();
    // A deactivated user hears nothing, whatever the event.
    let people: Vec<User> = users::get_many(conn, org, &ids)?
        .into_iter()
        .filter(|person| person.active)
        .collect();
    if people.is_empty() {
        return Ok(vec![Vec::new(); events.len()]);
    }
    let described: Vec<Described> = events.iter().map(|event| describe(event)).collect();
    // Events that do not carry their conversation (message.*, typing, viewing) are decided
    // on the conversation as it is now.
    let missing: Vec<ConversationId> = events
        .iter()
        .zip(&described)
        .filter(|(_, described)| described.facts.is_none())
        .filter_map(|(event, _)| event.conversation_id.map(ConversationId))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let current: HashMap<i64, ConversationFacts> = if missing.is_empty() {
        HashMap::new()
    } else {
        conversations::get_many(conn, org, &missing)?
            .into_iter()
            .map(|found| {
                (
                    found.id.get(),
                    ConversationFacts {
                        inbox_id: found.inbox_id.get(),
                        assignee_id: found.assignee_id.map(UserId::get),
                        team_id: found.team_id.map(TeamId::get),
                    },
                )
            })
            .collect()
    };
    // Chat events go to the chat's members: one query for every chat of the page.
    let chats: Vec<ChatId> = events
        .iter()
        .zip(&described)
        .filter(|(event, _)| is_chat_event(event.event_type))
        .filter_map(|(_, described)| described.chat.map(ChatId))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let chat_members: HashSet<(i64, i64)> = if chats.is_empty() {
        HashSet::new()
    } else {
        let people_ids: Vec<UserId> = people.iter().map(|person| person.id).collect();
        audience::chat_memberships(conn, org, &chats, &people_ids)?
            .into_iter()
            .map(|(chat, user)| (chat.get(), user.get()))
            .collect()
    };
    let any_conversation = events.iter().any(|event| event.conversation_id.is_some());
    let (org_inboxes, members, teams) = if any_conversation {
        let org_inboxes: HashMap<i64, Inbox> = inboxes::list_all(conn, org)?
            .into_iter()
            .map(|inbox| (inbox.id.get(), inbox))
            .collect();
        let wanted: Vec<InboxId> = org_inboxes.values().map(|inbox| inbox.id).collect();
        let people_ids: Vec<UserId> = people.iter().map(|person| person.id).collect();
        let members: HashSet<(i64, i64)> = audience::inbox_memberships(conn, &wanted, &people_ids)?
            .into_iter()
            .map(|(inbox, user)| (inbox.get(), user.get()))
            .collect();
        let mut teams: HashMap<i64, Vec<TeamId>> = HashMap::new();
        for (team, user) in audience::team_memberships(conn, &people_ids)? {
            teams.entry(user.get()).or_default().push(team);
        }
        (org_inboxes, members, teams)
    } else {
        Default::default()
    };
    let no_teams = Vec::new();
    let decided = events
        .iter()
        .zip(&described)
        .map(|(event, described)| {
            if is_chat_event(event.event_type) {
                // Without a chat it names, an event of a chat reaches nobody.
                let Some(chat) = described.chat else {
                    return Vec::new();
                };
                return people
                    .iter()
                    .filter(|person| chat_members.contains(&(chat, person.id.get())))
                    .map(|person| person.id.get())
                    .collect();
            }
            let Some(conversation) = event.conversation_id else {
                // Contacts and the like are the whole organization's: its active users.
                return people.iter().map(|person| person.id.get()).collect();
            };
            let facts = described
                .facts
                .or_else(|| current.get(&conversation).copied());
            let Some(facts) = facts else {
                return Vec::new();
            };
            let Some(inbox) = org_inboxes.get(&facts.inbox_id) else {
                return Vec::new();
            };
            let mut allowed: Vec<i64> = people
                .iter()
                .filter(|person| {
                    let actor = person.actor();
                    let is_member = members.contains(&(inbox.id.get(), person.id.get()));
                    let teams = teams.get(&person.id.get()).unwrap_or(&no_teams);
                    scope_admits(
                        inbox_scope(&actor, inbox, is_member),
                        &actor,
                        teams,
                        facts.assignee_id.map(UserId),
                        facts.team_id.map(TeamId),
                    )
                })
                .map(|person| person.id.get())
                .collect();
            // The previous assignee hears that it was taken away, then nothing more.
            if event.event_type == EventType::ConversationAssigned
                && let Some(previous) = described.previous_assignee
                && people.iter().any(|person| person.id.get() == previous)
                && !allowed.contains(&previous)
            {
                allowed.push(previous);
            }
            allowed
        })
        .collect();
    Ok(decided)
}

/// The [`Audience`] of the hub, from the database.
pub struct DbAudience {
    pub store: Store,
}

impl Audience for DbAudience {
    fn audiences(
        &self,
        org: i64,
        events: &[Arc<BusEvent>],
        users: &[i64],
    ) -> Result<Vec<Vec<i64>>, String> {
        let mut conn = self.store.conn().map_err(|error| error.to_string())?;
        decide(&mut conn, OrgId(org), events, users).map_err(|error| format!("{error:?}"))
    }

    fn events_after(&self, org: i64, seq: i64, limit: i64) -> Result<Vec<BusEvent>, String> {
        let stored = self
            .store
            .read(|conn| events::after(conn, OrgId(org), seq, limit))
            .map_err(|error| error.to_string())?;
        Ok(stored.into_iter().map(stored_to_bus).collect())
    }

    fn last_seq(&self, org: i64) -> Result<i64, String> {
        self.store
            .read(|conn| events::last_seq(conn, OrgId(org)))
            .map_err(|error| error.to_string())
    }

    fn first_retained(&self, org: i64) -> Result<Option<i64>, String> {
        self.store
            .read(|conn| events::first_retained(conn, OrgId(org)))
            .map_err(|error| error.to_string())
    }
}
