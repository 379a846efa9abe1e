//! A stand-in for Meta's Graph API on 127.0.0.1: WhatsApp Cloud API sends and media, and the
//! Messenger / Instagram Send API, checked as Graph checks them and answered in Graph's
//! shapes (its error JSON included). Also the webhook side: `X-Hub-Signature-256` and
//! payload builders shaped as Meta's docs show them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The access token the fake accepts (as a `Bearer`, or an `access_token` query param).
pub(crate) const ACCESS_TOKEN: &str =
    "EAAGm0PX4ZCpsBAKZBZAe2ZCfAkeSwItChB0aRdZC5kZBZCtEsTtOkEn0nLyZD";
/// The app secret that signs webhooks (`X-Hub-Signature-256`).
pub(crate) const APP_SECRET: &str = "5f2b8e1c9a7d4036b1e8c2f5a9d3e7b0";
/// The webhook verify token (`hub.verify_token`).
pub(crate) const VERIFY_TOKEN: &str = "switchboard-verify-token";
/// The WhatsApp business phone number's id: the only one `/{id}/messages` sends from.
pub(crate) const PHONE_NUMBER_ID: &str = "106540352242922";
/// That number as WhatsApp webhooks display it.
pub(crate) const DISPLAY_PHONE_NUMBER: &str = "15550783881";
/// The WhatsApp Business Account: `entry[].id` of WhatsApp webhooks.
pub(crate) const WABA_ID: &str = "102290129340398";
/// The Facebook Page (Messenger).
pub(crate) const PAGE_ID: &str = "1234567890123456";
/// The Instagram professional account.
pub(crate) const IG_ACCOUNT_ID: &str = "17841400000000000";
/// The only Graph API version served: requests go to `{url}/v21.0/…`.
pub(crate) const GRAPH_VERSION: &str = "v21.0";
/// Every wait gives up (and fails) after this long.
const PATIENCE: Duration = Duration::from_secs(10);
/// WhatsApp refuses a longer `text.body`.
const MAX_WHATSAPP_TEXT: usize = 4096;
/// Messenger refuses a longer `message.text`.
const MAX_MESSENGER_TEXT: usize = 2000;

/// One POST to a `…/messages` edge as received, and what the fake answered.
#[derive(Debug, Clone)]
pub(crate) struct GraphSend {
    /// The request path, e.g. `/v21.0/106540352242922/messages`.
    pub(crate) path: String,
    /// The request carried `ACCESS_TOKEN`.
    pub(crate) authorized: bool,
    /// The request's `Content-Type`, if any.
    pub(crate) content_type: Option<String>,
    /// The JSON body (`Null` if it was not JSON).
    pub(crate) body: Value,
    /// The HTTP status answered.
    pub(crate) answered: u16,
    /// The sent message's id (`wamid.…` or `m_…`), when answered 200.
    pub(crate) id: Option<String>,
}

/// A Graph error, as answered.
struct GraphError {
    status: u16,
    message: String,
    kind: &'static str,
    code: i64,
    subcode: Option<i64>,
    details: Option<String>,
}

impl GraphError {
    /// `(#100) …`, an invalid parameter.
    fn param(message: impl Into<String>) -> GraphError {
        GraphError {
            status: 400,
            message: format!("(#100) {}", message.into()),
            kind: "OAuthException",
            code: 100,
            subcode: None,
            details: None,
        }
    }

    /// Code 100, subcode 33: no such object, or no such operation on it.
    fn unsupported(method: &str, id: &str) -> GraphError {
        GraphError {
            status: 400,
            message: format!(
                "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be \
                 loaded due to missing permissions, or does not support this operation. Please \
                 read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
            kind: "GraphMethodException",
            code: 100,
            subcode: Some(33),
            details: None,
        }
    }

    fn invalid_token() -> GraphError {
        GraphError {
            status: 401,
            message: "Invalid OAuth access token - Cannot parse access token".into(),
            kind: "OAuthException",
            code: 190,
            subcode: None,
            details: None,
        }
    }

    fn unknown_path(path: &str) -> GraphError {
        GraphError {
            status: 400,
            message: format!("Unknown path components: {path}"),
            kind: "OAuthException",
            code: 2500,
            subcode: None,
            details: None,
        }
    }

    fn response(&self) -> HttpResponse {
        let mut error = Map::new();
        error.insert("message".into(), json!(self.message));
        error.insert("type".into(), json!(self.kind));
        error.insert("code".into(), json!(self.code));
        if let Some(subcode) = self.subcode {
            error.insert("error_subcode".into(), json!(subcode));
        }
        if let Some(details) = &self.details {
            error.insert(
                "error_data".into(),
                json!({"messaging_product": "whatsapp", "details": details}),
            );
        }
        error.insert("fbtrace_id".into(), json!(fbtrace_id()));
        let status = StatusCode::from_u16(self.status).expect("a valid status");
        let mut response = HttpResponse::build(status);
        if self.code == 190 {
            response.insert_header((
                "WWW-Authenticate",
                format!(
                    "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
                    self.message
                ),
            ));
        }
        response.json(json!({ "error": error }))
    }
}

#[derive(Clone)]
struct Media {
    bytes: Vec<u8>,
    mime_type: String,
    /// `/whatsapp_media/…?ext=…`, where the metadata points.
    download: String,
}

struct Log {
    /// `http://127.0.0.1:PORT`.
    base: String,
    sends: Mutex<Vec<GraphSend>>,
    failures: Mutex<VecDeque<GraphError>>,
    /// Media by id.
    media: Mutex<HashMap<String, Media>>,
    /// Media ids by download path (`/whatsapp_media/…`).
    downloads: Mutex<HashMap<String, String>>,
    fetches: Mutex<Vec<(String, bool)>>,
}

/// The Graph API on 127.0.0.1: records every message POST and media fetch.
pub(crate) struct FakeGraph {
    /// Base URL, `http://127.0.0.1:PORT`, no trailing slash; requests go to `{url}/v21.0/…`.
    pub(crate) url: String,
    log: Arc<Log>,
    handle: actix_web::dev::ServerHandle,
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

/// Graph's request trace id: 23 URL-safe base64 characters.
fn fbtrace_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(17))[..23].to_string()
}

