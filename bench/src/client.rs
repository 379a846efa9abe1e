//! Talking to a server on 127.0.0.1: JSON calls, sign-in, replies, a channel's signed
//! inbound webhook, `/metrics`, and WebSocket connects (bound to a chosen 127.0.0.x source
//! address). Every call has a timeout; every failure is a `String` naming the request.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;

/// How long any one HTTP request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a WebSocket may take to open (TCP and upgrade).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Refuses any address but 127.0.0.1 (a load tool for this machine's own servers).
pub fn check_local(url: &str) -> Result<(), String> {
    if url.starts_with("http://127.0.0.1:") {
        Ok(())
    } else {
        Err(format!("only http://127.0.0.1:PORT is allowed (got {url})"))
    }
}

/// A channel's webhook: its id and inbound secret.
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: i64,
    pub secret: String,
}

/// An error with its causes ("error sending request" alone does not say why).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An HTTP client for the servers under test.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
}

impl Api {
    pub fn new() -> Result<Api, String> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            // Below the servers' keep-alive (actix's default, 5 s): a connection the server is
            // closing for idleness is never picked for the next request, which then failed
            // with "error sending request" (3 inbound calls of a full run).
            .pool_idle_timeout(Duration::from_secs(4))
            .build()
            .map_err(|error| format!("HTTP client: {error}"))?;
        Ok(Api { http })
    }

    /// A JSON call that must succeed (2xx); returns the answer's JSON (`null` if none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method.clone(), url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| format!("{method} {url}: {}", chain(&error)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| format!("{method} {url}: reading the answer: {}", chain(&error)))?;
        if !status.is_success() {
            return Err(format!("{method} {url}: {status} {text}"));
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|error| format!("{method} {url}: not JSON ({error}): {text}"))
    }

    pub async fn post(&self, url: &str, token: Option<&str>, body: Value) -> Result<Value, String> {
        self.call(reqwest::Method::POST, url, token, Some(&body))
            .await
    }

    /// Signs in; returns the access token and the user's id.
    pub async fn login(
        &self,
        base: &str,
        email: &str,
        password: &str,
    ) -> Result<(String, i64), String> {
        let answer = self
            .post(
                &format!("{base}/v1/auth/login"),
                None,
                json!({"email": email, "password": password}),
            )
            .await?;
        let token = answer["access_token"]
            .as_str()
            .ok_or_else(|| format!("login of {email}: no access_token in {answer}"))?;
        let id = answer["user"]["id"]
            .as_i64()
            .ok_or_else(|| format!("login of {email}: no user.id in {answer}"))?;
        Ok((token.to_string(), id))
    }

    /// An agent's reply; returns the message id.
    pub async fn reply(
        &self,
        base: &str,
        token: &str,
        conversation: i64,
        body: &str,
    ) -> Result<i64, String> {
        let answer = self
            .post(
                &format!("{base}/v1/conversations/{conversation}/messages"),
                Some(token),
                json!({"body": body}),
            )
            .await?;
        answer["id"]
            .as_i64()
            .ok_or_else(|| format!("reply: no id in {answer}"))
    }

    /// A POST of ready bytes whose answer only has to be 2xx (the load loops).
    pub async fn post_bytes(
        &self,
        url: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(), String> {
        let mut request = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .map_err(|error| format!("POST {url}: {}", chain(&error)))?;
        let status = response.status();
        let text = response
            .bytes()
            .await
            .map_err(|error| format!("POST {url}: reading the answer: {}", chain(&error)))?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "POST {url}: {status} {}",
                String::from_utf8_lossy(&text)
            ))
        }
    }

    /// A customer's message through the channel's signed webhook; returns the
    /// conversation and message ids.
    pub async fn inbound(
        &self,
        base: &str,
        channel: &Channel,
        from: &str,
        body: &str,
    ) -> Result<(i64, i64), String> {
        let (raw, signature) = inbound_request(channel, from, body)?;
        let url = format!("{base}/v1/channels/{}/inbound", channel.id);
        let response = self
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .header("X-Switchboard-Signature", signature)
            .body(raw)
            .send()
            .await
            .map_err(|error| format!("POST {url}: {}", chain(&error)))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("POST {url}: {status} {text}"));
        }
        let value: Value = serde_json::from_str(&text)
            .map_err(|error| format!("POST {url}: not JSON ({error}): {text}"))?;
        match (
            value["conversation_id"].as_i64(),
            value["message_id"].as_i64(),
        ) {
            (Some(conversation), Some(message)) => Ok((conversation, message)),
            _ => Err(format!("POST {url}: no ids in {text}")),
        }
    }

    /// A counter or gauge of `GET /metrics` (the sum over its label sets).
    pub async fn metric(&self, base: &str, name: &str) -> Result<f64, String> {
        let url = format!("{base}/metrics");
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|error| format!("GET {url}: {}", chain(&error)))?;
        let text = response
            .text()
            .await
            .map_err(|error| format!("GET {url}: {}", chain(&error)))?;
        let mut found = None;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if !(rest.starts_with(' ') || rest.starts_with('{')) {
                continue;
            }
            if let Some(value) = rest
                .rsplit(' ')
                .next()
                .and_then(|value| value.parse::<f64>().ok())
            {
                *found.get_or_insert(0.0) += value;
            }
        }
        found.ok_or_else(|| format!("GET {url}: no {name}"))
    }
}

