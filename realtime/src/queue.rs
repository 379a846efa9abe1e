//! A session's queue: the frames the hub hands one WebSocket session, bounded, one producer
//! (the hub's task) and one consumer (the session). Every connected socket holds one, idle
//! or not, so it is built for what an idle socket costs: a small block (a mutex, an empty
//! `VecDeque`, a [`Notify`]) and nothing else until the first frame. tokio's bounded
//! `mpsc` costs about 1.2 KiB per channel before anything is sent (two cache-padded
//! halves and a first block of 32 slots); 10,000 idle sockets paid 12 MB for it.
//!
//! A full queue refuses the frame ([`Full`]): the hub closes a session too slow to keep up.
//! Dropping the [`Sender`] ends the receiver after what is queued; dropping the
//! [`Receiver`] makes every later send fail.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The frame a full (or closed) queue did not take.
#[derive(Debug)]
pub struct Full<T>(pub T);

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Rung on every push and on close; it keeps one permit, so a push between the
    /// receiver's look and its wait is never missed.
    ready: Notify,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    /// The other half is gone.
    closed: bool,
}

impl<T> Shared<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; a poisoned one still holds a valid queue.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A queue of at most `capacity` items (at least 1).
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            closed: false,
        }),
        ready: Notify::new(),
        capacity: capacity.max(1),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The hub's half.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item`, or gives it back when the queue is full or the receiver is gone.
    pub fn try_send(&self, item: T) -> Result<(), Full<T>> {
        {
            let mut state = self.shared.state();
            if state.closed || state.items.len() >= self.shared.capacity {
                return Err(Full(item));
            }
            state.items.push_back(item);
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.ready.notify_one();
    }
}

/// The session's half.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// Past this many slots an emptied queue gives its memory back (a burst must not stay
/// allocated on a socket that goes idle again).
const KEEP_SLOTS: usize = 32;

impl<T> Receiver<T> {
    /// The next item, oldest first; `None` once the sender is gone and the queue is empty.
    /// Cancel-safe: an item is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut state = self.shared.state();
                if let Some(item) = state.items.pop_front() {
                    if state.items.is_empty() && state.items.capacity() > KEEP_SLOTS {
                        state.items = VecDeque::new();
                    }
                    return Some(item);
                }
                if state.closed {
                    return None;
                }
            }
            self.shared.ready.notified().await;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.closed = true;
        state.items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn items_arrive_in_order_and_a_full_queue_refuses_more() {
        let (sender, mut receiver) = bounded(3);
        for n in 0..3 {
            sender.try_send(n).expect("room for three");
        }
        assert!(matches!(sender.try_send(3), Err(Full(3))));
        assert_eq!(receiver.recv().await, Some(0));
        sender.try_send(4).expect("room again");
        assert_eq!(receiver.recv().await, Some(1));
        assert_eq!(receiver.recv().await, Some(2));
        assert_eq!(receiver.recv().await, Some(4));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_an_item_and_ends_when_the_sender_goes() {
        let (sender, mut receiver) = bounded(8);
        let waiting = tokio::spawn(async move {
            let first = receiver.recv().await;
            let second = receiver.recv().await;
            (first, second)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        sender.try_send("frame").expect("sent");
        drop(sender);
        let (first, second) = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the receiver woke")
            .expect("the task");
        assert_eq!((first, second), (Some("frame"), None));
    }

    #[tokio::test]
    async fn what_is_queued_is_still_delivered_after_the_sender_goes() {
        let (sender, mut receiver) = bounded(8);
        sender.try_send(1).expect("sent");
        sender.try_send(2).expect("sent");
        drop(sender);
        assert_eq!(receiver.recv().await, Some(1));
        assert_eq!(receiver.recv().await, Some(2));
        assert_eq!(receiver.recv().await, None);
    }

    #[test]
    fn sends_fail_once_the_receiver_is_gone() {
        let (sender, receiver) = bounded(8);
        drop(receiver);
        assert!(matches!(sender.try_send(1), Err(Full(1))));
    }

    #[tokio::test]
    async fn pushes_from_another_thread_are_never_missed() {
        let (sender, mut receiver) = bounded(64);
        const ITEMS: u32 = 20_000;
        let pushing = std::thread::spawn(move || {
            let mut next = 0;
            while next < ITEMS {
                if sender.try_send(next).is_ok() {
                    next += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        });
        for expected in 0..ITEMS {
            let got = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
                .await
                .expect("no wake-up lost");
            assert_eq!(got, Some(expected));
        }
        pushing.join().expect("the pushing thread");
        assert_eq!(receiver.recv().await, None);
    }

    #[tokio::test]
    async fn a_drained_queue_gives_back_a_burst_s_memory() {
        let (sender, mut receiver) = bounded(1024);
        for n in 0..500 {
            sender.try_send(n).expect("sent");
        }
        for _ in 0..500 {
            receiver.recv().await;
        }
        assert_eq!(receiver.shared.state().items.capacity(), 0);
    }
}
