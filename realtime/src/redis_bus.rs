//! The Redis bus: one PUBLISH per event, one subscription per instance (not per socket).
//! Redis is only the doorbell: events live in the database first, so when the connection
//! drops, the instance keeps serving its own clients, reconnects with backoff, and the hub
//! catches up from the event log (see `Hub::catch_up`). Control messages (presence sets,
//! status changes, deactivations) travel on a second channel of the same subscription.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};

use serde::{Deserialize, Serialize};

use crate::{Bus, BusEvent, Control};

/// A control message on Redis, with the instance that sent it (which heard it already).
#[derive(Serialize, Deserialize)]
struct ControlEnvelope {
    origin: u64,
    control: Control,
}

pub struct RedisBus {
    /// This instance's id on the bus.
    instance: u64,
    channel: Arc<str>,
    local: broadcast::Sender<Arc<BusEvent>>,
    local_control: broadcast::Sender<Arc<Control>>,
    /// (channel, message) to PUBLISH.
    outgoing: mpsc::Sender<(Arc<str>, String)>,
    control_channel: Arc<str>,
    /// The subscription is up: this instance hears the others.
    subscribed: Arc<AtomicBool>,
    /// The publishing connection is up: the others hear this instance.
    publishing: Arc<AtomicBool>,
    /// Rung when the subscription (re)connects: whatever was published meanwhile is lost
    /// on Redis, so the hub must read the log.
    reconnected: broadcast::Sender<()>,
}

impl RedisBus {
    /// Starts the publisher and subscriber tasks (on the current tokio runtime). The
    /// channel is the deployment's (`namespace`, kept in its database), so deployments
    /// sharing one Redis never hear each other, ephemeral events included.
    pub fn start(url: &str, namespace: &str) -> Result<RedisBus, String> {
        let channel: Arc<str> = format!("switchboard:events:{namespace}").into();
        let control_channel: Arc<str> = format!("switchboard:control:{namespace}").into();
        let client =
            redis::Client::open(url).map_err(|error| format!("invalid Redis URL: {error}"))?;
        let (local, _) = broadcast::channel(4096);
        let (local_control, _) = broadcast::channel(4096);
        let (outgoing, receiver) = mpsc::channel(4096);
        let subscribed = Arc::new(AtomicBool::new(false));
        let publishing = Arc::new(AtomicBool::new(false));
        let (reconnected, _) = broadcast::channel(16);
        let instance = instance_id();
        tokio::spawn(publisher(client.clone(), receiver, publishing.clone()));
        tokio::spawn(subscriber(
            client,
            [channel.clone(), control_channel.clone()],
            instance,
            local.clone(),
            local_control.clone(),
            subscribed.clone(),
            reconnected.clone(),
        ));
        Ok(RedisBus {
            instance,
            local,
            local_control,
            outgoing,
            control_channel,
            channel,
            subscribed,
            publishing,
            reconnected,
        })
    }

    pub fn reconnections(&self) -> broadcast::Receiver<()> {
        self.reconnected.subscribe()
    }
}

impl Bus for RedisBus {
    fn publish(&self, mut event: BusEvent) {
        event.origin = self.instance;
        // This instance's own clients hear it at once, Redis or not.
        let _ = self.local.send(Arc::new(event.clone()));
        match serde_json::to_string(&event) {
            // A full queue means Redis is far behind or gone; the log has the event anyway.
            Ok(text) => {
                if self
                    .outgoing
                    .try_send((self.channel.clone(), text))
                    .is_err()
                {
                    tracing::warn!(
                        "redis publish queue full; other instances will catch up from the log"
                    );
                }
            }
            Err(error) => tracing::error!(%error, "encoding an event"),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.local.subscribe()
    }

    fn publish_control(&self, control: Control) {
        let _ = self.local_control.send(Arc::new(control.clone()));
        let envelope = ControlEnvelope {
            origin: self.instance,
            control,
        };
        match serde_json::to_string(&envelope) {
            Ok(text) => {
                if self
                    .outgoing
                    .try_send((self.control_channel.clone(), text))
                    .is_err()
                {
                    tracing::warn!("redis publish queue full; a control message is dropped");
                }
            }
            Err(error) => tracing::error!(%error, "encoding a control message"),
        }
    }

    fn subscribe_control(&self) -> broadcast::Receiver<Arc<Control>> {
        self.local_control.subscribe()
    }

    fn healthy(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed) && self.publishing.load(Ordering::Relaxed)
    }

