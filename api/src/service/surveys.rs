//! Satisfaction surveys: sent into the conversation like a message, answered by the
//! customer through a public link that carries the survey's token.

use domain::conversation::{self as conversation_rules, AuthorType, Direction, MessageKind};
use domain::surveys::{self as rules, SummaryScope};
use domain::{Actor, ConversationId, EventType, InboxId, policy};
use openapi as wire;
use openapi::ErrorCode;
use persistence::DbConnection;
use persistence::repo::{channels, contacts, conversations, inboxes, messages, surveys};

use super::events::Outbox;
use super::messaging::{Draft, Thread, write_outgoing};
use super::present;
use super::visibility::{self, Visible};
use crate::auth::random_token;
use crate::error::ApiError;

pub const QUESTION: &str = "How did we do? Rate this conversation from 1 (bad) to 5 (great)";

pub fn send(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ConversationId,
    public_base: &str,
    outbox: &mut Outbox,
) -> Result<wire::Message, ApiError> {
    let Visible {
        conversation: mut locked,
        ..
    } = visibility::lock(conn, actor, id)?;
    let conversation = locked.current();
    conversation_rules::ensure_open(conversation)?;
    let channel = channels::get(conn, actor.org_id, conversation.channel_id)?
        .ok_or_else(ApiError::not_found)?;
    let contact = contacts::get(conn, actor.org_id, conversation.contact_id)?
        .ok_or_else(ApiError::not_found)?;
    let token = random_token(24);
    let body = format!("{QUESTION}: {public_base}/v1/public/surveys/{token}");
    let thread = Thread {
        conversation: &mut locked,
        channel: &channel,
        contact: &contact,
    };
    let draft = Draft {
        kind: MessageKind::Survey,
        body: &body,
        canned_response_id: None,
        attachments: &[],
    };
    let mut message = write_outgoing(conn, actor, thread, draft, outbox)?;
    surveys::insert(
        conn,
        &token,
        actor.org_id,
        locked.id(),
        domain::MessageId(message.id),
    )?;
    message.survey_token = Some(token);
    Ok(message)
}

pub fn show(conn: &mut DbConnection, token: &str) -> Result<wire::PublicSurvey, ApiError> {
    let survey = surveys::get(conn, token)?.ok_or_else(ApiError::not_found)?;
    Ok(wire::PublicSurvey {
        question: QUESTION.to_string(),
        answered: survey.answered_at.is_some(),
        rating: survey.rating,
        comment: survey.comment,
    })
}

fn already_answered() -> ApiError {
    ApiError::Conflict {
        code: ErrorCode::Duplicate,
        detail: "this survey was already answered".into(),
    }
}

/// The customer's answer: recorded once, and shown in the conversation as an inbound
/// message of kind `survey` by the contact, announced like any customer message.
///
/// Surveys usually go out at or after a close, so a closed conversation takes the answer
/// too, and stays closed: the answer is feedback on the finished conversation, not the
/// customer asking for help again (that starts a new conversation, as any message after a
/// close does). It still becomes the conversation's last message, so the list shows it and
/// the people who see the conversation find it unread.
pub fn answer(
    conn: &mut DbConnection,
    token: &str,
    answer: &wire::SurveyAnswer,
    outbox: &mut Outbox,
) -> Result<wire::PublicSurvey, ApiError> {
    let checked = rules::answer(answer.rating, answer.comment.as_deref())?;
    let survey = surveys::get(conn, token)?.ok_or_else(ApiError::not_found)?;
    // Answers to the conversation's surveys, like every change to it, take turns on its row;
    // the assignee read here is the one at the moment of the answer.
    let mut locked = conversations::lock(conn, survey.org_id, survey.conversation_id)?
        .ok_or_else(ApiError::not_found)?;
    if survey.answered_at.is_some() {
        return Err(already_answered());
    }
    let conversation = locked.current().clone();
    let body = rules::answer_body(&checked);
    let message = messages::insert(
        conn,
        messages::NewMessage {
            org_id: survey.org_id,
            conversation_id: conversation.id,
            direction: Direction::Inbound,
            kind: MessageKind::Survey,
            body: &body,
            author_type: AuthorType::Contact,
            author_id: Some(conversation.contact_id.get()),
            delivery_status: None,
            external_id: None,
            canned_response_id: None,
        },
    )?;
    let earned = surveys::Earned {
        inbox: conversation.inbox_id,
        agent: conversation.assignee_id,
        at: message.created_at,
    };
    if !surveys::answer(
        conn,
        token,
        checked.rating,
        checked.comment.as_deref(),
        earned,
    )? {
        // Answered by a request that was a moment faster (the row said otherwise when it was
        // read): the message written above rolls back with the rest.
        return Err(already_answered());
    }
    let updated = conversations::note_message(
        conn,
        &mut locked,
        message.id,
        message.created_at,
        &conversation_rules::preview(&body),
    )?;
    let presented = present::full_message(conn, message)?;
    outbox.message(
        survey.org_id,
        updated.inbox_id,
        EventType::MessageCreated,
        &presented,
    )?;
    let neutral = present::one(conn, survey.org_id, None, updated)?;
    outbox.conversation(EventType::ConversationUpdated, &neutral)?;
    Ok(wire::PublicSurvey {
        question: QUESTION.to_string(),
        answered: true,
        rating: Some(checked.rating),
        comment: checked.comment,
    })
}

/// Answers and mean ratings per inbox and per agent over a period, for a supervisor: an
/// admin over the organization, a manager over the inboxes they belong to.
pub fn summary(
    conn: &mut DbConnection,
    actor: &Actor,
    query: &wire::SurveySummaryQuery,
) -> Result<wire::SurveySummary, ApiError> {
    let scope = rules::summary_scope(actor)?;
    let period = rules::period(query.from, query.to)?;
    let inboxes: Option<Vec<InboxId>> = match (query.inbox_id, scope) {
        (Some(id), _) => {
            // An inbox the reader may not see does not exist for them; a manager reads the
            // results of the inboxes they belong to only.
            let inbox =
                inboxes::get(conn, actor.org_id, InboxId(id))?.ok_or_else(ApiError::not_found)?;
            let is_member = inboxes::is_member(conn, &inbox, actor.user_id)?;
            policy::may_see_inbox(actor, &inbox, is_member)?;
            if scope == SummaryScope::MemberInboxes && !is_member {
                return Err(ApiError::not_found());
            }
            Some(vec![inbox.id])
        }
        (None, SummaryScope::Organization) => None,
        (None, SummaryScope::MemberInboxes) => Some(
            inboxes::memberships_of(conn, actor.org_id, actor.user_id)?
                .into_iter()
                .map(|membership| membership.inbox_id)
                .collect(),
        ),
    };
    let filter = surveys::SummaryFilter {
        org: actor.org_id,
        from: period.from,
        to: period.to,
        inboxes: inboxes.as_deref(),
    };
    let surveys::Summary {
        per_inbox,
        per_agent,
    } = surveys::summary(conn, &filter)?;
    let mean = |sum, count| rules::mean(sum, count).unwrap_or_default();
    Ok(wire::SurveySummary {
        inboxes: per_inbox
            .into_iter()
            .map(|tally| wire::InboxSurveyResult {
                inbox_id: tally.key.get(),
                answered: tally.answered,
                mean_rating: mean(tally.rating_sum, tally.answered),
            })
            .collect(),
        agents: per_agent
            .into_iter()
            .map(|tally| wire::AgentSurveyResult {
                user_id: tally.key.get(),
                answered: tally.answered,
                mean_rating: mean(tally.rating_sum, tally.answered),
            })
            .collect(),
    })
}
