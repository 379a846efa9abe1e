//! The hub against an in-memory log: order, gaps, duplicates, slow sessions, resume.

use std::sync::Mutex;

use super::*;
use crate::LocalBus;
use crate::presence::Availability;

/// An in-memory event log; user 99 may see nothing.
#[derive(Default)]
struct MemoryLog {
    events: Mutex<Vec<BusEvent>>,
    first_retained: Mutex<Option<i64>>,
    audience_calls: Mutex<usize>,
    /// Reads of the log (`events_after`, `first_retained`).
    reads: Mutex<usize>,
    /// Reads after this cursor wait at the gate (to hold a replay mid-way).
    stall: Mutex<Option<(i64, Arc<Gate>)>>,
}

/// A gate a blocking reader waits at until the test releases it.
#[derive(Default)]
struct Gate {
    entered: tokio::sync::Notify,
    open: Mutex<bool>,
    opened: std::sync::Condvar,
}

impl Gate {
    async fn entered(&self) {
        self.entered.notified().await;
    }

    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    fn wait(&self) {
        self.entered.notify_one();
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
}

impl MemoryLog {
    fn stall_reads_after(&self, seq: i64) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        *self.stall.lock().unwrap() = Some((seq, gate.clone()));
        gate
    }

    fn write(&self, seq: i64) -> BusEvent {
        let event = event(seq);
        self.events.lock().unwrap().push(event.clone());
        event
    }
}

impl Audience for MemoryLog {
    fn audiences(
        &self,
        _org: i64,
        events: &[Arc<BusEvent>],
        users: &[i64],
    ) -> Result<Vec<Vec<i64>>, String> {
        *self.audience_calls.lock().unwrap() += 1;
        let allowed: Vec<i64> = users.iter().copied().filter(|user| *user != 99).collect();
        Ok(vec![allowed; events.len()])
    }

