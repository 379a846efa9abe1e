//! Meta's Graph API: the WhatsApp Cloud API (`type: "whatsapp"`, address the phone number
//! id), Messenger (`"facebook"`, the page id) and Instagram (`"instagram"`, the account id),
//! with `credentials: {access_token, app_secret, verify_token}`.
//!
//! - `GET /v1/channels/{id}/meta?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
//!   echoes the challenge when the verify token matches (the app dashboard's handshake).
//! - `POST /v1/channels/{id}/meta`, signed `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
//!   the raw body with app_secret>`, carries batches: WhatsApp's
//!   `entry[].changes[].value.messages[]` / `.statuses[]`, Messenger's and Instagram's
//!   `entry[].messaging[]`. Every message of a batch is stored, idempotent on its id.
//! - Outbound `POST {graph}/v21.0/{phone_number_id}/messages` (WhatsApp) or
//!   `POST {graph}/v21.0/me/messages` (Messenger, Instagram), bearer `access_token`; a text
//!   and each file go as messages of their own, in that order.

use chrono::{DateTime, Utc};
use domain::conversation::DeliveryStatus;
use domain::{Channel, ChannelProvider, ChannelType, FieldError};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::{
    Call, Fetched, Inbound, Media, Opened, Outcome, Provider, Received, Sending, text_field,
};
use crate::error::ApiError;
use crate::service::messaging::Arrival;
use crate::state::AppState;

pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
pub const GRAPH_VERSION: &str = "v21.0";

/// Graph error codes that mean "later": temporary failures and rate limits.
const RETRY_CODES: [i64; 8] = [1, 2, 4, 17, 341, 80007, 130429, 131016];

struct Keys<'a> {
    access_token: &'a str,
    app_secret: &'a str,
    verify_token: &'a str,
}

fn keys(credentials: &Value) -> Option<Keys<'_>> {
    Some(Keys {
        access_token: text_field(credentials, "access_token")?,
        app_secret: text_field(credentials, "app_secret")?,
        verify_token: text_field(credentials, "verify_token")?,
    })
}

/// The subscription handshake: the challenge to echo, when the mode is `subscribe` and the
/// verify token matches (compared in constant time).
pub fn handshake<'a>(
    opened: &Opened,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'a str>,
) -> Option<&'a str> {
    let keys = keys(&opened.credentials)?;
    let matches: bool = token?.as_bytes().ct_eq(keys.verify_token.as_bytes()).into();
    (mode == Some("subscribe") && matches).then_some(challenge?)
}

pub struct Meta;

impl Provider for Meta {
    fn kind(&self) -> ChannelProvider {
        ChannelProvider::Meta
    }

    fn credentials(&self, given: Option<&Value>) -> Result<Option<Value>, FieldError> {
        let given = given.unwrap_or(&Value::Null);
        let fine = |name: &str| {
            text_field(given, name)
                .filter(|text| text.len() <= 1024 && !text.contains(char::is_whitespace))
        };
        match (
            fine("access_token"),
            fine("app_secret"),
            fine("verify_token"),
        ) {
            (Some(access_token), Some(app_secret), Some(verify_token))
                if given.as_object().is_some_and(|map| map.len() == 3) =>
            {
                Ok(Some(json!({
                    "access_token": access_token,
                    "app_secret": app_secret,
                    "verify_token": verify_token,
                })))
            }
            _ => Err(FieldError::new(
                "credentials",
                "Meta takes {access_token, app_secret, verify_token}",
            )),
        }
    }

    fn verify(&self, opened: &Opened, call: &Call<'_>) -> bool {
        let Some(keys) = keys(&opened.credentials) else {
            return false;
        };
        super::webhook::verify_sha256(keys.app_secret, call.body, call.header(SIGNATURE_HEADER))
    }

