//! The Redis bus: one PUBLISH per event, one subscription per instance (not per socket).
//! Redis is only the doorbell: events live in the database first, so when the connection
//! drops, the instance keeps serving its own clients, reconnects with backoff, and the hub
//! catches up from the event log (see `Hub::catch_up`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};

use crate::{Bus, BusEvent};

const CHANNEL: &str = "switchboard:events";

pub struct RedisBus {
    /// This instance's id on the bus.
    instance: u64,
    local: broadcast::Sender<Arc<BusEvent>>,
    outgoing: mpsc::Sender<String>,
    healthy: Arc<AtomicBool>,
    /// Rung when the subscription (re)connects: whatever was published meanwhile is lost
    /// on Redis, so the hub must read the log.
    reconnected: broadcast::Sender<()>,
}

impl RedisBus {
    /// Starts the publisher and subscriber tasks (on the current tokio runtime).
    pub fn start(url: &str) -> Result<RedisBus, String> {
        let client =
            redis::Client::open(url).map_err(|error| format!("invalid Redis URL: {error}"))?;
        let (local, _) = broadcast::channel(4096);
        let (outgoing, receiver) = mpsc::channel(4096);
        let healthy = Arc::new(AtomicBool::new(false));
        let (reconnected, _) = broadcast::channel(16);
        let instance = instance_id();
        tokio::spawn(publisher(client.clone(), receiver, healthy.clone()));
        tokio::spawn(subscriber(
            client,
            instance,
            local.clone(),
            healthy.clone(),
            reconnected.clone(),
        ));
        Ok(RedisBus {
            instance,
            local,
            outgoing,
            healthy,
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
                if self.outgoing.try_send(text).is_err() {
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

    fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
}

async fn publisher(
    client: redis::Client,
    mut receiver: mpsc::Receiver<String>,
    healthy: Arc<AtomicBool>,
) {
    let mut attempt = 0;
    'connect: loop {
        let mut conn = match client.get_multiplexed_async_connection().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "redis publisher cannot connect");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
        };
        attempt = 0;
        while let Some(text) = receiver.recv().await {
            let sent: Result<i64, _> = redis::cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(&text)
                .query_async(&mut conn)
                .await;
            if let Err(error) = sent {
                // Dropped: subscribers catch up from the log when they notice.
                tracing::warn!(%error, "redis publish failed");
                healthy.store(false, Ordering::Relaxed);
                continue 'connect;
            }
        }
        return;
    }
}

/// A random id for this process on the bus.
fn instance_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish().max(1)
}

async fn subscriber(
    client: redis::Client,
    instance: u64,
    local: broadcast::Sender<Arc<BusEvent>>,
    healthy: Arc<AtomicBool>,
    reconnected: broadcast::Sender<()>,
) {
    let mut attempt = 0;
    loop {
        let mut pubsub = match client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => {
                healthy.store(false, Ordering::Relaxed);
                tracing::warn!(%error, "redis subscriber cannot connect");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
        };
        if let Err(error) = pubsub.subscribe(CHANNEL).await {
            tracing::warn!(%error, "redis subscribe failed");
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
            continue;
        }
        attempt = 0;
        healthy.store(true, Ordering::Relaxed);
        let _ = reconnected.send(());
        tracing::info!("redis subscription established");
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(text) = message.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<BusEvent>(&text) {
                Ok(event) if event.origin == instance => {}
                Ok(event) => {
                    let _ = local.send(Arc::new(event));
                }
                Err(error) => tracing::warn!(%error, "ignoring a malformed bus message"),
            }
        }
        // The stream ended: the connection is gone.
        healthy.store(false, Ordering::Relaxed);
        tracing::warn!("redis subscription lost; reconnecting");
    }
}
