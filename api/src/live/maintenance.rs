//! Upkeep of the event log: events past the retention window and old idempotency keys are
//! purged hourly.

use std::time::Duration;

use persistence::Store;
use persistence::repo::events;

/// Keeps the log within its retention window: hourly, events older than it are purged.
pub fn start_retention(store: Store, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let now = persistence::now();
            let events_cutoff =
                now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(7));
            // Idempotency keys guard retries, which come within minutes: a day is plenty.
            let keys_cutoff = now - chrono::Duration::days(1);
            let store = store.clone();
            let purged = tokio::task::spawn_blocking(move || {
                store.write(|conn| {
                    let events = events::purge_before(conn, events_cutoff)?;
                    let keys = persistence::repo::receipts::purge_keys_before(conn, keys_cutoff)?;
                    Ok((events, keys))
                })
            })
            .await;
            match purged {
                Ok(Ok((events, keys))) if events + keys > 0 => {
                    tracing::info!(
                        events,
                        idempotency_keys = keys,
                        "purged past their retention"
                    )
                }
                Ok(Err(error)) => tracing::warn!(%error, "purging old events and keys"),
                _ => {}
            }
        }
    })
}
