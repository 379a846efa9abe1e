//! The outbound delivery worker: sends queued outbound messages through their channel's
//! provider (the webhook's `outbound_url`, Twilio, Meta; see `providers`) and retries with
//! exponential backoff until the provider accepts or the attempts run out.
//!
//! The queue is the `outbound_deliveries` table, so a restart loses nothing: whatever was
//! queued is leased again by the next instance. One worker runs per process (not per HTTP
//! worker); instances sharing a database split the queue through leases. A stop lets the
//! sends in flight finish, so one instance never sends a message twice.

use std::sync::Mutex;
use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, TimeDelta, Utc};
use domain::EventType;
use domain::conversation::DeliveryStatus;
use openapi::{OutboundAttachment, OutboundDelivery};
use persistence::DbConnection;
use persistence::repo::deliveries::{self, Due};
use persistence::repo::{conversations, messages};
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db;
use crate::error::ApiError;
use crate::providers::webhook::SIGNATURE_HEADER;
use crate::providers::{self, Outcome, Sending};
use crate::service::events::{Logged, Outbox};
use crate::service::present;
use crate::state::AppState;

/// Deliveries leased per round: small, so one instance does not hoard the queue.
const BATCH: i64 = 16;
/// How often the queue is looked at when nothing pokes the worker: retries, other
/// instances' leftovers and expired leases are found this way.
const POLL: Duration = Duration::from_millis(500);
/// Longer than any one send can take (the request timeout, at most 50 s, plus the
/// database), so a lease only runs out when its instance died; then the row is due again.
const LEASE_SECONDS: i64 = 60;
const MAX_DELAY_MS: u64 = 5 * 60 * 1000;

