//! Event cursors on PostgreSQL (`persistence::repo::events`): one organization's writers
//! committing at the same instant get cursors that count up without a gap or a repeat,
//! each writer told exactly the cursors its events got, and a rolled-back writer takes
//! none.

use std::sync::{Arc, Barrier};

use domain::{EventType, OrgId};
use persistence::repo::events::{self, NewEvent, StoredEvent};
use persistence::repo::orgs;
use persistence::{Store, StoreError};

use crate::support::{Backend, TestDb};

fn event(org: OrgId, writer: usize, n: usize) -> NewEvent {
    NewEvent {
        org_id: org,
        event_type: EventType::ConversationUpdated,
        inbox_id: None,
        conversation_id: None,
        payload: format!(r#"{{"writer":{writer},"n":{n}}}"#),
    }
}

/// Appends `count` events of `writer` in one transaction; answers them as the writer was
/// told.
fn write(store: &Store, org: OrgId, writer: usize, count: usize) -> Vec<StoredEvent> {
    let batch = (0..count).map(|n| event(org, writer, n)).collect();
    store
        .write(|conn| events::append_all(conn, org, batch))
        .expect("the write commits")
}

fn postgres_store(test: &str) -> Option<(TestDb, Store, OrgId)> {
    let db = TestDb::create(Backend::Postgres, test)?;
    let store = Store::open(db.url(), 8).expect("open");
    let org = store
        .write(|conn| orgs::insert(conn, "Cursors"))
        .expect("an organization")
        .id;
    Some((db, store, org))
}

#[test]
fn simultaneous_writers_of_one_organization_get_consecutive_cursors_each_once() {
    let Some((_db, store, org)) = postgres_store("event_cursors::simultaneous") else {
        return;
    };
    const WRITERS: usize = 8;
    const ROUNDS: usize = 12;
    let mut told: Vec<StoredEvent> = Vec::new();
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(WRITERS));
        let threads: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    // One to three events per transaction, as a change announces.
                    write(&store, org, round * WRITERS + writer, 1 + writer % 3)
                })
            })
            .collect();
        for thread in threads {
            let events = thread.join().expect("a writer's thread");
            let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
            let first = seqs[0];
            assert_eq!(
                seqs,
                (first..first + seqs.len() as i64).collect::<Vec<_>>(),
                "one transaction's events have consecutive cursors, in the order written"
            );
            told.extend(events);
        }
    }
    told.sort_by_key(|event| event.seq);
    let log = store
        .read(|conn| events::after(conn, org, 0, 10_000))
        .expect("the log");
    let expected: Vec<i64> = (1..=told.len() as i64).collect();
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        expected,
        "cursors count up from 1 without a gap or a repeat"
    );
    assert_eq!(
        log, told,
        "each event is in the log under the cursor its writer was told"
    );
    let last = store
        .read(|conn| events::last_seq(conn, org))
        .expect("the organization's cursor");
    assert_eq!(last, told.len() as i64);
}

#[test]
fn a_rolled_back_transaction_takes_no_cursor() {
    let Some((_db, store, org)) = postgres_store("event_cursors::rolled_back") else {
        return;
    };
    let refused: Result<(), StoreError> = store.write(|conn| {
        let _ = events::append_all(conn, org, vec![event(org, 0, 0)])?;
        Err(StoreError::Conflict("changed its mind".into()))
    });
    assert!(refused.is_err());
    let kept = write(&store, org, 1, 1);
    assert_eq!(kept[0].seq, 1, "the refused transaction left no gap");
    let log = store
        .read(|conn| events::after(conn, org, 0, 100))
        .expect("the log");
    assert_eq!(log, kept);
}
