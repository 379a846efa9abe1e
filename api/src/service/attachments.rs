//! Uploads, the rules for attaching them, and who may read them.

use domain::attachments::{self as rules, Family};
use domain::conversation::reaches_customer;
use domain::{Actor, ChannelType, DomainError, MessageId, OrgId, UserId};
use openapi as wire;
use persistence::DbConnection;
use persistence::repo::attachments::{self, Attachment, NewAttachment};
use persistence::repo::{chats, messages};

use super::visibility::visible;
use crate::error::ApiError;

pub fn present(item: &Attachment) -> wire::Attachment {
    wire::Attachment {
        id: item.id,
        content_type: item.content_type.clone(),
        size: item.size,
        filename: item.filename.clone(),
    }
}

/// Checks a file (what its bytes are against what the client declared) before it is stored.
pub fn check_upload(bytes: &[u8], declared: Option<&str>) -> Result<rules::Sniffed, ApiError> {
    let sniffed = rules::sniff(bytes).ok_or(DomainError::UnsupportedAttachment)?;
    if !rules::declared_fits(declared, &sniffed) {
        return Err(DomainError::UnsupportedAttachment.into());
    }
    Ok(sniffed)
}

/// A checked file whose bytes are on disk, not yet recorded.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub sniffed: rules::Sniffed,
    pub size: usize,
    pub filename: String,
    pub key: String,
}

/// Records a stored file: an agent's upload, or (with `message`) a customer's file.
pub fn record(
    conn: &mut DbConnection,
    org: OrgId,
    uploader: Option<UserId>,
    message: Option<MessageId>,
    file: &StoredFile,
) -> Result<Attachment, ApiError> {
    Ok(attachments::insert(
        conn,
        NewAttachment {
            org_id: org,
            uploader_id: uploader,
            message_id: message,
            content_type: file.sniffed.content_type,
            size: i64::try_from(file.size).unwrap_or(i64::MAX),
            filename: &rules::clean_filename(&file.filename),
            storage_key: &file.key,
        },
    )?)
}

/// The caller's own, not yet attached uploads, checked against the channel (notes carry
/// anything: they never leave).
pub fn claim(
    conn: &mut DbConnection,
    actor: &Actor,
    ids: &[i64],
    channel: Option<ChannelType>,
) -> Result<Vec<Attachment>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if ids.len() > domain::validate::limits::ATTACHMENTS {
        return Err(
            DomainError::invalid("attachment_ids", "at most 10 attachments per message").into(),
        );
    }
    let mut seen = std::collections::HashSet::new();
    if !ids.iter().all(|id| seen.insert(*id)) {
        return Err(DomainError::invalid("attachment_ids", "lists an attachment twice").into());
    }
    let found = attachments::get_many(conn, actor.org_id, ids)?;
    for id in ids {
        let usable = found
            .iter()
            .find(|item| item.id == *id)
            .filter(|item| item.uploader_id == Some(actor.user_id) && !item.is_attached());
        let Some(item) = usable else {
            return Err(DomainError::invalid(
                "attachment_ids",
                &format!("no unattached upload {id} of yours"),
            )
            .into());
        };
        if let Some(channel) = channel {
            let family = rules::family_of(&item.content_type).unwrap_or(Family::Pdf);
            rules::may_attach(channel, family, item.size)?;
        }
    }
    Ok(found)
}

/// The attachment if the caller may read it: anyone who may see the conversation it was
/// sent in, the members of the chat it was sent in, or, before it is sent, its uploader.
pub fn readable(conn: &mut DbConnection, actor: &Actor, id: i64) -> Result<Attachment, ApiError> {
    let item = attachments::get(conn, actor.org_id, id)?.ok_or_else(ApiError::not_found)?;
    match (item.message_id, item.chat_message_id) {
        (Some(message), _) => {
            let message =
                messages::get(conn, actor.org_id, message)?.ok_or_else(ApiError::not_found)?;
            visible(conn, actor, message.conversation_id)?;
        }
        (None, Some(message)) => {
            let message =
                chats::get_message(conn, actor.org_id, message)?.ok_or_else(ApiError::not_found)?;
            super::chats::membership(conn, actor, message.chat_id)?;
        }
        (None, None) if item.uploader_id == Some(actor.user_id) => {}
        (None, None) => return Err(ApiError::not_found()),
    }
    Ok(item)
}

/// The attachment behind a signed link (the caller checked the signature): only a file that
/// left with an outbound message is served this way. Notes' files, customers' files and
/// uploads not sent yet never are, whatever link is presented.
pub fn linked(conn: &mut DbConnection, id: i64) -> Result<Attachment, ApiError> {
    let item = attachments::get_linked(conn, id)?.ok_or_else(ApiError::not_found)?;
    let message = match item.message_id {
        Some(message) => messages::get(conn, item.org_id, message)?,
        None => None,
    };
    match message {
        Some(message) if reaches_customer(message.direction, message.kind) => Ok(item),
        _ => Err(ApiError::not_found()),
    }
}
