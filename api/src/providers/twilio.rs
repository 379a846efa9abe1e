//! Twilio, for sms/mms and WhatsApp numbers (`credentials: {account_sid, auth_token}`).
//!
//! - Inbound `POST /v1/channels/{id}/twilio`, form-encoded, signed with
//!   `X-Twilio-Signature`: base64 of HMAC-SHA1 under the auth token over the URL Twilio
//!   called followed by every POST parameter's name and value, sorted by name. Answered
//!   with an empty TwiML `<Response/>`. MMS media are fetched from Twilio with the account's
//!   credentials (Twilio redirects to its media CDN).
//! - Status callbacks `POST /v1/channels/{id}/twilio/status` (`MessageSid`,
//!   `MessageStatus`, `ErrorCode`), signed the same way.
//! - Outbound `POST {api}/2010-04-01/Accounts/{sid}/Messages.json` with basic auth and form
//!   fields `To`, `From`, `Body`, one `MediaUrl` per file (a signed link that expires) and
//!   `StatusCallback`. Twilio's own error code (`21211`, `21610`, …) is what agents see.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use domain::conversation::DeliveryStatus;
use domain::{Channel, ChannelProvider, ChannelType, FieldError, phone};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;

use super::{
    Call, Fetched, Inbound, Media, Opened, Outcome, Provider, Purpose, Received, Sending,
    text_field,
};
use crate::error::ApiError;
use crate::service::messaging::Arrival;
use crate::state::AppState;

pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";
const WHATSAPP_PREFIX: &str = "whatsapp:";
/// Twilio sends at most ten media per message.
const MAX_MEDIA: usize = 10;

/// The empty TwiML answer: received, nothing to reply automatically.
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// `X-Twilio-Signature` of a call to `url` with these form parameters.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Checks the signature in constant time.
fn verify(auth_token: &str, url: &str, params: &[(String, String)], header: Option<&str>) -> bool {
    let Some(expected) = header.and_then(|header| STANDARD.decode(header.trim()).ok()) else {
        return false;
    };
    mac(auth_token, url, params).verify_slice(&expected).is_ok()
}

/// The form parameters in the order they came.
fn params(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

fn strip_whatsapp(address: &str) -> &str {
    address.strip_prefix(WHATSAPP_PREFIX).unwrap_or(address)
}

struct Account<'a> {
    sid: &'a str,
    token: &'a str,
}

fn account(credentials: &Value) -> Option<Account<'_>> {
    Some(Account {
        sid: text_field(credentials, "account_sid")?,
        token: text_field(credentials, "auth_token")?,
    })
}

pub struct Twilio;

impl Provider for Twilio {
    fn kind(&self) -> ChannelProvider {
        ChannelProvider::Twilio
    }

    fn credentials(&self, given: Option<&Value>) -> Result<Option<Value>, FieldError> {
        let given = given.unwrap_or(&Value::Null);
        let sid = text_field(given, "account_sid").filter(|sid| {
            sid.len() == 34
                && sid.starts_with("AC")
                && sid.bytes().all(|byte| byte.is_ascii_alphanumeric())
        });
        let token = text_field(given, "auth_token")
            .filter(|token| token.len() <= 128 && !token.contains(char::is_whitespace));
        match (sid, token) {
            (Some(sid), Some(token)) if given.as_object().is_some_and(|map| map.len() == 2) => {
                Ok(Some(json!({"account_sid": sid, "auth_token": token})))
            }
            _ => Err(FieldError::new(
                "credentials",
                "Twilio takes {account_sid (AC…, 34 characters), auth_token}",
            )),
        }
    }

    fn verify(&self, opened: &Opened, call: &Call<'_>) -> bool {
        let Some(account) = account(&opened.credentials) else {
            return false;
        };
        verify(
            account.token,
            &call.url,
            &params(call.body),
            call.header(SIGNATURE_HEADER),
        )
    }

