//! Every migration applies, reverts and re-applies cleanly on both backends.

use persistence::Store;
use persistence::repo::{orgs, users};

use crate::support::{Backend, TestDb};

fn apply_revert_reapply(backend: Backend, test_name: &str) {
    let Some(db) = TestDb::create_empty(backend, test_name) else {
        return;
    };
    let store = Store::open(db.url(), 2).expect("open");

    let applied = store.migrate().expect("first apply");
    assert!(
        !applied.is_empty(),
        "no migration applied on a fresh database"
    );
    store
        .write(|conn| orgs::insert(conn, "Acme"))
        .expect("the schema takes rows");
    assert_eq!(store.read(users::count_all).expect("count"), 0);

    let reverted = store.revert_all().expect("revert");
    assert_eq!(
        reverted.len(),
        applied.len(),
        "every applied migration reverts"
    );
    assert!(
        store.read(users::count_all).is_err(),
        "tables are gone after reverting"
    );

    let reapplied = store.migrate().expect("re-apply");
    assert_eq!(reapplied, applied);
    assert!(
        store.migrate().expect("idempotent").is_empty(),
        "nothing pending after applying"
    );
    store
        .write(|conn| orgs::insert(conn, "Acme"))
        .expect("the re-created schema takes rows");
}

#[test]
fn migrations_apply_revert_and_reapply_on_sqlite() {
    apply_revert_reapply(Backend::Sqlite, "migrations::sqlite");
}

#[test]
fn migrations_apply_revert_and_reapply_on_postgres() {
    apply_revert_reapply(Backend::Postgres, "migrations::postgres");
}

#[test]
fn an_unknown_database_scheme_is_an_error_not_a_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("mysql://{}/switchboard", dir.path().display());
    let error = Store::open(&url, 1).err().expect("refused").to_string();
    assert!(error.contains("unsupported database URL scheme"), "{error}");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "a file was created"
    );
}