static EXTERNAL: AtomicU64 = AtomicU64::new(0);

/// The body and `X-Switchboard-Signature` of a customer's message (a new `external_id`
/// each time).
pub fn inbound_request(
    channel: &Channel,
    from: &str,
    body: &str,
) -> Result<(Vec<u8>, String), String> {
    let external = format!(
        "bench-{}-{}",
        std::process::id(),
        EXTERNAL.fetch_add(1, Ordering::Relaxed)
    );
    let raw = serde_json::to_vec(&json!({"external_id": external, "from": from, "body": body}))
        .map_err(|error| error.to_string())?;
    let signature = sign(&channel.secret, &raw)?;
    Ok((raw, signature))
}

/// `sha256=<hex HMAC-SHA256 of the raw body under the channel's inbound secret>`.
pub fn sign(secret: &str, raw: &[u8]) -> Result<String, String> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|error| error.to_string())?;
    mac.update(raw);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// A client WebSocket over plain TCP.
pub type Socket = WebSocketStream<TcpStream>;

/// The `/v1/ws` URL of a server for a token.
pub fn ws_url(base: &str, token: &str) -> String {
    format!(
        "{}/v1/ws?access_token={token}",
        base.replacen("http://", "ws://", 1)
    )
}

/// Opens a WebSocket to `url` (`ws://127.0.0.1:PORT/…`), from `source` when given: the
/// socket is bound to that address before it connects, with the port left to `connect`
/// (IP_BIND_ADDRESS_NO_PORT), so each source address has its own ephemeral ports toward a
/// server port.
pub async fn connect(url: &str, source: Option<Ipv4Addr>) -> Result<Socket, String> {
    let rest = url
        .strip_prefix("ws://127.0.0.1:")
        .ok_or_else(|| format!("only ws://127.0.0.1:PORT is allowed (got {url})"))?;
    let port: u16 = rest
        .split('/')
        .next()
        .and_then(|port| port.parse().ok())
        .ok_or_else(|| format!("no port in {url}"))?;
    let open = async {
        let socket = TcpSocket::new_v4().map_err(|error| format!("socket: {error}"))?;
        if let Some(source) = source {
            no_port_at_bind(&socket);
            socket
                .bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))
                .map_err(|error| format!("bind {source}: {error}"))?;
        }
        let stream = socket
            .connect(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
            .await
            .map_err(|error| format!("connect {url}: {error}"))?;
        let _ = stream.set_nodelay(true);
        let (socket, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .map_err(|error| format!("upgrade {}: {error}", redact_token(url)))?;
        Ok::<Socket, String>(socket)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, open)
        .await
        .map_err(|_| {
            format!(
                "{} did not open within {CONNECT_TIMEOUT:?}",
                redact_token(url)
            )
        })?
}

fn no_port_at_bind(socket: &TcpSocket) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a c_int option value of the right size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn redact_token(url: &str) -> String {
    match url.split_once("access_token=") {
        Some((head, _)) => format!("{head}access_token=…"),
        None => url.to_string(),
    }
}

/// Loopback source addresses client sockets rotate over: open sockets and the TIME_WAIT
/// remnants of earlier phases then never exhaust one address's ~28,000 ephemeral ports
/// toward a server port (a run opens well over 20,000 toward one instance).
pub const SOURCES: u8 = 8;

/// The source address of the `index`-th socket of a fleet.
pub fn source_for(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 1 + (index % SOURCES as usize) as u8)
}

static MARKERS: AtomicU64 = AtomicU64::new(1);

/// A new marker number: it goes in a message body, and frames carrying it are found by it.
pub fn next_marker() -> u64 {
    MARKERS.fetch_add(1, Ordering::Relaxed)
}

/// `[bench:N]`, as it appears in a body and, JSON-encoded the same, in a frame.
pub fn marker_text(marker: u64) -> String {
    format!("[bench:{marker}]")
}

/// The marker of a `message.created` frame, if it carries one.
pub fn find_marker(frame: &str) -> Option<u64> {
    if !frame.contains("\"type\":\"message.created\"") {
        return None;
    }
    let start = frame.find("[bench:")? + "[bench:".len();
    let digits: String = frame[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_in_message_frames_only() {
        let body = format!("Thanks {}", marker_text(42));
        let frame =
            json!({"id": "7", "type": "message.created", "data": {"message": {"body": body}}})
                .to_string();
        assert_eq!(find_marker(&frame), Some(42));
        let update = json!({"id": "8", "type": "conversation.updated", "data": {"last_message_preview": body}})
            .to_string();
        assert_eq!(find_marker(&update), None);
    }

    #[test]
    fn signatures_match_the_documented_example() {
        let body = br#"{"message_id":42,"channel_id":3,"conversation_id":17,"to":"+14155552671","from":"+14155550100","body":"It ships today.","attachments":[]}"#;
        assert_eq!(
            sign("3qY6sN0cJ1dZk8Vt5wLx2Hb7RfPmQe9AuGoTiWnKyEs", body).unwrap(),
            "sha256=56bbf43787eee3d46b9e462582c62739484fe19c7a113024da1432f0ba506d5d"
        );
    }

    #[test]
    fn sources_rotate_over_loopback() {
        assert_eq!(source_for(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source_for(9), Ipv4Addr::new(127, 0, 0, 2));
    }
}
