//! Upkeep: events past the retention window, old idempotency keys and expired web chat
//! visitor sessions are purged hourly;
//! the read-up figures behind unread counts are folded every few seconds.

use std::time::Duration;

use persistence::Store;
use persistence::repo::{conversation_list, events};

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
                    // A session past its time opens nothing; its contact and messages stay.
                    let visitors = persistence::repo::visitors::purge_expired(conn, now)?;
                    Ok((events, keys, visitors))
                })
            })
            .await;
            match purged {
                Ok(Ok((events, keys, visitors))) if events + keys + visitors > 0 => {
                    tracing::info!(
                        events,
                        idempotency_keys = keys,
                        visitor_sessions = visitors,
                        "purged past their retention"
                    )
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "purging old events, keys and visitor sessions")
                }
                _ => {}
            }
        }
    })
}

/// How often `read_up_counts` is folded: its rows to add up grow by a few per message on
/// PostgreSQL, and a count adds up the caller's.
const FOLD_EVERY: Duration = Duration::from_secs(10);

/// Folds the read-up figures behind unread counts (PostgreSQL; nothing to do on SQLite).
pub fn start_folding(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(FOLD_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let store = store.clone();
            let folded = tokio::task::spawn_blocking(move || {
                store.write(conversation_list::compact_read_up_counts)
            })
            .await;
            if let Ok(Err(error)) = folded {
                tracing::warn!(%error, "folding the unread counts' figures");
            }
        }
    })
}
