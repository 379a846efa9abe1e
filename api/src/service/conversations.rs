//! The conversation use cases: assign, close, move, tag, link a contact, read state, pins.
//! Each runs inside the caller's transaction and appends its events to the outbox.

use domain::EventType;
use domain::conversation::{self as rules, Conversation, Direction, MessageKind, Target};
use domain::{Actor, ContactId, ConversationId, DomainError, InboxId, TeamId, User, UserId};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::{
    activity, contacts, conversation_state, conversations, inboxes, messages, tags, teams, users,
};
use serde_json::json;

use super::events::Outbox;
use super::present;
use super::visibility::{self, Visible};
use crate::error::ApiError;

fn name_of(user: Option<&User>) -> String {
    user.map_or_else(|| "someone".to_string(), |user| user.name.clone())
}

/// Records what happened twice: in the audit trail, and as an activity line in the thread.
fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    item: &Conversation,
    action: &str,
    data: serde_json::Value,
    line: &str,
    outbox: &mut Outbox,
) -> Result<(), ApiError> {
    activity::record(
        conn,
        actor.org_id,
        item.id,
        action,
        Some(actor.user_id),
        &data.to_string(),
    )?;
    let message = messages::insert(
        conn,
        messages::NewMessage {
            org_id: actor.org_id,
            conversation_id: item.id,
            direction: Direction::Internal,
            kind: MessageKind::Activity,
            body: line,
            author_type: rules::AuthorType::System,
            author_id: Some(actor.user_id.get()),
            delivery_status: None,
            external_id: None,
            canned_response_id: None,
        },
    )?;
    outbox.message(
        actor.org_id,
        item.inbox_id,
        EventType::MessageCreated,
        &present::message(message),
    )
}

/// The caller's view of the conversation after a change, and the neutral one for events.
fn views(
    conn: &mut DbConnection,
    actor: &Actor,
    item: Conversation,
) -> Result<(wire::Conversation, wire::Conversation), ApiError> {
    let neutral = present::one(conn, actor.org_id, None, item.clone())?;
    let mine = present::one(conn, actor.org_id, Some(actor.user_id), item)?;
    Ok((mine, neutral))
}

pub fn assign(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
    assignee: Option<UserId>,
    team: Option<TeamId>,
    outbox: &mut Outbox,
) -> Result<wire::Conversation, ApiError> {
    let Visible {
        conversation: mut locked,
        inbox,
        ..
    } = visibility::lock_or(conn, actor, id, |found| {
        if rules::lost_claim(actor, &found.inbox, found.conversation.current(), assignee) {
            DomainError::ConversationChanged.into()
        } else {
            ApiError::not_found()
        }
    })?;
    let conversation = locked.current();
    let team_found = match team {
        Some(team) => Some(
            teams::get(conn, actor.org_id, team)?
                .ok_or_else(|| DomainError::invalid("team_id", "no such team"))?,
        ),
        None => None,
    };
    let target_user = match assignee {
        Some(user) => Some(
            users::get(conn, actor.org_id, user)?
                .filter(|user| user.active)
                .ok_or(DomainError::AssigneeNotMember)?,
        ),
        None => None,
    };
    let target = match &target_user {
        Some(user) => Some(Target {
            user_id: user.id,
            is_inbox_member: inboxes::is_member(conn, &inbox, user.id)?,
            in_team: team_found
                .as_ref()
                .is_none_or(|team| team.member_ids.contains(&user.id)),
        }),
        None => None,
    };
    rules::may_assign(actor, &inbox, conversation, target)?;
    let previous = conversation.assignee_id;
    let updated = conversations::set_assignment(conn, &mut locked, assignee, team)?;
    let by = users::get(conn, actor.org_id, actor.user_id)?;
    let line = match &target_user {
        Some(user) if user.id == actor.user_id => {
            format!("{} took this conversation", name_of(by.as_ref()))
        }
        Some(user) => format!(
            "{} assigned this conversation to {}",
            name_of(by.as_ref()),
            user.name
        ),
        None => format!("{} unassigned this conversation", name_of(by.as_ref())),
    };
    let data = json!({"assignee_id": assignee.map(UserId::get), "previous_assignee_id": previous.map(UserId::get), "team_id": team.map(TeamId::get)});
    record(conn, actor, &updated, "assigned", data, &line, outbox)?;
    let (mine, neutral) = views(conn, actor, updated)?;
    #[derive(serde::Serialize)]
    struct Assigned<'a> {
        conversation: &'a wire::Conversation,
        assignee_id: Option<i64>,
        previous_assignee_id: Option<i64>,
        by_user_id: i64,
    }
    let data = Assigned {
        conversation: &neutral,
        assignee_id: assignee.map(UserId::get),
        previous_assignee_id: previous.map(UserId::get),
        by_user_id: actor.user_id.get(),
    };
    outbox.append(
        actor.org_id,
        EventType::ConversationAssigned,
        Some(neutral_inbox(&neutral)),
        Some(id),
        &data,
    )?;
    Ok(mine)
}

fn neutral_inbox(item: &wire::Conversation) -> InboxId {
    InboxId(item.inbox_id)
}

pub fn close(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
    spam: bool,
    outbox: &mut Outbox,
) -> Result<wire::Conversation, ApiError> {
    let Visible {
        conversation: mut locked,
        ..
    } = visibility::lock(conn, actor, id)?;
    rules::ensure_open(locked.current())?;
    let updated = conversations::close(conn, &mut locked, Some(actor.user_id), spam)?;
    let by = users::get(conn, actor.org_id, actor.user_id)?;
    let line = if spam {
        format!("{} closed this conversation as spam", name_of(by.as_ref()))
    } else {
        format!("{} closed this conversation", name_of(by.as_ref()))
    };
    record(
        conn,
        actor,
        &updated,
        "closed",
        json!({"spam": spam}),
        &line,
        outbox,
    )?;
    let (mine, neutral) = views(conn, actor, updated)?;
    outbox.conversation(EventType::ConversationClosed, &neutral)?;
    Ok(mine)
}

