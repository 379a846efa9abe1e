//! The generic signed webhook: Switchboard's own JSON both ways, for a bridge the team
//! hosts in front of any provider. Calls to us and deliveries from us carry
//! `X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the raw body with the channel's
//! inbound_secret>`.

use base64::Engine;
use domain::conversation::DeliveryStatus;
use domain::{Channel, ChannelProvider, FieldError};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use openapi as wire;
use serde_json::Value;
use sha2::Sha256;

use super::{Call, Fetched, Inbound, Media, Opened, Outcome, Provider, Purpose, Received, Sending};
use crate::error::ApiError;
use crate::service::messaging::Arrival;
use crate::state::AppState;

pub const SIGNATURE_HEADER: &str = "X-Switchboard-Signature";

/// Only `external_id` is read from the bridge's answer; more is not kept in memory.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const MAX_EXTERNAL_ID_CHARS: usize = 200;

/// `sha256=<hex>` of the body under `secret`: what bridges send and what we send them.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a `sha256=<hex>` signature of `body` under `secret` in constant time (Meta signs
/// the same way with its app secret).
pub fn verify_sha256(secret: &str, body: &[u8], header: Option<&str>) -> bool {
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

pub struct Webhook;

impl Provider for Webhook {
    fn kind(&self) -> ChannelProvider {
        ChannelProvider::Webhook
    }

    fn credentials(&self, given: Option<&Value>) -> Result<Option<Value>, FieldError> {
        match given {
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(FieldError::new(
                "credentials",
                "the webhook takes none: its calls are signed with the inbound_secret",
            )),
        }
    }

    fn verify(&self, opened: &Opened, call: &Call<'_>) -> bool {
        verify_sha256(
            &opened.inbound_secret,
            call.body,
            call.header(SIGNATURE_HEADER),
        )
    }

    fn parse(&self, _channel: &Channel, call: &Call<'_>) -> Result<Vec<Inbound>, ApiError> {
        match call.purpose {
            Purpose::Messages => {
                let inbound: wire::InboundMessage = crate::body::parse_object(call.body)?;
                let media = inbound
                    .attachments
                    .iter()
                    .map(|file| {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(file.data_base64.trim())
                            .map_err(|_| {
                                domain::DomainError::invalid(
                                    "attachments",
                                    "data_base64 is not base64",
                                )
                            })?;
                        Ok(Media::Inline {
                            content_type: file.content_type.clone(),
                            filename: file.filename.clone(),
                            bytes,
                        })
                    })
                    .collect::<Result<Vec<_>, ApiError>>()?;
                Ok(vec![Inbound::Message(Received {
                    arrival: Arrival::from(&inbound),
                    media,
                })])
            }
            Purpose::Statuses => {
                let report: wire::StatusCallback = crate::body::parse_object(call.body)?;
                Ok(vec![Inbound::Status {
                    external_id: report.external_id,
                    status: match report.status {
                        wire::ProviderStatus::Sent => DeliveryStatus::Sent,
                        wire::ProviderStatus::Delivered => DeliveryStatus::Delivered,
                        wire::ProviderStatus::Failed => DeliveryStatus::Failed,
                    },
                    error: report.error,
                }])
            }
        }
    }

    fn fetch<'a>(
        &'a self,
        _state: &'a AppState,
        _credentials: &'a Value,
        _locator: &'a str,
        _limit: usize,
    ) -> BoxFuture<'a, Result<Fetched, String>> {
        // The webhook inlines its files.
        async { Err("the webhook has no remote files".to_string()) }.boxed()
    }

    fn send<'a>(&'a self, sending: Sending<'a>) -> BoxFuture<'a, Outcome> {
        deliver(sending).boxed()
    }
}

async fn deliver(sending: Sending<'_>) -> Outcome {
    let Sending {
        state,
        http,
        due,
        attachments,
        ..
    } = sending;
    let Some(url) = due.channel.outbound_url.as_deref() else {
        return Outcome::Sandbox;
    };
    if let Some(refused) = crate::outbound::refused_literal(&state.config.outbound_allow, url) {
        return Outcome::Undeliverable(refused);
    }
    let Some(to) = due.to.clone() else {
        return Outcome::Undeliverable("the contact has no address on this channel".into());
    };
    let payload = wire::OutboundDelivery {
        message_id: due.message_id.get(),
        channel_id: due.channel.id.get(),
        conversation_id: due.conversation_id.get(),
        to,
        from: due.channel.address.clone(),
        body: due.body.clone(),
        attachments,
    };
    let body = match serde_json::to_vec(&payload) {
        Ok(body) => body,
        Err(error) => {
            return Outcome::Undeliverable(format!("cannot encode the delivery: {error}"));
        }
    };
    let request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            SIGNATURE_HEADER,
            signature(&due.secrets.inbound_secret, &body),
        )
        .body(body);
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Outcome::Failed(super::describe(error)),
    };
    let status = response.status();
    if !status.is_success() {
        return Outcome::Failed(format!("the provider answered HTTP {}", status.as_u16()));
    }
    // Accepted whatever the body holds: failing to read it must not send the message again.
    let mut answer = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        if answer.len() + chunk.len() > MAX_RESPONSE_BYTES {
            break;
        }
        answer.extend_from_slice(&chunk);
    }
    Outcome::Accepted {
        external_id: external_id(&answer),
    }
}

/// The bridge's id for the message, from a JSON answer `{"external_id": "…"}`.
fn external_id(answer: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(answer).ok()?;
    let id = value.get("external_id")?.as_str()?.trim();
    (!id.is_empty() && id.chars().count() <= MAX_EXTERNAL_ID_CHARS).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let body = br#"{"external_id":"m1","from":"+14155552671","body":"hi"}"#;
        let header = signature("s3cret", body);
        assert!(verify_sha256("s3cret", body, Some(&header)));
        assert!(!verify_sha256("other", body, Some(&header)));
        assert!(!verify_sha256("s3cret", b"{}", Some(&header)));
        assert!(!verify_sha256("s3cret", body, Some("sha256=zz")));
        assert!(!verify_sha256("s3cret", body, None));
    }

    #[test]
    fn only_a_string_external_id_is_kept() {
        assert_eq!(
            external_id(br#"{"external_id":"SM123"}"#),
            Some("SM123".into())
        );
        assert_eq!(external_id(br#"{"external_id":42}"#), None);
        assert_eq!(external_id(br#"{"external_id":"  "}"#), None);
        assert_eq!(external_id(b"OK"), None);
        assert_eq!(external_id(b""), None);
        let long = format!(r#"{{"external_id":"{}"}}"#, "x".repeat(201));
        assert_eq!(external_id(long.as_bytes()), None);
    }
}
