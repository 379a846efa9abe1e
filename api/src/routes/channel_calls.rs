//! The channel providers' calls: customers' messages and delivery reports, each route
//! checked by its provider (see `providers`): the generic webhook's HMAC-SHA256 signature,
//! Twilio's `X-Twilio-Signature`, Meta's `X-Hub-Signature-256`. A bad signature gets 401
//! and changes nothing.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use domain::ChannelProvider;
use openapi::{InboundMessage, InboundResult, Message, Problem, StatusCallback};
use serde::Deserialize;

use crate::error::ApiError;
use crate::providers::{self, Call, Ingested, Purpose, meta, twilio};
use crate::state::AppState;

/// Checks the call, then stores what it carries.
async fn take(
    state: &AppState,
    provider: ChannelProvider,
    purpose: Purpose,
    id: i64,
    request: &HttpRequest,
    body: &Bytes,
) -> Result<Vec<Ingested>, ApiError> {
    let call = Call::of(state, purpose, request, body);
    let (channel, opened) = providers::authenticate(state, provider, id, &call).await?;
    let items = providers::of(provider).parse(&channel, &call)?;
    providers::ingest(state, &channel, &opened, items).await
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
    let id = path.into_inner();
    let done = take(
        &state,
        ChannelProvider::Webhook,
        Purpose::Messages,
        id,
        &request,
        &body,
    )
    .await?;
    match done.into_iter().next() {
        Some(Ingested::Message(result)) => Ok(web::Json(result)),
        _ => Err(ApiError::Internal(
            "an inbound message was not recorded".into(),
        )),
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
    let id = path.into_inner();
    let done = take(
        &state,
        ChannelProvider::Webhook,
        Purpose::Statuses,
        id,
        &request,
        &body,
    )
    .await?;
    match done.into_iter().next() {
        Some(Ingested::Status(message)) => Ok(web::Json(message)),
        _ => Err(ApiError::not_found()),
    }
}

/// The empty TwiML answer Twilio expects.
fn twiml() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(twilio::EMPTY_TWIML)
}

/// Twilio's incoming-message webhook (sms/mms, WhatsApp): paste this URL as the number's
/// "A message comes in" webhook (HTTP POST).
#[utoipa::path(
    tag = "channels",
    operation_id = "receive_twilio_message",
    security(("twilio_signature" = [])),
    params(
        ("id" = i64, Path, description = "Channel id"),
        ("X-Twilio-Signature" = String, Header, description = "base64 HMAC-SHA1 with the auth token over the URL followed by each POST parameter's name and value, sorted by name"),
    ),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "Twilio's parameters: `MessageSid`, `From`, `To`, `Body`, `NumMedia`, `MediaUrlN`, `MediaContentTypeN`, `ProfileName`, …"),
    responses(
        (status = 200, description = "Stored: an empty TwiML `<Response/>`", content_type = "text/xml", body = String),
        (status = 401, description = "Bad or missing signature", body = Problem),
    )
)]
#[post("/v1/channels/{id}/twilio")]
pub async fn receive_twilio_message(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<i64>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    take(
        &state,
        ChannelProvider::Twilio,
        Purpose::Messages,
        id,
        &request,
        &body,
    )
    .await?;
    Ok(twiml())
}

/// Twilio's status callbacks for outbound messages (Switchboard names this URL on every
/// send). Statuses of messages this channel never sent are accepted and ignored.
#[utoipa::path(
    tag = "channels",
    operation_id = "receive_twilio_status",
    security(("twilio_signature" = [])),
    params(
        ("id" = i64, Path, description = "Channel id"),
        ("X-Twilio-Signature" = String, Header, description = "As for incoming messages"),
    ),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`MessageSid`, `MessageStatus`, `ErrorCode`, …"),
    responses(
        (status = 200, description = "Taken", content_type = "text/xml", body = String),
        (status = 401, description = "Bad or missing signature", body = Problem),
    )
)]
#[post("/v1/channels/{id}/twilio/status")]
pub async fn receive_twilio_status(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<i64>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    take(
        &state,
        ChannelProvider::Twilio,
        Purpose::Statuses,
        id,
        &request,
        &body,
    )
    .await?;
    Ok(twiml())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    #[param(rename = "hub.mode")]
    pub mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    #[param(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    #[param(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// Meta's webhook verification: echoes `hub.challenge` when `hub.verify_token` is the
/// channel's verify token. Paste `/v1/channels/{id}/meta` as the app's callback URL.
#[utoipa::path(
    tag = "channels",
    operation_id = "verify_meta_webhook",
    params(("id" = i64, Path, description = "Channel id"), Handshake),
    responses(
        (status = 200, description = "The challenge, as text", content_type = "text/plain", body = String),
        (status = 403, description = "The verify token does not match", body = Problem),
    )
)]
#[get("/v1/channels/{id}/meta")]
pub async fn verify_meta_webhook(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<Handshake>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let refused = || ApiError::Domain(domain::DomainError::Forbidden);
    let found = crate::db::read(&state.store, move |conn| {
        Ok(persistence::repo::channels::get_with_secret(
            conn,
            domain::ChannelId(id),
        )?)
    })
    .await?;
    let Some((channel, secrets)) =
        found.filter(|(channel, _)| channel.provider == ChannelProvider::Meta)
    else {
        return Err(refused());
    };
    let opened = providers::open(&state, &channel, secrets)?;
    let challenge = meta::handshake(
        &opened,
        query.mode.as_deref(),
        query.verify_token.as_deref(),
        query.challenge.as_deref(),
    )
    .ok_or_else(refused)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(challenge.to_string()))
}

/// Meta's webhook: WhatsApp Cloud API messages and statuses, Messenger and Instagram
/// messages, in batches. Every message of a batch is stored, idempotent on its id.
#[utoipa::path(
    tag = "channels",
    operation_id = "receive_meta_event",
    security(("meta_signature" = [])),
    params(
        ("id" = i64, Path, description = "Channel id"),
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex HMAC-SHA256 of the raw body with the app secret>`"),
    ),
    request_body(content = Object, description = "Meta's webhook payload (`object`, `entry[]`)"),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, body = Problem),
        (status = 401, description = "Bad or missing signature", body = Problem),
    )
)]
#[post("/v1/channels/{id}/meta")]
pub async fn receive_meta_event(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<i64>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    take(
        &state,
        ChannelProvider::Meta,
        Purpose::Messages,
        id,
        &request,
        &body,
    )
    .await?;
    Ok(HttpResponse::Ok().finish())
}