/// A WhatsApp message id: `wamid.` and base64 of the recipient and a random id.
fn wamid(wa_id: &str) -> String {
    let mut raw = vec![0x1c, 0x18, wa_id.len() as u8];
    raw.extend_from_slice(wa_id.as_bytes());
    raw.extend_from_slice(b"\x15\x02\x00\x11\x18\x12");
    raw.extend_from_slice(hex::encode_upper(random_bytes(9)).as_bytes());
    raw.push(0);
    format!("wamid.{}", STANDARD.encode(raw))
}

/// A Messenger message id: `m_` and URL-safe base64.
fn mid() -> String {
    format!("m_{}", URL_SAFE_NO_PAD.encode(random_bytes(60)))
}

/// A numeric Graph object id, 16 digits.
fn numeric_id() -> String {
    let low = 1_000_000_000_000_000_u64;
    (low + rand::random::<u64>() % (9 * low)).to_string()
}

/// The file extension Meta's media URLs carry for a MIME type.
fn extension(mime_type: &str) -> &'static str {
    match mime_type.split(';').next().unwrap_or("").trim() {
        "image/jpeg" => "jpeg",
        "image/png" => "png",
        "image/webp" => "webp",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/aac" => "aac",
        "audio/mp4" => "m4a",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => "bin",
    }
}

/// The access token of a request: its `Bearer`, else its `access_token` query param.
fn token(request: &HttpRequest) -> Option<String> {
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    bearer.or_else(|| {
        form_urlencoded::parse(request.query_string().as_bytes())
            .find(|(key, _)| key == "access_token")
            .map(|(_, value)| value.into_owned())
    })
}

fn authorized(request: &HttpRequest) -> bool {
    token(request).as_deref() == Some(ACCESS_TOKEN)
}

/// An absolute http(s) URL with a host.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !url.contains(char::is_whitespace)
    })
}

fn non_empty_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

/// Keys an object of each WhatsApp message type may carry.
fn whatsapp_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "text" => &["body", "preview_url"],
        "image" | "video" => &["link", "id", "caption"],
        "document" => &["link", "id", "caption", "filename"],
        "audio" | "sticker" => &["link", "id"],
        "reaction" => &["message_id", "emoji"],
        "template" => &["name", "language", "components"],
        _ => return None,
    })
}

