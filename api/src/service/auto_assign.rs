//! Auto-assignment: a new conversation in an inbox with `auto_assign` goes to the least busy
//! member logged in to its queue, within `auto_assign_limit`.

use domain::EventType;
use domain::conversation::{AuthorType, Direction, MessageKind};
use domain::routing::pick_assignee;
use domain::{InboxKind, OrgId};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::conversations::Locked;
use persistence::repo::{activity, conversations, inboxes, messages, users};
use serde_json::json;

use super::events::Outbox;
use super::present;
use crate::error::ApiError;

/// Assigns the new conversation if its inbox says so and someone can take it.
pub fn route(
    conn: &mut DbConnection,
    org: OrgId,
    locked: &mut Locked,
    outbox: &mut Outbox,
) -> Result<(), ApiError> {
    let conversation = locked.current().clone();
    // Two new conversations at once must not both count the same agent under the limit.
    let Some(inbox) = inboxes::lock(conn, org, conversation.inbox_id)? else {
        return Ok(());
    };
    let settings = &inbox.settings;
    if !settings.assignment_mode
        || !settings.auto_assign
        || settings.kind == InboxKind::Private
        || conversation.assignee_id.is_some()
    {
        return Ok(());
    }
    let candidates = inboxes::queue_candidates(conn, &inbox)?;
    let Some(assignee) = pick_assignee(&candidates, settings.auto_assign_limit) else {
        return Ok(());
    };
    let updated = conversations::set_assignment(conn, locked, Some(assignee), None)?;
    let name =
        users::get(conn, org, assignee)?.map_or_else(|| "an agent".to_string(), |user| user.name);
    activity::record(conn, org, conversation.id, "assigned", None, &json!({"assignee_id": assignee.get(), "previous_assignee_id": null, "team_id": null, "automatic": true}).to_string())?;
    let line = messages::insert(
        conn,
        messages::NewMessage {
            org_id: org,
            conversation_id: conversation.id,
            direction: Direction::Internal,
            kind: MessageKind::Activity,
            body: &format!("Assigned automatically to {name}"),
            author_type: AuthorType::System,
            author_id: None,
            delivery_status: None,
            external_id: None,
            canned_response_id: None,
        },
    )?;
    outbox.message(
        org,
        inbox.id,
        EventType::MessageCreated,
        &present::message(line),
    )?;
    let neutral = present::one(conn, org, None, updated)?;
    #[derive(serde::Serialize)]
    struct Assigned<'a> {
        conversation: &'a wire::Conversation,
        assignee_id: Option<i64>,
        previous_assignee_id: Option<i64>,
        by_user_id: Option<i64>,
    }
    let data = Assigned {
        conversation: &neutral,
        assignee_id: Some(assignee.get()),
        previous_assignee_id: None,
        by_user_id: None,
    };
    outbox.append(
        org,
        EventType::ConversationAssigned,
        Some(inbox.id),
        Some(conversation.id),
        &data,
    )?;
    Ok(())
}
