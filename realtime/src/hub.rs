//! The per-instance hub: the registry of this instance's WebSocket sessions and the
//! fan-out that hands each event, in cursor order and once, to the sessions whose users
//! may see it. One task owns all state (no locks on the hot path, no task per
//! subscription); database work (who may see a page of events, catching up from the log)
//! runs on the blocking pool through [`Audience`].
//!
//! Replay (a session's `resume`) never runs on the hub's task: the hub only fixes where the
//! replay ends (its cursor at that moment; everything later reaches the session live) and
//! hands the work to a task of its own, which reads the log a page at a time, decides each
//! page's audience in one call and streams the page to the session. A semaphore bounds the
//! replays reading at once, so a resume storm cannot take the whole connection pool.
//! Everything a client can grow is bounded: the command channel, the session queues, the
//! replay channel (one page in flight).
//!
//! The hub also keeps presence (see [`crate::presence`]): it counts each user's sockets,
//! publishes its connected users on the bus's control channel, hears the other instances'
//! and, once a second, sends each socket at most one `presence.updated` frame. A
//! `Disconnect` control message (deactivation) closes the user's sockets on every instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};

use crate::presence::{self, Availability, Presence};
use crate::queue;
use crate::{Bus, BusEvent, Control, EventType};

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
    /// For each of `events` (all of organization `org`), which of `users` may receive it.
    /// One call decides a whole page: its number of queries must not grow with the number
    /// of events or users.
    fn audiences(
        &self,
        org: i64,
        events: &[Arc<BusEvent>],
        users: &[i64],
    ) -> Result<Vec<Vec<i64>>, String>;
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
    /// Commands (register, unregister, resume) waiting for the hub; senders wait when full.
    pub command_capacity: usize,
    /// Events read from the log per replay page.
    pub replay_page: i64,
    /// Replays reading the log at once on this instance.
    pub max_replays: usize,
    /// How often presence changes are sent to sockets (at most one frame per socket each).
    pub presence_every: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue_capacity: 256,
            poll_interval: Duration::from_millis(500),
            command_capacity: 1024,
            replay_page: 500,
            max_replays: 4,
            presence_every: Duration::from_secs(1),
        }
    }
}

/// What a session's queue carries.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A live event the session's user may see.
    Event(Arc<BusEvent>),
    /// A `presence.updated` frame, rendered once for every socket of the organization (in
    /// an `Arc` though `ByteString` is shared already: it keeps this enum, and so each
    /// queued frame, at 16 bytes instead of 40).
    Presence(Arc<ByteString>),
    /// The server is shutting down.
    Shutdown,
}

/// What a replay streams to its session, in order: pages, then `Done` or `Expired`. The
/// stream ending without either means the replay failed (the session closes; the client
/// resumes again).
#[derive(Debug, Clone)]
pub enum ReplayItem {
    /// Missed events the session's user may see, oldest first.
    Page(Vec<Arc<BusEvent>>),
    /// The replay covered everything through this cursor; later events arrive live.
    Done { through: i64 },
    /// The resume cursor is older than the retention window.
    Expired,
}

/// Why the hub closes a session at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The user was deactivated.
    AccountDisabled,
    /// The sign-in the socket was opened with ended (sign-out, revoked, new password).
    SignedOut,
}

/// What a session gets from [`Hub::register`].
pub struct Registration {
    pub handle: SessionHandle,
    /// Live events and presence frames; it ends when the hub drops a session too slow to
    /// keep up.
    pub queue: queue::Receiver<Outgoing>,
    /// Fires when the hub closes the session for a reason of its own.
    pub closing: oneshot::Receiver<Closing>,
}

/// A registered session, as the hub knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionHandle {
    pub id: u64,
    pub org: i64,
    pub user: i64,
    /// Which of the user's sign-ins opened it (a key of the sign-in, see
    /// [`Hub::sign_out`]).
    pub sign_in: u64,
}

