//! The channel provider's calls: inbound messages and delivery reports, authenticated by an
//! HMAC-SHA256 signature of the raw body with the channel's inbound secret.

use crate::service::attachments::StoredFile;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, post, web};
use base64::Engine;
use domain::{Channel, ChannelId};
use hmac::{Hmac, Mac};
use openapi::ErrorCode;
use openapi::{InboundMessage, InboundResult, Message, Problem, StatusCallback};
use persistence::repo::channels;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::db;
use crate::error::ApiError;
use crate::service::events::{self, Outbox};
use crate::service::messaging;
use crate::state::AppState;
use crate::storage::Storage;

pub const SIGNATURE_HEADER: &str = "X-Switchboard-Signature";

/// How often an inbound message is retried after losing a race to a concurrent one.
const INBOUND_ATTEMPTS: usize = 4;

/// `sha256=<hex>` of the body under `secret`: what providers send and what we send them.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks the signature in constant time.
fn verify(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_digest) = header.and_then(|value| value.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&digest).is_ok()
}

/// The channel whose secret signed this request, and the parsed body.
async fn authenticate<T: DeserializeOwned>(
    state: &AppState,
    request: &HttpRequest,
    id: i64,
    body: &Bytes,
) -> Result<(Channel, T), ApiError> {
    let found = db::read(&state.store, move |conn| {
        Ok(channels::get_with_secret(conn, ChannelId(id))?)
    })
    .await?;
    let header = request
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    let (channel, secret) = match found {
        Some(found) => found,
        None => return Err(ApiError::Unauthenticated("the signature does not match")),
    };
    if !verify(&secret, body, header) {
        return Err(ApiError::Unauthenticated("the signature does not match"));
    }
    Ok((channel, crate::body::parse_object(body)?))
}

/// Decodes, checks and stores the files inlined in an inbound message (unless it is a
/// replay). A file of a type we do not keep is left out, not the message.
async fn store_inbound_files(
    state: &AppState,
    channel: &Channel,
    inbound: &InboundMessage,
) -> Result<Vec<StoredFile>, ApiError> {
    if inbound.attachments.is_empty() {
        return Ok(Vec::new());
    }
    let (id, external_id) = (channel.id, inbound.external_id.clone());
    let seen = db::read(&state.store, move |conn| {
        Ok(persistence::repo::receipts::find_inbound(
            conn,
            id,
            &external_id,
        )?)
    })
    .await?;
    if seen.is_some() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for attachment in &inbound.attachments {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(attachment.data_base64.trim())
            .map_err(|_| {
                domain::DomainError::invalid("attachments", "data_base64 is not base64")
            })?;
        if bytes.len() > state.config.max_upload {
            return Err(ApiError::PayloadTooLarge);
        }
        let Ok(sniffed) =
            crate::service::attachments::check_upload(&bytes, Some(&attachment.content_type))
        else {
            tracing::warn!(
                channel = channel.id.get(),
                "dropping an inbound attachment of an unsupported type"
            );
            continue;
        };
        let (key, size) = (Storage::new_key(channel.org_id), bytes.len());
        if let Err(error) = state.storage.put(&key, bytes.into()).await {
            state
                .storage
                .remove_all(files.into_iter().map(|file: StoredFile| file.key))
                .await;
            return Err(error);
        }
        files.push(StoredFile {
            sniffed,
            size,
            filename: attachment.filename.clone(),
            key,
        });
    }
    Ok(files)
}

