//! `switchboard seed-demo` (the library function the command calls), checked through the
//! real API: the printed password signs the demo people in, and what they see agrees with
//! what the seeder says it wrote and with what the API itself would have written.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier};

use api::seed::{Progress, SeedError, SeedOptions, SeedReport, States, seed_demo};
use domain::{InboxKind, Role};
use persistence::Store;
use persistence::diesel::prelude::*;
use persistence::schema;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Session, TestApp};

fn options(org: &str, conversations: u64) -> SeedOptions {
    SeedOptions {
        org: org.into(),
        conversations,
        seed: 7,
    }
}

/// Seeds on the test server's own database, as the command does on its own.
async fn seed(app: &TestApp, options: SeedOptions) -> Result<SeedReport, SeedError> {
    let store = app.running().state.store.clone();
    actix_web::web::block(move || seed_demo(&store, &options, &|_: Progress| {}))
        .await
        .expect("blocking pool")
}

fn store(app: &TestApp) -> Store {
    app.running().state.store.clone()
}

/// Rows per table, the whole database (every organization).
fn census(store: &Store) -> Vec<(&'static str, i64)> {
    store
        .read(|conn| {
            Ok(vec![
                (
                    "organizations",
                    schema::organizations::table.count().get_result(conn)?,
                ),
                ("users", schema::users::table.count().get_result(conn)?),
                ("inboxes", schema::inboxes::table.count().get_result(conn)?),
                (
                    "channels",
                    schema::channels::table.count().get_result(conn)?,
                ),
                (
                    "contacts",
                    schema::contacts::table.count().get_result(conn)?,
                ),
                (
                    "conversations",
                    schema::conversations::table.count().get_result(conn)?,
                ),
                (
                    "messages",
                    schema::messages::table.count().get_result(conn)?,
                ),
                (
                    "activity",
                    schema::activity::table.count().get_result(conn)?,
                ),
                ("chats", schema::chats::table.count().get_result(conn)?),
            ])
        })
        .expect("census")
}

/// Every page of a list, followed to its end.
async fn all_pages(app: &TestApp, session: &Session, path: &str) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}{separator}limit=100&cursor={cursor}"),
            None => format!("{path}{separator}limit=100"),
        };
        let page = app.get(&url, &session.token).await.expect(200);
        items.extend(page.body["items"].as_array().cloned().unwrap_or_default());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
}

fn expect_counts(counts: &Value, states: &States, who: &str) {
    assert_eq!(counts["open"], states.open, "{who}: {counts}");
    assert_eq!(counts["closed"], states.closed, "{who}: {counts}");
    assert_eq!(counts["archived"], states.archived, "{who}: {counts}");
}

fn sum<'a>(inboxes: impl Iterator<Item = &'a States>) -> States {
    inboxes.fold(States::default(), |total, states| States {
        open: total.open + states.open,
        closed: total.closed + states.closed,
        archived: total.archived + states.archived,
        spam: total.spam + states.spam,
    })
}