enum Command {
    Register {
        handle: SessionHandle,
        availability: Availability,
        sender: queue::Sender<Outgoing>,
        closing: oneshot::Sender<Closing>,
    },
    Unregister(SessionHandle),
    Resume {
        handle: SessionHandle,
        after: i64,
        reply: mpsc::Sender<ReplayItem>,
    },
    Shutdown,
}

pub struct Hub {
    commands: mpsc::Sender<Command>,
    bus: Arc<dyn Bus>,
    presence: Arc<Mutex<Presence>>,
    next_id: AtomicU64,
    connected: Arc<AtomicUsize>,
    replaying: Arc<AtomicUsize>,
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
        let (commands, receiver) = mpsc::channel(config.command_capacity.max(1));
        let connected = Arc::new(AtomicUsize::new(0));
        let replaying = Arc::new(AtomicUsize::new(0));
        let presence = Arc::new(Mutex::new(Presence::new(crate::redis_bus::instance_id())));
        let state = State {
            presence: presence.clone(),
            orgs: HashMap::new(),
            audience,
            connected: connected.clone(),
            origin: bus.instance(),
            replays: Replays {
                permits: Arc::new(Semaphore::new(config.max_replays.max(1))),
                running: replaying.clone(),
                page: config.replay_page.max(1),
            },
        };
        tokio::spawn(run(
            state,
            bus.clone(),
            receiver,
            reconnections,
            config.poll_interval,
            config.presence_every,
        ));
        Arc::new(Hub {
            commands,
            bus,
            presence,
            next_id: AtomicU64::new(1),
            connected,
            replaying,
            queue_capacity: config.queue_capacity.max(8),
        })
    }

    /// Registers a session; its events arrive on the returned receiver. When the hub drops
    /// the sender (the session was too slow), the receiver ends. Waits while the hub's
    /// command channel is full.
    pub async fn register(
        &self,
        org: i64,
        user: i64,
        sign_in: u64,
        availability: Availability,
    ) -> Registration {
        let handle = SessionHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            org,
            user,
            sign_in,
        };
        let (sender, queue) = queue::bounded(self.queue_capacity);
        let (closer, closing) = oneshot::channel();
        let _ = self
            .commands
            .send(Command::Register {
                handle,
                availability,
                sender,
                closing: closer,
            })
            .await;
        Registration {
            handle,
            queue,
            closing,
        }
    }

    /// The organization's connected users, on any instance (absent: offline).
    pub fn presence(&self, org: i64) -> HashMap<i64, Availability> {
        self.presence
            .lock()
            .map(|presence| presence.snapshot(org))
            .unwrap_or_default()
    }

    /// The user chose a status: every instance shows it from its next presence tick.
    pub fn set_status(&self, org: i64, user: i64, availability: Availability) {
        self.bus.publish_control(Control::Status {
            org,
            user,
            availability,
        });
    }

    /// Closes every socket of the user, on every instance (deactivation).
    pub fn disconnect_user(&self, org: i64, user: i64) {
        self.bus.publish_control(Control::Disconnect { org, user });
    }

    /// Closes the user's sockets of one sign-in (or of all, `None`), on every instance.
    pub fn sign_out(&self, org: i64, user: i64, sign_in: Option<u64>) {
        self.bus
            .publish_control(Control::SignedOut { org, user, sign_in });
    }

    pub async fn unregister(&self, handle: SessionHandle) {
        let _ = self.commands.send(Command::Unregister(handle)).await;
    }

    /// Asks for every event after `after` that the session's user may see. The replay runs
    /// on a task of its own and streams pages (at most one waiting) on the returned
    /// receiver; dropping the receiver cancels it.
    pub async fn resume(&self, handle: SessionHandle, after: i64) -> mpsc::Receiver<ReplayItem> {
        let (reply, receiver) = mpsc::channel(1);
        let _ = self
            .commands
            .send(Command::Resume {
                handle,
                after,
                reply,
            })
            .await;
        receiver
    }

    /// Tells every session to close (server shutdown).
    pub fn shutdown(&self) {
        if let Err(mpsc::error::TrySendError::Full(command)) =
            self.commands.try_send(Command::Shutdown)
        {
            let commands = self.commands.clone();
            tokio::spawn(async move {
                let _ = commands.send(command).await;
            });
        }
    }

    /// Sessions registered on this instance.
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// Replays under way on this instance (reading the log or streaming to their session).
    pub fn replays_running(&self) -> usize {
        self.replaying.load(Ordering::Relaxed)
    }
}

