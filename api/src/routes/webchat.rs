//! The web chat widget's visitor API. A visitor has no account: the widget starts a
//! session with the channel's public `widget_token` and then carries the session's
//! short-lived `visitor_token`. Every request is checked against the channel's allowed
//! origins (403 `origin_not_allowed`) and rate limited per visitor and per client address
//! (429 `rate_limited`). The visitor sees their own thread only, never notes.

use actix_multipart::Multipart;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, get, post, web};
use futures_util::TryStreamExt;
use openapi::{
    ErrorCode, Problem, SendVisitorMessage, StartVisitorSession, UploadForm, VisitorAttachment,
    VisitorMessage, VisitorSession, VisitorThread, VisitorThreadQuery,
};
use persistence::repo::visitors::{self, Visitor};
use persistence::repo::{attachments as stored_files, channels, messages};

use crate::auth::{bearer_token, random_token, sha256_hex};
use crate::body::Json;
use crate::db;
use crate::error::ApiError;
use crate::providers::{self, webchat};
use crate::routes::attachments::{bad_multipart, drain, store_part};
use crate::service::events;
use crate::service::{attachments, present, webchat as chat};
use crate::state::AppState;

const PREFIX: &str = "/v1/webchat/";

/// CORS for the visitor API: preflights are answered here (any origin may ask; the real
/// request is what the channel's allowed origins decide), and every answer to a page of an
/// allowed origin says so, errors included, so the widget can read them.
pub async fn cors(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if !request.path().starts_with(PREFIX) {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    if request.method() == Method::OPTIONS {
        let mut preflight = HttpResponse::NoContent();
        if let Some(origin) = origin {
            preflight
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
                .insert_header((header::VARY, "Origin"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "authorization, content-type",
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
        }
        return Ok(request
            .into_response(preflight.finish())
            .map_into_boxed_body());
    }
    let mut response = next.call(request).await?.map_into_boxed_body();
    let refused = response
        .response()
        .error()
        .and_then(|error| error.as_error::<ApiError>())
        .is_some_and(|error| error.code() == ErrorCode::OriginNotAllowed);
    if let Some(origin) = origin.filter(|_| !refused) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
    }
    Ok(response)
}

fn origin_of(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
}

fn limit(state: &AppState, key: &str) -> Result<(), ApiError> {
    state
        .visitors
        .hit(key)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })
}

/// An authenticated visitor and their channel.
pub(crate) struct VisitorCaller {
    pub visitor: Visitor,
    pub channel: domain::Channel,
}

/// The visitor of the request's token (`Authorization: Bearer`, or `?visitor_token=` where
/// browsers cannot set headers), from an allowed origin, within their rate.
pub(crate) async fn visitor(
    state: &AppState,
    request: &HttpRequest,
) -> Result<VisitorCaller, ApiError> {
    let token = bearer_token(request)
        .or_else(|| {
            web::Query::<std::collections::HashMap<String, String>>::from_query(
                request.query_string(),
            )
            .ok()
            .and_then(|query| query.get("visitor_token").cloned())
        })
        .ok_or(ApiError::Unauthenticated(
            "send Authorization: Bearer <visitor_token>",
        ))?;
    let hash = sha256_hex(&token);
    let found = db::read(&state.store, move |conn| {
        let Some(visitor) = visitors::find_live(conn, &hash, persistence::now())? else {
            return Ok(None);
        };
        Ok(channels::get_with_secret(conn, visitor.channel_id)?.map(|found| (visitor, found)))
    })
    .await?;
    let Some((visitor, (channel, secrets))) =
        found.filter(|(_, (channel, _))| channel.provider == domain::ChannelProvider::Webchat)
    else {
        return Err(ApiError::Unauthenticated(
            "the visitor token is unknown or has expired; start a new session",
        ));
    };
    let opened = providers::open(state, &channel, secrets)?;
    if !webchat::origin_allowed(&webchat::allowed_origins(&opened), origin_of(request)) {
        return Err(ApiError::OriginNotAllowed);
    }
    limit(state, &format!("visitor:{}", visitor.id))?;
    Ok(VisitorCaller { visitor, channel })
}

