//! A stand-in for the Twilio REST API on 127.0.0.1: `Messages.json` sends and message media,
//! checked as Twilio checks them and answered in Twilio's shapes (its error JSON included).
//! Also the webhook side: Twilio's `X-Twilio-Signature` and form bodies.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;

/// The account the fake accepts (`AC` and 32 hex digits).
pub(crate) const ACCOUNT_SID: &str = "AC1f0e2d3c4b5a69788796a5b4c3d2e1f0";
/// That account's auth token: the basic-auth password, and the webhook signing key.
pub(crate) const AUTH_TOKEN: &str = "9b2c1e7f4a6d8053e1c7b9a2f4d6e8c0";
/// The business's SMS/MMS number in the fixtures (`To` of `twilio_mms.json`).
pub(crate) const SMS_NUMBER: &str = "+14155550100";
/// The business's WhatsApp sender in the fixtures (Twilio's sandbox number).
pub(crate) const WHATSAPP_NUMBER: &str = "whatsapp:+14155238886";
/// Twilio's REST API version, the first path segment.
pub(crate) const API_VERSION: &str = "2010-04-01";
/// Every wait gives up (and fails) after this long.
const PATIENCE: Duration = Duration::from_secs(10);
/// Twilio refuses a longer `Body`.
const MAX_BODY_CHARS: usize = 1600;
/// Twilio refuses more `MediaUrl`s on one message.
const MAX_MEDIA: usize = 10;

/// One `Messages.json` request as received, and what the fake answered.
#[derive(Debug, Clone)]
pub(crate) struct TwilioSend {
    /// The account sid in the request path.
    pub(crate) account_sid: String,
    /// Basic auth was exactly `ACCOUNT_SID:AUTH_TOKEN`.
    pub(crate) authorized: bool,
    /// The request's `Content-Type`, if any.
    pub(crate) content_type: Option<String>,
    /// The form fields in order (empty unless the body was form-encoded).
    pub(crate) fields: Vec<(String, String)>,
    /// The HTTP status answered.
    pub(crate) answered: u16,
    /// The created message's `SM…` sid, when answered 201.
    pub(crate) sid: Option<String>,
}

impl TwilioSend {
    /// The first value of form field `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeated form field (e.g. `MediaUrl`), in order.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// A scripted error for the next send.
struct Failure {
    status: u16,
    code: i64,
    message: String,
}

#[derive(Clone)]
struct Media {
    bytes: Vec<u8>,
    content_type: String,
}

struct Log {
    /// `http://127.0.0.1:PORT`.
    base: String,
    sends: Mutex<Vec<TwilioSend>>,
    failures: Mutex<VecDeque<Failure>>,
    /// Media by API path (`/2010-04-01/Accounts/…/Media/ME…`).
    media: Mutex<HashMap<String, Media>>,
    /// Media by CDN path (`/cdn/…`), where the API redirects.
    cdn: Mutex<HashMap<String, Media>>,
    fetches: Mutex<Vec<(String, bool)>>,
}

/// The Twilio REST API on 127.0.0.1: records every `Messages.json` request and media fetch.
pub(crate) struct FakeTwilio {
    /// Base URL, `http://127.0.0.1:PORT`, no trailing slash.
    pub(crate) url: String,
    log: Arc<Log>,
    handle: actix_web::dev::ServerHandle,
}

fn random_hex(bytes: usize) -> String {
    let random: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(random)
}

/// A Twilio sid: two-letter prefix and 32 hex digits.
fn sid(prefix: &str) -> String {
    format!("{prefix}{}", random_hex(16))
}

/// Twilio's error JSON with that status.
fn twilio_error(status: u16, code: i64, message: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).expect("a valid status");
    HttpResponse::build(status)
        .insert_header(("Twilio-Request-Id", sid("RQ")))
        .json(json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        }))
}

fn unauthenticated() -> HttpResponse {
    twilio_error(401, 20003, "Authenticate")
}