    fn parse(&self, channel: &Channel, call: &Call<'_>) -> Result<Vec<Inbound>, ApiError> {
        let params = params(call.body);
        match call.purpose {
            Purpose::Messages => parse_message(channel, &params),
            Purpose::Statuses => Ok(parse_status(&params).into_iter().collect()),
        }
    }

    fn fetch<'a>(
        &'a self,
        state: &'a AppState,
        credentials: &'a Value,
        locator: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Fetched, String>> {
        async move {
            let account = account(credentials).ok_or("the channel has no Twilio credentials")?;
            let request = state
                .provider_http
                .get(locator)
                .basic_auth(account.sid, Some(account.token));
            super::download(request, limit, "Twilio").await
        }
        .boxed()
    }

    fn send<'a>(&'a self, sending: Sending<'a>) -> BoxFuture<'a, Outcome> {
        send(sending).boxed()
    }
}

fn parse_message(channel: &Channel, params: &[(String, String)]) -> Result<Vec<Inbound>, ApiError> {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsMessageSid"))
        .ok_or_else(|| domain::DomainError::invalid("MessageSid", "is required"))?;
    let from = param(params, "From")
        .map(strip_whatsapp)
        .ok_or_else(|| domain::DomainError::invalid("From", "is required"))?;
    // A number of the same account that is another channel: not this channel's message.
    if let Some(to) = param(params, "To").map(strip_whatsapp)
        && phone::normalize(to).as_deref() != Some(channel.address.as_str())
    {
        tracing::warn!(
            channel = channel.id.get(),
            "a Twilio message for another number reached this channel; ignored"
        );
        return Ok(Vec::new());
    }
    let count = param(params, "NumMedia")
        .and_then(|count| count.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_MEDIA);
    let media = (0..count)
        .filter_map(|index| {
            let url = param(params, &format!("MediaUrl{index}"))?;
            (url.starts_with("https://") || url.starts_with("http://")).then(|| Media::Remote {
                locator: url.to_string(),
                content_type: param(params, &format!("MediaContentType{index}"))
                    .map(str::to_string),
                filename: None,
            })
        })
        .collect();
    Ok(vec![Inbound::Message(Received {
        arrival: Arrival {
            external_id: sid.to_string(),
            from: from.to_string(),
            body: param(params, "Body").unwrap_or("").to_string(),
            sent_at: None,
            sender_name: param(params, "ProfileName").map(str::to_string),
            sender_email: None,
        },
        media,
    })])
}

/// A status callback, when it is one the message's status follows (`queued`, `sending`,
/// `accepted` and the like say nothing new).
fn parse_status(params: &[(String, String)]) -> Option<Inbound> {
    let sid = param(params, "MessageSid").or_else(|| param(params, "SmsSid"))?;
    let status = param(params, "MessageStatus").or_else(|| param(params, "SmsStatus"))?;
    let (status, error) = match status {
        "sent" => (DeliveryStatus::Sent, None),
        "delivered" | "read" => (DeliveryStatus::Delivered, None),
        "failed" | "undelivered" | "canceled" => {
            let error = match param(params, "ErrorCode") {
                Some(code) => format!("Twilio error {code}: the message was {status}"),
                None => format!("Twilio: the message was {status}"),
            };
            (DeliveryStatus::Failed, Some(error))
        }
        _ => return None,
    };
    Some(Inbound::Status {
        external_id: sid.to_string(),
        status,
        error,
    })
}

