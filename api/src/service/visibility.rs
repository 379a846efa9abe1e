//! Who sees which conversation: the caller's scope for the list, and the single-item check,
//! both from the domain's visibility rules.

use domain::conversation::{self, Conversation, InboxScope};
use domain::{Actor, ConversationId, Inbox, Role, TeamId};
use persistence::DbConnection;
use persistence::repo::conversation_list::Scope;
use persistence::repo::{conversations, inboxes, teams};

use crate::error::ApiError;

/// The caller's view over every inbox of the organization (three queries).
pub fn scope(conn: &mut DbConnection, actor: &Actor) -> Result<Scope, ApiError> {
    let all = if actor.role == Role::Admin {
        inboxes::list_all(conn, actor.org_id)?
    } else {
        inboxes::list_for_user(conn, actor.org_id, actor.user_id)?
    };
    let memberships = inboxes::memberships_of(conn, actor.user_id)?;
    let team_ids = teams::of_user(conn, actor.user_id)?;
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
pub struct Visible {
    pub conversation: Conversation,
    pub inbox: Inbox,
    pub is_member: bool,
    pub teams: Vec<TeamId>,
}

/// The conversation if the caller may see it; 404 otherwise, whether it exists or not.
pub fn visible(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
) -> Result<Visible, ApiError> {
    let conversation =
        conversations::get(conn, actor.org_id, id)?.ok_or_else(ApiError::not_found)?;
    let inbox =
        inboxes::get(conn, actor.org_id, conversation.inbox_id)?.ok_or_else(ApiError::not_found)?;
    let is_member = inboxes::is_member(conn, inbox.id, actor.user_id)?;
    let teams = teams::of_user(conn, actor.user_id)?;
    if !conversation::may_see(actor, &inbox, is_member, &teams, &conversation) {
        return Err(ApiError::not_found());
    }
    Ok(Visible {
        conversation,
        inbox,
        is_member,
        teams,
    })
}