struct Session {
    user: i64,
    sign_in: u64,
    sender: queue::Sender<Outgoing>,
    closing: Option<oneshot::Sender<Closing>>,
}

struct Org {
    /// The last cursor fanned out (or known to precede the first session).
    cursor: i64,
    sessions: HashMap<u64, Session>,
}

/// What replays share: the permits to read the log, and a count for observers.
#[derive(Clone)]
struct Replays {
    permits: Arc<Semaphore>,
    running: Arc<AtomicUsize>,
    page: i64,
}

struct State {
    orgs: HashMap<i64, Org>,
    presence: Arc<Mutex<Presence>>,
    audience: Arc<dyn Audience>,
    connected: Arc<AtomicUsize>,
    /// This instance's id on the bus (see [`Bus::instance`]).
    origin: u64,
    replays: Replays,
}

const CATCH_UP_BATCH: i64 = 500;

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

async fn run(
    mut state: State,
    bus: Arc<dyn Bus>,
    mut commands: mpsc::Receiver<Command>,
    mut reconnections: Option<broadcast::Receiver<()>>,
    poll_interval: Duration,
    presence_every: Duration,
) {
    let mut events = bus.subscribe();
    let mut controls = bus.subscribe_control();
    let mut poll = tokio::time::interval(poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut presence_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + presence_every, presence_every);
    presence_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heartbeat = Instant::now();
    loop {
        tokio::select! {
            control = controls.recv() => match control {
                Ok(control) => state.control(&control),
                // Missed control messages: presence heals with the next heartbeats.
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "hub lagged behind the control channel");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = presence_tick.tick() => {
                let heartbeat = last_heartbeat.elapsed() >= presence::HEARTBEAT;
                if heartbeat {
                    last_heartbeat = Instant::now();
                }
                state.presence_tick(bus.as_ref(), heartbeat);
            }
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
            Command::Register {
                handle,
                availability,
                sender,
                closing,
            } => {
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
                            sign_in: handle.sign_in,
                            sender,
                            closing: Some(closing),
                        },
                    );
                    self.connected.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut presence) = self.presence.lock() {
                        presence.connect(handle.org, handle.user, availability);
                    }
                }
            }
            Command::Unregister(handle) => self.remove(handle.org, handle.id),
            Command::Resume {
                handle,
                after,
                reply,
            } => self.resume(handle, after, reply),
            Command::Shutdown => {}
        }
    }

    fn remove(&mut self, org_id: i64, id: u64) {
        let Some(org) = self.orgs.get_mut(&org_id) else {
            return;
        };
        let Some(session) = org.sessions.remove(&id) else {
            return;
        };
        self.connected.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut presence) = self.presence.lock() {
            presence.disconnect(org_id, session.user);
        }
        if org.sessions.is_empty() {
            // Nobody left to deliver to, so nothing keeps the cursor current (catch-ups skip
            // such orgs): the next session starts again from the log's newest cursor rather
            // than receiving what happened before it connected.
            self.orgs.remove(&org_id);
        }
    }

    /// Fixes where the replay ends (the org's cursor now: later events reach the session
    /// live, after the replay) and starts it on a task of its own.
    fn resume(&mut self, handle: SessionHandle, after: i64, reply: mpsc::Sender<ReplayItem>) {
        let Some(org) = self.orgs.get(&handle.org) else {
            return;
        };
        if !org.sessions.contains_key(&handle.id) {
            return;
        }
        if after >= org.cursor && after >= 0 {
            // Nothing was missed (a reconnect at the newest cursor, a new socket's grace
            // replay when nothing committed meanwhile): done at once, with no task, permit
            // or read of the log, which a reconnect storm would otherwise queue for.
            let _ = reply.try_send(ReplayItem::Done {
                through: org.cursor,
            });
            return;
        }
        let replay = Replay {
            audience: self.audience.clone(),
            replays: self.replays.clone(),
            org: handle.org,
            user: handle.user,
            after,
            through: org.cursor,
            reply,
        };
        self.replays.running.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let running = replay.replays.running.clone();
            replay.run().await;
            running.fetch_sub(1, Ordering::Relaxed);
        });
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

    /// A control message from any instance (this one included).
    fn control(&mut self, control: &Control) {
        match control {
            Control::Presence(published) => {
                if let Ok(mut presence) = self.presence.lock() {
                    presence.heard(published.clone(), Instant::now());
                }
            }
            Control::Status {
                org,
                user,
                availability,
            } => {
                if let Ok(mut presence) = self.presence.lock() {
                    presence.set_status(*org, *user, *availability);
                }
            }
            Control::Disconnect { org, user } => {
                self.close_sessions(*org, Closing::AccountDisabled, |session| {
                    session.user == *user
                });
            }
            Control::SignedOut { org, user, sign_in } => {
                self.close_sessions(*org, Closing::SignedOut, |session| {
                    session.user == *user && sign_in.is_none_or(|key| session.sign_in == key)
                });
            }
            Control::UserChanged { .. } => {}
        }
    }

    /// Closes, for `why`, the organization's sessions that `which` picks.
    fn close_sessions(&mut self, org: i64, why: Closing, which: impl Fn(&Session) -> bool) {
        let Some(sessions) = self.orgs.get_mut(&org) else {
            return;
        };
        let closing: Vec<u64> = sessions
            .sessions
            .iter_mut()
            .filter(|(_, session)| which(session))
            .map(|(id, session)| {
                if let Some(closer) = session.closing.take() {
                    let _ = closer.send(why);
                }
                *id
            })
            .collect();
        for id in closing {
            self.remove(org, id);
        }
    }

    /// Publishes this instance's presence sets that changed (or all, on a heartbeat),
    /// forgets quiet instances, and sends each socket at most one `presence.updated` frame
    /// with what changed in its organization.
    fn presence_tick(&mut self, bus: &dyn Bus, heartbeat: bool) {
        let (publications, changes) = match self.presence.lock() {
            Ok(mut presence) => {
                presence.expire(Instant::now());
                (
                    presence.take_publications(heartbeat),
                    presence.take_changes(),
                )
            }
            Err(_) => return,
        };
        for published in publications {
            bus.publish_control(Control::Presence(published));
        }
        let at = now_millis();
        for (org_id, users) in changes {
            let Some(org) = self.orgs.get(&org_id) else {
                continue;
            };
            let users: Vec<serde_json::Value> = users
                .into_iter()
                .map(|(user, availability)| {
                    serde_json::json!({
                        "user_id": user,
                        "status": availability.map_or("offline", Availability::as_str),
                    })
                })
                .collect();
            let frame: Arc<ByteString> = Arc::new(
                serde_json::json!({
                    "type": EventType::PresenceUpdated.as_str(),
                    "at": at,
                    "data": {"users": users},
                })
                .to_string()
                .into(),
            );
            let ids: Vec<u64> = org.sessions.keys().copied().collect();
            for id in ids {
                self.send(org_id, id, Outgoing::Presence(frame.clone()));
            }
        }
    }

    async fn event(&mut self, event: Arc<BusEvent>) {
        if event.event_type == EventType::PresenceUpdated {
            // Presence travels on the control channel (an older instance may still publish
            // it as an event: its changes reach everyone with its next heartbeat instead).
            return;
        }
        if event.is_ephemeral() {
            self.fan_out(vec![event]).await;
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
            self.fan_out(vec![event]).await;
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

    /// Fans out the logged events after the org's cursor, up to `through`, a page at a time.
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
            let page: Vec<Arc<BusEvent>> = batch
                .into_iter()
                .filter(|event| event.seq <= through)
                .map(Arc::new)
                .collect();
            let reached_end = page.len() as i64 != CATCH_UP_BATCH;
            if page.is_empty() {
                return;
            }
            self.fan_out(page).await;
            if !full || reached_end {
                return;
            }
        }
    }

    /// Hands each event (all of one organization, in order) to every session whose user may
    /// see it, and advances the cursor. One audience call decides the whole batch.
    async fn fan_out(&mut self, batch: Vec<Arc<BusEvent>>) {
        let Some(first) = batch.first() else {
            return;
        };
        let org_id = first.org_id;
        let Some(org) = self.orgs.get(&org_id) else {
            return;
        };
        let mut users: Vec<i64> = org.sessions.values().map(|session| session.user).collect();
        users.sort_unstable();
        users.dedup();
        let decided = if users.is_empty() {
            Vec::new()
        } else {
            let audience = self.audience.clone();
            let shared = batch.clone();
            match blocking(move || audience.audiences(org_id, &shared, &users)).await {
                Some(Ok(decided)) => decided,
                Some(Err(error)) => {
                    tracing::warn!(%error, "deciding event recipients");
                    Vec::new()
                }
                None => Vec::new(),
            }
        };
        for (index, event) in batch.into_iter().enumerate() {
            let Some(org) = self.orgs.get_mut(&org_id) else {
                return;
            };
            if !event.is_ephemeral() {
                org.cursor = org.cursor.max(event.seq);
            }
            let Some(allowed) = decided.get(index) else {
                continue;
            };
            let targets: Vec<u64> = org
                .sessions
                .iter()
                .filter(|(_, session)| {
                    allowed.contains(&session.user) && event.from_user != Some(session.user)
                })
                .map(|(id, _)| *id)
                .collect();
            for id in targets {
                self.send(org_id, id, Outgoing::Event(event.clone()));
            }
        }
    }
}