/// Checks a WhatsApp Cloud API send; answers the recipient's `wa_id`.
fn check_whatsapp(body: &Value) -> Result<String, GraphError> {
    match body.get("messaging_product") {
        None | Some(Value::Null) => {
            return Err(GraphError::param(
                "The parameter messaging_product is required.",
            ));
        }
        Some(Value::String(product)) if product == "whatsapp" => {}
        Some(other) => {
            return Err(GraphError::param(format!(
                "Param messaging_product must be one of {{WHATSAPP}} - got {other}."
            )));
        }
    }
    if let Some(recipient_type) = body.get("recipient_type")
        && recipient_type != "individual"
    {
        return Err(GraphError::param(format!(
            "Param recipient_type must be one of {{INDIVIDUAL}} - got {recipient_type}."
        )));
    }
    let Some(to) = non_empty_str(body, "to") else {
        return Err(GraphError::param("The parameter to is required."));
    };
    let digits = to.strip_prefix('+').unwrap_or(to);
    if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GraphError {
            status: 400,
            message: "(#131009) Parameter value is not valid".into(),
            kind: "OAuthException",
            code: 131009,
            subcode: None,
            details: Some(format!(
                "Invalid parameter 'to': {to} is not a phone number"
            )),
        });
    }
    let kind = match body.get("type") {
        None => "text",
        Some(Value::String(kind)) => kind.as_str(),
        Some(other) => {
            return Err(GraphError::param(format!(
                "Param type must be a string - got {other}."
            )));
        }
    };
    let Some(allowed) = whatsapp_keys(kind) else {
        return Err(GraphError::param(format!(
            "Param type must be one of {{AUDIO, DOCUMENT, IMAGE, REACTION, STICKER, TEMPLATE, \
             TEXT, VIDEO}} - got \"{kind}\"."
        )));
    };
    let Some(object) = body.get(kind).and_then(Value::as_object) else {
        return Err(GraphError::param(format!(
            "The parameter {kind} is required."
        )));
    };
    if let Some(key) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(GraphError::param(format!(
            "Unexpected key \"{key}\" on param \"{kind}\"."
        )));
    }
    let object = Value::Object(object.clone());
    match kind {
        "text" => {
            let Some(text) = non_empty_str(&object, "body") else {
                return Err(GraphError::param("The parameter text['body'] is required."));
            };
            if text.chars().count() > MAX_WHATSAPP_TEXT {
                return Err(GraphError::param(format!(
                    "Param text['body'] must be at most {MAX_WHATSAPP_TEXT} characters long."
                )));
            }
            if let Some(preview) = object.get("preview_url")
                && !preview.is_boolean()
            {
                return Err(GraphError::param(
                    "Param text['preview_url'] must be a boolean.",
                ));
            }
        }
        "reaction" => {
            if non_empty_str(&object, "message_id").is_none() {
                return Err(GraphError::param(
                    "The parameter reaction['message_id'] is required.",
                ));
            }
            if !object.get("emoji").is_some_and(Value::is_string) {
                return Err(GraphError::param(
                    "The parameter reaction['emoji'] is required.",
                ));
            }
        }
        "template" => {
            if non_empty_str(&object, "name").is_none() {
                return Err(GraphError::param(
                    "The parameter template['name'] is required.",
                ));
            }
            if object
                .get("language")
                .and_then(|language| non_empty_str(language, "code"))
                .is_none()
            {
                return Err(GraphError::param(
                    "The parameter template['language']['code'] is required.",
                ));
            }
        }
        _ => {
            let link = non_empty_str(&object, "link");
            let id = non_empty_str(&object, "id");
            match (link, id) {
                (None, None) => {
                    return Err(GraphError::param(format!(
                        "The parameter {kind}['link'] or {kind}['id'] is required."
                    )));
                }
                (Some(_), Some(_)) => {
                    return Err(GraphError::param(format!(
                        "Only one of {kind}['link'] and {kind}['id'] may be given."
                    )));
                }
                (Some(link), None) if !is_http_url(link) => {
                    return Err(GraphError::param(format!(
                        "Param {kind}['link'] must be a valid URL."
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(digits.to_string())
}

/// Checks a Messenger / Instagram Send API call; answers the recipient id.
fn check_messenger(body: &Value, needs_messaging_type: bool) -> Result<String, GraphError> {
    let Some(recipient) = body.get("recipient").filter(|value| !value.is_null()) else {
        return Err(GraphError::param("The parameter recipient is required"));
    };
    let recipient_id = match recipient.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => return Err(GraphError::param("param recipient[id] must be non-empty.")),
    };
    match body.get("messaging_type").and_then(Value::as_str) {
        None if needs_messaging_type => {
            return Err(GraphError::param(
                "The parameter messaging_type is required",
            ));
        }
        None | Some("RESPONSE" | "UPDATE") => {}
        Some("MESSAGE_TAG") => {
            let tags = [
                "ACCOUNT_UPDATE",
                "CONFIRMED_EVENT_UPDATE",
                "POST_PURCHASE_UPDATE",
                "HUMAN_AGENT",
            ];
            match body.get("tag").and_then(Value::as_str) {
                Some(tag) if tags.contains(&tag) => {}
                None => return Err(GraphError::param("The parameter tag is required")),
                Some(tag) => {
                    return Err(GraphError::param(format!(
                        "Param tag must be one of {{{}}} - got \"{tag}\".",
                        tags.join(", ")
                    )));
                }
            }
        }
        Some(other) => {
            return Err(GraphError::param(format!(
                "Param messaging_type must be one of {{RESPONSE, UPDATE, MESSAGE_TAG}} - got \
                 \"{other}\"."
            )));
        }
    }
    let message = match (body.get("message"), body.get("sender_action")) {
        (None | Some(Value::Null), Some(Value::String(action)))
            if ["typing_on", "typing_off", "mark_seen"].contains(&action.as_str()) =>
        {
            return Ok(recipient_id);
        }
        (None | Some(Value::Null), _) => {
            return Err(GraphError::param("The parameter message is required"));
        }
        (Some(message), _) => message,
    };
    let text = message.get("text").filter(|value| !value.is_null());
    let attachment = message.get("attachment").filter(|value| !value.is_null());
    match (text, attachment) {
        (Some(_), Some(_)) => Err(GraphError::param(
            "Only one of message[text] and message[attachment] can be specified",
        )),
        (None, None) => Err(GraphError::param(
            "The parameter message[text] or message[attachment] is required",
        )),
        (Some(text), None) => {
            let Some(text) = text.as_str().filter(|text| !text.is_empty()) else {
                return Err(GraphError::param("param message[text] must be non-empty."));
            };
            if text.chars().count() > MAX_MESSENGER_TEXT {
                return Err(GraphError::param(format!(
                    "Length of param message[text] must be less than or equal to \
                     {MAX_MESSENGER_TEXT}"
                )));
            }
            Ok(recipient_id)
        }
        (None, Some(attachment)) => {
            let kind = attachment.get("type").and_then(Value::as_str);
            if !kind.is_some_and(|kind| ["image", "audio", "video", "file"].contains(&kind)) {
                return Err(GraphError::param(format!(
                    "Param message[attachment][type] must be one of {{image, audio, video, \
                     file}} - got {}.",
                    attachment.get("type").unwrap_or(&Value::Null)
                )));
            }
            let Some(payload) = attachment.get("payload").filter(|p| p.is_object()) else {
                return Err(GraphError::param(
                    "The parameter message[attachment][payload] is required",
                ));
            };
            if let Some(reusable) = payload.get("is_reusable")
                && !reusable.is_boolean()
            {
                return Err(GraphError::param(
                    "Param message[attachment][payload][is_reusable] must be a boolean",
                ));
            }
            match (
                non_empty_str(payload, "url"),
                payload.get("attachment_id").filter(|id| !id.is_null()),
            ) {
                (Some(url), None) if is_http_url(url) => Ok(recipient_id),
                (None, Some(_)) => Ok(recipient_id),
                (Some(_), None) => Err(GraphError::param(
                    "Param message[attachment][payload][url] must be a valid URL",
                )),
                _ => Err(GraphError::param(
                    "One of message[attachment][payload][url] or \
                     message[attachment][payload][attachment_id] is required",
                )),
            }
        }
    }
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|mime| mime.trim() == "application/json")
    })
}

/// A POST to `/{node}/messages`.
fn send(log: &Log, request: &HttpRequest, node: &str, raw: &Bytes) -> HttpResponse {
    let authorized = authorized(request);
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let parsed: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    // Graph reads a JSON body only when it says it is JSON.
    let body = if is_json(content_type.as_deref()) {
        parsed.clone()
    } else {
        Value::Null
    };
    let outcome = if !authorized {
        Err(GraphError::invalid_token())
    } else if let Some(failure) = log.failures.lock().expect("failures lock").pop_front() {
        Err(failure)
    } else if node == PHONE_NUMBER_ID {
        check_whatsapp(&body).map(|wa_id| {
            let id = wamid(&wa_id);
            let to = body["to"].clone();
            let answer = json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": wa_id}],
                "messages": [{"id": id}],
            });
            (answer, Some(id))
        })
    } else if node == "me" || node == PAGE_ID || node == IG_ACCOUNT_ID {
        // Instagram's Send API does not ask for messaging_type; Messenger's does.
        check_messenger(&body, node != IG_ACCOUNT_ID).map(|recipient_id| {
            if body.get("message").is_none_or(Value::is_null) {
                (json!({"recipient_id": recipient_id}), None)
            } else {
                let id = mid();
                (
                    json!({"recipient_id": recipient_id, "message_id": id}),
                    Some(id),
                )
            }
        })
    } else {
        Err(GraphError::unsupported("post", node))
    };
    let (response, answered, id) = match outcome {
        Ok((answer, id)) => (HttpResponse::Ok().json(answer), 200, id),
        Err(error) => (error.response(), error.status, None),
    };
    log.sends.lock().expect("sends lock").push(GraphSend {
        path: request.path().to_string(),
        authorized,
        content_type,
        body: parsed,
        answered,
        id,
    });
    response
}

