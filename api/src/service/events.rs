//! The outbox: a change buffers the events it announces, appends them to the log as the last
//! statements of its transaction (so the organization's cursor lock is held only while it
//! commits), and publishes them on the bus once it has committed.

use domain::{ConversationId, EventType, InboxId, OrgId};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::events::{self, NewEvent, StoredEvent};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// Events a transaction will write, in the order it announced them.
#[derive(Default)]
#[must_use = "append the events with `Outbox::flush` before the transaction commits"]
pub struct Outbox {
    pending: Vec<NewEvent>,
}

/// Events written to the log, to publish once their transaction has committed.
#[derive(Default)]
#[must_use = "publish the events after the transaction commits"]
pub struct Logged {
    events: Vec<StoredEvent>,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Announces an event of the change under way; it is logged by [`Outbox::flush`].
    pub fn append(
        &mut self,
        org: OrgId,
        event_type: EventType,
        inbox: Option<InboxId>,
        conversation: Option<ConversationId>,
        data: &impl Serialize,
    ) -> Result<(), ApiError> {
        let payload =
            serde_json::to_string(data).map_err(|error| ApiError::Internal(error.to_string()))?;
        self.pending.push(NewEvent {
            org_id: org,
            event_type,
            inbox_id: inbox,
            conversation_id: conversation,
            payload,
        });
        Ok(())
    }

    /// `conversation.*` with `{conversation}` (caller-neutral: no unread or pin state).
    pub fn conversation(
        &mut self,
        event_type: EventType,
        item: &wire::Conversation,
    ) -> Result<(), ApiError> {
        #[derive(Serialize)]
        struct Data<'a> {
            conversation: &'a wire::Conversation,
        }
        self.append(
            OrgId(item.org_id),
            event_type,
            Some(InboxId(item.inbox_id)),
            Some(ConversationId(item.id)),
            &Data { conversation: item },
        )
    }

    /// `message.*` with `{conversation_id, message}`.
    pub fn message(
        &mut self,
        org: OrgId,
        inbox: InboxId,
        event_type: EventType,
        message: &wire::Message,
    ) -> Result<(), ApiError> {
        #[derive(Serialize)]
        struct Data<'a> {
            conversation_id: i64,
            message: &'a wire::Message,
        }
        self.append(
            org,
            event_type,
            Some(inbox),
            Some(ConversationId(message.conversation_id)),
            &Data {
                conversation_id: message.conversation_id,
                message,
            },
        )
    }

    /// `contact.updated` with `{contact}` (caller-neutral: no favorite flag), to the whole
    /// organization.
    pub fn contact(&mut self, org: OrgId, contact: &wire::Contact) -> Result<(), ApiError> {
        #[derive(Serialize)]
        struct Data<'a> {
            contact: &'a wire::Contact,
        }
        self.append(
            org,
            EventType::ContactUpdated,
            None,
            None,
            &Data { contact },
        )
    }

    /// `contacts.imported` with `{contact_ids}`: one event for a batch of imported rows
    /// (up to a few hundred), to the whole organization, instead of one `contact.updated`
    /// per row: a 50,000-row import is a few hundred frames, and clients refetch what they
    /// show.
    pub fn contacts_imported(&mut self, org: OrgId, ids: &[i64]) -> Result<(), ApiError> {
        #[derive(Serialize)]
        struct Data<'a> {
            contact_ids: &'a [i64],
        }
        self.append(
            org,
            EventType::ContactsImported,
            None,
            None,
            &Data { contact_ids: ids },
        )
    }

    /// `chat.message.created` with `{chat_id, message}`. It names no inbox or conversation:
    /// the audience reads `chat_id` and sends it to the chat's members only.
    pub fn chat_message(
        &mut self,
        org: OrgId,
        message: &wire::ChatMessage,
    ) -> Result<(), ApiError> {
        #[derive(Serialize)]
        struct Data<'a> {
            chat_id: i64,
            message: &'a wire::ChatMessage,
        }
        self.append(
            org,
            EventType::ChatMessageCreated,
            None,
            None,
            &Data {
                chat_id: message.chat_id,
                message,
            },
        )
    }

    /// Writes the buffered events to the log. Call it as the transaction's last step: it
    /// takes the organization's cursor, which stays locked until commit.
    pub fn flush(self, conn: &mut DbConnection) -> Result<Logged, ApiError> {
        let mut events = Vec::with_capacity(self.pending.len());
        let mut pending = self.pending;
        // A change touches one organization; keep the general case correct all the same.
        while let Some(org) = pending.first().map(|event| event.org_id) {
            let (this, rest): (Vec<NewEvent>, Vec<NewEvent>) =
                pending.into_iter().partition(|event| event.org_id == org);
            events.extend(events::append_all(conn, org, this)?);
            pending = rest;
        }
        Ok(Logged { events })
    }
}

impl Logged {
    /// Publishes on the bus. Only after commit: clients never hear of a rolled-back change.
    pub fn publish(self, state: &AppState) {
        for event in self.events {
            state.bus.publish(crate::live::stored_to_bus(event));
        }
    }
}

/// Runs `work` in one transaction with an outbox, logs its events last, and publishes them
/// once the transaction has committed (nothing is published for a rolled-back change).
pub async fn write<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &mut Outbox) -> Result<T, ApiError> + Send + 'static,
{
    let (result, logged) = crate::db::write(&state.store, move |conn| {
        let mut outbox = Outbox::new();
        let result = work(conn, &mut outbox)?;
        Ok((result, outbox.flush(conn)?))
    })
    .await?;
    logged.publish(state);
    Ok(result)
}
