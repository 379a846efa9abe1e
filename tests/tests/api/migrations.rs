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

/// The e-mail migration rebuilds SQLite's users table: applied over a database with users,
/// sessions and conversations that point at them, it keeps every row and every reference,
/// and foreign keys are enforced again afterwards.
fn the_per_organization_e_mail_migration_keeps_users_and_what_points_at_them(
    backend: Backend,
    test_name: &str,
) {
    use persistence::diesel::{RunQueryDsl, sql_query};
    let Some(db) = TestDb::create_empty(backend, test_name) else {
        return;
    };
    let store = Store::open(db.url(), 1).expect("open");
    store.migrate().expect("apply");
    // Back to just before the e-mail migration.
    let is_email = |version: &str| version.replace('-', "").starts_with("20261204000001");
    loop {
        let reverted = store.revert_last().expect("revert the newest");
        let version = reverted.expect("the e-mail migration is among the applied ones");
        if is_email(&version) {
            break;
        }
    }
    let (org, user) = store
        .write(|conn| {
            let org = orgs::insert(conn, "Acme")?;
            let user = users::insert(
                conn,
                users::NewUser {
                    org_id: org.id,
                    email: "ana@example.com",
                    name: "Ana",
                    role: domain::Role::Agent,
                    password_hash: "hash",
                },
            )?;
            users::insert_refresh_token(
                conn,
                user.id,
                "family",
                "token hash",
                persistence::now() + chrono::Duration::days(1),
            )?;
            Ok((org.id, user.id))
        })
        .expect("rows before the migration");
    store.migrate().expect("apply again over the rows");

    let kept = store
        .read(|conn| users::get_signed_in(conn, org, user, "family"))
        .expect("read");
    let (kept, open) = kept.expect("the user is still there");
    assert_eq!(
        (kept.email.as_str(), kept.name.as_str(), open),
        ("ana@example.com", "Ana", true)
    );
    // The address may now exist once per organization, and still only once in each.
    store
        .write(|conn| {
            let beta = orgs::insert(conn, "Beta")?;
            users::insert(
                conn,
                users::NewUser {
                    org_id: beta.id,
                    email: "ana@example.com",
                    name: "Ana B",
                    role: domain::Role::Agent,
                    password_hash: "hash",
                },
            )
        })
        .expect("the same address in another organization");
    let twice = store.write(|conn| {
        users::insert(
            conn,
            users::NewUser {
                org_id: org,
                email: "ana@example.com",
                name: "Ana again",
                role: domain::Role::Agent,
                password_hash: "hash",
            },
        )
    });
    assert!(
        matches!(twice, Err(persistence::StoreError::Conflict(_))),
        "{twice:?}"
    );
    // References into the rebuilt table still hold, and are enforced.
    let dangling = store.write(|conn| {
        sql_query(
            "INSERT INTO refresh_tokens (user_id, family, token_hash, created_at, expires_at) \
             VALUES (987654321, 'f', 'h', '2026-12-04 00:00:00', '2026-12-05 00:00:00')",
        )
        .execute(conn)
        .map_err(persistence::StoreError::from)
    });
    assert!(dangling.is_err(), "a token of no user was accepted");
}

#[test]
fn the_per_organization_e_mail_migration_keeps_users_on_sqlite() {
    the_per_organization_e_mail_migration_keeps_users_and_what_points_at_them(
        Backend::Sqlite,
        "migrations::email_sqlite",
    );
}

#[test]
fn the_per_organization_e_mail_migration_keeps_users_on_postgres() {
    the_per_organization_e_mail_migration_keeps_users_and_what_points_at_them(
        Backend::Postgres,
        "migrations::email_postgres",
    );
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

/// The event cursor's own table: applied over organizations that have written events, each
/// keeps counting from where it was (a client's resume cursor stays valid), and an
/// organization made afterwards, however it is inserted, has a cursor from 0.
fn the_event_cursors_migration_keeps_each_organization_counting(backend: Backend, test_name: &str) {
    use domain::EventType;
    use persistence::repo::events::{self, NewEvent};
    let Some(db) = TestDb::create_empty(backend, test_name) else {
        return;
    };
    let store = Store::open(db.url(), 1).expect("open");
    store.migrate().expect("apply");
    let append = |org: domain::OrgId, count: usize| {
        let batch = (0..count)
            .map(|_| NewEvent {
                org_id: org,
                event_type: EventType::ContactUpdated,
                inbox_id: None,
                conversation_id: None,
                payload: "{}".into(),
            })
            .collect();
        store
            .write(|conn| events::append_all(conn, org, batch))
            .expect("append")
            .iter()
            .map(|event| event.seq)
            .collect::<Vec<_>>()
    };
    let (acme, beta) = store
        .write(|conn| {
            Ok((
                orgs::insert(conn, "Acme")?.id,
                orgs::insert(conn, "Beta")?.id,
            ))
        })
        .expect("organizations");
    assert_eq!(append(acme, 3), vec![1, 2, 3]);
    assert_eq!(append(beta, 1), vec![1]);
    // Back to the cursor on the organization's row, and forward again.
    let reverted = store.revert_last().expect("revert the newest");
    assert!(
        reverted.is_some_and(|version| version.replace('-', "").starts_with("20261208000001")),
        "the event cursors migration is the newest"
    );
    store.migrate().expect("apply again over the cursors");
    assert_eq!(append(acme, 2), vec![4, 5], "Acme goes on from 3");
    assert_eq!(append(beta, 1), vec![2], "Beta goes on from 1");
    assert_eq!(
        store
            .read(|conn| events::last_seq(conn, acme))
            .expect("read"),
        5
    );
    let gamma = store
        .write(|conn| orgs::insert(conn, "Gamma"))
        .expect("a new organization")
        .id;
    assert_eq!(
        store
            .read(|conn| events::last_seq(conn, gamma))
            .expect("read"),
        0
    );
    assert_eq!(
        append(gamma, 2),
        vec![1, 2],
        "a new organization counts from 1"
    );
}

#[test]
fn the_event_cursors_migration_keeps_each_organization_counting_on_sqlite() {
    the_event_cursors_migration_keeps_each_organization_counting(
        Backend::Sqlite,
        "migrations::cursors_sqlite",
    );
}

#[test]
fn the_event_cursors_migration_keeps_each_organization_counting_on_postgres() {
    the_event_cursors_migration_keeps_each_organization_counting(
        Backend::Postgres,
        "migrations::cursors_postgres",
    );
}