/// A GET of `/{media_id}`: the media's metadata.
fn media_metadata(log: &Log, request: &HttpRequest, media_id: &str) -> HttpResponse {
    let authorized = authorized(request);
    log.fetches
        .lock()
        .expect("fetches lock")
        .push((request.path().to_string(), authorized));
    if !authorized {
        return GraphError::invalid_token().response();
    }
    let Some(media) = log.media.lock().expect("media lock").get(media_id).cloned() else {
        return GraphError::unsupported("get", media_id).response();
    };
    HttpResponse::Ok().json(json!({
        "messaging_product": "whatsapp",
        "url": format!("{}{}", log.base, media.download),
        "mime_type": media.mime_type,
        "sha256": hex::encode(Sha256::digest(&media.bytes)),
        "file_size": media.bytes.len(),
        "id": media_id,
    }))
}

/// A GET of a media URL from the metadata: the bytes, for the bearer only.
fn media_download(log: &Log, request: &HttpRequest) -> HttpResponse {
    let path = request.path().to_string();
    let authorized = authorized(request);
    log.fetches
        .lock()
        .expect("fetches lock")
        .push((path.clone(), authorized));
    if !authorized {
        return GraphError::invalid_token().response();
    }
    let media = log
        .downloads
        .lock()
        .expect("downloads lock")
        .get(&path)
        .and_then(|id| log.media.lock().expect("media lock").get(id).cloned());
    match media {
        Some(media) => HttpResponse::Ok()
            .content_type(media.mime_type.as_str())
            .body(media.bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn endpoint(log: web::Data<Log>, request: HttpRequest, raw: Bytes) -> HttpResponse {
    let path = request.path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = request.method().clone();
    match parts.as_slice() {
        ["whatsapp_media", _] if method == Method::GET => media_download(&log, &request),
        [version, node, "messages"] if *version == GRAPH_VERSION && method == Method::POST => {
            send(&log, &request, node, &raw)
        }
        [version, node] if *version == GRAPH_VERSION && method == Method::GET => {
            media_metadata(&log, &request, node)
        }
        _ if !authorized(&request) => GraphError::invalid_token().response(),
        [version, node, ..] if *version == GRAPH_VERSION => {
            GraphError::unsupported(&method.as_str().to_lowercase(), node).response()
        }
        _ => GraphError::unknown_path(&path).response(),
    }
}

impl FakeGraph {
    /// Listening on 127.0.0.1, accepting `ACCESS_TOKEN`.
    pub(crate) async fn start() -> FakeGraph {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake Graph");
        let addr = listener.local_addr().expect("fake Graph address");
        let url = format!("http://{addr}");
        let log = Arc::new(Log {
            base: url.clone(),
            sends: Mutex::new(Vec::new()),
            failures: Mutex::new(VecDeque::new()),
            media: Mutex::new(HashMap::new()),
            downloads: Mutex::new(HashMap::new()),
            fetches: Mutex::new(Vec::new()),
        });
        let data = web::Data::from(log.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(endpoint))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .expect("fake Graph listens")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        FakeGraph { url, log, handle }
    }

    /// Every POST to a `…/messages` edge so far, refused ones included.
    pub(crate) fn sent(&self) -> Vec<GraphSend> {
        self.log.sends.lock().expect("sends lock").clone()
    }

    /// Waits up to 10 s until at least `n` message POSTs arrived.
    pub(crate) async fn wait_for_sends(&self, n: usize) -> Vec<GraphSend> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let sent = self.sent();
            if sent.len() >= n {
                return sent;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} sends, the fake Graph saw {}: {sent:?}",
                sent.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next authorized message POST answers `http_status` with Graph's error JSON
    /// (`code`, `message`, `error_data.details`); calls queue up.
    pub(crate) fn fail_next(&self, http_status: u16, code: i64, message: &str) {
        self.log
            .failures
            .lock()
            .expect("failures lock")
            .push_back(GraphError {
                status: http_status,
                message: message.to_string(),
                kind: "OAuthException",
                code,
                subcode: None,
                details: Some(message.to_string()),
            });
    }

    /// Stores media of an inbound WhatsApp message; returns its media id.
    pub(crate) fn add_media(&self, bytes: Vec<u8>, mime_type: &str) -> String {
        let id = numeric_id();
        let download = format!("/whatsapp_media/{}", hex::encode(random_bytes(16)));
        self.log
            .downloads
            .lock()
            .expect("downloads lock")
            .insert(download.clone(), id.clone());
        self.log.media.lock().expect("media lock").insert(
            id.clone(),
            Media {
                bytes,
                mime_type: mime_type.to_string(),
                download: format!("{download}?ext={}", extension(mime_type)),
            },
        );
        id
    }

    /// Each media GET so far, of metadata (`/v21.0/{id}`) and of bytes
    /// (`/whatsapp_media/…`): path, and whether it carried `ACCESS_TOKEN`.
    pub(crate) fn media_fetches(&self) -> Vec<(String, bool)> {
        self.log.fetches.lock().expect("fetches lock").clone()
    }

    /// Stops listening.
    pub(crate) async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// `sha256=<hex HMAC-SHA256 of body keyed with app_secret>`, the `X-Hub-Signature-256` header.
pub(crate) fn hub_signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A stand-in for the SHA-256 (base64, as webhooks give it) of media named only by id.
fn media_hash(media_id: &str) -> String {
    STANDARD.encode(Sha256::digest(media_id.as_bytes()))
}

/// A WhatsApp `messages` webhook for `phone_number_id`: contacts (`wa_id`, profile name) and
/// messages, in one change of one entry.
pub(crate) fn whatsapp_messages(
    phone_number_id: &str,
    messages: Vec<Value>,
    contacts: Vec<(&str, &str)>,
) -> Value {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": DISPLAY_PHONE_NUMBER,
            "phone_number_id": phone_number_id,
        },
    });
    if !contacts.is_empty() {
        value["contacts"] = contacts
            .into_iter()
            .map(|(wa_id, name)| json!({"profile": {"name": name}, "wa_id": wa_id}))
            .collect();
    }
    value["messages"] = Value::Array(messages);
    whatsapp_change(value)
}

fn whatsapp_change(value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": WABA_ID,
            "changes": [{"value": value, "field": "messages"}],
        }],
    })
}

