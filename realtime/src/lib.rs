//! Switchboard's realtime delivery: events committed to the log are published on a bus
//! (in-process, or Redis pub/sub across instances) and fanned out by each instance's hub
//! to the WebSocket sessions allowed to see them, in cursor order, once.

pub mod hub;
pub mod presence;
pub mod queue;
pub mod redis_bus;

use std::sync::{Arc, OnceLock};

use bytestring::ByteString;
pub use domain::EventType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::broadcast;

pub use hub::{
    Audience, Hub, HubConfig, Outgoing, Registration, ReplayItem, SessionHandle, cursor_expired,
};
pub use presence::Availability;
pub use redis_bus::RedisBus;

/// An event as it travels between instances. Persistent events carry their cursor
/// (`seq`, per organization); ephemeral ones (typing, viewing, presence) have `seq` 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusEvent {
    pub org_id: i64,
    pub seq: i64,
    #[serde(with = "event_type_text")]
    pub event_type: EventType,
    pub inbox_id: Option<i64>,
    pub conversation_id: Option<i64>,
    /// The event's `data`, as JSON text.
    pub payload: String,
    pub at: String,
    /// For ephemeral events: who caused it (they do not get their own typing back).
    #[serde(default)]
    pub from_user: Option<i64>,
    /// The instance that published it (an instance skips its own events coming back).
    #[serde(default)]
    pub origin: u64,
    /// The frame, rendered by the first socket that sends it and shared by the others.
    #[serde(skip)]
    pub rendered: Rendered,
}

/// A [`BusEvent`]'s frame once rendered: not part of the event's value (never compared or
/// sent between instances).
#[derive(Debug, Clone, Default)]
pub struct Rendered(OnceLock<ByteString>);

impl PartialEq for Rendered {
    fn eq(&self, _: &Rendered) -> bool {
        true
    }
}

impl Eq for Rendered {}

impl BusEvent {
    pub fn is_ephemeral(&self) -> bool {
        self.seq == 0
    }

    /// The frame clients receive: `{"id", "type", "at", "data"}`; ephemeral events have no id.
    /// Rendered once per event; every socket sends the same bytes.
    pub fn frame(&self) -> ByteString {
        self.rendered.0.get_or_init(|| self.render().into()).clone()
    }

    fn render(&self) -> String {
        let data = if self.payload.is_empty() {
            "null"
        } else {
            self.payload.as_str()
        };
        let event_type = self.event_type.as_str();
        let at = serde_json::to_string(&self.at).unwrap_or_default();
        if self.is_ephemeral() {
            format!(r#"{{"type":"{event_type}","at":{at},"data":{data}}}"#)
        } else {
            format!(
                r#"{{"id":"{}","type":"{event_type}","at":{at},"data":{data}}}"#,
                self.seq
            )
        }
    }
}

/// Event types travel between instances by their wire names.
mod event_type_text {
    use super::*;

    pub fn serialize<S: Serializer>(value: &EventType, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<EventType, D::Error> {
        let text = String::deserialize(deserializer)?;
        EventType::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {text:?}")))
    }
}

/// What instances tell each other besides events, on the bus's control channel (every
/// instance hears it, the publishing one included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Control {
    /// An instance's connected users of one organization (see [`presence`]).
    Presence(presence::Published),
    /// A user chose a status.
    Status {
        org: i64,
        user: i64,
        availability: Availability,
    },
    /// Close every socket of the user at once (deactivation).
    Disconnect { org: i64, user: i64 },
    /// One sign-in of the user ended (sign-out, a revoked session), or all of them
    /// (`sign_in: None`: a new password): close those sockets; instances forget what they
    /// cached of the user's sign-in.
    SignedOut {
        org: i64,
        user: i64,
        sign_in: Option<u64>,
    },
    /// The user's record changed (role, name, status): instances forget what they cached.
    UserChanged { org: i64, user: i64 },
}

impl Control {
    /// The user whose cached sign-in this message makes stale, if any.
    pub fn stales_user(&self) -> Option<(i64, i64)> {
        match self {
            Control::Disconnect { org, user }
            | Control::SignedOut { org, user, .. }
            | Control::UserChanged { org, user }
            | Control::Status { org, user, .. } => Some((*org, *user)),
            Control::Presence(_) => None,
        }
    }
}

/// Publishes committed events and hands out subscriptions.
pub trait Bus: Send + Sync {
    /// Publishes an event after its transaction committed. Never blocks on a slow reader.
    fn publish(&self, event: BusEvent);
    /// A receiver of every event published from now on (from this or, for Redis, any instance).
    fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>>;
    /// Publishes a control message to every instance, this one included. Never blocks.
    fn publish_control(&self, control: Control);
    /// A receiver of every control message published from now on.
    fn subscribe_control(&self) -> broadcast::Receiver<Arc<Control>>;
    /// Whether the bus can deliver across instances right now (for `/readyz`).
    fn healthy(&self) -> bool {
        true
    }
    /// This instance's id on the bus: the `origin` of the events it publishes (0 for a bus
    /// that stays within one process). Events of another origin are only a doorbell.
    fn instance(&self) -> u64 {
        0
    }
    fn name(&self) -> &'static str;
}

/// The in-process bus: one tokio broadcast channel.
pub struct LocalBus {
    sender: broadcast::Sender<Arc<BusEvent>>,
    control: broadcast::Sender<Arc<Control>>,
}

impl LocalBus {
    pub fn new(capacity: usize) -> LocalBus {
        let (sender, _) = broadcast::channel(capacity.max(16));
        let (control, _) = broadcast::channel(capacity.max(16));
        LocalBus { sender, control }
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

    fn publish_control(&self, control: Control) {
        let _ = self.control.send(Arc::new(control));
    }

    fn subscribe_control(&self) -> broadcast::Receiver<Arc<Control>> {
        self.control.subscribe()
    }

    fn name(&self) -> &'static str {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn event(seq: i64) -> BusEvent {
        BusEvent {
            org_id: 1,
            seq,
            event_type: EventType::ConversationUpdated,
            inbox_id: Some(2),
            conversation_id: Some(3),
            payload: r#"{"conversation":{"id":3}}"#.into(),
            at: "2026-11-21T09:30:00.123Z".into(),
            from_user: None,
            origin: 0,
            rendered: Default::default(),
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
    fn a_frame_is_rendered_once_and_shared_by_every_socket() {
        let event = Arc::new(event(7));
        let first = event.frame();
        let again = Arc::clone(&event).frame();
        assert_eq!(first, again);
        assert_eq!(first.as_ptr(), again.as_ptr(), "rendered twice");
        // A clone made after rendering shares it too; equality ignores it.
        let copy = (*event).clone();
        assert_eq!(copy.frame().as_ptr(), first.as_ptr());
        assert_eq!(copy, self::event(7));
    }

    #[test]
    fn frames_follow_the_protocol() {
        let frame: serde_json::Value = serde_json::from_str(&event(7).frame()).unwrap();
        assert_eq!(frame["id"], "7");
        assert_eq!(frame["type"], "conversation.updated");
        assert_eq!(frame["data"]["conversation"]["id"], 3);
        let typing = BusEvent {
            seq: 0,
            event_type: EventType::Typing,
            ..event(0)
        };
        let frame: serde_json::Value = serde_json::from_str(&typing.frame()).unwrap();
        assert!(frame.get("id").is_none());
    }
}