    fn parse(&self, channel: &Channel, call: &Call<'_>) -> Result<Vec<Inbound>, ApiError> {
        let payload: Value = serde_json::from_slice(call.body)
            .map_err(|_| ApiError::BadRequest("the body is not JSON".into()))?;
        let object = payload.get("object").and_then(Value::as_str).unwrap_or("");
        let entries = list(&payload, "entry");
        let mut items = Vec::new();
        match (object, channel.channel_type) {
            ("whatsapp_business_account", ChannelType::Whatsapp) => {
                for change in entries.iter().flat_map(|entry| list(entry, "changes")) {
                    if change.get("field").and_then(Value::as_str) == Some("messages") {
                        whatsapp_change(channel, &change["value"], &mut items);
                    }
                }
            }
            ("page", ChannelType::Facebook) | ("instagram", ChannelType::Instagram) => {
                for entry in entries {
                    for event in list(entry, "messaging") {
                        messaging_event(channel, event, &mut items);
                    }
                }
            }
            _ => tracing::warn!(
                channel = channel.id.get(),
                object,
                "a Meta call for another kind of channel reached this one; ignored"
            ),
        }
        Ok(items)
    }

    fn fetch<'a>(
        &'a self,
        state: &'a AppState,
        credentials: &'a Value,
        locator: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Fetched, String>> {
        async move {
            let keys = keys(credentials).ok_or("the channel has no Meta credentials")?;
            let http = &state.provider_http;
            // Messenger and Instagram name a CDN link, fetched as it is; WhatsApp a media
            // id, whose link the Graph API gives and which takes the token too.
            let direct = locator.starts_with("https://") || locator.starts_with("http://");
            let request = if direct {
                http.get(locator)
            } else {
                let url = format!("{}/{locator}", graph(state));
                let answer = http
                    .get(url)
                    .bearer_auth(keys.access_token)
                    .send()
                    .await
                    .map_err(super::describe)?;
                let status = answer.status();
                let found: Value =
                    serde_json::from_slice(&super::read_limited(answer, 64 * 1024).await?)
                        .unwrap_or(Value::Null);
                let link = text_field(&found, "url")
                    .filter(|_| status.is_success())
                    .ok_or_else(|| {
                        format!("Meta answered HTTP {} for media {locator}", status.as_u16())
                    })?;
                http.get(link).bearer_auth(keys.access_token)
            };
            super::download(request, limit, "Meta").await
        }
        .boxed()
    }

    fn send<'a>(&'a self, sending: Sending<'a>) -> BoxFuture<'a, Outcome> {
        send(sending).boxed()
    }
}

/// The Graph API's base, versioned.
fn graph(state: &AppState) -> String {
    format!(
        "{}/{GRAPH_VERSION}",
        state.config.meta_graph_url.trim_end_matches('/')
    )
}

/// The array `name` of `value`, or nothing.
fn list<'a>(value: &'a Value, name: &str) -> &'a [Value] {
    value
        .get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Seconds (WhatsApp, as text) or milliseconds (Messenger) since the epoch.
fn timestamp(value: &Value, millis: bool) -> Option<DateTime<Utc>> {
    let number = match value {
        Value::String(text) => text.trim().parse::<i64>().ok()?,
        Value::Number(number) => number.as_i64()?,
        _ => return None,
    };
    if millis {
        DateTime::from_timestamp_millis(number)
    } else {
        DateTime::from_timestamp(number, 0)
    }
}