/// An inbound WhatsApp text message (timestamps are strings in webhooks).
pub(crate) fn whatsapp_text(from_wa_id: &str, id: &str, timestamp: i64, body: &str) -> Value {
    json!({
        "from": from_wa_id,
        "id": id,
        "timestamp": timestamp.to_string(),
        "text": {"body": body},
        "type": "text",
    })
}

/// An inbound WhatsApp image, by media id.
pub(crate) fn whatsapp_image(
    from_wa_id: &str,
    id: &str,
    timestamp: i64,
    media_id: &str,
    mime: &str,
    caption: Option<&str>,
) -> Value {
    let mut image = json!({"mime_type": mime, "sha256": media_hash(media_id), "id": media_id});
    if let Some(caption) = caption {
        image["caption"] = json!(caption);
    }
    json!({
        "from": from_wa_id,
        "id": id,
        "timestamp": timestamp.to_string(),
        "type": "image",
        "image": image,
    })
}

/// An inbound WhatsApp audio (`voice`: recorded as a voice note), Ogg/Opus.
pub(crate) fn whatsapp_audio(
    from_wa_id: &str,
    id: &str,
    timestamp: i64,
    media_id: &str,
    voice: bool,
) -> Value {
    json!({
        "from": from_wa_id,
        "id": id,
        "timestamp": timestamp.to_string(),
        "type": "audio",
        "audio": {
            "mime_type": "audio/ogg; codecs=opus",
            "sha256": media_hash(media_id),
            "id": media_id,
            "voice": voice,
        },
    })
}

/// An inbound WhatsApp document, by media id.
pub(crate) fn whatsapp_document(
    from_wa_id: &str,
    id: &str,
    timestamp: i64,
    media_id: &str,
    mime: &str,
    filename: &str,
) -> Value {
    json!({
        "from": from_wa_id,
        "id": id,
        "timestamp": timestamp.to_string(),
        "type": "document",
        "document": {
            "filename": filename,
            "mime_type": mime,
            "sha256": media_hash(media_id),
            "id": media_id,
        },
    })
}

/// An inbound WhatsApp reaction to `reacted_message_id` (an empty emoji removes it).
pub(crate) fn whatsapp_reaction(
    from_wa_id: &str,
    id: &str,
    timestamp: i64,
    reacted_message_id: &str,
    emoji: &str,
) -> Value {
    json!({
        "from": from_wa_id,
        "id": id,
        "timestamp": timestamp.to_string(),
        "type": "reaction",
        "reaction": {"message_id": reacted_message_id, "emoji": emoji},
    })
}