    fn events_after(&self, org: i64, seq: i64, limit: i64) -> Result<Vec<BusEvent>, String> {
        *self.reads.lock().unwrap() += 1;
        let stalled = self.stall.lock().unwrap().clone();
        if let Some((at, gate)) = stalled
            && at == seq
        {
            gate.wait();
        }
        let events = self.events.lock().unwrap();
        Ok(events
            .iter()
            .filter(|event| event.org_id == org && event.seq > seq)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    fn last_seq(&self, org: i64) -> Result<i64, String> {
        Ok(self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|event| event.org_id == org)
            .map(|event| event.seq)
            .max()
            .unwrap_or(0))
    }

    fn first_retained(&self, _org: i64) -> Result<Option<i64>, String> {
        *self.reads.lock().unwrap() += 1;
        let explicit = *self.first_retained.lock().unwrap();
        Ok(explicit.or_else(|| self.events.lock().unwrap().first().map(|event| event.seq)))
    }
}

fn event(seq: i64) -> BusEvent {
    BusEvent {
        org_id: 1,
        seq,
        event_type: crate::EventType::MessageCreated,
        inbox_id: Some(1),
        conversation_id: Some(1),
        payload: "{}".into(),
        at: "2026-11-21T09:30:00.000Z".into(),
        from_user: None,
        origin: 0,
        rendered: Default::default(),
    }
}

fn setup(capacity: usize) -> (Arc<LocalBus>, Arc<MemoryLog>, Arc<Hub>) {
    let bus = Arc::new(LocalBus::new(1024));
    let log = Arc::new(MemoryLog::default());
    let config = HubConfig {
        queue_capacity: capacity,
        poll_interval: Duration::from_secs(3600),
        // Presence has tests of its own below; here it would only add frames.
        presence_every: Duration::from_secs(3600),
        ..HubConfig::default()
    };
    let hub = Hub::start(bus.clone(), log.clone(), config, None);
    (bus, log, hub)
}

async fn next(receiver: &mut queue::Receiver<Outgoing>) -> Outgoing {
    tokio::time::timeout(Duration::from_secs(5), receiver.recv())
        .await
        .expect("a frame in time")
        .expect("the queue is open")
}

async fn next_seq(receiver: &mut queue::Receiver<Outgoing>) -> i64 {
    match next(receiver).await {
        Outgoing::Event(event) => event.seq,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Registers a session of `user` (online), keeping its handle and queue.
async fn join(hub: &Hub, org: i64, user: i64) -> (SessionHandle, queue::Receiver<Outgoing>) {
    let registration = hub.register(org, user, 0, Availability::Online).await;
    (registration.handle, registration.queue)
}

/// Registration goes through the hub's task; wait until it has happened.
async fn registered(hub: &Hub, count: usize) {
    for _ in 0..500 {
        if hub.connected() == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("sessions did not register");
}

#[tokio::test]
async fn events_reach_sessions_in_cursor_order_once() {
    let (bus, log, hub) = setup(64);
    let (_, mut queue) = join(&hub, 1, 7).await;
    registered(&hub, 1).await;
    for seq in 1..=3 {
        bus.publish(log.write(seq));
    }
    // A duplicate (e.g. the same event from Redis and locally) is dropped.
    bus.publish(event(2));
    bus.publish(log.write(4));
    for expected in 1..=4 {
        assert_eq!(next_seq(&mut queue).await, expected);
    }
}

#[tokio::test]
async fn a_gap_is_filled_from_the_log_before_the_later_event() {
    let (bus, log, hub) = setup(64);
    let (_, mut queue) = join(&hub, 1, 7).await;
    registered(&hub, 1).await;
    // 1 and 2 committed but their publishes were lost; 3 arrives first.
    log.write(1);
    log.write(2);
    bus.publish(log.write(3));
    for expected in 1..=3 {
        assert_eq!(next_seq(&mut queue).await, expected);
    }
}

#[tokio::test]
async fn users_who_may_not_see_an_event_do_not_get_it() {
    let (bus, log, hub) = setup(64);
    let (_, mut allowed) = join(&hub, 1, 7).await;
    let (_, mut refused) = join(&hub, 1, 99).await;
    let (_, mut other_org) = join(&hub, 2, 8).await;
    registered(&hub, 3).await;
    bus.publish(log.write(1));
    assert_eq!(next_seq(&mut allowed).await, 1);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), refused.recv())
            .await
            .is_err()
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), other_org.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_session_that_cannot_keep_up_is_dropped_without_slowing_others() {
    let (bus, log, hub) = setup(8);
    let (_, mut slow) = join(&hub, 1, 7).await;
    let (_, mut fast) = join(&hub, 1, 8).await;
    registered(&hub, 2).await;
    for seq in 1..=20 {
        bus.publish(log.write(seq));
        assert_eq!(next_seq(&mut fast).await, seq);
    }
    // The slow one got what fit, then its queue was closed: it must reconnect and resume.
    let mut received = 0;
    while let Some(frame) = slow.recv().await {
        assert!(matches!(frame, Outgoing::Event(_)));
        received += 1;
    }
    assert_eq!(received, 8);
    registered(&hub, 1).await;
}

/// Everything a replay streams, through its `Done` (or `Expired`).
async fn replayed(mut replay: mpsc::Receiver<ReplayItem>) -> (Vec<i64>, Option<i64>) {
    let mut seqs = Vec::new();
    loop {
        let item = tokio::time::timeout(Duration::from_secs(5), replay.recv())
            .await
            .expect("a replay item in time");
        match item {
            Some(ReplayItem::Page(events)) => seqs.extend(events.iter().map(|event| event.seq)),
            Some(ReplayItem::Done { through }) => return (seqs, Some(through)),
            Some(ReplayItem::Expired) | None => return (seqs, None),
        }
    }
}

#[tokio::test]
async fn resume_replays_what_was_missed_and_refuses_expired_cursors() {
    let (bus, log, hub) = setup(64);
    for seq in 1..=5 {
        log.write(seq);
    }
    let (handle, mut queue) = join(&hub, 1, 7).await;
    registered(&hub, 1).await;
    let (seqs, through) = replayed(hub.resume(handle, 2).await).await;
    assert_eq!(seqs, vec![3, 4, 5]);
    assert_eq!(through, Some(5));
    bus.publish(log.write(6));
    assert_eq!(next_seq(&mut queue).await, 6);

    *log.first_retained.lock().unwrap() = Some(4);
    let mut expired = hub.resume(handle, 1).await;
    assert!(matches!(expired.recv().await, Some(ReplayItem::Expired)));
}

#[tokio::test]
async fn a_resume_with_nothing_missed_is_done_without_reading_the_log() {
    let (bus, log, hub) = setup(64);
    for seq in 1..=3 {
        log.write(seq);
    }
    let (handle, mut queue) = join(&hub, 1, 7).await;
    registered(&hub, 1).await;
    let reads = *log.reads.lock().unwrap();
    assert_eq!(
        replayed(hub.resume(handle, 3).await).await,
        (vec![], Some(3))
    );
    // A cursor from the future has nothing to replay either (as before: done through ours).
    assert_eq!(
        replayed(hub.resume(handle, 10).await).await,
        (vec![], Some(3))
    );
    assert_eq!(*log.reads.lock().unwrap(), reads, "the log was read");
    // Live events still follow, a cursor behind still replays, a negative one is refused.
    bus.publish(log.write(4));
    assert_eq!(next_seq(&mut queue).await, 4);
    assert_eq!(
        replayed(hub.resume(handle, 2).await).await,
        (vec![3, 4], Some(4))
    );
    let mut refused = hub.resume(handle, -1).await;
    assert!(matches!(refused.recv().await, Some(ReplayItem::Expired)));
}

#[tokio::test]
async fn a_long_replay_streams_in_pages_and_filters_each_page_in_one_call() {
    let bus = Arc::new(LocalBus::new(1024));
    let log = Arc::new(MemoryLog::default());
    for seq in 1..=1234 {
        log.write(seq);
    }
    let config = HubConfig {
        poll_interval: Duration::from_secs(3600),
        presence_every: Duration::from_secs(3600),
        replay_page: 100,
        ..HubConfig::default()
    };
    let hub = Hub::start(bus, log.clone(), config, None);
    let (handle, _queue) = join(&hub, 1, 7).await;
    registered(&hub, 1).await;
    let mut replay = hub.resume(handle, 0).await;
    let mut pages = 0;
    let mut seqs = Vec::new();
    loop {
        match replay.recv().await.expect("replay continues") {
            ReplayItem::Page(events) => {
                assert!(events.len() <= 100);
                pages += 1;
                seqs.extend(events.iter().map(|event| event.seq));
            }
            ReplayItem::Done { through } => {
                assert_eq!(through, 1234);
                break;
            }
            ReplayItem::Expired => panic!("not expired"),
        }
    }
    assert_eq!(seqs, (1..=1234).collect::<Vec<_>>());
    assert_eq!(pages, 13);
    assert_eq!(*log.audience_calls.lock().unwrap(), 13);
}

#[tokio::test]
async fn replay_runs_off_the_hub_task_while_live_events_flow() {
    let (bus, log, hub) = setup(64);
    for seq in 1..=10 {
        log.write(seq);
    }
    let (replaying, _replaying_queue) = join(&hub, 1, 7).await;
    let (_, mut other) = join(&hub, 1, 8).await;
    registered(&hub, 2).await;
    // The log stalls for replays: reads after cursor 0 block until released.
    let gate = log.stall_reads_after(0);
    let replay = hub.resume(replaying, 0).await;
    gate.entered().await;
    assert_eq!(hub.replays_running(), 1);
    // The hub is free: a live event reaches the other session while the replay waits.
    bus.publish(log.write(11));
    assert_eq!(next_seq(&mut other).await, 11);
    gate.release();
    let (seqs, through) = replayed(replay).await;
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    assert_eq!(through, Some(10));
}

#[tokio::test]
async fn the_command_channel_is_bounded_and_senders_wait_rather_than_grow_it() {
    let bus = Arc::new(LocalBus::new(1024));
    let log = Arc::new(MemoryLog::default());
    let config = HubConfig {
        poll_interval: Duration::from_secs(3600),
        presence_every: Duration::from_secs(3600),
        command_capacity: 2,
        ..HubConfig::default()
    };
    let hub = Hub::start(bus, log, config, None);
    // Many registrations at once through a channel of two: each waits its turn, none is lost.
    let mut joins = Vec::new();
    for user in 0..200 {
        let hub = hub.clone();
        joins.push(tokio::spawn(async move {
            hub.register(1, user, 0, Availability::Online).await
        }));
    }
    let mut sessions = Vec::new();
    for join in joins {
        sessions.push(join.await.unwrap());
    }
    registered(&hub, 200).await;
    assert_eq!(hub.commands.max_capacity(), 2);
    for session in &sessions {
        hub.unregister(session.handle).await;
    }
    registered(&hub, 0).await;
}

#[tokio::test]
async fn shutdown_reaches_every_session() {
    let (_bus, _log, hub) = setup(64);
    let (_, mut first) = join(&hub, 1, 7).await;
    let (_, mut second) = join(&hub, 2, 8).await;
    registered(&hub, 2).await;
    hub.shutdown();
    assert!(matches!(next(&mut first).await, Outgoing::Shutdown));
    assert!(matches!(next(&mut second).await, Outgoing::Shutdown));
}

/// The `presence.updated` frames that arrive within `window`, as (user, status) lists.
async fn presence_frames(
    queue: &mut queue::Receiver<Outgoing>,
    window: Duration,
) -> Vec<Vec<(i64, String)>> {
    let deadline = tokio::time::Instant::now() + window;
    let mut frames = Vec::new();
    while let Ok(Some(outgoing)) = tokio::time::timeout_at(deadline, queue.recv()).await {
        if let Outgoing::Presence(frame) = outgoing {
            let frame: serde_json::Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(frame["type"], "presence.updated");
            frames.push(
                frame["data"]["users"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|user| {
                        (
                            user["user_id"].as_i64().unwrap(),
                            user["status"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect(),
            );
        }
    }
    frames
}

fn fast_presence() -> HubConfig {
    HubConfig {
        poll_interval: Duration::from_secs(3600),
        presence_every: Duration::from_millis(100),
        ..HubConfig::default()
    }
}

#[tokio::test]
async fn a_mass_connect_costs_each_socket_a_few_presence_frames_not_one_per_user() {
    let bus = Arc::new(LocalBus::new(1024));
    let hub = Hub::start(bus, Arc::new(MemoryLog::default()), fast_presence(), None);
    let (_, mut watcher) = join(&hub, 1, 0).await;
    let mut others = Vec::new();
    for user in 1..=500 {
        others.push(join(&hub, 1, user).await);
    }
    registered(&hub, 501).await;
    let frames = presence_frames(&mut watcher, Duration::from_millis(500)).await;
    assert!(
        !frames.is_empty() && frames.len() <= 6,
        "{} frames",
        frames.len()
    );
    let online: std::collections::BTreeSet<i64> = frames
        .iter()
        .flatten()
        .filter(|(_, status)| status == "online")
        .map(|(user, _)| *user)
        .collect();
    assert_eq!(online, (0..=500).collect());
    // A second socket of a user already online changes nothing.
    let (second, _) = join(&hub, 1, 7).await;
    registered(&hub, 502).await;
    assert!(
        presence_frames(&mut watcher, Duration::from_millis(300))
            .await
            .is_empty()
    );
    hub.unregister(second).await;
    assert!(
        presence_frames(&mut watcher, Duration::from_millis(300))
            .await
            .is_empty()
    );
    assert_eq!(hub.presence(1).len(), 501);
}

/// Two hubs (instances) on one bus, with fast presence ticks.
fn two_instances() -> (Arc<Hub>, Arc<Hub>) {
    let bus = Arc::new(LocalBus::new(1024));
    let a = Hub::start(
        bus.clone(),
        Arc::new(MemoryLog::default()),
        fast_presence(),
        None,
    );
    let b = Hub::start(bus, Arc::new(MemoryLog::default()), fast_presence(), None);
    (a, b)
}

#[tokio::test]
async fn presence_spans_instances_and_follows_status_and_last_socket() {
    let (a, b) = two_instances();
    let (_, mut on_a) = join(&a, 1, 1).await;
    let (on_b, _queue) = join(&b, 1, 2).await;
    registered(&b, 1).await;
    // A hears that user 2, connected only on B, is online.
    let seen = presence_frames(&mut on_a, Duration::from_millis(500)).await;
    assert!(
        seen.iter()
            .flatten()
            .any(|(user, status)| *user == 2 && status == "online"),
        "{seen:?}"
    );
    assert_eq!(a.presence(1).get(&2), Some(&Availability::Online));
    b.set_status(1, 2, Availability::Away);
    let seen = presence_frames(&mut on_a, Duration::from_millis(500)).await;
    assert_eq!(seen, vec![vec![(2, "away".to_string())]]);
    b.unregister(on_b).await;
    let seen = presence_frames(&mut on_a, Duration::from_millis(500)).await;
    assert_eq!(seen, vec![vec![(2, "offline".to_string())]]);
    assert_eq!(a.presence(1).get(&2), None);
}

#[tokio::test]
async fn deactivation_closes_the_users_sockets_on_every_instance() {
    let (a, b) = two_instances();
    let on_a = a.register(1, 5, 0, Availability::Online).await;
    let on_b = b.register(1, 5, 0, Availability::Online).await;
    let (_, _other) = join(&a, 1, 6).await;
    registered(&a, 2).await;
    registered(&b, 1).await;
    a.disconnect_user(1, 5);
    for closing in [on_a.closing, on_b.closing] {
        let why = tokio::time::timeout(Duration::from_secs(5), closing)
            .await
            .expect("closed in time")
            .expect("a reason");
        assert_eq!(why, Closing::AccountDisabled);
    }
    registered(&a, 1).await;
    registered(&b, 0).await;
}

#[tokio::test]
async fn a_sign_out_closes_that_sign_ins_sockets_on_every_instance_and_no_other() {
    let (a, b) = two_instances();
    let ended_on_a = a.register(1, 5, 77, Availability::Online).await;
    let ended_on_b = b.register(1, 5, 77, Availability::Online).await;
    let mut other_tab = a.register(1, 5, 78, Availability::Online).await;
    registered(&a, 2).await;
    registered(&b, 1).await;
    b.sign_out(1, 5, Some(77));
    for closing in [ended_on_a.closing, ended_on_b.closing] {
        let why = tokio::time::timeout(Duration::from_secs(5), closing)
            .await
            .expect("closed in time")
            .expect("a reason");
        assert_eq!(why, Closing::SignedOut);
    }
    registered(&a, 1).await;
    registered(&b, 0).await;
    assert!(
        other_tab.closing.try_recv().is_err(),
        "the other sign-in stays open"
    );
    // A new password ends every sign-in of the user.
    a.sign_out(1, 5, None);
    let why = tokio::time::timeout(Duration::from_secs(5), other_tab.closing)
        .await
        .expect("closed in time")
        .expect("a reason");
    assert_eq!(why, Closing::SignedOut);
    registered(&a, 0).await;
}