/// One `changes[].value` of a WhatsApp batch: its messages and statuses, for this number.
fn whatsapp_change(channel: &Channel, value: &Value, items: &mut Vec<Inbound>) {
    let number = value
        .get("metadata")
        .and_then(|metadata| text_field(metadata, "phone_number_id"));
    if number != Some(channel.address.as_str()) {
        tracing::warn!(
            channel = channel.id.get(),
            "a WhatsApp call for another phone number id reached this channel; ignored"
        );
        return;
    }
    let profile = |wa_id: &str| {
        list(value, "contacts")
            .iter()
            .find(|contact| text_field(contact, "wa_id") == Some(wa_id))
            .and_then(|contact| contact.get("profile"))
            .and_then(|profile| text_field(profile, "name"))
            .map(str::to_string)
    };
    for message in list(value, "messages") {
        let (Some(id), Some(wa_id)) = (text_field(message, "id"), text_field(message, "from"))
        else {
            continue;
        };
        let from = format!("+{}", wa_id.trim_start_matches('+'));
        let kind = text_field(message, "type").unwrap_or("text");
        if kind == "reaction" {
            let reaction = &message["reaction"];
            if let Some(target) = text_field(reaction, "message_id") {
                items.push(Inbound::Reaction {
                    external_id: target.to_string(),
                    from,
                    emoji: text_field(reaction, "emoji").map(str::to_string),
                });
            }
            continue;
        }
        let (body, media) = whatsapp_content(kind, message);
        items.push(Inbound::Message(Received {
            arrival: Arrival {
                external_id: id.to_string(),
                from,
                body,
                sent_at: message.get("timestamp").and_then(|at| timestamp(at, false)),
                sender_name: profile(wa_id),
                sender_email: None,
            },
            media,
        }));
    }
    for report in list(value, "statuses") {
        let Some(id) = text_field(report, "id") else {
            continue;
        };
        let (status, error) = match text_field(report, "status") {
            Some("sent") => (DeliveryStatus::Sent, None),
            // Read is past delivered: the furthest status agents see.
            Some("delivered" | "read") => (DeliveryStatus::Delivered, None),
            Some("failed") => (
                DeliveryStatus::Failed,
                Some(graph_error_text(list(report, "errors").first())),
            ),
            _ => continue,
        };
        items.push(Inbound::Status {
            external_id: id.to_string(),
            status,
            error,
        });
    }
}

/// A WhatsApp message's text and files, by its type.
fn whatsapp_content(kind: &str, message: &Value) -> (String, Vec<Media>) {
    let part = &message[kind];
    match kind {
        "text" => (
            text_field(part, "body").unwrap_or("").to_string(),
            Vec::new(),
        ),
        "image" | "video" | "audio" | "document" | "sticker" => {
            let media = text_field(part, "id").map(|id| Media::Remote {
                locator: id.to_string(),
                content_type: text_field(part, "mime_type").map(str::to_string),
                filename: text_field(part, "filename").map(str::to_string),
            });
            let caption = text_field(part, "caption").unwrap_or("").to_string();
            (caption, media.into_iter().collect())
        }
        "button" => (
            text_field(part, "text").unwrap_or("").to_string(),
            Vec::new(),
        ),
        "interactive" => {
            let reply = part
                .get("button_reply")
                .or_else(|| part.get("list_reply"))
                .and_then(|reply| text_field(reply, "title"));
            (reply.unwrap_or("").to_string(), Vec::new())
        }
        "location" => {
            let at = |name: &str| part.get(name).and_then(Value::as_f64);
            let place = [text_field(part, "name"), text_field(part, "address")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
            let body = match (at("latitude"), at("longitude")) {
                (Some(lat), Some(long)) => {
                    format!("📍 {place} https://maps.google.com/?q={lat},{long}")
                        .replace("📍  ", "📍 ")
                }
                _ => format!("📍 {place}"),
            };
            (body, Vec::new())
        }
        other => (
            format!("[a WhatsApp {other} message, which Switchboard does not show]"),
            Vec::new(),
        ),
    }
}

/// One `messaging[]` event of Messenger or Instagram, for this page or account.
fn messaging_event(channel: &Channel, event: &Value, items: &mut Vec<Inbound>) {
    let sender = event
        .get("sender")
        .and_then(|sender| text_field(sender, "id"));
    let recipient = event
        .get("recipient")
        .and_then(|recipient| text_field(recipient, "id"));
    let Some(sender) = sender else {
        return;
    };
    if recipient != Some(channel.address.as_str()) {
        // Our own messages echoed back name the page as the sender; anything else is
        // another page's.
        return;
    }
    if let Some(message) = event.get("message") {
        if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
            return;
        }
        let Some(mid) = text_field(message, "mid") else {
            return;
        };
        let media = list(message, "attachments")
            .iter()
            .filter_map(|attachment| {
                let url = attachment
                    .get("payload")
                    .and_then(|payload| text_field(payload, "url"))?;
                Some(Media::Remote {
                    locator: url.to_string(),
                    content_type: None,
                    filename: None,
                })
            })
            .collect();
        items.push(Inbound::Message(Received {
            arrival: Arrival {
                external_id: mid.to_string(),
                from: sender.to_string(),
                body: text_field(message, "text").unwrap_or("").to_string(),
                sent_at: event.get("timestamp").and_then(|at| timestamp(at, true)),
                sender_name: None,
                sender_email: None,
            },
            media,
        }));
    } else if let Some(reaction) = event.get("reaction") {
        if let Some(mid) = text_field(reaction, "mid") {
            let emoji = match text_field(reaction, "action") {
                Some("unreact") => None,
                _ => text_field(reaction, "emoji").map(str::to_string),
            };
            items.push(Inbound::Reaction {
                external_id: mid.to_string(),
                from: sender.to_string(),
                emoji,
            });
        }
    } else if let Some(delivery) = event.get("delivery") {
        for mid in list(delivery, "mids").iter().filter_map(Value::as_str) {
            items.push(Inbound::Status {
                external_id: mid.to_string(),
                status: DeliveryStatus::Delivered,
                error: None,
            });
        }
    }
}