/// A WhatsApp status webhook for one sent message: `sent` and `delivered` carry
/// `conversation` and `pricing`, `failed` carries `errors` (`error` is its code and text).
pub(crate) fn whatsapp_status(
    phone_number_id: &str,
    message_id: &str,
    status: &str,
    recipient_wa_id: &str,
    timestamp: i64,
    error: Option<(i64, &str)>,
) -> Value {
    let mut entry = json!({
        "id": message_id,
        "status": status,
        "timestamp": timestamp.to_string(),
        "recipient_id": recipient_wa_id,
    });
    if status == "sent" || status == "delivered" {
        let mut conversation = json!({
            "id": hex::encode(random_bytes(16)),
            "origin": {"type": "service"},
        });
        if status == "sent" {
            conversation["expiration_timestamp"] = json!((timestamp + 86_400).to_string());
        }
        entry["conversation"] = conversation;
        entry["pricing"] = json!({
            "billable": true,
            "pricing_model": "CBP",
            "category": "service",
        });
    }
    if let Some((code, text)) = error {
        entry["errors"] = json!([{
            "code": code,
            "title": text,
            "message": text,
            "error_data": {"details": text},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        }]);
    }
    whatsapp_change(json!({
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": DISPLAY_PHONE_NUMBER,
            "phone_number_id": phone_number_id,
        },
        "statuses": [entry],
    }))
}

/// A Messenger (`object` "page") or Instagram (`object` "instagram") `messages` webhook:
/// `sender_id` wrote to `recipient_id` (the page or IG account) a text and/or attachments
/// (`(type, url)`).
pub(crate) fn messenger_message(
    object: &str,
    recipient_id: &str,
    sender_id: &str,
    mid: &str,
    timestamp_ms: i64,
    text: Option<&str>,
    attachment_urls: &[(&str, &str)],
) -> Value {
    let mut message = json!({ "mid": mid });
    if let Some(text) = text {
        message["text"] = json!(text);
    }
    if !attachment_urls.is_empty() {
        message["attachments"] = attachment_urls
            .iter()
            .map(|(kind, url)| json!({"type": kind, "payload": {"url": url}}))
            .collect();
    }
    json!({
        "object": object,
        "entry": [{
            "id": recipient_id,
            "time": timestamp_ms,
            "messaging": [{
                "sender": {"id": sender_id},
                "recipient": {"id": recipient_id},
                "timestamp": timestamp_ms,
                "message": message,
            }],
        }],
    })
}