/// The running worker; [`Worker::stop`] ends it.
pub struct Worker {
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Worker {
    /// Stops leasing, lets the sends in flight finish and record their outcome, then
    /// returns. Calling it again does nothing.
    pub async fn stop(&self) {
        self.shutdown.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task
            && let Err(error) = task.await
        {
            tracing::error!(%error, "the delivery worker ended abnormally");
        }
    }
}

/// Starts the worker on the current (actix) runtime.
pub fn start(state: web::Data<AppState>) -> Result<Worker, String> {
    // No redirects: one would re-send a signed body somewhere nobody configured (and turn
    // the POST into a GET); it counts as a failed attempt instead.
    let client = crate::outbound::guarded_client(
        &state.config.outbound_allow,
        Duration::from_millis(state.config.delivery_timeout_ms),
        0,
    )?;
    let (shutdown, stopping) = watch::channel(false);
    let task = actix_web::rt::spawn(run(state, client, stopping));
    Ok(Worker {
        shutdown,
        task: Mutex::new(Some(task)),
    })
}

async fn run(
    state: web::Data<AppState>,
    client: reqwest::Client,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        if *stopping.borrow() {
            break;
        }
        let wait = match round(&state, &client).await {
            Ok(wait) => wait,
            Err(error) => {
                tracing::warn!(%error, "could not lease outbound deliveries; trying again");
                POLL
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            changed = stopping.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = state.deliveries.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Leases a batch, sends it (concurrently: one slow provider does not hold up the others)
/// and records each outcome. Returns how long to wait before the next round.
async fn round(
    state: &web::Data<AppState>,
    client: &reqwest::Client,
) -> Result<Duration, ApiError> {
    let now = persistence::now();
    if !db::read(&state.store, move |conn| {
        Ok(deliveries::any_due(conn, now)?)
    })
    .await?
    {
        return Ok(POLL);
    }
    // In a write transaction: on SQLite, a write outside the store's writer queue would make
    // a concurrent request's transaction fail to upgrade its lock.
    let leased = db::write(&state.store, move |conn| {
        Ok(deliveries::lease_due(
            conn,
            now,
            TimeDelta::seconds(LEASE_SECONDS),
            BATCH,
        )?)
    })
    .await?;
    if leased.is_empty() {
        return Ok(POLL);
    }
    let full = i64::try_from(leased.len()).unwrap_or(i64::MAX) >= BATCH;
    let sends = leased.into_iter().map(|due| async move {
        let outcome = attempt(state, client, &due).await;
        finish(state, due, outcome).await
    });
    let retries = futures_util::future::join_all(sends).await;
    if full {
        return Ok(Duration::ZERO);
    }
    // A retry due sooner than the next poll (short test delays) is not left waiting.
    let soonest = retries.into_iter().flatten().min();
    Ok(soonest.map_or(POLL, |at| {
        (at - persistence::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(POLL)
    }))
}

/// The message's files as the provider fetches them: each behind a signed link that works
/// for the configured lifetime from this attempt on. Every attempt signs afresh, so a retry
/// long after the first never carries links that have run out.
fn outbound_attachments(state: &AppState, due: &Due) -> Vec<OutboundAttachment> {
    let (base, now) = (state.config.public_base(), chrono::Utc::now());
    due.attachments
        .iter()
        .map(|file| OutboundAttachment {
            content_type: file.content_type.clone(),
            filename: file.filename.clone(),
            size: file.size,
            url: state.links.url(&base, file.id, now),
        })
        .collect()
}

/// One attempt, through the channel's provider.
async fn attempt(state: &AppState, client: &reqwest::Client, due: &Due) -> Outcome {
    let provider = providers::of(due.channel.provider);
    let secrets = due.secrets.clone();
    let opened = match providers::open(state, &due.channel, secrets) {
        Ok(opened) => opened,
        // The operator's to fix (the credentials key changed): retried, not given up.
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    provider
        .send(Sending {
            state,
            http: client,
            due,
            credentials: &opened.credentials,
            attachments: outbound_attachments(state, due),
        })
        .await
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones: `base`, doubling
/// with each failure, at most five minutes.
fn backoff_ms(base_ms: u64, attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(32);
    base_ms.saturating_mul(1u64 << doublings).min(MAX_DELAY_MS)
}

/// The backoff plus up to a tenth more at random, so deliveries that failed together (a
/// provider outage) do not all come back at the same instant.
fn jittered_ms(base_ms: u64, attempts: u32) -> u64 {
    let delay = backoff_ms(base_ms, attempts);
    delay + rand::rng().random_range(0..=delay / 10)
}

fn next_attempt_at(base_ms: u64, attempts: u32) -> DateTime<Utc> {
    let delay = i64::try_from(jittered_ms(base_ms, attempts)).unwrap_or(i64::MAX);
    persistence::now() + TimeDelta::milliseconds(delay)
}

/// Records the outcome: message status, queue row and `message.updated`, in one
/// transaction, published after it commits. Returns when the next attempt is due, if any.
async fn finish(state: &web::Data<AppState>, due: Due, outcome: Outcome) -> Option<DateTime<Utc>> {
    let max_attempts = state.config.delivery_max_attempts.max(1);
    let attempts = u32::try_from(due.attempts).unwrap_or(0).saturating_add(1);
    let retry_at = match &outcome {
        Outcome::Failed(_) if attempts < max_attempts => Some(next_attempt_at(
            state.config.delivery_base_delay_ms,
            attempts,
        )),
        _ => None,
    };
    match &outcome {
        Outcome::Accepted { .. } | Outcome::Sandbox => {
            tracing::debug!(
                delivery = due.id,
                message = due.message_id.get(),
                attempts,
                "outbound message delivered"
            );
        }
        Outcome::Failed(error) if retry_at.is_some() => {
            tracing::info!(delivery = due.id, message = due.message_id.get(), attempts, %error, "outbound delivery failed; will retry");
        }
        Outcome::Failed(error) | Outcome::Undeliverable(error) => {
            tracing::warn!(delivery = due.id, message = due.message_id.get(), attempts, %error, "outbound delivery failed; giving up");
        }
    }
    let recorded = std::sync::Arc::new((due, outcome));
    // The provider may already have the message: recording that must not give up at the
    // first database hiccup, or the expired lease would send it again.
    for pause in [100, 500, 2000, 0] {
        let work = recorded.clone();
        let attempt = db::write(&state.store, move |conn| {
            let (due, outcome) = &*work;
            record(conn, due, outcome, attempts, retry_at)
        })
        .await;
        match attempt {
            Ok(logged) => {
                logged.publish(state);
                return retry_at;
            }
            Err(error) if pause > 0 => {
                tracing::warn!(%error, delivery = recorded.0.id, "could not record a delivery outcome; trying again");
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Err(error) => {
                tracing::error!(%error, delivery = recorded.0.id, "could not record a delivery outcome; its lease will run out and it will be sent again");
            }
        }
    }
    None
}

fn record(
    conn: &mut DbConnection,
    due: &Due,
    outcome: &Outcome,
    attempts: u32,
    retry_at: Option<DateTime<Utc>>,
) -> Result<Logged, ApiError> {
    let mut outbox = Outbox::new();
    let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
    match (outcome, retry_at) {
        (Outcome::Accepted { external_id }, _) => {
            if let Some(external_id) = external_id {
                // So the provider's status callbacks, which name it by its id, find it.
                messages::set_external_id(conn, due.message_id, external_id)?;
            }
            set_status(conn, due, DeliveryStatus::Sent, None, &mut outbox)?;
            deliveries::complete(conn, due.id)?;
        }
        (Outcome::Sandbox, _) => {
            set_status(conn, due, DeliveryStatus::Sent, None, &mut outbox)?;
            deliveries::complete(conn, due.id)?;
        }
        (Outcome::Failed(error), Some(at)) => {
            deliveries::retry_later(conn, due.id, attempts, at, error)?
        }
        (Outcome::Failed(error) | Outcome::Undeliverable(error), _) => {
            set_status(conn, due, DeliveryStatus::Failed, Some(error), &mut outbox)?;
            deliveries::give_up(conn, due.id, Some(attempts), error)?;
        }
    }
    outbox.flush(conn)
}

/// Moves a queued message on and announces it. A message no longer queued keeps its status:
/// a status callback that arrived first (`delivered`) knows better. Checked by the write
/// itself, so a callback committing between a read and the write cannot be undone either.
fn set_status(
    conn: &mut DbConnection,
    due: &Due,
    status: DeliveryStatus,
    error: Option<&str>,
    outbox: &mut Outbox,
) -> Result<(), ApiError> {
    let Some(message) = messages::get(conn, due.org_id, due.message_id)? else {
        return Ok(());
    };
    if message.delivery_status != Some(DeliveryStatus::Queued) {
        return Ok(());
    }
    let Some(updated) = messages::advance_delivery_status(conn, message.id, status, error)? else {
        return Ok(());
    };
    let conversation = conversations::get(conn, due.org_id, updated.conversation_id)?
        .ok_or_else(ApiError::not_found)?;
    let presented = present::full_message(conn, updated)?;
    outbox.message(
        due.org_id,
        conversation.inbox_id,
        EventType::MessageUpdated,
        &presented,
    )?;
    Ok(())
}

/// `webhooks.outbound_message` in the OpenAPI document: what this server POSTs to a
/// channel's `outbound_url`, described beside the API for whoever builds a provider bridge.
pub struct OutboundWebhook;

impl utoipa::Modify for OutboundWebhook {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
        use utoipa::openapi::request_body::RequestBodyBuilder;
        use utoipa::openapi::{ContentBuilder, Paths, Ref, Required, ResponseBuilder};
        use utoipa::{PartialSchema, ToSchema};

        let components = openapi.components.get_or_insert_with(Default::default);
        let mut schemas = vec![(
            OutboundDelivery::name().into_owned(),
            OutboundDelivery::schema(),
        )];
        OutboundDelivery::schemas(&mut schemas);
        components.schemas.extend(schemas);
        let signature = ParameterBuilder::new()
            .name(SIGNATURE_HEADER)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(
                "`sha256=<hex HMAC-SHA256 of the raw body with the channel's inbound_secret>`",
            ))
            .schema(Some(String::schema()));
        let body = RequestBodyBuilder::new()
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(OutboundDelivery::name())))
                    .build(),
            )
            .required(Some(Required::True))
            .build();
        let operation = OperationBuilder::new()
            .operation_id(Some("deliver_outbound_message"))
            .summary(Some("An outbound message, POSTed to the channel's `outbound_url`"))
            .description(Some(
                "Sent for every reply and survey on a channel with an `outbound_url` (never for notes), \
                 retried with exponential backoff until a 2xx answer or the configured attempts run out. \
                 Attachments are links the provider fetches without a token until they expire.",
            ))
            .parameter(signature)
            .request_body(Some(body))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("Accepted; a JSON body `{\"external_id\": \"…\"}` names the message in later status reports")
                    .build(),
            )
            .response(
                "default",
                ResponseBuilder::new()
                    .description("Not accepted: the delivery is tried again later")
                    .build(),
            )
            .build();
        openapi
            .webhooks
            .get_or_insert_with(Paths::new)
            .add_path_operation("outbound_message", vec![HttpMethod::Post], operation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_the_base_up_to_five_minutes() {
        assert_eq!(backoff_ms(1000, 1), 1000);
        assert_eq!(backoff_ms(1000, 2), 2000);
        assert_eq!(backoff_ms(1000, 3), 4000);
        assert_eq!(backoff_ms(1000, 9), 256_000);
        assert_eq!(backoff_ms(1000, 10), MAX_DELAY_MS);
        assert_eq!(backoff_ms(1000, u32::MAX), MAX_DELAY_MS);
        assert_eq!(backoff_ms(u64::MAX, 3), MAX_DELAY_MS);
        assert_eq!(backoff_ms(50, 0), 50);
    }

    #[test]
    fn jitter_adds_at_most_a_tenth() {
        for _ in 0..100 {
            assert!((2000..=2200).contains(&jittered_ms(1000, 2)));
        }
        assert_eq!(jittered_ms(0, 1), 0);
    }
}
