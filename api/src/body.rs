//! Request bodies, parsed or refused before anything happens. actix's `Option<Json<T>>`
//! turns a body it cannot parse into `None`, so a malformed `{"spam": tru}` would close a
//! conversation as an ordinary close, and `web::Json` takes a JSON array for a struct; here
//! a body must be a JSON object that parses, or the request is refused (400).

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body: `application/json` holding one object that parses as `T`, or the request
/// is refused (400, 413, 415) before the handler runs. Unlike `web::Json`, an array is not
/// taken for a struct (serde would accept one).
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = object::<T>(request, payload, true);
        Box::pin(async move {
            match body.await? {
                Some(value) => Ok(Json(value)),
                None => Err(ApiError::BadRequest("a JSON body is required".into()).into()),
            }
        })
    }
}

/// An optional JSON body: absent (or only whitespace) is `None`; anything else must be
/// `application/json` that parses as `T`.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = object::<T>(request, payload, false);
        Box::pin(async move { body.await.map(OptionalJson) })
    }
}

/// Reads a body as one JSON object of type `T`: `None` when there is none. A body without
/// a content type is read as JSON only where the body is optional (`content_type_required`
/// false): there `curl -X POST …/close` with nothing, or with `{}`, both work.
fn object<T: DeserializeOwned + 'static>(
    request: &HttpRequest,
    payload: &mut Payload,
    content_type_required: bool,
) -> LocalBoxFuture<'static, Result<Option<T>, actix_web::Error>> {
    let limit = request
        .app_data::<web::Data<AppState>>()
        .map_or(64 * 1024, |state| state.config.max_body);
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_ascii_lowercase);
    let is_json = match content_type {
        Some(value) => value.contains("json"),
        None => !content_type_required,
    };
    let bytes = web::Bytes::from_request(request, payload);
    Box::pin(async move {
        let bytes = bytes.await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        // An optional body sent as JSON `null` is no body.
        if !content_type_required && bytes.trim_ascii() == b"null" {
            return Ok(None);
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
        Ok(Some(parse_object(&bytes)?))
    })
}

/// Parses one JSON object as `T` (400 otherwise; serde alone would take a struct from an
/// array).
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let invalid =
        |error: serde_json::Error| ApiError::BadRequest(format!("invalid JSON body: {error}"));
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    whole_numbers_as_integers(&mut value);
    serde_json::from_value(value).map_err(invalid)
}

/// JSON does not tell `4` from `4.0`, and neither do JSON Schema's integers: a whole number
/// written with a fraction is taken as the integer it is.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if !number.is_i64() && !number.is_u64() => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && float.abs() < 9_007_199_254_740_992.0
            {
                *value = serde_json::Value::from(float as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}