/// What agents read of a Graph error: `Meta error <code>: <message> (<details>)`.
fn graph_error_text(error: Option<&Value>) -> String {
    let Some(error) = error else {
        return "Meta: the message failed".into();
    };
    let code = error.get("code").and_then(Value::as_i64);
    let message = text_field(error, "message")
        .or_else(|| text_field(error, "title"))
        .unwrap_or("no message");
    let details = error
        .get("error_data")
        .and_then(|data| text_field(data, "details"))
        .filter(|details| *details != message);
    let mut text = match code {
        Some(code) => format!("Meta error {code}: {message}"),
        None => format!("Meta: {message}"),
    };
    if let Some(details) = details {
        text.push_str(&format!(" ({details})"));
    }
    super::bounded(text)
}

/// The parts one outbound message goes out as: its text, then each file.
fn parts(sending: &Sending<'_>) -> Vec<Value> {
    let whatsapp = sending.due.channel.channel_type == ChannelType::Whatsapp;
    let mut parts = Vec::new();
    if !sending.due.body.trim().is_empty() {
        parts.push(if whatsapp {
            json!({"type": "text", "text": {"body": sending.due.body, "preview_url": false}})
        } else {
            json!({"text": sending.due.body})
        });
    }
    for file in &sending.attachments {
        let family = file.content_type.split('/').next().unwrap_or("");
        parts.push(if whatsapp {
            match family {
                "image" | "video" | "audio" => json!({"type": family, family: {"link": file.url}}),
                _ => json!({"type": "document", "document": {"link": file.url, "filename": file.filename}}),
            }
        } else {
            let kind = match family {
                "image" | "video" | "audio" => family,
                _ => "file",
            };
            json!({"attachment": {"type": kind, "payload": {"url": file.url, "is_reusable": false}}})
        });
    }
    parts
}