/// Now, as event times are written: RFC 3339 UTC with milliseconds.
fn now_millis() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// One session's replay, off the hub's task.
struct Replay {
    audience: Arc<dyn Audience>,
    replays: Replays,
    org: i64,
    user: i64,
    after: i64,
    /// The hub's cursor when the resume was taken: later events reach the session live.
    through: i64,
    reply: mpsc::Sender<ReplayItem>,
}

impl Replay {
    async fn run(self) {
        let Replay {
            audience,
            replays,
            org,
            user,
            after,
            through,
            reply,
        } = self;
        let read = audience.clone();
        let retained = {
            let Ok(_permit) = replays.permits.acquire().await else {
                return;
            };
            blocking(move || read.first_retained(org)).await
        };
        let Some(Ok(retained)) = retained else {
            return;
        };
        if cursor_expired(after, retained, through) {
            let _ = reply.send(ReplayItem::Expired).await;
            return;
        }
        let mut from = after;
        while from < through {
            // Read and filter a page while holding a permit; stream it without one (a slow
            // client holds back only its own replay).
            let visible = {
                let Ok(_permit) = replays.permits.acquire().await else {
                    return;
                };
                if reply.is_closed() {
                    return;
                }
                let audience = audience.clone();
                let page = replays.page;
                let found = blocking(move || -> Result<_, String> {
                    let events: Vec<Arc<BusEvent>> = audience
                        .events_after(org, from, page)?
                        .into_iter()
                        .filter(|event| event.seq <= through)
                        .map(Arc::new)
                        .collect();
                    let decided = audience.audiences(org, &events, &[user])?;
                    Ok((events, decided))
                })
                .await;
                let (events, decided) = match found {
                    Some(Ok(found)) => found,
                    Some(Err(error)) => {
                        tracing::warn!(%error, org, "replay failed");
                        return;
                    }
                    None => return,
                };
                let Some(last) = events.last().map(|event| event.seq) else {
                    break;
                };
                from = if (events.len() as i64) < page {
                    through
                } else {
                    last
                };
                events
                    .into_iter()
                    .zip(decided)
                    .filter(|(_, allowed)| allowed.contains(&user))
                    .map(|(event, _)| event)
                    .collect::<Vec<_>>()
            };
            if !visible.is_empty() && reply.send(ReplayItem::Page(visible)).await.is_err() {
                return;
            }
        }
        let _ = reply.send(ReplayItem::Done { through }).await;
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
