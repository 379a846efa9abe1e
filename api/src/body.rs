//! Request bodies that may be left out. actix's `Option<Json<T>>` turns a body it cannot
//! parse into `None`, so a malformed `{"spam": tru}` would close a conversation as an
//! ordinary close; here a body that is there must parse, or the request is refused (400)
//! before anything happens.

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// An optional JSON body: absent (or only whitespace) is `None`; anything else must be
/// `application/json` that parses as `T`.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = request
            .app_data::<web::Data<AppState>>()
            .map_or(64 * 1024, |state| state.config.max_body);
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_none_or(|value| value.to_ascii_lowercase().contains("json"));
        let bytes = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            let bytes = bytes.await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(None));
            }
            if bytes.len() > limit {
                return Err(ApiError::PayloadTooLarge.into());
            }
            if !is_json {
                return Err(ApiError::UnsupportedMediaType(
                    "send the body as application/json".to_string(),
                )
                .into());
            }
            let invalid = |error: serde_json::Error| -> actix_web::Error {
                ApiError::BadRequest(format!("invalid JSON body: {error}")).into()
            };
            // An object, as documented (serde would also take a struct from an array).
            let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(invalid)?;
            if !value.is_object() {
                return Err(ApiError::BadRequest("the body must be a JSON object".into()).into());
            }
            serde_json::from_value(value)
                .map(|value| OptionalJson(Some(value)))
                .map_err(invalid)
        })
    }
}
