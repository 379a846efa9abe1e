//! The per-instance hub: the registry of this instance's WebSocket sessions and the
//! fan-out that hands each event, in cursor order and once, to the sessions whose users
//! may see it. One task owns all state (no locks on the hot path, no task per
//! subscription); database work (who may see an event, catching up from the log) runs on
//! the blocking pool through [`Audience`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use crate::{Bus, BusEvent};

/// Whether a client's cursor is past the retention window: events after it were purged.
/// `first_retained` is the oldest cursor still in the log, `last` the newest handed out.
pub fn cursor_expired(after: i64, first_retained: Option<i64>, last: i64) -> bool {
    match first_retained {
        Some(first) => after < 0 || after + 1 < first,
        // Nothing kept, yet events were written after the cursor: they are gone.
        None => after < 0 || after < last,
    }
}

/// What the hub asks of the database and the visibility rules. Every method blocks.
pub trait Audience: Send + Sync + 'static {
    /// Which of `users` (all of the event's organization) may receive `event`.
    fn recipients(&self, event: &BusEvent, users: &[i64]) -> Vec<i64>;
    /// Persistent events of `org` after `seq`, oldest first, at most `limit`.
    fn events_after(&self, org: i64, seq: i64, limit: i64) -> Result<Vec<BusEvent>, String>;
    /// The organization's newest cursor.
    fn last_seq(&self, org: i64) -> Result<i64, String>;
    /// The oldest cursor still kept (earlier ones are past the retention window).
    fn first_retained(&self, org: i64) -> Result<Option<i64>, String>;
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Frames a session may have waiting before it counts as too slow and is closed.
    pub queue_capacity: usize,
    /// How often to read the log while the bus is unhealthy (Redis down).
    pub poll_interval: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue_capacity: 256,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// What a session's queue carries.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A live event the session's user may see.
    Event(Arc<BusEvent>),
    /// The answer to a resume: the missed events (already filtered), through `through`.
    Replay {
        events: Vec<Arc<BusEvent>>,
        through: i64,
    },
    /// The resume cursor is older than the retention window.
    Expired,
    /// The server is shutting down.
    Shutdown,
}

/// A registered session, as the hub knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionHandle {
    pub id: u64,
    pub org: i64,
    pub user: i64,
}

enum Command {
    Register {
        handle: SessionHandle,
        sender: mpsc::Sender<Outgoing>,
    },
    Unregister(SessionHandle),
    Resume {
        handle: SessionHandle,
        after: i64,
    },
    Shutdown,
}

pub struct Hub {
    commands: mpsc::UnboundedSender<Command>,
    next_id: AtomicU64,
    connected: Arc<AtomicUsize>,
    queue_capacity: usize,
}

impl Hub {
    /// Starts the hub's task on the current runtime.
    pub fn start(
        bus: Arc<dyn Bus>,
        audience: Arc<dyn Audience>,
        config: HubConfig,
        reconnections: Option<broadcast::Receiver<()>>,
    ) -> Arc<Hub> {
        let (commands, receiver) = mpsc::unbounded_channel();
        let connected = Arc::new(AtomicUsize::new(0));
        let state = State {
            orgs: HashMap::new(),
            audience,
            connected: connected.clone(),
            origin: bus.instance(),
        };
        tokio::spawn(run(
            state,
            bus,
            receiver,
            reconnections,
            config.poll_interval,
        ));
        Arc::new(Hub {
            commands,
            next_id: AtomicU64::new(1),
            connected,
            queue_capacity: config.queue_capacity.max(8),
        })
    }

    /// Registers a session; its events arrive on the returned receiver. When the hub drops
    /// the sender (the session was too slow), the receiver ends.
    pub fn register(&self, org: i64, user: i64) -> (SessionHandle, mpsc::Receiver<Outgoing>) {
        let handle = SessionHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            org,
            user,
        };
        let (sender, receiver) = mpsc::channel(self.queue_capacity);
        let _ = self.commands.send(Command::Register { handle, sender });
        (handle, receiver)
    }

    pub fn unregister(&self, handle: SessionHandle) {
        let _ = self.commands.send(Command::Unregister(handle));
    }

    /// Asks for every event after `after` that the session's user may see.
    pub fn resume(&self, handle: SessionHandle, after: i64) {
        let _ = self.commands.send(Command::Resume { handle, after });
    }

    /// Tells every session to close (server shutdown).
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }

    /// Sessions registered on this instance.
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }
}

