//! Satisfaction surveys: sent into the conversation like a message, answered by the
//! customer through a public link that carries the survey's token.

use domain::conversation::{self as rules, MessageKind};
use domain::{Actor, ConversationId, DomainError, validate};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::{channels, contacts, surveys};

use super::events::Outbox;
use super::messaging::{Draft, Thread, write_outgoing};
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
    rules::ensure_open(conversation)?;
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
        attachment_ids: &[],
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

pub fn answer(
    conn: &mut DbConnection,
    token: &str,
    answer: &wire::SurveyAnswer,
) -> Result<wire::PublicSurvey, ApiError> {
    if !(1..=5).contains(&answer.rating) {
        return Err(DomainError::invalid("rating", "must be between 1 and 5").into());
    }
    let comment = match answer.comment.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(validate::optional_text("comment", text, 2000)?),
    };
    surveys::get(conn, token)?.ok_or_else(ApiError::not_found)?;
    if !surveys::answer(conn, token, answer.rating, comment.as_deref())? {
        return Err(ApiError::Conflict {
            code: "duplicate",
            detail: "this survey was already answered".into(),
        });
    }
    show(conn, token)
}