async fn the_demo_organization_works_through_the_api(app: TestApp) {
    let acme = app.admin().await;
    let report = seed(&app, options("Demo Co", 300))
        .await
        .expect("seeding succeeds");
    assert_eq!(report.rows.conversations, 300);
    assert_eq!(report.conversations.total(), 300);
    let states = report.conversations;
    assert!(
        states.open > 0 && states.closed > 0 && states.archived > 0 && states.spam > 0,
        "every state: {states:?}"
    );

    // The one printed password signs in the admin, a manager and an agent.
    let sign_in = |role: Role| {
        let user = report.user(role).expect("a demo user of each role").clone();
        let (app, password) = (app.clone(), report.password.clone());
        async move { app.login(&user.email, &password).await }
    };
    let admin = sign_in(Role::Admin).await;
    let manager = sign_in(Role::Manager).await;
    let agent = sign_in(Role::Agent).await;
    assert_eq!(admin.org_id, report.org_id.get());
    assert_ne!(admin.org_id, acme.org_id);
    for user in &report.users {
        app.login(&user.email, &report.password).await;
    }

    // Counts: the admin sees every shared inbox (a private one is its owner's alone).
    let shared = sum(report
        .inboxes
        .iter()
        .filter(|inbox| inbox.kind == InboxKind::Shared)
        .map(|inbox| &inbox.conversations));
    expect_counts(&fixtures_counts(&app, &admin, "").await, &shared, "admin");
    let managed = sum(report
        .inboxes
        .iter()
        .filter(|inbox| inbox.members.contains(&domain::UserId(manager.user_id)))
        .map(|inbox| &inbox.conversations));
    expect_counts(
        &fixtures_counts(&app, &manager, "").await,
        &managed,
        "manager",
    );
    for inbox in &report.inboxes {
        if inbox.members.contains(&domain::UserId(agent.user_id)) {
            let query = format!("inbox_id={}", inbox.id);
            // The agent's inboxes let agents see everything (a private one: its owner).
            expect_counts(
                &fixtures_counts(&app, &agent, &query).await,
                &inbox.conversations,
                &format!("agent in {}", inbox.name),
            );
        }
    }

    // Channels: one of each type, and conversations on each.
    let mut channel_types: HashMap<i64, String> = HashMap::new();
    for inbox in all_pages(&app, &admin, "/v1/inboxes").await {
        let path = format!("/v1/inboxes/{}/channels", inbox["id"]);
        for channel in app.get(&path, &admin.token).await.expect(200).body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let kind = channel["type"].as_str().expect("type").to_string();
            channel_types.insert(channel["id"].as_i64().expect("id"), kind);
        }
    }
    let types: HashSet<&str> = channel_types.values().map(String::as_str).collect();
    assert_eq!(
        types,
        HashSet::from(["sms", "whatsapp", "facebook", "instagram", "webchat"]),
        "channel types"
    );

    // The lists agree with the counts, hide spam, and every conversation is whole.
    let mut seen_types = HashSet::new();
    for (tab, expected) in [
        ("open", shared.open),
        ("closed", shared.closed),
        ("archived", shared.archived),
    ] {
        let items = all_pages(&app, &admin, &format!("/v1/conversations?status={tab}")).await;
        assert_eq!(items.len() as u64, expected, "{tab} tab");
        let ids: HashSet<i64> = items
            .iter()
            .map(|item| item["id"].as_i64().expect("id"))
            .collect();
        assert_eq!(ids.len(), items.len(), "{tab}: no conversation twice");
        for item in &items {
            assert_eq!(item["spam"], false, "spam is hidden: {item}");
            assert_eq!(item["archived"], tab == "archived", "{item}");
            let id = item["id"].as_i64().expect("id");
            let one = app
                .get(&format!("/v1/conversations/{id}"), &admin.token)
                .await
                .expect(200)
                .body;
            assert_eq!(one["id"], id);
            if let Some(kind) = channel_types.get(&one["channel_id"].as_i64().expect("channel")) {
                seen_types.insert(kind.clone());
            }
            let messages =
                all_pages(&app, &admin, &format!("/v1/conversations/{id}/messages")).await;
            let counted: Vec<i64> = messages
                .iter()
                .filter(|message| message["kind"] == "message" || message["kind"] == "survey")
                .map(|message| message["id"].as_i64().expect("message id"))
                .collect();
            assert_eq!(
                one["message_count"],
                counted.len(),
                "conversation {id}: message_count counts customer-facing messages"
            );
            assert_eq!(
                one["last_message_id"].as_i64(),
                counted.iter().max().copied(),
                "conversation {id}: the last message is the newest"
            );
            let newest = messages
                .iter()
                .find(|message| message["kind"] == "message" || message["kind"] == "survey");
            if let Some(newest) = newest {
                assert_eq!(
                    one["last_message_at"], newest["created_at"],
                    "conversation {id}"
                );
            }
            let ids: Vec<i64> = messages
                .iter()
                .map(|message| message["id"].as_i64().expect("id"))
                .collect();
            assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
            for message in &messages {
                assert_eq!(message["conversation_id"], id);
                let outbound = message["direction"] == "outbound";
                assert_eq!(
                    message["delivery_status"].is_string(),
                    outbound,
                    "{message}"
                );
            }
            if tab != "open" {
                assert!(one["closed_at"].is_string(), "{one}");
            }
        }
    }
    assert_eq!(
        seen_types.len(),
        5,
        "conversations on every channel type: {seen_types:?}"
    );

    // Contacts: all of them listed in name order, and search finds them as it finds the
    // contacts the API saved (by a word of the name, by any run of a number's digits).
    let contacts = all_pages(&app, &admin, "/v1/contacts").await;
    assert_eq!(contacts.len() as u64, report.rows.contacts, "every contact");
    let names: Vec<String> = contacts
        .iter()
        .filter_map(|contact| contact["name"].as_str())
        .map(str::to_lowercase)
        .collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "by name: {names:?}");
    let named = contacts
        .iter()
        .find(|contact| {
            contact["name"].is_string()
                && contact["phone_numbers"][0]
                    .as_str()
                    .is_some_and(|number| number.starts_with('+'))
        })
        .expect("a named contact with a phone number");
    let surname = named["name"]
        .as_str()
        .and_then(|name| name.split(' ').next_back())
        .expect("a name");
    let number = named["phone_numbers"][0].as_str().expect("a number");
    for query in [surname.to_string(), number[number.len() - 6..].to_string()] {
        let found = all_pages(&app, &admin, &format!("/v1/contacts?q={query}")).await;
        assert!(
            found.iter().any(|contact| contact["id"] == named["id"]),
            "q={query} finds {named}"
        );
    }

    // Acme, the bootstrap organization, is as it was.
    let acme_counts = fixtures_counts(&app, &acme, "").await;
    expect_counts(&acme_counts, &States::default(), "acme");
    let acme_users = app.get("/v1/users", &acme.token).await.expect(200).body;
    assert_eq!(acme_users["items"].as_array().map(Vec::len), Some(1));
    let acme_inboxes = app.get("/v1/inboxes", &acme.token).await.expect(200).body;
    assert_eq!(acme_inboxes["items"], Value::Array(Vec::new()));
    let acme_tags = app.get("/v1/tags", &acme.token).await.expect(200).body;
    assert_eq!(acme_tags["items"], Value::Array(Vec::new()), "{acme_tags}");
}

