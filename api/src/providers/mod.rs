//! Channel providers: who carries a channel's messages between the customer and the inbox.
//!
//! One trait, [`Provider`], with one implementation per provider: the generic signed
//! webhook ([`webhook`], a bridge the team hosts), Twilio ([`twilio`]: sms/mms and
//! WhatsApp), Meta ([`meta`]: the WhatsApp Cloud API, Messenger, Instagram) and the web chat
//! widget ([`webchat`], whose visitors call Switchboard directly). A provider checks that an
//! inbound call is genuine, turns it into [`Inbound`] items (messages, delivery reports,
//! reactions), fetches the media those name, and sends one outbound message. Everything
//! after that is shared ([`ingest`]): files go through the attachment checks and storage,
//! messages into the same inbound path, reports into the same forward-only status rule.
//! A new provider is one file and one line in [`of`].
//!
//! Credentials are sealed at rest ([`sealing`]) and opened only to check a call or to send.

pub mod meta;
pub mod sealing;
pub mod twilio;
pub mod webchat;
pub mod webhook;

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use domain::conversation::DeliveryStatus;
use domain::{Channel, ChannelId, ChannelProvider, ContactId, FieldError};
use futures_util::future::BoxFuture;
use openapi as wire;
use openapi::ErrorCode;
use persistence::repo::channels::{self, ChannelSecrets};
use persistence::repo::deliveries::Due;
use persistence::repo::{messages, reactions, receipts};
use serde_json::Value;

pub use sealing::Sealer;

use crate::db;
use crate::error::ApiError;
use crate::service::attachments::{self as uploads, StoredFile};
use crate::service::events::{self, Outbox};
use crate::service::messaging::{self, Arrival};
use crate::service::present;
use crate::state::AppState;
use crate::storage::Storage;

/// Which of a provider's endpoints was called: the one for customers' messages, or the
/// one for delivery reports (Meta has one endpoint for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Messages,
    Statuses,
}

/// One inbound call as it reached this server.
pub struct Call<'a> {
    pub purpose: Purpose,
    /// The URL the provider called, as the operator published it
    /// (`SWITCHBOARD_PUBLIC_URL` + path + query): what Twilio signs.
    pub url: String,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl<'a> Call<'a> {
    pub fn of(
        state: &AppState,
        purpose: Purpose,
        request: &'a HttpRequest,
        body: &'a [u8],
    ) -> Call<'a> {
        let mut url = format!("{}{}", state.config.public_base(), request.path());
        if !request.query_string().is_empty() {
            url.push('?');
            url.push_str(request.query_string());
        }
        Call {
            purpose,
            url,
            headers: request.headers(),
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// A file a message carries: its bytes, or where the provider keeps them.
#[derive(Debug, Clone)]
pub enum Media {
    Inline {
        content_type: String,
        filename: String,
        bytes: Vec<u8>,
    },
    /// A URL (Twilio, Messenger) or a media id (WhatsApp Cloud) the provider resolves.
    Remote {
        locator: String,
        content_type: Option<String>,
        filename: Option<String>,
    },
}

/// A customer's message and the files it carries.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub arrival: Arrival,
    pub media: Vec<Media>,
}

/// What one inbound call carries, item by item (a Meta batch may hold many).
#[derive(Debug, Clone)]
pub enum Inbound {
    Message(Received),
    /// A delivery report for an outbound message the provider knows by `external_id`.
    Status {
        external_id: String,
        status: DeliveryStatus,
        error: Option<String>,
    },
    /// The customer reacted to a message (`emoji: None` takes the reaction back).
    Reaction {
        external_id: String,
        from: String,
        emoji: Option<String>,
    },
}

/// A file fetched from the provider.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// What became of one attempt to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider took it, perhaps naming it by its own id.
    Accepted { external_id: Option<String> },
    /// Nothing leaves (a webhook channel without an outbound_url): it counts as sent.
    Sandbox,
    /// Worth trying again (a timeout, a 5xx, a rate limit).
    Failed(String),
    /// Trying again cannot help; the text is what agents see as the message's
    /// `delivery_error` (with the provider's own error code).
    Undeliverable(String),
}

/// One outbound message, with what sending it takes.
pub struct Sending<'a> {
    pub state: &'a AppState,
    pub http: &'a reqwest::Client,
    pub due: &'a Due,
    pub credentials: &'a Value,
    /// The message's files, behind signed links that work for a while from now.
    pub attachments: Vec<wire::OutboundAttachment>,
}

/// A channel's secrets, opened: the webhook's signing secret and the provider's
/// credentials (JSON, `null` for the webhook).
pub struct Opened {
    pub inbound_secret: String,
    pub credentials: Value,
}

/// Never printed.
impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opened(***)")
    }
}