fn not_found(path: &str) -> HttpResponse {
    twilio_error(
        404,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

/// Whether the request carries basic auth `ACCOUNT_SID:AUTH_TOKEN`.
fn authorized(request: &HttpRequest) -> bool {
    let Some(header) = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = header.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("{ACCOUNT_SID}:{AUTH_TOKEN}").as_bytes()
}

/// `+` and 8 to 15 digits.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
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

/// SMS segments as Twilio counts them: GSM-7 (taken as ASCII here) 160/153, else UCS-2 70/67.
fn segments(body: &str) -> usize {
    let (single, multi, length) = if body.is_ascii() {
        (160, 153, body.len())
    } else {
        (70, 67, body.encode_utf16().count())
    };
    if length <= single {
        1
    } else {
        length.div_ceil(multi)
    }
}

/// Twilio's timestamp format (RFC 2822, two-digit day).
fn rfc2822_now() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// Checks the fields of an authenticated send as Twilio does: the error to answer, if any.
fn refusal(fields: &[(String, String)]) -> Option<(u16, i64, String)> {
    let first = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let media: Vec<&str> = fields
        .iter()
        .filter(|(key, _)| key == "MediaUrl")
        .map(|(_, value)| value.as_str())
        .collect();
    let refuse = |code: i64, message: String| Some((400, code, message));
    let Some(to) = first("To").filter(|to| !to.is_empty()) else {
        return refuse(21604, "A 'To' phone number is required.".into());
    };
    let Some(from) = first("From").filter(|from| !from.is_empty()) else {
        return refuse(21603, "A 'From' phone number is required.".into());
    };
    let body = first("Body").unwrap_or("");
    if body.is_empty() && media.is_empty() {
        return refuse(21602, "Message body is required.".into());
    }
    let (to_whatsapp, to_number) = match to.strip_prefix("whatsapp:") {
        Some(number) => (true, number),
        None => (false, to),
    };
    if !is_e164(to_number) {
        return refuse(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    let (from_whatsapp, from_number) = match from.strip_prefix("whatsapp:") {
        Some(number) => (true, number),
        None => (false, from),
    };
    if !is_e164(from_number) {
        return refuse(
            21212,
            format!(
                "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
            ),
        );
    }
    if to_whatsapp != from_whatsapp {
        return refuse(
            21910,
            "Invalid From and To pair. From and To should be of the same channel".into(),
        );
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return refuse(
            21617,
            "The concatenated message body exceeds the 1600 character limit.".into(),
        );
    }
    if media.len() > MAX_MEDIA {
        return refuse(21623, "The number of media files exceeds 10.".into());
    }
    if media.iter().any(|url| !is_http_url(url)) {
        return refuse(21620, "Invalid media URL(s)".into());
    }
    if let Some(callback) = first("StatusCallback")
        && !is_http_url(callback)
    {
        return refuse(
            21609,
            format!("The StatusCallback URL {callback} is not a valid URL."),
        );
    }
    None
}

/// The Message resource Twilio answers a successful create with.
fn message_resource(account_sid: &str, sid: &str, fields: &[(String, String)]) -> Value {
    let first = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let to = first("To").unwrap_or("");
    let body = first("Body").unwrap_or("");
    let num_media = fields.iter().filter(|(key, _)| key == "MediaUrl").count();
    let num_segments = if to.starts_with("whatsapp:") {
        1
    } else {
        segments(body)
    };
    let now = rfc2822_now();
    let uri = format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json");
    json!({
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": first("From"),
        "messaging_service_sid": first("MessagingServiceSid"),
        "num_media": num_media.to_string(),
        "num_segments": num_segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {
            "media": format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}/Media.json"),
        },
        "to": to,
        "uri": uri,
    })
}

fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|mime| mime.trim() == "application/x-www-form-urlencoded")
    })
}

fn send(log: &Log, request: &HttpRequest, account_sid: &str, raw: &Bytes) -> HttpResponse {
    let authorized = authorized(request);
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    // Twilio reads parameters only from a form body; any other body carries none.
    let fields: Vec<(String, String)> = if is_form(content_type.as_deref()) {
        form_urlencoded::parse(raw)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect()
    } else {
        Vec::new()
    };
    let (response, answered, sid) = if !authorized || account_sid != ACCOUNT_SID {
        (unauthenticated(), 401, None)
    } else if let Some(failure) = log.failures.lock().expect("failures lock").pop_front() {
        let response = twilio_error(failure.status, failure.code, &failure.message);
        (response, failure.status, None)
    } else if let Some((status, code, message)) = refusal(&fields) {
        (twilio_error(status, code, &message), status, None)
    } else {
        let message_sid = sid("SM");
        let resource = message_resource(account_sid, &message_sid, &fields);
        let response = HttpResponse::Created()
            .insert_header(("Twilio-Request-Id", sid("RQ")))
            .json(resource);
        (response, 201, Some(message_sid))
    };
    log.sends.lock().expect("sends lock").push(TwilioSend {
        account_sid: account_sid.to_string(),
        authorized,
        content_type,
        fields,
        answered,
        sid,
    });
    response
}