async fn fixtures_counts(app: &TestApp, session: &Session, query: &str) -> Value {
    crate::fixtures::counts(app, session, query).await
}

async fn seeding_an_existing_organization_again_changes_nothing(app: TestApp) {
    seed(&app, options("Demo Co", 40))
        .await
        .expect("first seeding");
    let before = census(&store(&app));

    let again = seed(&app, options("Demo Co", 40)).await;
    match again {
        Err(SeedError::Exists(name)) => assert_eq!(name, "Demo Co"),
        other => panic!(
            "expected a refusal, got {:?}",
            other.map(|report| report.org_name)
        ),
    }
    assert_eq!(
        census(&store(&app)),
        before,
        "a refused seeding writes nothing"
    );

    // Another name with the same demo e-mails is another organization: an address is
    // unique per organization, so its users are its own.
    let beside = seed(&app, options("demo co", 40))
        .await
        .expect("the same e-mails in another organization");
    assert_eq!(beside.org_name, "demo co");
    assert_eq!(beside.rows.conversations, 40);

    // A new name is a new organization beside the first.
    let other = seed(&app, options("Other Demo", 40))
        .await
        .expect("another name");
    assert_eq!(other.rows.conversations, 40);
}

/// Two seedings of the same new organization at the same instant make one.
async fn two_seedings_of_one_organization_at_once_make_one(app: TestApp) {
    let store = store(&app);
    for round in 0..6 {
        let name = format!("Race {round}");
        let (shared, org) = (store.clone(), name.clone());
        let outcomes = actix_web::web::block(move || {
            let barrier = Arc::new(Barrier::new(2));
            std::thread::scope(|scope| {
                let runs: Vec<_> = (0..2)
                    .map(|_| {
                        let (barrier, store, org) = (barrier.clone(), shared.clone(), org.clone());
                        scope.spawn(move || {
                            barrier.wait();
                            seed_demo(&store, &options(&org, 12), &|_: Progress| {})
                        })
                    })
                    .collect();
                runs.into_iter()
                    .map(|run| run.join().expect("seeding thread"))
                    .collect::<Vec<_>>()
            })
        })
        .await
        .expect("blocking pool");
        let made: Vec<&SeedReport> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(made.len(), 1, "round {round}: exactly one seeding wins");
        assert!(
            outcomes
                .iter()
                .any(|outcome| matches!(outcome, Err(SeedError::Exists(_)))),
            "round {round}: the other hears the organization exists"
        );
        let org = made[0].org_id.get();
        let (organizations, conversations): (i64, i64) = store
            .read(|conn| {
                Ok((
                    schema::organizations::table
                        .filter(schema::organizations::name.eq(&name))
                        .count()
                        .get_result(conn)?,
                    schema::conversations::table
                        .filter(schema::conversations::org_id.eq(org))
                        .count()
                        .get_result(conn)?,
                ))
            })
            .expect("counts");
        assert_eq!((organizations, conversations), (1, 12), "round {round}");
    }
}

on_both_backends!(
    the_demo_organization_works_through_the_api,
    seeding_an_existing_organization_again_changes_nothing,
    two_seedings_of_one_organization_at_once_make_one,
);

/// `seed-demo` run on a new database before the first `serve` (as the README says): the
/// server's start-up backfill of contact search terms must find nothing left to do, not walk
/// every seeded contact again in one transaction.
#[test]
fn a_seeded_new_database_starts_without_a_backfill() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("seeded.db").display());
    let store = Store::open(&url, 1).expect("open");
    store.migrate().expect("migrate");
    seed_demo(&store, &options("Fresh Co", 200), &|_: Progress| {}).expect("seeded");
    let before = store.queries_executed();
    store
        .write(persistence::repo::contacts::backfill_terms)
        .expect("backfill");
    let statements = store.queries_executed() - before;
    // The transaction's BEGIN and COMMIT, and the one look at the "done" marker.
    assert!(
        statements <= 3,
        "the start-up backfill ran {statements} statements after seeding"
    );
}
