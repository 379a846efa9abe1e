//! The web chat widget (`credentials: {allowed_origins: ["https://example.com", …]}`).
//! Visitors call Switchboard themselves (see `routes::webchat`), so as a provider it has no
//! inbound calls to check and nothing to send: agents' replies reach the visitor's socket,
//! and count as sent at once. What it owns is its settings: the page origins allowed to
//! embed it.

use domain::{Channel, ChannelProvider, FieldError};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::{Call, Fetched, Inbound, Opened, Outcome, Provider, Sending};
use crate::error::ApiError;
use crate::state::AppState;

/// At most this many origins per channel.
const MAX_ORIGINS: usize = 20;

/// An origin as browsers send it: `scheme://host[:port]`, lower-cased, no path.
fn origin(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('/').to_ascii_lowercase();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    let fine = !rest.is_empty()
        && rest.len() <= 253
        && rest.bytes().all(|byte| {
            byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b':' | b'[' | b']')
        });
    fine.then_some(text)
}

/// The origins a channel's widget may be embedded on.
pub fn allowed_origins(opened: &Opened) -> Vec<String> {
    opened
        .credentials
        .get("allowed_origins")
        .and_then(Value::as_array)
        .map(|origins| {
            origins
                .iter()
                .filter_map(Value::as_str)
                .filter_map(origin)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a request's `Origin` may use the channel. A request without one does not come
/// from a page (a server, a native app): the visitor token is what authorizes it.
pub fn origin_allowed(allowed: &[String], header: Option<&str>) -> bool {
    match header {
        None => true,
        Some(header) => origin(header).is_some_and(|origin| allowed.contains(&origin)),
    }
}

pub struct Webchat;

impl Provider for Webchat {
    fn kind(&self) -> ChannelProvider {
        ChannelProvider::Webchat
    }

    fn credentials(&self, given: Option<&Value>) -> Result<Option<Value>, FieldError> {
        let refused = || {
            FieldError::new(
                "credentials",
                "the web chat takes {allowed_origins: [\"https://example.com\", …]}, 1 to 20 origins",
            )
        };
        let given = given.ok_or_else(refused)?;
        let map = given
            .as_object()
            .filter(|map| map.len() == 1)
            .ok_or_else(refused)?;
        let listed = map
            .get("allowed_origins")
            .and_then(Value::as_array)
            .filter(|listed| (1..=MAX_ORIGINS).contains(&listed.len()))
            .ok_or_else(refused)?;
        let origins = listed
            .iter()
            .map(|item| item.as_str().and_then(origin).ok_or_else(refused))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(json!({ "allowed_origins": origins })))
    }

    fn verify(&self, _opened: &Opened, _call: &Call<'_>) -> bool {
        false
    }

    fn parse(&self, _channel: &Channel, _call: &Call<'_>) -> Result<Vec<Inbound>, ApiError> {
        Ok(Vec::new())
    }

    fn fetch<'a>(
        &'a self,
        _state: &'a AppState,
        _credentials: &'a Value,
        _locator: &'a str,
        _limit: usize,
    ) -> BoxFuture<'a, Result<Fetched, String>> {
        async { Err("visitors upload their files".to_string()) }.boxed()
    }

    fn send<'a>(&'a self, _sending: Sending<'a>) -> BoxFuture<'a, Outcome> {
        async { Outcome::Sandbox }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_as_browsers_send_them() {
        let given =
            json!({"allowed_origins": ["https://Shop.example.com/", "http://localhost:3000"]});
        let sealed = Webchat.credentials(Some(&given)).unwrap().unwrap();
        let opened = Opened {
            inbound_secret: String::new(),
            credentials: sealed,
        };
        let allowed = allowed_origins(&opened);
        assert_eq!(
            allowed,
            ["https://shop.example.com", "http://localhost:3000"]
        );
        assert!(origin_allowed(&allowed, Some("https://shop.example.com")));
        assert!(origin_allowed(&allowed, Some("http://localhost:3000")));
        assert!(!origin_allowed(&allowed, Some("https://evil.example.com")));
        assert!(!origin_allowed(
            &allowed,
            Some("https://shop.example.com.evil.com")
        ));
        assert!(!origin_allowed(&allowed, Some("null")));
        assert!(origin_allowed(&allowed, None));
    }

    #[test]
    fn settings_need_one_to_twenty_origins() {
        for bad in [
            json!({}),
            json!({"allowed_origins": []}),
            json!({"allowed_origins": ["example.com"]}),
            json!({"allowed_origins": ["https://example.com/path"]}),
            json!({"allowed_origins": ["*"]}),
            json!({"allowed_origins": ["https://a.example"], "extra": true}),
        ] {
            assert!(Webchat.credentials(Some(&bad)).is_err(), "{bad}");
        }
        assert!(Webchat.credentials(None).is_err());
    }
}
