//! Switchboard's event bus: events committed to the log are published here and delivered to
//! every instance's WebSocket sessions. In-process by default; Redis pub/sub across instances.

use std::sync::Arc;

use tokio::sync::broadcast;

/// A committed event as it travels between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEvent {
    pub org_id: i64,
    pub seq: i64,
    pub event_type: String,
    pub inbox_id: Option<i64>,
    pub conversation_id: Option<i64>,
    /// The event's `data`, as JSON text.
    pub payload: String,
    pub at: String,
}

/// Publishes committed events and hands out subscriptions.
pub trait Bus: Send + Sync {
    /// Publishes an event after its transaction committed. Never blocks on a slow reader.
    fn publish(&self, event: BusEvent);
    /// A receiver of every event published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>>;
    /// Whether the bus can deliver across instances right now (for `/readyz`).
    fn healthy(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str;
}

/// The in-process bus: one tokio broadcast channel.
pub struct LocalBus {
    sender: broadcast::Sender<Arc<BusEvent>>,
}

impl LocalBus {
    pub fn new(capacity: usize) -> LocalBus {
        let (sender, _) = broadcast::channel(capacity.max(16));
        LocalBus { sender }
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: BusEvent) {
        // No receiver is not an error: nobody is connected.
        let _ = self.sender.send(Arc::new(event));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.sender.subscribe()
    }

    fn name(&self) -> &'static str {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64) -> BusEvent {
        BusEvent {
            org_id: 1,
            seq,
            event_type: "conversation.updated".into(),
            inbox_id: Some(2),
            conversation_id: Some(3),
            payload: "{}".into(),
            at: "2026-11-21T09:30:00.123Z".into(),
        }
    }

    #[tokio::test]
    async fn subscribers_receive_what_is_published_in_order() {
        let bus = LocalBus::new(16);
        let mut first = bus.subscribe();
        let mut second = bus.subscribe();
        bus.publish(event(1));
        bus.publish(event(2));
        for receiver in [&mut first, &mut second] {
            assert_eq!(receiver.recv().await.unwrap().seq, 1);
            assert_eq!(receiver.recv().await.unwrap().seq, 2);
        }
    }

    #[test]
    fn publishing_with_nobody_listening_is_fine() {
        LocalBus::new(16).publish(event(1));
    }
}