    fn instance(&self) -> u64 {
        self.instance
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
}

/// How long a PUBLISH may take before the connection counts as hung.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

async fn publisher(
    client: redis::Client,
    mut receiver: mpsc::Receiver<(Arc<str>, String)>,
    publishing: Arc<AtomicBool>,
) {
    let mut attempt = 0;
    // A message whose PUBLISH failed. A dead connection is only noticed by the next
    // PUBLISH on it (typically the first event after an outage): that message is sent
    // again on the new connection, or other instances would not hear of it until some
    // later event of the same organization.
    let mut unsent: Option<(Arc<str>, String)> = None;
    'connect: loop {
        let mut conn = match client.get_multiplexed_async_connection().await {
            Ok(conn) => conn,
            Err(error) => {
                publishing.store(false, Ordering::Relaxed);
                tracing::warn!(%error, "redis publisher cannot connect");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
        };
        attempt = 0;
        publishing.store(true, Ordering::Relaxed);
        // A message is sent again once, on a fresh connection; failing there too, it is
        // dropped (subscribers catch up from the log when they reconnect).
        let mut retrying = unsent.is_some();
        loop {
            let (channel, text) = match unsent.take() {
                Some(message) => message,
                None => {
                    retrying = false;
                    match receiver.recv().await {
                        Some(message) => message,
                        None => return,
                    }
                }
            };
            let mut command = redis::cmd("PUBLISH");
            command.arg(&*channel).arg(&text);
            let publish = command.query_async::<i64>(&mut conn);
            let error = match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {PUBLISH_TIMEOUT:?}"),
            };
            publishing.store(false, Ordering::Relaxed);
            if retrying {
                tracing::warn!(%error, "redis publish failed again; dropped");
            } else {
                tracing::warn!(%error, "redis publish failed; reconnecting to send it again");
                unsent = Some((channel, text));
            }
            continue 'connect;
        }
    }
}

/// A random id for this process on the bus.
pub(crate) fn instance_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish().max(1)
}

async fn subscriber(
    client: redis::Client,
    [channel, control_channel]: [Arc<str>; 2],
    instance: u64,
    local: broadcast::Sender<Arc<BusEvent>>,
    local_control: broadcast::Sender<Arc<Control>>,
    subscribed: Arc<AtomicBool>,
    reconnected: broadcast::Sender<()>,
) {
    let mut attempt = 0;
    loop {
        let mut pubsub = match client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => {
                subscribed.store(false, Ordering::Relaxed);
                tracing::warn!(%error, "redis subscriber cannot connect");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
        };
        let subscribed_both = match pubsub.subscribe(&*channel).await {
            Ok(()) => pubsub.subscribe(&*control_channel).await,
            Err(error) => Err(error),
        };
        if let Err(error) = subscribed_both {
            tracing::warn!(%error, "redis subscribe failed");
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
            continue;
        }
        attempt = 0;
        subscribed.store(true, Ordering::Relaxed);
        let _ = reconnected.send(());
        tracing::info!("redis subscription established");
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(text) = message.get_payload::<String>() else {
                continue;
            };
            if message.get_channel_name() == &*control_channel {
                match serde_json::from_str::<ControlEnvelope>(&text) {
                    Ok(envelope) if envelope.origin == instance => {}
                    Ok(envelope) => {
                        let _ = local_control.send(Arc::new(envelope.control));
                    }
                    Err(error) => tracing::warn!(%error, "ignoring a malformed control message"),
                }
                continue;
            }
            match serde_json::from_str::<BusEvent>(&text) {
                Ok(event) if event.origin == instance => {}
                Ok(event) => {
                    let _ = local.send(Arc::new(event));
                }
                Err(error) => tracing::warn!(%error, "ignoring a malformed bus message"),
            }
        }
        // The stream ended: the connection is gone.
        subscribed.store(false, Ordering::Relaxed);
        tracing::warn!("redis subscription lost; reconnecting");
    }
}