/// A provider: the one place that knows its wire formats.
pub trait Provider: Send + Sync {
    fn kind(&self) -> ChannelProvider;

    /// Checks the credentials given for a new channel and returns what is sealed.
    fn credentials(&self, given: Option<&Value>) -> Result<Option<Value>, FieldError>;

    /// Whether the call is genuinely the provider's (compared in constant time).
    fn verify(&self, opened: &Opened, call: &Call<'_>) -> bool;

    /// What the call carries, for this channel. Calls of another of the provider's
    /// accounts or numbers carry nothing.
    fn parse(&self, channel: &Channel, call: &Call<'_>) -> Result<Vec<Inbound>, ApiError>;

    /// Fetches a [`Media::Remote`] file, at most `limit` bytes.
    fn fetch<'a>(
        &'a self,
        state: &'a AppState,
        credentials: &'a Value,
        locator: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Fetched, String>>;

    /// Sends one outbound message.
    fn send<'a>(&'a self, sending: Sending<'a>) -> BoxFuture<'a, Outcome>;
}

/// The implementation of `provider`.
pub fn of(provider: ChannelProvider) -> &'static dyn Provider {
    match provider {
        ChannelProvider::Webhook => &webhook::Webhook,
        ChannelProvider::Twilio => &twilio::Twilio,
        ChannelProvider::Meta => &meta::Meta,
        ChannelProvider::Webchat => &webchat::Webchat,
    }
}

/// Seals credentials for a channel of `org`.
pub fn seal(state: &AppState, org: i64, credentials: &Value) -> Result<String, ApiError> {
    state
        .sealer
        .seal(org, credentials.to_string().as_bytes())
        .map_err(ApiError::Internal)
}

/// Opens a channel's secrets. Credentials that do not open (the credentials key changed)
/// are the operator's to fix, never the caller's: logged, and answered as a server error.
pub fn open(
    state: &AppState,
    channel: &Channel,
    secrets: ChannelSecrets,
) -> Result<Opened, ApiError> {
    let credentials = match secrets.credentials.as_deref() {
        None => Value::Null,
        Some(sealed) => state
            .sealer
            .open(channel.org_id.get(), sealed)
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or_else(|| {
                ApiError::Internal(format!(
                    "the credentials of channel {} do not open with this server's credentials key",
                    channel.id.get()
                ))
            })?,
    };
    Ok(Opened {
        inbound_secret: secrets.inbound_secret,
        credentials,
    })
}

/// The channel a provider's call names, checked: one of this provider's, and the call
/// genuinely its. Anything else is a bad signature (401), which tells nothing about which
/// channels exist.
pub async fn authenticate(
    state: &AppState,
    provider: ChannelProvider,
    id: i64,
    call: &Call<'_>,
) -> Result<(Channel, Opened), ApiError> {
    const REFUSED: ApiError = ApiError::Unauthenticated("the signature does not match");
    let found = db::read(&state.store, move |conn| {
        Ok(channels::get_with_secret(conn, ChannelId(id))?)
    })
    .await?;
    let Some((channel, secrets)) = found.filter(|(channel, _)| channel.provider == provider) else {
        return Err(REFUSED);
    };
    let opened = open(state, &channel, secrets)?;
    if !of(provider).verify(&opened, call) {
        return Err(REFUSED);
    }
    Ok((channel, opened))
}

/// What became of one inbound item.
#[derive(Debug, Clone)]
pub enum Ingested {
    /// A message, stored now or before (a replay).
    Message(wire::InboundResult),
    /// A report that moved a message on, or repeated what it knew.
    Status(wire::Message),
    /// A report or reaction about a message this channel never sent or holds: accepted, so
    /// the provider stops retrying, but nothing changed.
    Unknown,
    Reaction,
}

/// Stores everything a genuine call carries, item by item, in order. An item that fails
/// stops the call (the provider retries it whole; what was stored is idempotent).
pub async fn ingest(
    state: &AppState,
    channel: &Channel,
    opened: &Opened,
    items: Vec<Inbound>,
) -> Result<Vec<Ingested>, ApiError> {
    let mut done = Vec::with_capacity(items.len());
    for item in items {
        let outcome = match item {
            Inbound::Message(received) => receive(state, channel, opened, received)
                .await
                .map(Ingested::Message),
            Inbound::Status {
                external_id,
                status,
                error,
            } => report(state, channel, external_id, status, error).await,
            Inbound::Reaction {
                external_id,
                from,
                emoji,
            } => react(state, channel, external_id, from, emoji).await,
        };
        match outcome {
            Ok(ingested) => done.push(ingested),
            // A provider's item our rules refuse (a sender that is no phone number): the
            // provider cannot correct it, and refusing the call would make it retry the
            // whole batch for days. The bridge of the generic webhook is told instead.
            Err(ApiError::Domain(refusal)) if channel.provider != ChannelProvider::Webhook => {
                tracing::warn!(channel = channel.id.get(), %refusal, "an inbound item was refused; skipped");
                done.push(Ingested::Unknown);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(done)
}

/// A customer's message: its files fetched and checked (unless it is a replay), then
/// recorded with them.
pub async fn receive(
    state: &AppState,
    channel: &Channel,
    opened: &Opened,
    mut received: Received,
) -> Result<wire::InboundResult, ApiError> {
    // The provider's id as it is stored, so a replay padded with spaces finds the original.
    received.arrival.external_id = received.arrival.external_id.trim().to_string();
    let files = store_files(state, channel, opened, &received).await?;
    let outcome = record(state, channel, &received.arrival, &files).await;
    if !matches!(outcome, Ok((_, true))) {
        // Refused, or a replay that another request recorded: the files stored for this
        // one are nobody's.
        state
            .storage
            .remove_all(files.into_iter().map(|file| file.key))
            .await;
    }
    outcome.map(|(result, _)| result)
}

/// How often an inbound message is retried after losing a race to a concurrent one.
const INBOUND_ATTEMPTS: usize = 4;
/// Longest a provider's media download may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Fetches, checks and stores the message's files. A file of a type we do not keep, or
/// one the provider cannot hand over, is left out (and logged), not the message.
async fn store_files(
    state: &AppState,
    channel: &Channel,
    opened: &Opened,
    received: &Received,
) -> Result<Vec<StoredFile>, ApiError> {
    if received.media.is_empty() {
        return Ok(Vec::new());
    }
    let (id, external_id) = (channel.id, received.arrival.external_id.clone());
    let seen = db::read(&state.store, move |conn| {
        Ok(receipts::find_inbound(conn, id, &external_id)?)
    })
    .await?;
    if seen.is_some() {
        return Ok(Vec::new());
    }
    let provider = of(channel.provider);
    let mut files = Vec::new();
    for (index, media) in received.media.iter().enumerate() {
        let (bytes, declared, filename) = match media {
            Media::Inline {
                content_type,
                filename,
                bytes,
            } => {
                if bytes.len() > state.config.max_upload {
                    remove(state, files).await;
                    return Err(ApiError::PayloadTooLarge);
                }
                (bytes.clone(), Some(content_type.clone()), filename.clone())
            }
            Media::Remote {
                locator,
                content_type,
                filename,
            } => {
                let fetch =
                    provider.fetch(state, &opened.credentials, locator, state.config.max_upload);
                let fetched = match tokio::time::timeout(FETCH_TIMEOUT, fetch).await {
                    Ok(Ok(fetched)) => fetched,
                    Ok(Err(error)) => {
                        tracing::warn!(channel = channel.id.get(), %error, "could not fetch an inbound file; the message is stored without it");
                        continue;
                    }
                    Err(_) => {
                        tracing::warn!(
                            channel = channel.id.get(),
                            "fetching an inbound file timed out; the message is stored without it"
                        );
                        continue;
                    }
                };
                let declared = content_type.clone().or(fetched.content_type);
                let filename = filename
                    .clone()
                    .unwrap_or_else(|| format!("file-{}", index + 1));
                (fetched.bytes, declared, filename)
            }
        };
        let Ok(sniffed) = uploads::check_upload(&bytes, declared.as_deref()) else {
            tracing::warn!(
                channel = channel.id.get(),
                "dropping an inbound attachment of an unsupported type"
            );
            continue;
        };
        let (key, size) = (Storage::new_key(channel.org_id), bytes.len());
        if let Err(error) = state.storage.put(&key, bytes.into()).await {
            remove(state, files).await;
            return Err(error);
        }
        files.push(StoredFile {
            sniffed,
            size,
            filename,
            key,
        });
    }
    Ok(files)
}

async fn remove(state: &AppState, files: Vec<StoredFile>) {
    state
        .storage
        .remove_all(files.into_iter().map(|file| file.key))
        .await;
}

/// Records an inbound message with its stored files, retrying when a concurrent message of
/// the same customer conflicted. `true` when this request recorded it (and its files).
async fn record(
    state: &AppState,
    channel: &Channel,
    arrival: &Arrival,
    files: &[StoredFile],
) -> Result<(wire::InboundResult, bool), ApiError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let attempt = {
            let (channel, arrival, files) = (channel.clone(), arrival.clone(), files.to_vec());
            db::write(&state.store, move |conn| {
                let mut outbox = Outbox::new();
                let result =
                    messaging::receive(conn, &channel, &arrival, &files, &[], &mut outbox)?;
                Ok((result, outbox.flush(conn)?))
            })
            .await
        };
        match attempt {
            Ok((result, logged)) => {
                logged.publish(state);
                return Ok(result);
            }
            Err(ApiError::Conflict { .. }) => {
                // A concurrent replay of the same message committed first: answer with its ids.
                let (external_id, id) = (arrival.external_id.clone(), channel.id);
                let replayed = db::read(&state.store, move |conn| {
                    Ok(receipts::find_inbound(conn, id, &external_id)?)
                })
                .await?;
                if let Some((conversation, message)) = replayed {
                    let ids = wire::InboundResult {
                        conversation_id: conversation.get(),
                        message_id: message.get(),
                    };
                    return Ok((ids, false));
                }
                // Another message from the same customer created their contact or their open
                // conversation first (several texts at once, e.g. a long one split by the
                // carrier): run again, it finds them now instead of losing this message.
                if attempts >= INBOUND_ATTEMPTS {
                    return Err(ApiError::Conflict {
                        code: ErrorCode::Duplicate,
                        detail: "a concurrent request conflicted; retry".into(),
                    });
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// A delivery report. A message this channel never sent is [`Ingested::Unknown`].
async fn report(
    state: &AppState,
    channel: &Channel,
    external_id: String,
    status: DeliveryStatus,
    error: Option<String>,
) -> Result<Ingested, ApiError> {
    let channel = channel.clone();
    let outcome = events::write(state, move |conn, outbox| {
        messaging::delivery_report(
            conn,
            &channel,
            &external_id,
            status,
            error.as_deref(),
            outbox,
        )
    })
    .await;
    match outcome {
        Ok(message) => Ok(Ingested::Status(message)),
        Err(ApiError::Domain(domain::DomainError::NotFound)) => Ok(Ingested::Unknown),
        Err(error) => Err(error),
    }
}

/// The customer's reaction to one of the conversation's messages.
async fn react(
    state: &AppState,
    channel: &Channel,
    external_id: String,
    from: String,
    emoji: Option<String>,
) -> Result<Ingested, ApiError> {
    let channel = channel.clone();
    events::write(state, move |conn, outbox| {
        let org = channel.org_id;
        let Some(message) = messages::find_by_external_id(conn, org, &external_id)? else {
            return Ok(Ingested::Unknown);
        };
        let Some(conversation) =
            persistence::repo::conversations::get(conn, org, message.conversation_id)?
                .filter(|conversation| conversation.channel_id == channel.id)
        else {
            return Ok(Ingested::Unknown);
        };
        let address = messaging::customer_address(&channel, &from)?;
        let owner = persistence::repo::contacts::owner_of_address(conn, org, &address)?;
        if owner != Some(conversation.contact_id) {
            return Ok(Ingested::Unknown);
        }
        let contact: ContactId = conversation.contact_id;
        let emoji = match emoji
            .as_deref()
            .map(str::trim)
            .filter(|emoji| !emoji.is_empty())
        {
            Some(emoji) => match domain::validate::emoji("emoji", emoji) {
                Ok(emoji) => Some(emoji),
                // An emoji we do not know is not worth refusing the whole call for.
                Err(_) => return Ok(Ingested::Unknown),
            },
            None => None,
        };
        reactions::set_contact(conn, message.id, contact, emoji.as_deref())?;
        let presented = present::full_message(conn, message)?;
        outbox.message(
            org,
            conversation.inbox_id,
            domain::EventType::MessageUpdated,
            &presented,
        )?;
        Ok(Ingested::Reaction)
    })
    .await
}

/// Sends a media download and reads the file (at most `limit` bytes); `who` names the
/// provider in the error of a refusal.
pub async fn download(
    request: reqwest::RequestBuilder,
    limit: usize,
    who: &str,
) -> Result<Fetched, String> {
    let response = request.send().await.map_err(describe)?;
    if !response.status().is_success() {
        return Err(format!(
            "{who} answered HTTP {} for a media file",
            response.status().as_u16()
        ));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let bytes = read_limited(response, limit).await?;
    Ok(Fetched {
        bytes,
        content_type,
    })
}

/// Reads at most `limit` bytes of a response body; more is an error, not a cut file.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err("the file is larger than this server takes".into());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if bytes.len() + chunk.len() > limit {
            return Err("the file is larger than this server takes".into());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Longest error text kept for agents to read.
const MAX_ERROR_CHARS: usize = 500;

/// The error and its causes, without the URL (it may carry a provider's token).
pub fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    bounded(text)
}

/// `text`, at most [`MAX_ERROR_CHARS`].
pub fn bounded(text: String) -> String {
    if text.chars().count() <= MAX_ERROR_CHARS {
        return text;
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}

/// How an HTTP answer of a provider's API is taken: a 2xx is accepted; 408, 429 and 5xx are
/// worth retrying; any other is the provider refusing the message for good.
pub fn retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
}

/// A string field of a JSON object, trimmed, when it is not empty.
pub(crate) fn text_field<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
}