/// Starts a visitor's session on the web chat whose widget token this is: a contact of
/// their own (named by what they typed) and a conversation agents see from now on. Call
/// it when the visitor opens the chat to write.
#[utoipa::path(
    tag = "webchat",
    operation_id = "start_visitor_session",
    params(("widget_token" = String, Path, description = "The channel's `widget_token`")),
    request_body = StartVisitorSession,
    responses(
        (status = 201, body = VisitorSession),
        (status = 403, description = "`origin_not_allowed`", body = Problem),
        (status = 404, description = "No web chat has this widget token", body = Problem),
        (status = 422, body = Problem),
        (status = 429, body = Problem),
    )
)]
#[post("/v1/webchat/{widget_token}/sessions")]
pub async fn start_visitor_session(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Json<StartVisitorSession>,
) -> Result<HttpResponse, ApiError> {
    let widget = path.into_inner();
    limit(
        &state,
        &format!("address:{}", super::auth::client_address(&state, &request)),
    )?;
    let found = db::read(&state.store, move |conn| {
        Ok(channels::find_by_widget_token(conn, &widget)?)
    })
    .await?;
    let (channel, sealed) = found
        .filter(|(channel, _)| channel.provider == domain::ChannelProvider::Webchat)
        .ok_or_else(ApiError::not_found)?;
    let secrets = channels::ChannelSecrets {
        inbound_secret: String::new(),
        credentials: sealed,
    };
    let opened = providers::open(&state, &channel, secrets)?;
    if !webchat::origin_allowed(&webchat::allowed_origins(&opened), origin_of(&request)) {
        return Err(ApiError::OriginNotAllowed);
    }
    let token = random_token(32);
    let (hash, key) = (sha256_hex(&token), random_token(16));
    let expires_at = persistence::now()
        + chrono::TimeDelta::seconds(
            i64::try_from(state.config.visitor_token_ttl).unwrap_or(i64::MAX),
        );
    let started = body.into_inner();
    let (visitor, conversation) = events::write(&state, move |conn, outbox| {
        chat::start(conn, &channel, &key, &started, &hash, expires_at, outbox)
    })
    .await?;
    Ok(HttpResponse::Created().json(VisitorSession {
        visitor_token: token,
        conversation_id: conversation.get(),
        expires_at: visitor.expires_at,
    }))
}

/// The visitor's conversation (the open one, or the last closed one): their messages and
/// the agents' replies, never notes, oldest first; `before` pages back.
#[utoipa::path(
    tag = "webchat",
    operation_id = "list_visitor_messages",
    security(("visitor" = [])),
    params(VisitorThreadQuery),
    responses(
        (status = 200, body = VisitorThread),
        (status = 400, body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "`origin_not_allowed`", body = Problem),
        (status = 429, body = Problem),
    )
)]
#[get("/v1/webchat/messages")]
pub async fn list_visitor_messages(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<VisitorThreadQuery>,
) -> Result<web::Json<VisitorThread>, ApiError> {
    let caller = visitor(&state, &request).await?;
    let before = match query.before.as_deref() {
        None => None,
        Some(cursor) => Some(
            cursor
                .parse::<i64>()
                .map_err(|_| ApiError::BadRequest("before must be a next_cursor".into()))?,
        ),
    };
    let limit = query.limit.unwrap_or(50);
    let reader = state.clone();
    let thread = db::read(&state.store, move |conn| {
        chat::thread(conn, &reader, &caller.visitor, before, limit)
    })
    .await?;
    Ok(web::Json(thread))
}