fn media_fetch(log: &Log, request: &HttpRequest, path: &str) -> HttpResponse {
    let authorized = authorized(request);
    log.fetches
        .lock()
        .expect("fetches lock")
        .push((path.to_string(), authorized));
    if !authorized {
        return unauthenticated();
    }
    let Some(media) = log.media.lock().expect("media lock").get(path).cloned() else {
        return not_found(path);
    };
    let cdn_path = format!("/cdn/{}", random_hex(16));
    log.cdn
        .lock()
        .expect("cdn lock")
        .insert(cdn_path.clone(), media);
    HttpResponse::TemporaryRedirect()
        .insert_header(("Location", format!("{}{cdn_path}", log.base)))
        .finish()
}

fn cdn_fetch(log: &Log, path: &str) -> HttpResponse {
    match log.cdn.lock().expect("cdn lock").get(path) {
        Some(media) => HttpResponse::Ok()
            .content_type(media.content_type.as_str())
            .body(media.bytes.clone()),
        None => HttpResponse::NotFound()
            .content_type("application/xml")
            .body("<Error><Code>NoSuchKey</Code></Error>"),
    }
}

/// Whether `path` is `/2010-04-01/Accounts/AC…/Messages/MM…/Media/ME…`.
fn is_media_path(parts: &[&str]) -> bool {
    matches!(
        parts,
        [version, "Accounts", _, "Messages", message, "Media", media]
            if *version == API_VERSION && message.starts_with("MM") && media.starts_with("ME")
    )
}

async fn endpoint(log: web::Data<Log>, request: HttpRequest, raw: Bytes) -> HttpResponse {
    let path = request.path().to_string();
    if path.starts_with("/cdn/") {
        return if request.method() == Method::GET {
            cdn_fetch(&log, &path)
        } else {
            HttpResponse::MethodNotAllowed().finish()
        };
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [version, "Accounts", account_sid, "Messages.json"]
            if *version == API_VERSION && request.method() == Method::POST =>
        {
            send(&log, &request, account_sid, &raw)
        }
        _ if is_media_path(&parts) && request.method() == Method::GET => {
            media_fetch(&log, &request, &path)
        }
        // The API authenticates before it looks the resource up.
        [version, ..] if *version == API_VERSION && !authorized(&request) => unauthenticated(),
        _ => not_found(&path),
    }
}

