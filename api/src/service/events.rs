//! The outbox: events are appended to the log inside the transaction of the change they
//! announce, and published on the bus right after it commits.

use domain::{ConversationId, InboxId, OrgId};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::events::{self, NewEvent, StoredEvent};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// Events written by one transaction, to publish once it has committed.
#[derive(Default)]
#[must_use = "publish the events after the transaction commits"]
pub struct Outbox {
    events: Vec<StoredEvent>,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Appends an event to the log. Call it after the change itself: it takes the
    /// organization's cursor lock until commit.
    pub fn append(
        &mut self,
        conn: &mut DbConnection,
        org: OrgId,
        event_type: &str,
        inbox: Option<InboxId>,
        conversation: Option<ConversationId>,
        data: &impl Serialize,
    ) -> Result<(), ApiError> {
        let payload =
            serde_json::to_string(data).map_err(|error| ApiError::Internal(error.to_string()))?;
        let stored = events::append(
            conn,
            NewEvent {
                org_id: org,
                event_type,
                inbox_id: inbox,
                conversation_id: conversation,
                payload,
            },
        )?;
        self.events.push(stored);
        Ok(())
    }

    /// `conversation.*` with `{conversation}` (caller-neutral: no unread or pin state).
    pub fn conversation(
        &mut self,
        conn: &mut DbConnection,
        event_type: &str,
        item: &wire::Conversation,
    ) -> Result<(), ApiError> {
        #[derive(Serialize)]
        struct Data<'a> {
            conversation: &'a wire::Conversation,
        }
        let (org, inbox, id) = (
            OrgId(item.org_id),
            InboxId(item.inbox_id),
            ConversationId(item.id),
        );
        self.append(
            conn,
            org,
            event_type,
            Some(inbox),
            Some(id),
            &Data { conversation: item },
        )
    }

    /// `message.*` with `{conversation_id, message}`.
    pub fn message(
        &mut self,
        conn: &mut DbConnection,
        org: OrgId,
        inbox: InboxId,
        event_type: &str,
        message: &wire::Message,
    ) -> Result<(), ApiError> {
        #[derive(Serialize)]
        struct Data<'a> {
            conversation_id: i64,
            message: &'a wire::Message,
        }
        let id = ConversationId(message.conversation_id);
        self.append(
            conn,
            org,
            event_type,
            Some(inbox),
            Some(id),
            &Data {
                conversation_id: message.conversation_id,
                message,
            },
        )
    }

    /// Publishes on the bus. Only after commit: clients never hear of a rolled-back change.
    pub fn publish(self, state: &AppState) {
        for event in self.events {
            state.bus.publish(realtime::BusEvent {
                org_id: event.org_id.get(),
                seq: event.seq,
                event_type: event.event_type,
                inbox_id: event.inbox_id.map(InboxId::get),
                conversation_id: event.conversation_id.map(ConversationId::get),
                payload: event.payload,
                at: wire::millis::format(&event.created_at),
                from_user: None,
                origin: 0,
            });
        }
    }
}

/// Runs `work` in one transaction with an outbox, and publishes its events once the
/// transaction has committed (nothing is published for a rolled-back change).
pub async fn write<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &mut Outbox) -> Result<T, ApiError> + Send + 'static,
{
    let (result, outbox) = crate::db::write(&state.store, move |conn| {
        let mut outbox = Outbox::new();
        let result = work(conn, &mut outbox)?;
        Ok((result, outbox))
    })
    .await?;
    outbox.publish(state);
    Ok(result)
}