async fn send(sending: Sending<'_>) -> Outcome {
    let Sending {
        state,
        http,
        due,
        credentials,
        attachments,
    } = sending;
    let Some(account) = account(credentials) else {
        return Outcome::Undeliverable("the channel has no Twilio credentials".into());
    };
    let Some(to) = due.to.as_deref() else {
        return Outcome::Undeliverable("the contact has no phone number".into());
    };
    let prefix = if due.channel.channel_type == ChannelType::Whatsapp {
        WHATSAPP_PREFIX
    } else {
        ""
    };
    let mut form: Vec<(&str, String)> = vec![
        ("To", format!("{prefix}{to}")),
        ("From", format!("{prefix}{}", due.channel.address)),
    ];
    if !due.body.trim().is_empty() {
        form.push(("Body", due.body.clone()));
    }
    form.extend(attachments.into_iter().map(|file| ("MediaUrl", file.url)));
    form.push((
        "StatusCallback",
        format!(
            "{}/v1/channels/{}/twilio/status",
            state.config.public_base(),
            due.channel.id.get()
        ),
    ));
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        state.config.twilio_api_url.trim_end_matches('/'),
        account.sid
    );
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(name, value)| (*name, value.as_str())))
        .finish();
    let response = http
        .post(url)
        .basic_auth(account.sid, Some(account.token))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(encoded)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(error) => return Outcome::Failed(super::describe(error)),
    };
    let status = response.status();
    let answer: Value = match super::read_limited(response, 64 * 1024).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    if status.is_success() {
        return Outcome::Accepted {
            external_id: text_field(&answer, "sid").map(str::to_string),
        };
    }
    // Twilio's error document: {"code": 21211, "message": "…", "more_info": "…", "status": 400}.
    let code = answer.get("code").and_then(Value::as_i64);
    let message = text_field(&answer, "message").unwrap_or("no message");
    let error = match code {
        Some(code) => format!("Twilio error {code}: {message}"),
        None => format!("Twilio answered HTTP {}", status.as_u16()),
    };
    if super::retryable(status) {
        Outcome::Failed(super::bounded(error))
    } else {
        Outcome::Undeliverable(super::bounded(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    /// The example of Twilio's security documentation.
    #[test]
    fn the_signature_is_the_one_twilio_documents() {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        // The order they came in does not matter; the values and the URL do.
        let mut shuffled = params.clone();
        shuffled.reverse();
        assert!(verify(
            "12345",
            url,
            &shuffled,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        ));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php",
            &params,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        ));
        assert!(!verify(
            "54321",
            url,
            &params,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        ));
        assert!(!verify("12345", url, &params, Some("not base64!")));
        assert!(!verify("12345", url, &params, None));
    }

    #[test]
    fn statuses_map_onto_the_forward_only_ones() {
        let status = |items: &[(&str, &str)]| parse_status(&pairs(items));
        assert!(matches!(
            status(&[("MessageSid", "SM1"), ("MessageStatus", "delivered")]),
            Some(Inbound::Status {
                status: DeliveryStatus::Delivered,
                ..
            })
        ));
        assert!(matches!(
            status(&[("MessageSid", "SM1"), ("MessageStatus", "read")]),
            Some(Inbound::Status {
                status: DeliveryStatus::Delivered,
                ..
            })
        ));
        match status(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]) {
            Some(Inbound::Status {
                status: DeliveryStatus::Failed,
                error: Some(error),
                ..
            }) => {
                assert!(error.contains("30003"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        assert!(status(&[("MessageSid", "SM1"), ("MessageStatus", "sending")]).is_none());
        assert!(status(&[("MessageStatus", "sent")]).is_none());
    }

    #[test]
    fn credentials_are_an_account_sid_and_an_auth_token() {
        let valid =
            json!({"account_sid": format!("AC{}", "0".repeat(32)), "auth_token": "f".repeat(32)});
        assert!(Twilio.credentials(Some(&valid)).unwrap().is_some());
        for bad in [
            json!({"account_sid": "SK1", "auth_token": "x"}),
            json!({"account_sid": format!("AC{}", "0".repeat(32))}),
            json!({"account_sid": format!("AC{}", "0".repeat(32)), "auth_token": "x", "extra": 1}),
            json!("text"),
        ] {
            assert!(Twilio.credentials(Some(&bad)).is_err(), "{bad}");
        }
        assert!(Twilio.credentials(None).is_err());
    }
}