impl FakeTwilio {
    /// Listening on 127.0.0.1, accepting `ACCOUNT_SID` / `AUTH_TOKEN`.
    pub(crate) async fn start() -> FakeTwilio {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake Twilio");
        let addr = listener.local_addr().expect("fake Twilio address");
        let url = format!("http://{addr}");
        let log = Arc::new(Log {
            base: url.clone(),
            sends: Mutex::new(Vec::new()),
            failures: Mutex::new(VecDeque::new()),
            media: Mutex::new(HashMap::new()),
            cdn: Mutex::new(HashMap::new()),
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
        .expect("fake Twilio listens")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        FakeTwilio { url, log, handle }
    }

    /// The `Messages.json` URL for `ACCOUNT_SID`.
    pub(crate) fn messages_url(&self) -> String {
        format!(
            "{}/{API_VERSION}/Accounts/{ACCOUNT_SID}/Messages.json",
            self.url
        )
    }

    /// Every `Messages.json` request so far, refused ones included.
    pub(crate) fn sent(&self) -> Vec<TwilioSend> {
        self.log.sends.lock().expect("sends lock").clone()
    }

    /// Waits up to 10 s until at least `n` `Messages.json` requests arrived.
    pub(crate) async fn wait_for_sends(&self, n: usize) -> Vec<TwilioSend> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let sent = self.sent();
            if sent.len() >= n {
                return sent;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} sends, the fake Twilio saw {}: {sent:?}",
                sent.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next authenticated `Messages.json` POST answers `http_status` with Twilio's error
    /// JSON (`code`, `message`); calls queue up.
    pub(crate) fn fail_next(&self, http_status: u16, code: i64, message: &str) {
        self.log
            .failures
            .lock()
            .expect("failures lock")
            .push_back(Failure {
                status: http_status,
                code,
                message: message.to_string(),
            });
    }

    /// Stores media of an inbound message; returns its `MediaUrl`, as a Twilio webhook
    /// carries it: `{url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM…/Media/ME…`.
    pub(crate) fn add_media(&self, bytes: Vec<u8>, content_type: &str) -> String {
        let path = format!(
            "/{API_VERSION}/Accounts/{ACCOUNT_SID}/Messages/{}/Media/{}",
            sid("MM"),
            sid("ME")
        );
        self.log.media.lock().expect("media lock").insert(
            path.clone(),
            Media {
                bytes,
                content_type: content_type.to_string(),
            },
        );
        format!("{}{path}", self.url)
    }

    /// Each GET of a media API path so far (not of the CDN it redirects to): path, and
    /// whether it carried the account's basic auth.
    pub(crate) fn media_fetches(&self) -> Vec<(String, bool)> {
        self.log.fetches.lock().expect("fetches lock").clone()
    }

    /// Stops listening.
    pub(crate) async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// `X-Twilio-Signature` as Twilio documents it: base64 of HMAC-SHA1, keyed with the auth
/// token, of the full URL followed by each POST parameter's name and value, sorted by name
/// (then value).
pub(crate) fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The `application/x-www-form-urlencoded` body for those params, in order.
pub(crate) fn form_body(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// A fixture from `fixtures/providers/` holding Twilio webhook params (a JSON array of
/// `[name, value]` pairs), in order.
pub(crate) fn fixture_params(name: &str) -> Vec<(String, String)> {
    let path = format!(
        "{}/tests/api/fixtures/providers/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let pairs: Vec<(String, String)> =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    async fn post(
        twilio: &FakeTwilio,
        authorization: Option<&str>,
        params: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(twilio.messages_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(params));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.expect("the fake answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    fn good() -> String {
        basic(ACCOUNT_SID, AUTH_TOKEN)
    }

    #[test]
    fn signature_matches_twilios_documented_example() {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            twilio_signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        // Order of the params as given does not matter; their values do.
        let mut reversed = params;
        reversed.reverse();
        assert_eq!(
            twilio_signature("12345", url, &reversed),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        reversed[0].1 = "+18005551213";
        assert_ne!(
            twilio_signature("12345", url, &reversed),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn form_body_encodes_like_a_browser() {
        assert_eq!(
            form_body(&[("To", "+14155552671"), ("Body", "a b&c=d é")]),
            "To=%2B14155552671&Body=a+b%26c%3Dd+%C3%A9"
        );
    }

    #[test]
    fn twilio_fixtures_are_webhook_params_for_this_account() {
        for name in ["twilio_mms.json", "twilio_whatsapp.json"] {
            let params = fixture_params(name);
            let value = |key: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_else(|| panic!("{name} has no {key}"))
            };
            assert_eq!(value("AccountSid"), ACCOUNT_SID, "{name}");
            assert_eq!(value("ApiVersion"), API_VERSION, "{name}");
            assert!(value("MessageSid").starts_with("SM") || value("MessageSid").starts_with("MM"));
            let media: usize = value("NumMedia").parse().expect("NumMedia is a number");
            for index in 0..media {
                let url = value(&format!("MediaUrl{index}"));
                assert!(url.contains(ACCOUNT_SID), "{name}: {url}");
                value(&format!("MediaContentType{index}"));
            }
        }
        let sms = fixture_params("twilio_mms.json");
        assert!(sms.contains(&("To".to_string(), SMS_NUMBER.to_string())));
        let whatsapp = fixture_params("twilio_whatsapp.json");
        assert!(whatsapp.contains(&("To".to_string(), WHATSAPP_NUMBER.to_string())));
        assert!(
            whatsapp
                .iter()
                .any(|(k, v)| k == "From" && v.starts_with("whatsapp:"))
        );
    }

    #[actix_web::test]
    async fn wrong_or_missing_auth_is_refused_and_recorded() {
        let twilio = FakeTwilio::start().await;
        let params = [
            ("To", "+14155552671"),
            ("From", "+14155550100"),
            ("Body", "hi"),
        ];
        for authorization in [
            None,
            Some(basic(ACCOUNT_SID, "wrong")),
            Some(basic("ACx", AUTH_TOKEN)),
        ] {
            let (status, body) = post(&twilio, authorization.as_deref(), &params).await;
            assert_eq!(status, 401);
            assert_eq!(
                body,
                json!({"code": 20003, "message": "Authenticate",
                       "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
            );
        }
        let sent = twilio.sent();
        assert_eq!(sent.len(), 3);
        assert!(
            sent.iter()
                .all(|send| !send.authorized && send.answered == 401 && send.sid.is_none())
        );
        assert_eq!(sent[0].field("Body"), Some("hi"));
        // Another account's path, with this account's credentials.
        let other = format!(
            "{}/{API_VERSION}/Accounts/AC{}/Messages.json",
            twilio.url,
            "0".repeat(32)
        );
        let response = reqwest::Client::new()
            .post(other)
            .header("authorization", good())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&params))
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(response.status().as_u16(), 401);
        let last = twilio.wait_for_sends(4).await.pop().expect("four sends");
        assert!(last.authorized);
        assert_ne!(last.account_sid, ACCOUNT_SID);
        twilio.stop().await;
    }

    #[actix_web::test]
    async fn a_valid_send_is_created_queued_and_recorded() {
        let twilio = FakeTwilio::start().await;
        let params = [
            ("To", "+14155552671"),
            ("From", "+14155550100"),
            ("Body", "Your order shipped"),
            ("MediaUrl", "https://example.com/a.jpg"),
            ("MediaUrl", "https://example.com/b.png"),
            (
                "StatusCallback",
                "https://switchboard.example/webhooks/twilio/status",
            ),
        ];
        let (status, body) = post(&twilio, Some(&good()), &params).await;
        assert_eq!(status, 201, "{body}");
        let sid = body["sid"].as_str().expect("a sid");
        assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
        assert!(sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(body["account_sid"], ACCOUNT_SID);
        assert_eq!(body["status"], "queued");
        assert_eq!(body["to"], "+14155552671");
        assert_eq!(body["from"], "+14155550100");
        assert_eq!(body["body"], "Your order shipped");
        assert_eq!(body["num_media"], "2");
        assert_eq!(body["num_segments"], "1");
        assert_eq!(body["direction"], "outbound-api");
        assert_eq!(body["api_version"], "2010-04-01");
        assert!(body["error_code"].is_null() && body["price"].is_null());
        assert!(
            chrono::DateTime::parse_from_rfc2822(body["date_created"].as_str().expect("a date"))
                .is_ok()
        );
        assert_eq!(
            body["uri"],
            format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json")
        );
        let sent = twilio.wait_for_sends(1).await;
        assert_eq!(sent.len(), 1);
        let send = &sent[0];
        assert!(send.authorized);
        assert_eq!((send.answered, send.sid.as_deref()), (201, Some(sid)));
        assert_eq!(send.account_sid, ACCOUNT_SID);
        assert_eq!(send.field("To"), Some("+14155552671"));
        assert_eq!(
            send.all("MediaUrl"),
            ["https://example.com/a.jpg", "https://example.com/b.png"]
        );
        assert_eq!(send.field("Missing"), None);
        twilio.stop().await;
    }

    #[actix_web::test]
    async fn invalid_sends_get_twilios_codes() {
        let twilio = FakeTwilio::start().await;
        let long = "x".repeat(1601);
        let cases: [(&[(&str, &str)], i64); 8] = [
            (&[("From", "+14155550100"), ("Body", "x")], 21604),
            (&[("To", "+14155552671"), ("Body", "x")], 21603),
            (&[("To", "+14155552671"), ("From", "+14155550100")], 21602),
            (
                &[
                    ("To", "4155552671"),
                    ("From", "+14155550100"),
                    ("Body", "x"),
                ],
                21211,
            ),
            (
                &[
                    ("To", "whatsapp:+14155552671"),
                    ("From", "+14155550100"),
                    ("Body", "x"),
                ],
                21910,
            ),
            (
                &[
                    ("To", "+14155552671"),
                    ("From", "+14155550100"),
                    ("MediaUrl", "/relative.jpg"),
                ],
                21620,
            ),
            (
                &[
                    ("To", "+14155552671"),
                    ("From", "+14155550100"),
                    ("Body", "x"),
                    ("StatusCallback", "ftp://x"),
                ],
                21609,
            ),
            (
                &[
                    ("To", "+14155552671"),
                    ("From", "+14155550100"),
                    ("Body", &long),
                ],
                21617,
            ),
        ];
        for (params, code) in cases {
            let (status, body) = post(&twilio, Some(&good()), params).await;
            assert_eq!(
                (status, body["code"].as_i64()),
                (400, Some(code)),
                "{params:?}: {body}"
            );
            assert_eq!(body["status"], 400);
            assert_eq!(
                body["more_info"],
                format!("https://www.twilio.com/docs/errors/{code}")
            );
        }
        let (_, body) = post(
            &twilio,
            Some(&good()),
            &[("To", "+1415"), ("From", "+14155550100"), ("Body", "x")],
        )
        .await;
        assert_eq!(
            body["message"],
            "The 'To' number +1415 is not a valid phone number."
        );
        // WhatsApp on both sides, media only: fine.
        let (status, body) = post(
            &twilio,
            Some(&good()),
            &[
                ("To", "whatsapp:+14155552671"),
                ("From", "whatsapp:+14155238886"),
                ("MediaUrl", "https://example.com/a.jpg"),
            ],
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["body"], "");
        // A JSON body carries no params for Twilio.
        let response = reqwest::Client::new()
            .post(twilio.messages_url())
            .header("authorization", good())
            .header("content-type", "application/json")
            .body(r#"{"To":"+14155552671","From":"+14155550100","Body":"x"}"#)
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(response.status().as_u16(), 400);
        let sent = twilio.sent();
        assert_eq!(sent.len(), 11);
        assert!(
            sent[..9]
                .iter()
                .all(|send| send.authorized && send.answered == 400)
        );
        assert_eq!(sent[10].content_type.as_deref(), Some("application/json"));
        twilio.stop().await;
    }

    #[actix_web::test]
    async fn fail_next_answers_once_with_twilios_error_shape() {
        let twilio = FakeTwilio::start().await;
        twilio.fail_next(429, 20429, "Too Many Requests");
        let params = [
            ("To", "+14155552671"),
            ("From", "+14155550100"),
            ("Body", "hi"),
        ];
        let (status, body) = post(&twilio, Some(&good()), &params).await;
        assert_eq!(status, 429);
        assert_eq!(
            body,
            json!({"code": 20429, "message": "Too Many Requests",
                   "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429})
        );
        let (status, _) = post(&twilio, Some(&good()), &params).await;
        assert_eq!(status, 201);
        let answered: Vec<u16> = twilio.sent().iter().map(|send| send.answered).collect();
        assert_eq!(answered, [429, 201]);
        twilio.stop().await;
    }

    #[actix_web::test]
    async fn media_needs_auth_redirects_to_the_cdn_and_serves_the_bytes() {
        let twilio = FakeTwilio::start().await;
        let url = twilio.add_media(b"\xff\xd8jpeg".to_vec(), "image/jpeg");
        let prefix = format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM",
            twilio.url
        );
        assert!(url.starts_with(&prefix), "{url}");
        assert!(url.contains("/Media/ME"), "{url}");
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        let refused = no_redirects
            .get(&url)
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(refused.status().as_u16(), 401);
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(body["code"], 20003);
        let redirect = no_redirects
            .get(&url)
            .header("authorization", good())
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(redirect.status().as_u16(), 307);
        let location = redirect.headers()["location"]
            .to_str()
            .expect("a location")
            .to_string();
        assert!(
            location.starts_with(&format!("{}/cdn/", twilio.url)),
            "{location}"
        );
        let served = no_redirects
            .get(&location)
            .send()
            .await
            .expect("the CDN answers");
        assert_eq!(served.status().as_u16(), 200);
        assert_eq!(served.headers()["content-type"], "image/jpeg");
        assert_eq!(&served.bytes().await.expect("bytes")[..], b"\xff\xd8jpeg");
        // A client that follows redirects gets the bytes in one go.
        let followed = reqwest::Client::new()
            .get(&url)
            .header("authorization", good())
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(&followed.bytes().await.expect("bytes")[..], b"\xff\xd8jpeg");
        let path = url.strip_prefix(&twilio.url).expect("under the base");
        assert_eq!(
            twilio.media_fetches(),
            [
                (path.to_string(), false),
                (path.to_string(), true),
                (path.to_string(), true)
            ]
        );
        twilio.stop().await;
    }

    #[actix_web::test]
    async fn unknown_paths_are_twilio_404s() {
        let twilio = FakeTwilio::start().await;
        let path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json");
        let response = reqwest::Client::new()
            .get(format!("{}{path}", twilio.url))
            .header("authorization", good())
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(response.status().as_u16(), 404);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(
            body,
            json!({"code": 20404, "message": format!("The requested resource {path} was not found"),
                   "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})
        );
        let unauthenticated = reqwest::Client::new()
            .get(format!("{}{path}", twilio.url))
            .send()
            .await
            .expect("the fake answers");
        assert_eq!(unauthenticated.status().as_u16(), 401);
        assert!(twilio.sent().is_empty());
        twilio.stop().await;
    }
}
