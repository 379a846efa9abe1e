//! The conversation list's keyset paging, checked in the database's own plan: a deep page's
//! cursor must bound the list index's range (so page 400 costs what page 1 costs), not
//! filter rows read from the top, and the order must come from the index, never a sort.
//! (The old `key < at OR (key = at AND id < id)` form fails the first check on both backends.)

use persistence::Backend;
use persistence::repo::conversation_list::{Filter, Sort, Tab, explain_page};

use crate::on_both_backends;
use crate::support::TestApp;

/// Every plan the list runs for a deep page: by inbox or across the organization, each sort,
/// each tab.
async fn deep_pages_seek_the_index(app: TestApp) {
    let (store, scope, org) = crate::fixtures::seeded_org(&app, "Plans Co", 3_000, 11).await;
    let inboxes = scope.full.clone();
    // A cursor from the middle of the history (the time does not need to match a row).
    let after = Some((
        chrono::Utc::now().naive_utc() - chrono::Duration::days(30),
        1_500,
    ));
    let backend = store.backend();
    if backend == Backend::Postgres {
        store
            .read(|conn| {
                use persistence::diesel::connection::SimpleConnection;
                Ok(conn.batch_execute("ANALYZE")?)
            })
            .expect("analyze");
    }
    let sorts = [
        Sort::RecentMessages,
        Sort::OldestMessages,
        Sort::RecentConversations,
        Sort::OldestConversations,
    ];
    for inbox in [Some(inboxes[0]), None] {
        for tab in [Tab::Open, Tab::Closed] {
            for sort in sorts {
                let filter = Filter {
                    org: Some(org),
                    tab: Some(tab),
                    inbox_id: inbox,
                    ..Filter::default()
                };
                let plan = store
                    .read(|conn| {
                        if backend == Backend::Postgres {
                            // A few thousand rows are cheaper to sort than to walk in index
                            // order; forbid the sort to see whether the index can serve it.
                            use persistence::diesel::connection::SimpleConnection;
                            conn.batch_execute(
                                "SET enable_sort = off; SET enable_bitmapscan = off",
                            )?;
                        }
                        explain_page(conn, &scope, &filter, sort, after, 26)
                    })
                    .expect("explain");
                let case = format!("{inbox:?} {tab:?} {sort:?}:\n{}", plan.join("\n"));
                match backend {
                    Backend::Postgres => {
                        assert!(
                            plan.iter()
                                .any(|line| line.contains("Index Cond") && line.contains("ROW(")),
                            "the cursor is not an index bound for {case}"
                        );
                        assert!(
                            !plan.iter().any(|line| line.trim_start().starts_with("Sort")
                                || line.contains("-> Sort")),
                            "the page is sorted, not read in index order, for {case}"
                        );
                    }
                    Backend::Sqlite => {
                        // SQLite bounds the range by the key column of the row value (the id,
                        // the rowid, only breaks ties among rows of the same instant).
                        let column = match (sort, tab) {
                            (Sort::RecentMessages | Sort::OldestMessages, _) => "last_message_at",
                            (_, Tab::Closed) => "closed_at",
                            _ => "created_at",
                        };
                        let bound =
                            if matches!(sort, Sort::RecentMessages | Sort::RecentConversations) {
                                format!("{column}<?")
                            } else {
                                format!("{column}>?")
                            };
                        assert!(
                            plan.iter()
                                .any(|line| line.contains("USING INDEX") && line.contains(&bound)),
                            "the cursor is not an index bound for {case}"
                        );
                        assert!(
                            !plan.iter().any(|line| line.contains("TEMP B-TREE")),
                            "the page is sorted, not read in index order, for {case}"
                        );
                    }
                }
            }
        }
    }
}

on_both_backends!(deep_pages_seek_the_index);