struct Session {
    user: i64,
    sender: mpsc::Sender<Outgoing>,
}

struct Org {
    /// The last cursor fanned out (or known to precede the first session).
    cursor: i64,
    sessions: HashMap<u64, Session>,
}

struct State {
    orgs: HashMap<i64, Org>,
    audience: Arc<dyn Audience>,
    connected: Arc<AtomicUsize>,
    /// This instance's id on the bus (see [`Bus::instance`]).
    origin: u64,
}

const CATCH_UP_BATCH: i64 = 500;

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

async fn run(
    mut state: State,
    bus: Arc<dyn Bus>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut reconnections: Option<broadcast::Receiver<()>>,
    poll_interval: Duration,
) {
    let mut events = bus.subscribe();
    let mut poll = tokio::time::interval(poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Shutdown) | None => {
                    for org in state.orgs.values() {
                        for session in org.sessions.values() {
                            let _ = session.sender.try_send(Outgoing::Shutdown);
                        }
                    }
                    if command.is_none() { return; }
                }
                Some(command) => state.command(command).await,
            },
            received = events.recv() => match received {
                Ok(event) => state.event(event).await,
                // This instance fell behind its own bus: the log has everything.
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "hub lagged behind the bus; catching up from the log");
                    state.catch_up_all().await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            reconnected = recv_reconnection(&mut reconnections) => {
                if reconnected {
                    state.catch_up_all().await;
                }
            }
            _ = poll.tick() => {
                // While the bus cannot carry other instances' events, read them from the log.
                if !bus.healthy() {
                    state.catch_up_all().await;
                }
            }
        }
    }
}

async fn recv_reconnection(receiver: &mut Option<broadcast::Receiver<()>>) -> bool {
    match receiver {
        Some(receiver) => !matches!(
            receiver.recv().await,
            Err(broadcast::error::RecvError::Closed)
        ),
        None => std::future::pending().await,
    }
}

impl State {
    async fn command(&mut self, command: Command) {
        match command {
            Command::Register { handle, sender } => {
                if !self.orgs.contains_key(&handle.org) {
                    let audience = self.audience.clone();
                    let org_id = handle.org;
                    let found = blocking(move || audience.last_seq(org_id))
                        .await
                        .and_then(Result::ok);
                    // Without the current cursor the session cannot be placed in the stream:
                    // refuse it (dropping its sender closes it; the client reconnects).
                    let Some(cursor) = found else {
                        tracing::warn!(
                            org = org_id,
                            "cannot read the event cursor; refusing a session"
                        );
                        return;
                    };
                    self.orgs.insert(
                        handle.org,
                        Org {
                            cursor,
                            sessions: HashMap::new(),
                        },
                    );
                }
                if let Some(org) = self.orgs.get_mut(&handle.org) {
                    org.sessions.insert(
                        handle.id,
                        Session {
                            user: handle.user,
                            sender,
                        },
                    );
                    self.connected.fetch_add(1, Ordering::Relaxed);
                }
            }
            Command::Unregister(handle) => self.remove(handle.org, handle.id),
            Command::Resume { handle, after } => self.resume(handle, after).await,
            Command::Shutdown => {}
        }
    }

    fn remove(&mut self, org_id: i64, id: u64) {
        let Some(org) = self.orgs.get_mut(&org_id) else {
            return;
        };
        if org.sessions.remove(&id).is_none() {
            return;
        }
        self.connected.fetch_sub(1, Ordering::Relaxed);
        if org.sessions.is_empty() {
            // Nobody left to deliver to, so nothing keeps the cursor current (catch-ups skip
            // such orgs): the next session starts again from the log's newest cursor rather
            // than receiving what happened before it connected.
            self.orgs.remove(&org_id);
        }
    }

