//! Who sees which conversation: the caller's scope for the list, and the single-item check,
//! both from the domain's visibility rules.

use domain::conversation::{self, Conversation, InboxScope};
use domain::{Actor, ConversationId, Inbox, Role, TeamId};
use persistence::DbConnection;
use persistence::repo::conversation_list::Scope;
use persistence::repo::conversations::Locked;
use persistence::repo::{conversations, inboxes, teams};

use crate::error::ApiError;

/// The caller's view over every inbox of the organization (three queries).
pub fn scope(conn: &mut DbConnection, actor: &Actor) -> Result<Scope, ApiError> {
    let all = if actor.role == Role::Admin {
        inboxes::list_all(conn, actor.org_id)?
    } else {
        inboxes::list_for_user(conn, actor.org_id, actor.user_id)?
    };
    let memberships = inboxes::memberships_of(conn, actor.org_id, actor.user_id)?;
    let team_ids = teams::of_user(conn, actor.org_id, actor.user_id)?;
    let mut scope = Scope {
        user: actor.user_id,
        full: Vec::new(),
        partial: Vec::new(),
        teams: team_ids,
    };
    for inbox in &all {
        let is_member = memberships.iter().any(|member| member.inbox_id == inbox.id);
        match conversation::inbox_scope(actor, inbox, is_member) {
            InboxScope::Everything => scope.full.push(inbox.id),
            InboxScope::AssignedAndUnassigned => scope.partial.push(inbox.id),
            InboxScope::Nothing => {}
        }
    }
    Ok(scope)
}

/// A conversation the caller may see, with its inbox and the caller's membership of it.
/// `C` is the conversation as read ([`Conversation`]) or locked for a change ([`Locked`]).
pub struct Visible<C = Conversation> {
    pub conversation: C,
    pub inbox: Inbox,
    pub is_member: bool,
    pub teams: Vec<TeamId>,
}

/// The caller's view of a conversation: its inbox, their membership and teams.
fn view<C: AsRef<Conversation>>(
    conn: &mut DbConnection,
    actor: &Actor,
    conversation: C,
) -> Result<Visible<C>, ApiError> {
    let inbox = inboxes::get(conn, actor.org_id, conversation.as_ref().inbox_id)?
        .ok_or_else(ApiError::not_found)?;
    let is_member = inboxes::is_member(conn, &inbox, actor.user_id)?;
    let teams = teams::of_user(conn, actor.org_id, actor.user_id)?;
    Ok(Visible {
        conversation,
        inbox,
        is_member,
        teams,
    })
}

impl<C: AsRef<Conversation>> Visible<C> {
    fn seen_by(&self, actor: &Actor) -> bool {
        conversation::may_see(
            actor,
            &self.inbox,
            self.is_member,
            &self.teams,
            self.conversation.as_ref(),
        )
    }
}

/// The conversation if the caller may see it; 404 otherwise, whether it exists or not.
pub fn visible(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
) -> Result<Visible, ApiError> {
    let conversation =
        conversations::get(conn, actor.org_id, id)?.ok_or_else(ApiError::not_found)?;
    let found = view(conn, actor, conversation)?;
    if !found.seen_by(actor) {
        return Err(ApiError::not_found());
    }
    Ok(found)
}

/// The one way into a change of a conversation: locks its row for the rest of the
/// transaction, then checks that the caller may see it as it is now (404 otherwise). Every
/// write path starts here, so each change is decided against the conversation at commit.
pub fn lock(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
) -> Result<Visible<Locked>, ApiError> {
    lock_or(conn, actor, id, |_| ApiError::not_found())
}

/// Like [`lock`], with the answer to give when the caller cannot see the conversation now
/// (a claim that lost its race answers 409 rather than 404).
pub fn lock_or(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
    hidden: impl FnOnce(&Visible<Locked>) -> ApiError,
) -> Result<Visible<Locked>, ApiError> {
    let locked = conversations::lock(conn, actor.org_id, id)?.ok_or_else(ApiError::not_found)?;
    let found = view(conn, actor, locked)?;
    if !found.seen_by(actor) {
        return Err(hidden(&found));
    }
    Ok(found)
}