pub fn move_to(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
    target: InboxId,
    outbox: &mut Outbox,
) -> Result<wire::Conversation, ApiError> {
    let Visible {
        conversation: mut locked,
        inbox: source,
        is_member,
        ..
    } = visibility::lock(conn, actor, id)?;
    let conversation = locked.current();
    let destination = inboxes::get(conn, actor.org_id, target)?.ok_or_else(ApiError::not_found)?;
    let member_of_target = inboxes::is_member(conn, &destination, actor.user_id)?;
    let assignee_member = match conversation.assignee_id {
        Some(assignee) => inboxes::is_member(conn, &destination, assignee)?,
        None => true,
    };
    let outcome = rules::may_move(
        conversation,
        &source,
        &destination,
        is_member,
        member_of_target,
        assignee_member,
    )?;
    let updated = conversations::move_to(conn, &mut locked, target, outcome.clear_assignee)?;
    let by = users::get(conn, actor.org_id, actor.user_id)?;
    let line = format!(
        "{} moved this conversation from {} to {}",
        name_of(by.as_ref()),
        source.name,
        destination.name
    );
    let data = json!({"from_inbox_id": source.id.get(), "to_inbox_id": target.get(), "assignee_cleared": outcome.clear_assignee});
    record(conn, actor, &updated, "moved", data, &line, outbox)?;
    let (mine, neutral) = views(conn, actor, updated)?;
    #[derive(serde::Serialize)]
    struct Moved<'a> {
        conversation: &'a wire::Conversation,
        from_inbox_id: i64,
    }
    let data = Moved {
        conversation: &neutral,
        from_inbox_id: source.id.get(),
    };
    outbox.append(
        actor.org_id,
        EventType::ConversationMoved,
        Some(target),
        Some(id),
        &data,
    )?;
    Ok(mine)
}

pub fn set_tag(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
    name: &str,
    present_tag: bool,
    outbox: &mut Outbox,
) -> Result<wire::Conversation, ApiError> {
    let Visible {
        conversation: locked,
        ..
    } = visibility::lock(conn, actor, id)?;
    rules::ensure_open(locked.current())?;
    let tag = tags::hold_by_name(conn, actor.org_id, name)?.ok_or_else(ApiError::not_found)?;
    let changed = if present_tag {
        conversation_state::add_tag(conn, &locked, tag.id)?
    } else {
        conversation_state::remove_tag(conn, &locked, tag.id)?
    };
    if changed {
        let action = if present_tag { "tagged" } else { "untagged" };
        activity::record(
            conn,
            actor.org_id,
            id,
            action,
            Some(actor.user_id),
            &json!({"tag": tag.name}).to_string(),
        )?;
    }
    let (mine, neutral) = views(conn, actor, locked.current().clone())?;
    if changed {
        outbox.conversation(EventType::ConversationUpdated, &neutral)?;
    }
    Ok(mine)
}

pub fn link_contact(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
    contact: ContactId,
    outbox: &mut Outbox,
) -> Result<wire::Conversation, ApiError> {
    let Visible {
        conversation: mut locked,
        ..
    } = visibility::lock(conn, actor, id)?;
    contacts::get(conn, actor.org_id, contact)?
        .ok_or_else(|| DomainError::invalid("contact_id", "no such contact"))?;
    let updated = conversations::set_contact(conn, &mut locked, contact)?;
    activity::record(
        conn,
        actor.org_id,
        id,
        "contact_linked",
        Some(actor.user_id),
        &json!({"contact_id": contact.get()}).to_string(),
    )?;
    let (mine, neutral) = views(conn, actor, updated)?;
    outbox.conversation(EventType::ConversationUpdated, &neutral)?;
    Ok(mine)
}

pub fn set_read(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
    read: bool,
) -> Result<(), ApiError> {
    let Visible {
        conversation: locked,
        ..
    } = visibility::lock(conn, actor, id)?;
    if read {
        conversation_state::mark_read(conn, actor.user_id, &locked)?;
    } else {
        conversation_state::mark_unread(conn, actor.user_id, &locked)?;
    }
    Ok(())
}

pub fn pin(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
    position: Option<i32>,
) -> Result<wire::Conversation, ApiError> {
    let Visible {
        conversation: locked,
        ..
    } = visibility::lock(conn, actor, id)?;
    // The limit is the user's, across conversations: their pins change one at a time.
    users::lock(conn, actor.org_id, actor.user_id)?;
    let already = conversation_state::pins_among(conn, actor.user_id, &[id])?.contains_key(&id);
    if !already
        && conversation_state::pin_count(conn, actor.user_id)? >= conversation_state::MAX_PINS
    {
        return Err(DomainError::invalid(
            "position",
            "you have pinned the most conversations you can; unpin one first",
        )
        .into());
    }
    conversation_state::pin(conn, actor.user_id, &locked, position)?;
    present::one(
        conn,
        actor.org_id,
        Some(actor.user_id),
        locked.current().clone(),
    )
}

pub fn unpin(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
) -> Result<wire::Conversation, ApiError> {
    let Visible {
        conversation: locked,
        ..
    } = visibility::lock(conn, actor, id)?;
    conversation_state::unpin(conn, actor.user_id, &locked)?;
    present::one(
        conn,
        actor.org_id,
        Some(actor.user_id),
        locked.current().clone(),
    )
}