/// A JSON fixture from `fixtures/providers/`.
pub(crate) fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/api/fixtures/providers/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(
        graph: &FakeGraph,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/{GRAPH_VERSION}/{path}", graph.url))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the fake answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    fn whatsapp_path() -> String {
        format!("{PHONE_NUMBER_ID}/messages")
    }

    fn text_send(to: &str, text: &str) -> Value {
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": false, "body": text},
        })
    }

    #[test]
    fn hub_signature_is_the_hmac_github_and_meta_document() {
        // GitHub documents this very HMAC-SHA256 for its `X-Hub-Signature-256`.
        assert_eq!(
            hub_signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        // Computed with Python's hmac module.
        assert_eq!(
            hub_signature(
                APP_SECRET,
                br#"{"object":"whatsapp_business_account","entry":[]}"#
            ),
            "sha256=91352159ba118bc1bc33cb4b543cdcb3e53089039096d9d8d7fffb6c1a7ab1c0"
        );
    }

    #[test]
    fn builders_have_the_documented_shapes() {
        let payload = whatsapp_messages(
            PHONE_NUMBER_ID,
            vec![whatsapp_text("16505551234", "wamid.A", 1_749_416_383, "hi")],
            vec![("16505551234", "Sheena Nelson")],
        );
        let value = &payload["entry"][0]["changes"][0]["value"];
        assert_eq!(payload["object"], "whatsapp_business_account");
        assert_eq!(payload["entry"][0]["changes"][0]["field"], "messages");
        assert_eq!(value["metadata"]["phone_number_id"], PHONE_NUMBER_ID);
        assert_eq!(value["contacts"][0]["profile"]["name"], "Sheena Nelson");
        assert_eq!(value["messages"][0]["timestamp"], "1749416383");
        assert_eq!(value["messages"][0]["text"]["body"], "hi");
        let failed = whatsapp_status(
            PHONE_NUMBER_ID,
            "wamid.B",
            "failed",
            "16505551234",
            1_749_416_383,
            Some((131_047, "Re-engagement message")),
        );
        let status = &failed["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(status["errors"][0]["code"], 131_047);
        assert_eq!(
            status["errors"][0]["error_data"]["details"],
            "Re-engagement message"
        );
        assert!(status.get("pricing").is_none());
        let sent = whatsapp_status(PHONE_NUMBER_ID, "wamid.B", "sent", "1", 1, None);
        let status = &sent["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(status["pricing"]["pricing_model"], "CBP");
        assert!(status["conversation"]["id"].is_string());
        let message = messenger_message(
            "instagram",
            IG_ACCOUNT_ID,
            "1234",
            "m_1",
            1_569_262_485_349,
            None,
            &[("image", "https://example.com/a.jpg")],
        );
        assert_eq!(message["entry"][0]["id"], IG_ACCOUNT_ID);
        let messaging = &message["entry"][0]["messaging"][0];
        assert_eq!(messaging["recipient"]["id"], IG_ACCOUNT_ID);
        assert_eq!(
            messaging["message"]["attachments"][0]["payload"]["url"],
            "https://example.com/a.jpg"
        );
        assert!(messaging["message"].get("text").is_none());
    }

    #[test]
    fn meta_fixtures_name_this_business() {
        for name in [
            "whatsapp_text.json",
            "whatsapp_image.json",
            "whatsapp_failed_status.json",
        ] {
            let payload = fixture(name);
            assert_eq!(payload["object"], "whatsapp_business_account", "{name}");
            assert_eq!(payload["entry"][0]["id"], WABA_ID, "{name}");
            let value = &payload["entry"][0]["changes"][0]["value"];
            assert_eq!(
                value["metadata"]["phone_number_id"], PHONE_NUMBER_ID,
                "{name}"
            );
            assert_eq!(
                value["metadata"]["display_phone_number"], DISPLAY_PHONE_NUMBER,
                "{name}"
            );
        }
        let statuses = fixture("whatsapp_statuses.json");
        let statuses = statuses.as_array().expect("an array of webhooks");
        let names: Vec<&Value> = statuses
            .iter()
            .map(|payload| &payload["entry"][0]["changes"][0]["value"]["statuses"][0]["status"])
            .collect();
        assert_eq!(names, ["sent", "delivered", "read"]);
        for (name, object, id) in [
            ("messenger_text.json", "page", PAGE_ID),
            ("instagram_text.json", "instagram", IG_ACCOUNT_ID),
        ] {
            let payload = fixture(name);
            assert_eq!(payload["object"], object, "{name}");
            assert_eq!(payload["entry"][0]["id"], id, "{name}");
            assert_eq!(
                payload["entry"][0]["messaging"][0]["recipient"]["id"], id,
                "{name}"
            );
            assert!(payload["entry"][0]["messaging"][0]["message"]["mid"].is_string());
        }
    }

    #[actix_web::test]
    async fn a_missing_or_wrong_token_is_refused_with_code_190() {
        let graph = FakeGraph::start().await;
        let body = text_send("16505551234", "hi");
        for token in [None, Some("EAAGwrong")] {
            let (status, answer) = post(&graph, &whatsapp_path(), token, &body).await;
            assert_eq!(status, 401, "{answer}");
            assert_eq!(answer["error"]["code"], 190);
            assert_eq!(answer["error"]["type"], "OAuthException");
            assert_eq!(
                answer["error"]["message"],
                "Invalid OAuth access token - Cannot parse access token"
            );
            assert!(answer["error"]["fbtrace_id"].is_string());
        }
        let sent = graph.wait_for_sends(2).await;
        assert!(
            sent.iter()
                .all(|send| !send.authorized && send.answered == 401)
        );
        assert_eq!(sent[0].body, body);
        // The token may also come as a query param.
        let response = reqwest::Client::new()
            .post(format!(
                "{}/{GRAPH_VERSION}/{}?access_token={ACCESS_TOKEN}",
                graph.url,
                whatsapp_path()
            ))
            .json(&body)
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(response.status().as_u16(), 200);
        graph.stop().await;
    }

    #[actix_web::test]
    async fn a_valid_whatsapp_text_is_sent_and_recorded() {
        let graph = FakeGraph::start().await;
        let body = text_send("+16505551234", "Your order shipped");
        let (status, answer) = post(&graph, &whatsapp_path(), Some(ACCESS_TOKEN), &body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["messaging_product"], "whatsapp");
        assert_eq!(
            answer["contacts"],
            json!([{"input": "+16505551234", "wa_id": "16505551234"}])
        );
        let id = answer["messages"][0]["id"].as_str().expect("an id");
        assert!(id.starts_with("wamid.") && id.len() > 20, "{id}");
        let sent = graph.wait_for_sends(1).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].path, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
        assert!(sent[0].authorized);
        assert_eq!((sent[0].answered, sent[0].id.as_deref()), (200, Some(id)));
        assert_eq!(sent[0].body["text"]["body"], "Your order shipped");
        graph.stop().await;
    }

    #[actix_web::test]
    async fn invalid_whatsapp_sends_are_graph_errors() {
        let graph = FakeGraph::start().await;
        let path = whatsapp_path();
        let cases = [
            (
                json!({"to": "16505551234", "text": {"body": "x"}}),
                "(#100) The parameter messaging_product is required.",
            ),
            (
                json!({"messaging_product": "whatsapp", "text": {"body": "x"}}),
                "(#100) The parameter to is required.",
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "16505551234", "text": {}}),
                "(#100) The parameter text['body'] is required.",
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "16505551234", "text": {"body": "x".repeat(4097)}}),
                "(#100) Param text['body'] must be at most 4096 characters long.",
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "audio", "audio": {"link": "https://example.com/a.ogg", "caption": "no"}}),
                "(#100) Unexpected key \"caption\" on param \"audio\".",
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "image", "image": {}}),
                "(#100) The parameter image['link'] or image['id'] is required.",
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "image"}),
                "(#100) The parameter image is required.",
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "image", "image": {"link": "/a.jpg"}}),
                "(#100) Param image['link'] must be a valid URL.",
            ),
        ];
        for (body, message) in &cases {
            let (status, answer) = post(&graph, &path, Some(ACCESS_TOKEN), body).await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert_eq!(answer["error"]["code"], 100, "{answer}");
            assert_eq!(answer["error"]["message"], *message);
        }
        let document = json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "document",
                              "document": {"id": "1037543291543636", "caption": "Invoice", "filename": "invoice.pdf"}});
        let (status, answer) = post(&graph, &path, Some(ACCESS_TOKEN), &document).await;
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = post(
            &graph,
            "999999999999999/messages",
            Some(ACCESS_TOKEN),
            &text_send("1650555", "x"),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            (
                answer["error"]["code"].as_i64(),
                answer["error"]["error_subcode"].as_i64()
            ),
            (Some(100), Some(33))
        );
        assert_eq!(graph.sent().len(), cases.len() + 2);
        graph.stop().await;
    }

    #[actix_web::test]
    async fn messenger_sends_are_checked_and_answered() {
        let graph = FakeGraph::start().await;
        let text = json!({"recipient": {"id": "6543210987654321"}, "messaging_type": "RESPONSE",
                          "message": {"text": "hello"}});
        let (status, answer) = post(&graph, "me/messages", Some(ACCESS_TOKEN), &text).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["recipient_id"], "6543210987654321");
        assert!(
            answer["message_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("m_"))
        );
        let image = json!({"recipient": {"id": "6543210987654321"}, "messaging_type": "UPDATE",
                           "message": {"attachment": {"type": "image", "payload": {"url": "https://example.com/a.jpg", "is_reusable": true}}}});
        let (status, answer) = post(&graph, "me/messages", Some(ACCESS_TOKEN), &image).await;
        assert_eq!(status, 200, "{answer}");
        let refused = [
            json!({"messaging_type": "RESPONSE", "message": {"text": "x"}}),
            json!({"recipient": {"id": "1"}, "message": {"text": "x"}}),
            json!({"recipient": {"id": "1"}, "messaging_type": "RESPONSE"}),
            json!({"recipient": {"id": "1"}, "messaging_type": "RESPONSE", "message": {"text": "x", "attachment": {"type": "image", "payload": {"url": "https://example.com/a.jpg"}}}}),
            json!({"recipient": {"id": "1"}, "messaging_type": "RESPONSE", "message": {"attachment": {"type": "gif", "payload": {"url": "https://example.com/a.gif"}}}}),
            json!({"recipient": {"id": "1"}, "messaging_type": "MESSAGE_TAG", "message": {"text": "x"}}),
        ];
        for body in &refused {
            let (status, answer) = post(&graph, "me/messages", Some(ACCESS_TOKEN), body).await;
            assert_eq!(
                (status, answer["error"]["code"].as_i64()),
                (400, Some(100)),
                "{body}: {answer}"
            );
        }
        let (_, answer) = post(&graph, "me/messages", Some(ACCESS_TOKEN), &refused[0]).await;
        assert_eq!(
            answer["error"]["message"],
            "(#100) The parameter recipient is required"
        );
        // Instagram does without messaging_type.
        let instagram = json!({"recipient": {"id": "1"}, "message": {"text": "x"}});
        let (status, _) = post(
            &graph,
            &format!("{IG_ACCOUNT_ID}/messages"),
            Some(ACCESS_TOKEN),
            &instagram,
        )
        .await;
        assert_eq!(status, 200);
        graph.stop().await;
    }

    #[actix_web::test]
    async fn fail_next_answers_once_with_graphs_error_shape() {
        let graph = FakeGraph::start().await;
        graph.fail_next(400, 131_026, "Message undeliverable");
        let body = text_send("16505551234", "hi");
        let (status, answer) = post(&graph, &whatsapp_path(), Some(ACCESS_TOKEN), &body).await;
        assert_eq!(status, 400);
        let error = &answer["error"];
        assert_eq!(error["code"], 131_026);
        assert_eq!(error["message"], "Message undeliverable");
        assert_eq!(error["type"], "OAuthException");
        assert_eq!(
            error["error_data"],
            json!({"messaging_product": "whatsapp", "details": "Message undeliverable"})
        );
        assert!(error["fbtrace_id"].is_string());
        let (status, _) = post(&graph, &whatsapp_path(), Some(ACCESS_TOKEN), &body).await;
        assert_eq!(status, 200);
        let answered: Vec<u16> = graph.sent().iter().map(|send| send.answered).collect();
        assert_eq!(answered, [400, 200]);
        graph.stop().await;
    }

    #[actix_web::test]
    async fn media_metadata_then_bytes_for_the_bearer_only() {
        let graph = FakeGraph::start().await;
        let bytes = b"\xff\xd8jpeg".to_vec();
        let id = graph.add_media(bytes.clone(), "image/jpeg");
        let client = reqwest::Client::new();
        let metadata_url = format!("{}/{GRAPH_VERSION}/{id}", graph.url);
        let refused = client
            .get(&metadata_url)
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(refused.status().as_u16(), 401);
        let metadata: Value = client
            .get(&metadata_url)
            .bearer_auth(ACCESS_TOKEN)
            .send()
            .await
            .expect("the fake answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(metadata["id"], id.as_str());
        assert_eq!(metadata["mime_type"], "image/jpeg");
        assert_eq!(metadata["file_size"], 6);
        assert_eq!(metadata["sha256"], hex::encode(Sha256::digest(&bytes)));
        let url = metadata["url"].as_str().expect("a url");
        assert!(
            url.starts_with(&format!("{}/whatsapp_media/", graph.url))
                && url.ends_with("?ext=jpeg"),
            "{url}"
        );
        let refused = client.get(url).send().await.expect("the fake answers");
        assert_eq!(refused.status().as_u16(), 401);
        let served = client
            .get(url)
            .bearer_auth(ACCESS_TOKEN)
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(served.status().as_u16(), 200);
        assert_eq!(served.headers()["content-type"], "image/jpeg");
        assert_eq!(served.bytes().await.expect("bytes").to_vec(), bytes);
        let unknown: Value = client
            .get(format!("{}/{GRAPH_VERSION}/1111111111111111", graph.url))
            .bearer_auth(ACCESS_TOKEN)
            .send()
            .await
            .expect("the fake answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(unknown["error"]["error_subcode"], 33);
        let fetched: Vec<bool> = graph
            .media_fetches()
            .iter()
            .map(|(_, authorized)| *authorized)
            .collect();
        assert_eq!(fetched, [false, true, false, true, true]);
        assert_eq!(graph.media_fetches()[0].0, format!("/v21.0/{id}"));
        assert!(graph.sent().is_empty());
        graph.stop().await;
    }
}