/// The visitor writes: into their open conversation, or, after it was closed, a new one.
#[utoipa::path(
    tag = "webchat",
    operation_id = "send_visitor_message",
    security(("visitor" = [])),
    request_body = SendVisitorMessage,
    responses(
        (status = 201, body = VisitorMessage),
        (status = 400, body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "`origin_not_allowed`", body = Problem),
        (status = 422, body = Problem),
        (status = 429, body = Problem),
    )
)]
#[post("/v1/webchat/messages")]
pub async fn send_visitor_message(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Json<SendVisitorMessage>,
) -> Result<HttpResponse, ApiError> {
    let VisitorCaller { visitor, channel } = visitor(&state, &request).await?;
    let sent = body.into_inner();
    let org = channel.org_id;
    // Tabs writing at once after a close: the visitor's contact is locked first, so the
    // second waits and then finds the conversation the first opened.
    let id = events::write(&state, move |conn, outbox| {
        chat::send(conn, &channel, &visitor, &sent, outbox)
    })
    .await?;
    let message = db::read(&state.store, move |conn| {
        let stored = messages::get(conn, org, id)?.ok_or_else(ApiError::not_found)?;
        present::full_message(conn, stored)
    })
    .await?;
    let shown = chat::for_visitor(&state, &message)
        .ok_or_else(|| ApiError::Internal("a visitor's own message is hidden from them".into()))?;
    Ok(HttpResponse::Created().json(shown))
}

/// Uploads a file for the visitor's next message (`attachment_ids`), checked like an
/// agent's: images, PDF, vCard, audio, video.
#[utoipa::path(
    tag = "webchat",
    operation_id = "upload_visitor_attachment",
    security(("visitor" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = VisitorAttachment),
        (status = 400, body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "`origin_not_allowed`", body = Problem),
        (status = 413, body = Problem),
        (status = 415, body = Problem),
        (status = 429, body = Problem),
    )
)]
#[post("/v1/webchat/attachments")]
pub async fn upload_visitor_attachment(
    state: web::Data<AppState>,
    request: HttpRequest,
    mut form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let VisitorCaller { visitor, channel } = visitor(&state, &request).await?;
    let mut file = None;
    while let Some(field) = form.try_next().await.map_err(bad_multipart)? {
        if field.name() != Some("file") || file.is_some() {
            drain(field).await?;
            continue;
        }
        file = Some(store_part(&state, channel.org_id, field).await?);
    }
    let file = file.ok_or_else(|| {
        ApiError::BadRequest("send the file in a multipart part named `file`".into())
    })?;
    let key = file.key.clone();
    let recorded = db::write(&state.store, move |conn| {
        let stored = attachments::record(conn, channel.org_id, None, None, &file)?;
        stored_files::set_visitor(conn, stored.id, visitor.id)?;
        Ok(stored)
    })
    .await;
    match recorded {
        Ok(stored) => Ok(HttpResponse::Created().json(VisitorAttachment {
            id: stored.id,
            content_type: stored.content_type.clone(),
            size: stored.size,
            filename: stored.filename.clone(),
            url: state
                .links
                .url(&state.config.public_base(), stored.id, chrono::Utc::now()),
        })),
        Err(error) => {
            // Not recorded: the bytes are nobody's.
            state.storage.remove(&key).await;
            Err(error)
        }
    }
}

/// The visitor's WebSocket: the agents' replies (`message.created`, never notes) and
/// `typing` in the visitor's conversation, as `{"type", "at", "data"}` frames. Missed frames
/// are not replayed: after a reconnect the widget loads `GET /v1/webchat/messages`.
#[utoipa::path(
    tag = "webchat",
    operation_id = "connect_visitor_websocket",
    params(("visitor_token" = String, Query, description = "The session's visitor token (browsers cannot set headers on a WebSocket)")),
    responses(
        (status = 101, description = "Switching protocols"),
        (status = 400, body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "`origin_not_allowed`", body = Problem),
        (status = 429, body = Problem),
    )
)]
#[get("/v1/webchat/ws")]
pub async fn connect_visitor_websocket(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let VisitorCaller { visitor, channel } = visitor(&state, &request).await?;
    let (response, session, stream) = actix_ws::handle(&request, body)
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let stream = stream
        .max_frame_size(crate::live::MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(crate::live::MAX_FRAME);
    actix_web::rt::spawn(crate::live::visitor::run(
        state.into_inner(),
        visitor,
        channel,
        session,
        stream,
    ));
    Ok(response)
}