/// A customer's message. Idempotent on `external_id`: a replay returns the same ids.
#[utoipa::path(
    tag = "channels",
    operation_id = "receive_inbound_message",
    security(("channel_signature" = [])),
    params(
        ("id" = i64, Path, description = "Channel id"),
        ("X-Switchboard-Signature" = String, Header, description = "`sha256=<hex HMAC-SHA256 of the raw body with the channel's inbound_secret>`"),
    ),
    request_body = InboundMessage,
    responses(
        (status = 200, body = InboundResult),
        (status = 400, body = Problem),
        (status = 401, description = "Bad or missing signature", body = Problem),
        (status = 422, body = Problem),
    )
)]
#[post("/v1/channels/{id}/inbound")]
pub async fn receive_inbound_message(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<i64>,
    body: Bytes,
) -> Result<web::Json<InboundResult>, ApiError> {
    let (channel, mut inbound): (Channel, InboundMessage) =
        authenticate(&state, &request, path.into_inner(), &body).await?;
    // The provider's id as it is stored, so a replay padded with spaces finds the original.
    inbound.external_id = inbound.external_id.trim().to_string();
    let files = store_inbound_files(&state, &channel, &inbound).await?;
    let outcome = record_inbound(&state, &channel, &inbound, &files).await;
    if !matches!(outcome, Ok((_, true))) {
        // Refused, or a replay that another request recorded: the files stored for this
        // one are nobody's.
        let keys = files.into_iter().map(|file| file.key);
        state.storage.remove_all(keys).await;
    }
    outcome.map(|(result, _)| web::Json(result))
}

/// Records an inbound message with its stored files, retrying when a concurrent message of
/// the same customer conflicted. `true` when this request recorded it (and its files).
async fn record_inbound(
    state: &AppState,
    channel: &Channel,
    inbound: &InboundMessage,
    files: &[StoredFile],
) -> Result<(InboundResult, bool), ApiError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let attempt = {
            let (channel, inbound, files) = (channel.clone(), inbound.clone(), files.to_vec());
            db::write(&state.store, move |conn| {
                let mut outbox = Outbox::new();
                let result = messaging::receive(conn, &channel, &inbound, &files, &mut outbox)?;
                Ok((result, outbox.flush(conn)?))
            })
            .await
        };
        match attempt {
            Ok((result, logged)) => {
                logged.publish(state);
                return Ok(result);
            }
            Err(ApiError::Conflict { .. }) => {
                // A concurrent replay of the same message committed first: answer with its ids.
                let external_id = inbound.external_id.clone();
                let id = channel.id;
                let replayed = db::read(&state.store, move |conn| {
                    Ok(persistence::repo::receipts::find_inbound(
                        conn,
                        id,
                        &external_id,
                    )?)
                })
                .await?;
                if let Some((conversation, message)) = replayed {
                    let ids = InboundResult {
                        conversation_id: conversation.get(),
                        message_id: message.get(),
                    };
                    return Ok((ids, false));
                }
                // Another message from the same customer created their contact or their open
                // conversation first (several texts at once, e.g. a long one split by the
                // carrier): run again, it finds them now instead of losing this message.
                if attempts >= INBOUND_ATTEMPTS {
                    return Err(ApiError::Conflict {
                        code: ErrorCode::Duplicate,
                        detail: "a concurrent request conflicted; retry".into(),
                    });
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// A delivery report for an outbound message.
#[utoipa::path(
    tag = "channels",
    operation_id = "receive_delivery_status",
    security(("channel_signature" = [])),
    params(
        ("id" = i64, Path, description = "Channel id"),
        ("X-Switchboard-Signature" = String, Header, description = "As for inbound messages"),
    ),
    request_body = StatusCallback,
    responses((status = 200, body = Message), (status = 401, body = Problem), (status = 404, description = "No such outbound message on this channel", body = Problem))
)]
#[post("/v1/channels/{id}/status")]
pub async fn receive_delivery_status(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<i64>,
    body: Bytes,
) -> Result<web::Json<Message>, ApiError> {
    let (channel, report): (Channel, StatusCallback) =
        authenticate(&state, &request, path.into_inner(), &body).await?;
    let message = events::write(&state, move |conn, outbox| {
        messaging::delivery_report(conn, &channel, &report, outbox)
    })
    .await?;
    Ok(web::Json(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let body = br#"{"external_id":"m1","from":"+14155552671","body":"hi"}"#;
        let header = signature("s3cret", body);
        assert!(verify("s3cret", body, Some(&header)));
        assert!(!verify("other", body, Some(&header)));
        assert!(!verify("s3cret", b"{}", Some(&header)));
        assert!(!verify("s3cret", body, Some("sha256=zz")));
        assert!(!verify("s3cret", body, None));
    }
}