async fn send(sending: Sending<'_>) -> Outcome {
    let Some(keys) = keys(sending.credentials) else {
        return Outcome::Undeliverable("the channel has no Meta credentials".into());
    };
    let Some(to) = sending.due.to.as_deref() else {
        return Outcome::Undeliverable("the contact has no address on this channel".into());
    };
    let due = sending.due;
    let whatsapp = due.channel.channel_type == ChannelType::Whatsapp;
    let url = if whatsapp {
        format!("{}/{}/messages", graph(sending.state), due.channel.address)
    } else {
        format!("{}/me/messages", graph(sending.state))
    };
    let mut first_id = None;
    for (index, part) in parts(&sending).into_iter().enumerate() {
        let body = if whatsapp {
            let mut body = json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to.trim_start_matches('+'),
            });
            if let (Some(body), Some(part)) = (body.as_object_mut(), part.as_object()) {
                body.extend(part.clone());
            }
            body
        } else {
            json!({"recipient": {"id": to}, "messaging_type": "RESPONSE", "message": part})
        };
        let outcome = post(sending.http, &url, keys.access_token, &body).await;
        match (outcome, index) {
            (Outcome::Accepted { external_id }, 0) => first_id = external_id,
            (Outcome::Accepted { .. }, _) => {}
            (refused, 0) => return refused,
            // The text (or an earlier file) reached the customer: sending it all again would
            // repeat it, so what is left fails for good, saying what arrived.
            (Outcome::Failed(error) | Outcome::Undeliverable(error), index) => {
                return Outcome::Undeliverable(super::bounded(format!(
                    "only the first {index} part(s) were sent: {error}"
                )));
            }
            (Outcome::Sandbox, _) => {}
        }
    }
    Outcome::Accepted {
        external_id: first_id,
    }
}

/// One Send API call.
async fn post(http: &reqwest::Client, url: &str, token: &str, body: &Value) -> Outcome {
    let response = match http.post(url).bearer_auth(token).json(body).send().await {
        Ok(response) => response,
        Err(error) => return Outcome::Failed(super::describe(error)),
    };
    let status = response.status();
    let answer: Value = match super::read_limited(response, 64 * 1024).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    if status.is_success() {
        // WhatsApp: {"messages": [{"id": "wamid…"}]}; Messenger: {"message_id": "m_…"}.
        let id = list(&answer, "messages")
            .first()
            .and_then(|message| text_field(message, "id"))
            .or_else(|| text_field(&answer, "message_id"))
            .map(str::to_string);
        return Outcome::Accepted { external_id: id };
    }
    let error = answer.get("error");
    let text = match error {
        Some(error) => graph_error_text(Some(error)),
        None => format!("Meta answered HTTP {}", status.as_u16()),
    };
    let code = error
        .and_then(|error| error.get("code"))
        .and_then(Value::as_i64);
    if super::retryable(status) || code.is_some_and(|code| RETRY_CODES.contains(&code)) {
        Outcome::Failed(text)
    } else {
        Outcome::Undeliverable(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened() -> Opened {
        Opened {
            inbound_secret: String::new(),
            credentials: json!({"access_token": "EAAG", "app_secret": "secret", "verify_token": "let me in"}),
        }
    }

    #[test]
    fn the_handshake_echoes_the_challenge_only_for_the_verify_token() {
        let opened = opened();
        assert_eq!(
            handshake(
                &opened,
                Some("subscribe"),
                Some("let me in"),
                Some("1158201444")
            ),
            Some("1158201444")
        );
        assert_eq!(
            handshake(
                &opened,
                Some("subscribe"),
                Some("let me"),
                Some("1158201444")
            ),
            None
        );
        assert_eq!(
            handshake(&opened, Some("unsubscribe"), Some("let me in"), Some("1")),
            None
        );
        assert_eq!(handshake(&opened, Some("subscribe"), None, Some("1")), None);
        assert_eq!(
            handshake(&opened, Some("subscribe"), Some("let me in"), None),
            None
        );
    }

    #[test]
    fn graph_errors_read_with_their_code() {
        let error = json!({"message": "(#131047) Re-engagement message", "code": 131047,
            "error_data": {"details": "Message failed to send because more than 24 hours have passed"}});
        let text = graph_error_text(Some(&error));
        assert!(
            text.starts_with("Meta error 131047: (#131047) Re-engagement message"),
            "{text}"
        );
        assert!(text.contains("24 hours"), "{text}");
        assert_eq!(graph_error_text(None), "Meta: the message failed");
    }

    #[test]
    fn timestamps_are_seconds_on_whatsapp_and_milliseconds_on_messenger() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(timestamp(&json!("1700000000"), false), Some(at));
        assert_eq!(timestamp(&json!(1_700_000_000_000i64), true), Some(at));
        assert_eq!(timestamp(&json!("soon"), false), None);
    }
}