    async fn resume(&mut self, handle: SessionHandle, after: i64) {
        let Some(cursor) = self.orgs.get(&handle.org).map(|org| org.cursor) else {
            return;
        };
        let audience = self.audience.clone();
        let org = handle.org;
        let retained = blocking(move || audience.first_retained(org))
            .await
            .and_then(Result::ok)
            .flatten();
        if cursor_expired(after, retained, cursor) {
            self.send(handle.org, handle.id, Outgoing::Expired);
            return;
        }
        let mut missed = Vec::new();
        let mut from = after;
        while from < cursor {
            let audience = self.audience.clone();
            let batch = blocking(move || audience.events_after(org, from, CATCH_UP_BATCH))
                .await
                .and_then(Result::ok)
                .unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            for event in batch {
                if event.seq > cursor {
                    // Newer events reach the session live, after this replay.
                    from = cursor;
                    break;
                }
                from = event.seq;
                let audience = self.audience.clone();
                let user = handle.user;
                let event = Arc::new(event);
                let shared = event.clone();
                let allowed = blocking(move || audience.recipients(&shared, &[user]))
                    .await
                    .unwrap_or_default();
                if allowed.contains(&user) {
                    missed.push(event);
                }
            }
        }
        self.send(
            handle.org,
            handle.id,
            Outgoing::Replay {
                events: missed,
                through: cursor,
            },
        );
    }

    /// Queues a frame for one session; a full queue closes the session (it resumes later).
    fn send(&mut self, org_id: i64, id: u64, outgoing: Outgoing) {
        let Some(org) = self.orgs.get_mut(&org_id) else {
            return;
        };
        let Some(session) = org.sessions.get(&id) else {
            return;
        };
        if session.sender.try_send(outgoing).is_err() {
            tracing::info!(session = id, "closing a session that cannot keep up");
            self.remove(org_id, id);
        }
    }

    async fn event(&mut self, event: Arc<BusEvent>) {
        if event.is_ephemeral() {
            self.fan_out(event).await;
            return;
        }
        let Some(cursor) = self.orgs.get(&event.org_id).map(|org| org.cursor) else {
            return;
        };
        if event.seq <= cursor {
            return;
        }
        if event.origin != self.origin {
            // Another instance's event: the bus only rings the bell, and what is delivered
            // comes from this deployment's log, never from the message. (A Redis shared with
            // another deployment, whose organizations and cursors overlap ours, must neither
            // leak its events here nor take our cursors.)
            self.catch_up(event.org_id, event.seq).await;
            return;
        }
        if event.seq > cursor + 1 {
            // Something committed earlier has not reached us (yet): read it from the log.
            self.catch_up(event.org_id, event.seq - 1).await;
        }
        if self
            .orgs
            .get(&event.org_id)
            .is_some_and(|org| event.seq == org.cursor + 1)
        {
            self.fan_out(event).await;
        }
    }

    async fn catch_up_all(&mut self) {
        let orgs: Vec<i64> = self
            .orgs
            .iter()
            .filter(|(_, org)| !org.sessions.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for org in orgs {
            self.catch_up(org, i64::MAX).await;
        }
    }

    /// Fans out the logged events after the org's cursor, up to `through`.
    async fn catch_up(&mut self, org_id: i64, through: i64) {
        loop {
            let Some(cursor) = self.orgs.get(&org_id).map(|org| org.cursor) else {
                return;
            };
            if cursor >= through {
                return;
            }
            let audience = self.audience.clone();
            let batch = blocking(move || audience.events_after(org_id, cursor, CATCH_UP_BATCH))
                .await
                .and_then(Result::ok)
                .unwrap_or_default();
            let full = batch.len() as i64 == CATCH_UP_BATCH;
            let mut progressed = false;
            for event in batch {
                if event.seq > through {
                    return;
                }
                self.fan_out(Arc::new(event)).await;
                progressed = true;
            }
            if !full || !progressed {
                return;
            }
        }
    }

    /// Hands the event to every session whose user may see it, and advances the cursor.
    async fn fan_out(&mut self, event: Arc<BusEvent>) {
        let Some(org) = self.orgs.get(&event.org_id) else {
            return;
        };
        let mut users: Vec<i64> = org.sessions.values().map(|session| session.user).collect();
        users.sort_unstable();
        users.dedup();
        if let Some(from) = event.from_user {
            users.retain(|user| *user != from);
        }
        let allowed = if users.is_empty() {
            Vec::new()
        } else {
            let audience = self.audience.clone();
            let shared = event.clone();
            blocking(move || audience.recipients(&shared, &users))
                .await
                .unwrap_or_default()
        };
        let Some(org) = self.orgs.get_mut(&event.org_id) else {
            return;
        };
        if !event.is_ephemeral() {
            org.cursor = org.cursor.max(event.seq);
        }
        let targets: Vec<u64> = org
            .sessions
            .iter()
            .filter(|(_, session)| allowed.contains(&session.user))
            .map(|(id, _)| *id)
            .collect();
        for id in targets {
            self.send(event.org_id, id, Outgoing::Event(event.clone()));
        }
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
