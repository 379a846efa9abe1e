//! Event cursors on PostgreSQL are taken while the writing transaction commits
//! (`persistence::repo::events`): one organization's writers do not wait for each other's
//! open transactions, and cursors still count up without a gap in commit order, each
//! writer told exactly the cursors its events got.

use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use domain::{EventType, OrgId};
use persistence::diesel::{self, RunQueryDsl};
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
/// told after its commit.
fn write(store: &Store, org: OrgId, writer: usize, count: usize) -> Vec<StoredEvent> {
    let batch = (0..count).map(|n| event(org, writer, n)).collect();
    store
        .write_then(
            |conn| events::append_all(conn, org, batch),
            events::numbered,
        )
        .expect("the write commits")
        .expect("its cursors are read back")
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
fn a_writer_does_not_wait_for_another_open_transaction_of_its_organization() {
    let Some((_db, store, org)) = postgres_store("event_cursors::open_transaction") else {
        return;
    };
    let (appended, wait_appended) = mpsc::channel::<()>();
    let (release, wait_release) = mpsc::channel::<()>();
    // The slow writer: appends its events, then holds its transaction open until told.
    let slow = {
        let store = store.clone();
        std::thread::spawn(move || {
            let batch = (0..2).map(|n| event(org, 0, n)).collect();
            store
                .write_then(
                    |conn| {
                        let appended_events = events::append_all(conn, org, batch)?;
                        let _ = appended.send(());
                        let _ = wait_release.recv_timeout(Duration::from_secs(30));
                        Ok(appended_events)
                    },
                    events::numbered,
                )
                .expect("the slow write commits")
                .expect("its cursors")
        })
    };
    wait_appended
        .recv_timeout(Duration::from_secs(10))
        .expect("the slow writer appended");
    // Another writer of the organization meanwhile: it would wait for the slow one's commit
    // if the cursor were taken while appending. A lock timeout turns such a wait into an
    // error rather than a hang.
    let quick = store
        .write_then(
            |conn| {
                diesel::sql_query("SET LOCAL lock_timeout = '5s'").execute(conn)?;
                events::append_all(conn, org, vec![event(org, 1, 0), event(org, 1, 1)])
            },
            events::numbered,
        )
        .expect("the other writer commits while the first is still open")
        .expect("its cursors");
    release.send(()).expect("the slow writer waits");
    let slow = slow.join().expect("the slow writer's thread");

    let seqs = |events: &[StoredEvent]| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(&quick),
        [1, 2],
        "the first to commit takes the first cursors"
    );
    assert_eq!(
        seqs(&slow),
        [3, 4],
        "cursors follow commit order, not append order"
    );
    let log = store
        .read(|conn| events::after(conn, org, 0, 100))
        .expect("the log");
    assert_eq!(
        log,
        [quick, slow].concat(),
        "the log is what each writer was told"
    );
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

#[test]
fn the_next_cursor_counts_on_from_the_purged_log_and_from_cursors_taken_before() {
    let Some((_db, store, org)) = postgres_store("event_cursors::purged") else {
        return;
    };
    let first = write(&store, org, 0, 3);
    assert_eq!(first.last().map(|e| e.seq), Some(3));
    // The retention job: everything is past the window, but the newest event stays.
    let purged = store
        .write(|conn| events::purge_before(conn, persistence::now() + Duration::from_secs(60)))
        .expect("purge");
    assert_eq!(purged, 2, "all but the organization's newest event");
    assert_eq!(
        write(&store, org, 1, 1)[0].seq,
        4,
        "counts on from the newest kept"
    );

    // An organization whose cursors were counted on its row (before the migration) and
    // whose events are all gone: it counts on from the row.
    let other = store
        .write(|conn| {
            let other = orgs::insert(conn, "Counted before")?.id;
            diesel::sql_query("UPDATE organizations SET event_seq = 100 WHERE id = $1")
                .bind::<diesel::sql_types::BigInt, _>(other.get())
                .execute(conn)?;
            Ok(other)
        })
        .expect("an organization counted before");
    assert_eq!(
        write(&store, other, 2, 2)
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [101, 102]
    );
    let last = store
        .read(|conn| events::last_seq(conn, other))
        .expect("last");
    assert_eq!(last, 102);
}
