//! The conversation list: what an agent looks at all day. One keyset-paged query per phase
//! (the caller's pins first, in pin order; then conversations without messages; then the
//! rest by the chosen sort), each bounded by the page size and served by the list indexes,
//! so the statement count does not depend on the page size.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use domain::conversation::{Conversation, Status};
use domain::{ChannelId, ContactId, ConversationId, InboxId, OrgId, TagId, TeamId, UserId};

use super::conversations::{COLUMNS, ConversationRow, to_conversations};
use super::search::{self, Matching};
use crate::connection::MultiBackend;
use crate::schema::{
    conversation_participants as participants, conversation_pins as pins,
    conversation_reads as reads, conversation_tags as ctags, conversations as c,
};
use crate::{DbConnection, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Open,
    Closed,
    Archived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    RecentConversations,
    OldestConversations,
    RecentMessages,
    OldestMessages,
}

impl Sort {
    fn descending(self) -> bool {
        matches!(self, Sort::RecentConversations | Sort::RecentMessages)
    }

    fn by_messages(self) -> bool {
        matches!(self, Sort::RecentMessages | Sort::OldestMessages)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    Me,
    Others,
    Unassigned,
}

/// What the caller may see, worked out by the domain rules per inbox.
#[derive(Debug, Clone)]
pub struct Scope {
    pub user: UserId,
    /// Inboxes whose every conversation is visible.
    pub full: Vec<InboxId>,
    /// Inboxes where only unassigned, own and own teams' conversations are visible.
    pub partial: Vec<InboxId>,
    pub teams: Vec<TeamId>,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub org: Option<OrgId>,
    pub tab: Option<Tab>,
    pub inbox_id: Option<InboxId>,
    pub channel_id: Option<ChannelId>,
    pub assignee: Option<AssigneeFilter>,
    pub participant_me: bool,
    pub unread_only: bool,
    pub tag: Option<TagId>,
    pub contact_id: Option<ContactId>,
    pub q: Option<String>,
}

/// Where a page ends: the last row's place in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Pinned { position: i32, id: i64 },
    Empty { id: i64 },
    Rest { at: NaiveDateTime, id: i64 },
}

pub struct ListPage {
    pub items: Vec<Conversation>,
    /// The caller's pin positions, for every pinned conversation on the page.
    pub pins: HashMap<ConversationId, i32>,
    pub next: Option<Position>,
}

type Boxed = c::BoxedQuery<'static, MultiBackend>;

/// The search of `filter.q` (see [`search`]), worked out once for a request's statements;
/// `None` without one.
fn search_of(conn: &mut DbConnection, filter: &Filter) -> Result<Option<Matching>, StoreError> {
    let Some(text) = filter
        .q
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
    else {
        return Ok(None);
    };
    let org = filter.org.unwrap_or(OrgId(0));
    Ok(Some(search::matching_conversations(conn, org, text)?))
}

/// The visible, filtered conversations (no order, no phase); spam never. `search` is what
/// `filter.q` matches ([`search_of`]; `filter.q` itself is not read here).
fn base(scope: &Scope, filter: &Filter, search: Option<&Matching>) -> Boxed {
    base_with(scope, filter, false, search)
}

/// [`base`], with spam kept when `with_spam` (a contact's history, for admins).
fn base_with(scope: &Scope, filter: &Filter, with_spam: bool, search: Option<&Matching>) -> Boxed {
    let me = scope.user.get();
    let full: Vec<i64> = scope.full.iter().map(|id| id.get()).collect();
    let partial: Vec<i64> = scope.partial.iter().map(|id| id.get()).collect();
    let teams: Vec<i64> = scope.teams.iter().map(|id| id.get()).collect();
    let by_id = search.is_some_and(Matching::reads_by_id);
    let mut query = c::table
        .into_boxed::<MultiBackend>()
        .filter(unindexed_eq(
            by_id,
            c::org_id,
            "conversations.org_id",
            filter.org.map_or(0, OrgId::get),
        ))
        .filter(
            c::spam
                .eq(false)
                .or(with_spam.into_sql::<diesel::sql_types::Bool>()),
        )
        .filter(
            c::inbox_id.eq_any(full).or(c::inbox_id.eq_any(partial).and(
                c::assignee_id
                    .is_null()
                    .or(c::assignee_id.eq(me))
                    .or(c::team_id.eq_any(teams)),
            )),
        );
    query = match filter.tab {
        Some(Tab::Open) => query
            .filter(c::status.eq(Status::Open.as_str()))
            .filter(c::archived.eq(false)),
        Some(Tab::Closed) => query
            .filter(c::status.eq(Status::Closed.as_str()))
            .filter(c::archived.eq(false)),
        Some(Tab::Archived) => query.filter(c::archived.eq(true)),
        None => query,
    };
    if let Some(inbox) = filter.inbox_id {
        query = query.filter(unindexed_eq(
            by_id,
            c::inbox_id,
            "conversations.inbox_id",
            inbox.get(),
        ));
    }
    if let Some(channel) = filter.channel_id {
        query = query.filter(c::channel_id.eq(channel.get()));
    }
    if let Some(contact) = filter.contact_id {
        query = query.filter(c::contact_id.eq(contact.get()));
    }
    query = match filter.assignee {
        Some(AssigneeFilter::Me) => query.filter(c::assignee_id.eq(me)),
        Some(AssigneeFilter::Others) => {
            query.filter(c::assignee_id.is_not_null().and(c::assignee_id.ne(me)))
        }
        Some(AssigneeFilter::Unassigned) => query.filter(c::assignee_id.is_null()),
        None => query,
    };
    if filter.participant_me {
        query = query.filter(exists(
            participants::table
                .filter(participants::conversation_id.eq(c::id))
                .filter(participants::user_id.eq(me)),
        ));
    }
    if let Some(tag) = filter.tag {
        query = query.filter(exists(
            ctags::table
                .filter(ctags::conversation_id.eq(c::id))
                .filter(ctags::tag_id.eq(tag.get())),
        ));
    }
    if filter.unread_only {
        let read = reads::table
            .filter(reads::conversation_id.eq(c::id))
            .filter(reads::user_id.eq(me))
            .filter(reads::read_count.ge(c::message_count))
            .filter(reads::marked_unread.eq(false));
        let marked = reads::table
            .filter(reads::conversation_id.eq(c::id))
            .filter(reads::user_id.eq(me))
            .filter(reads::marked_unread.eq(true));
        query = query.filter(
            c::message_count
                .gt(0)
                .and(not(exists(read)))
                .or(exists(marked)),
        );
    }
    if let Some(search) = search {
        query = query.filter(search.condition());
    }
    query
}

/// `column = value`; with `unindexed`, written `+column = value`: the same rows, but no
/// index can serve the term, so a search's ids are read instead
/// (`Matching::reads_by_id`).
fn unindexed_eq<C>(
    unindexed: bool,
    column: C,
    name: &str,
    value: i64,
) -> Box<dyn BoxableExpression<c::table, MultiBackend, SqlType = diesel::sql_types::Bool>>
where
    C: Column<Table = c::table, SqlType = diesel::sql_types::BigInt>
        + ExpressionMethods
        + BoxableExpression<c::table, MultiBackend, SqlType = diesel::sql_types::BigInt>
        + 'static,
    diesel::dsl::Eq<C, i64>:
        BoxableExpression<c::table, MultiBackend, SqlType = diesel::sql_types::Bool> + 'static,
{
    if unindexed {
        Box::new(
            diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("+{name} = "))
                .bind::<diesel::sql_types::BigInt, _>(value),
        )
    } else {
        Box::new(column.eq(value))
    }
}

/// Loads one page. `limit` rows at most; `next` is set when more follow.
pub fn list(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
    sort: Sort,
    after: Option<Position>,
    limit: i64,
) -> Result<ListPage, StoreError> {
    let search = search_of(conn, filter)?;
    list_matching(conn, scope, filter, search.as_ref(), sort, after, limit)
}

/// [`list`] with its search worked out already (`search`; `filter.q` is not read): for
/// tests that compare the ways a search can be answered.
pub fn list_matching(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
    search: Option<&Matching>,
    sort: Sort,
    after: Option<Position>,
    limit: i64,
) -> Result<ListPage, StoreError> {
    let me = scope.user.get();
    let want = limit + 1;
    let mut rows: Vec<(Conversation, Position)> = Vec::new();

    // The caller's pins (a handful), in pin order.
    let pinned: Vec<(i64, i32)> = pins::table
        .filter(pins::user_id.eq(me))
        .order((pins::position, pins::conversation_id))
        .select((pins::conversation_id, pins::position))
        .load(conn)?;
    let pinned_ids: Vec<i64> = pinned.iter().map(|(id, _)| *id).collect();
    let pin_map: HashMap<ConversationId, i32> = pinned
        .iter()
        .map(|(id, position)| (ConversationId(*id), *position))
        .collect();

    // Phase 1: pinned conversations after the cursor.
    if matches!(after, None | Some(Position::Pinned { .. })) {
        let remaining: Vec<i64> = pinned
            .iter()
            .filter(|(id, position)| match after {
                Some(Position::Pinned { position: p, id: i }) => (*position, *id) > (p, i),
                _ => true,
            })
            .map(|(id, _)| *id)
            .collect();
        let found = to_conversations(
            base(scope, filter, search)
                .filter(c::id.eq_any(remaining))
                .select(COLUMNS)
                .load::<ConversationRow>(conn)?,
        )?;
        let mut found: Vec<(Conversation, Position)> = found
            .into_iter()
            .map(|conversation| {
                let position = pin_map.get(&conversation.id).copied().unwrap_or_default();
                let id = conversation.id.get();
                (conversation, Position::Pinned { position, id })
            })
            .collect();
        found.sort_by_key(|(conversation, position)| match position {
            Position::Pinned { position, .. } => (*position, conversation.id.get()),
            _ => (0, 0),
        });
        rows.extend(found);
    }
    let room = |rows: &Vec<(Conversation, Position)>| (want - rows.len() as i64).max(1);

    // Phase 2 (message sorts): conversations without messages, newest or oldest first.
    if sort.by_messages() && !matches!(after, Some(Position::Rest { .. })) {
        let mut query = base(scope, filter, search)
            .filter(c::last_message_at.is_null())
            .filter(not(c::id.eq_any(pinned_ids.clone())));
        if let Some(Position::Empty { id }) = after {
            query = if sort.descending() {
                query.filter(c::id.lt(id))
            } else {
                query.filter(c::id.gt(id))
            };
        }
        query = if sort.descending() {
            query.order(c::id.desc())
        } else {
            query.order(c::id.asc())
        };
        let found = to_conversations(
            query
                .limit(room(&rows))
                .select(COLUMNS)
                .load::<ConversationRow>(conn)?,
        )?;
        rows.extend(found.into_iter().map(|conversation| {
            let id = conversation.id.get();
            (conversation, Position::Empty { id })
        }));
    }

    // Phase 3: the rest, by the sort key.
    let rest_after = match after {
        Some(Position::Rest { at, id }) => Some((at, id)),
        _ => None,
    };
    let key = SortKey::of(sort, filter.tab);
    let found = to_conversations(
        rest_query(scope, filter, search, sort, &pinned_ids, rest_after)
            .limit(room(&rows))
            .select(COLUMNS)
            .load::<ConversationRow>(conn)?,
    )?;
    let to_db = |at: chrono::DateTime<chrono::Utc>| at.naive_utc();
    for conversation in found {
        let id = conversation.id.get();
        let at = match key {
            SortKey::LastMessage => conversation.last_message_at.map(to_db),
            SortKey::Closed => conversation.closed_at.map(to_db),
            SortKey::Created => Some(to_db(conversation.created_at)),
        };
        rows.push((
            conversation,
            Position::Rest {
                at: at.unwrap_or_default(),
                id,
            },
        ));
    }

    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let next = if has_more {
        rows.last().map(|(_, position)| *position)
    } else {
        None
    };
    let pins = rows
        .iter()
        .filter_map(|(conversation, _)| {
            pin_map
                .get(&conversation.id)
                .map(|position| (conversation.id, *position))
        })
        .collect();
    Ok(ListPage {
        items: rows
            .into_iter()
            .map(|(conversation, _)| conversation)
            .collect(),
        pins,
        next,
    })
}

/// The column phase 3 sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    LastMessage,
    Closed,
    Created,
}

impl SortKey {
    fn of(sort: Sort, tab: Option<Tab>) -> SortKey {
        match (sort.by_messages(), tab) {
            (true, _) => SortKey::LastMessage,
            (false, Some(Tab::Closed)) => SortKey::Closed,
            (false, _) => SortKey::Created,
        }
    }

    fn column(self) -> &'static str {
        match self {
            SortKey::LastMessage => "conversations.last_message_at",
            SortKey::Closed => "conversations.closed_at",
            SortKey::Created => "conversations.created_at",
        }
    }
}

/// `(key, id) < (at, id)` (or `>`): the keyset condition as one row-value comparison, which
/// both planners turn into a bound of the list index's range (`key < at OR (key = at AND id <
/// id)`, the same rows, is only a filter: every row above the cursor was read and dropped).
fn beyond(
    key: SortKey,
    descending: bool,
    at: NaiveDateTime,
    id: i64,
) -> Box<dyn BoxableExpression<c::table, MultiBackend, SqlType = diesel::sql_types::Bool>> {
    use diesel::sql_types::{BigInt, Bool, Timestamp};
    let operator = if descending { "<" } else { ">" };
    Box::new(
        diesel::dsl::sql::<Bool>(&format!(
            "({}, conversations.id) {operator} (",
            key.column()
        ))
        .bind::<Timestamp, _>(at)
        .sql(", ")
        .bind::<BigInt, _>(id)
        .sql(")"),
    )
}

/// Phase 3's query, without its limit and columns: the visible, filtered conversations past
/// the cursor, not pinned, in the sort's order.
fn rest_query(
    scope: &Scope,
    filter: &Filter,
    search: Option<&Matching>,
    sort: Sort,
    pinned_ids: &[i64],
    after: Option<(NaiveDateTime, i64)>,
) -> Boxed {
    let key = SortKey::of(sort, filter.tab);
    let mut query = base(scope, filter, search).filter(not(c::id.eq_any(pinned_ids.to_vec())));
    if sort.by_messages() {
        query = query.filter(c::last_message_at.is_not_null());
    }
    if let Some((at, id)) = after {
        query = query.filter(beyond(key, sort.descending(), at, id));
    }
    match (key, sort.descending()) {
        (SortKey::LastMessage, true) => query.order((c::last_message_at.desc(), c::id.desc())),
        (SortKey::LastMessage, false) => query.order((c::last_message_at.asc(), c::id.asc())),
        (SortKey::Closed, true) => query.order((c::closed_at.desc(), c::id.desc())),
        (SortKey::Closed, false) => query.order((c::closed_at.asc(), c::id.asc())),
        (SortKey::Created, true) => query.order((c::created_at.desc(), c::id.desc())),
        (SortKey::Created, false) => query.order((c::created_at.asc(), c::id.asc())),
    }
}

/// The database's plan for the list's main query (phase 3) of a page after `after`: one
/// line per plan node (PostgreSQL `EXPLAIN`, SQLite `EXPLAIN QUERY PLAN`). For tests that
/// check the cursor bounds an index range, and for operators checking their indexes.
pub fn explain_page(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
    sort: Sort,
    after: Option<(NaiveDateTime, i64)>,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let search = search_of(conn, filter)?;
    explain_page_matching(conn, scope, filter, search.as_ref(), sort, after, limit)
}

/// [`explain_page`] with its search worked out already (`search`; `filter.q` is not read).
pub fn explain_page_matching(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
    search: Option<&Matching>,
    sort: Sort,
    after: Option<(NaiveDateTime, i64)>,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let query = rest_query(scope, filter, search, sort, &[], after)
        .limit(limit)
        .select(COLUMNS);
    explain(conn, query)
}

/// The database's plan for `query`, one line per plan node (PostgreSQL `EXPLAIN`, SQLite
/// `EXPLAIN QUERY PLAN`).
pub(crate) fn explain<Q>(conn: &mut DbConnection, query: Q) -> Result<Vec<String>, StoreError>
where
    Q: diesel::query_builder::QueryFragment<MultiBackend>,
{
    Ok(match conn {
        DbConnection::Postgresql(_) => {
            Explain::<_, diesel::sql_types::Text>::new("EXPLAIN ", query).load::<String>(conn)?
        }
        DbConnection::Sqlite(_) => Explain::<
            _,
            (
                diesel::sql_types::Integer,
                diesel::sql_types::Integer,
                diesel::sql_types::Integer,
                diesel::sql_types::Text,
            ),
        >::new("EXPLAIN QUERY PLAN ", query)
        .load::<(i32, i32, i32, String)>(conn)?
        .into_iter()
        .map(|(_, _, _, detail)| detail)
        .collect(),
    })
}

/// `EXPLAIN …` of a query, its rows typed `ST`.
struct Explain<Q, ST> {
    prefix: &'static str,
    query: Q,
    rows: std::marker::PhantomData<ST>,
}

impl<Q, ST> Explain<Q, ST> {
    fn new(prefix: &'static str, query: Q) -> Self {
        Explain {
            prefix,
            query,
            rows: std::marker::PhantomData,
        }
    }
}

impl<Q, ST> diesel::query_builder::QueryId for Explain<Q, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, ST: 'static> diesel::query_builder::Query for Explain<Q, ST> {
    type SqlType = ST;
}

impl<Q: diesel::query_builder::QueryFragment<MultiBackend>, ST>
    diesel::query_builder::QueryFragment<MultiBackend> for Explain<Q, ST>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, MultiBackend>,
    ) -> QueryResult<()> {
        out.push_sql(self.prefix);
        self.query.walk_ast(out.reborrow())
    }
}

impl<Q, ST> RunQueryDsl<DbConnection> for Explain<Q, ST> {}

/// Where a page of a contact's history ends: the last conversation's creation and id.
pub type HistoryPosition = (NaiveDateTime, i64);

/// A contact's history as the caller may see it: open, closed and archived together,
/// newest first (by creation), keyset-paged after `after` (creation time and id); spam too
/// when `with_spam`.
pub fn history(
    conn: &mut DbConnection,
    scope: &Scope,
    org: OrgId,
    contact: ContactId,
    with_spam: bool,
    after: Option<HistoryPosition>,
    limit: i64,
) -> Result<(Vec<Conversation>, Option<HistoryPosition>), StoreError> {
    let filter = Filter {
        org: Some(org),
        contact_id: Some(contact),
        ..Filter::default()
    };
    let mut query = base_with(scope, &filter, with_spam, None);
    if let Some((at, id)) = after {
        query = query.filter(beyond(SortKey::Created, true, at, id));
    }
    let found = to_conversations(
        query
            .order((c::created_at.desc(), c::id.desc()))
            .limit(limit + 1)
            .select(COLUMNS)
            .load::<ConversationRow>(conn)?,
    )?;
    let page = super::Page::from_overfetch(found, limit);
    let next = if page.has_more {
        page.items
            .last()
            .map(|item| (item.created_at.naive_utc(), item.id.get()))
    } else {
        None
    };
    Ok((page.items, next))
}

/// The counts behind the tabs and filters, with the same visibility and filters as the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub open: i64,
    pub closed: i64,
    pub archived: i64,
    pub unread: i64,
    pub mine: i64,
    pub unassigned: i64,
    pub others: i64,
}

pub fn counts(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
) -> Result<Counts, StoreError> {
    let by_inbox_only = filter.channel_id.is_none()
        && !filter.participant_me
        && filter.tag.is_none()
        && filter.contact_id.is_none()
        && filter.q.as_deref().is_none_or(|q| q.trim().is_empty());
    if by_inbox_only {
        return maintained_counts(conn, scope, filter);
    }
    let search = match search_of(conn, filter)? {
        Some(search) => Some(search.for_counting(conn)?),
        None => None,
    };
    scanned_counts(conn, scope, filter, search.as_ref())
}

/// The counts of a search worked out already (`search`, made for counting with
/// [`Matching::for_counting`]; `filter.q` is not read), counted from the rows: for tests
/// that compare the ways a search can be answered.
pub fn counts_matching(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
    search: Option<&Matching>,
) -> Result<Counts, StoreError> {
    scanned_counts(conn, scope, filter, search)
}

/// The counts from the buckets the database keeps (`conversation_counts` per inbox, state,
/// assignee and team; `read_up_counts` per user and bucket), with the same visibility as
/// [`base`]. Unread is the visible open conversations less those the caller has read up to
/// their last message, less the empty ones (never unread unless marked): a handful of rows
/// per inbox whatever the history.
fn maintained_counts(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
) -> Result<Counts, StoreError> {
    use crate::schema::{conversation_counts as buckets, read_up_counts as read_up};
    let me = scope.user.get();
    let mut inboxes: Vec<i64> = scope
        .full
        .iter()
        .chain(&scope.partial)
        .map(|id| id.get())
        .collect();
    if let Some(inbox) = filter.inbox_id {
        inboxes.retain(|id| *id == inbox.get());
    }
    // The rule of `base`: every conversation of a full inbox; of a partial one the
    // unassigned, the caller's own and their teams'.
    let visible = |inbox: i64, assignee: i64, team: i64| {
        scope.full.iter().any(|id| id.get() == inbox)
            || (scope.partial.iter().any(|id| id.get() == inbox)
                && (assignee == 0 || assignee == me || scope.teams.iter().any(|t| t.get() == team)))
    };
    let rows: Vec<(i64, String, i64, i64, i64)> = buckets::table
        .filter(buckets::inbox_id.eq_any(&inboxes))
        .filter(buckets::n.ne(0))
        .select((
            buckets::inbox_id,
            buckets::state,
            buckets::assignee_id,
            buckets::team_id,
            buckets::n,
        ))
        .load(conn)?;
    let mut counts = Counts::default();
    for (inbox, state, assignee, team, n) in rows {
        if !visible(inbox, assignee, team) {
            continue;
        }
        match state.as_str() {
            "open" => {
                counts.open += n;
                match assignee {
                    0 => counts.unassigned += n,
                    id if id == me => counts.mine += n,
                    _ => counts.others += n,
                }
            }
            "closed" => counts.closed += n,
            _ => counts.archived += n,
        }
    }
    let read: Vec<(i64, i64, i64, i64)> = read_up::table
        .filter(read_up::user_id.eq(me))
        .filter(read_up::inbox_id.eq_any(&inboxes))
        .select((
            read_up::inbox_id,
            read_up::assignee_id,
            read_up::team_id,
            read_up::n,
        ))
        .load(conn)?;
    let read_up_to_date: i64 = read
        .into_iter()
        .filter(|(inbox, assignee, team, _)| visible(*inbox, *assignee, *team))
        .map(|(_, _, _, n)| n)
        .sum();
    // Open conversations without a message yet (a moment, while the first is written):
    // never unread unless marked. Read through the partial index that holds only them, the
    // rest of the rule applied here (a status or inbox condition would pick another index).
    let empty: Vec<EmptyRow> = c::table
        .filter(c::org_id.eq(filter.org.map_or(0, OrgId::get)))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "conversations.message_count = 0",
        ))
        .select((
            c::id,
            c::inbox_id,
            c::assignee_id,
            c::team_id,
            c::status,
            c::archived,
            c::spam,
        ))
        .load(conn)?;
    let empty: Vec<i64> = empty
        .into_iter()
        .filter(|(_, inbox, assignee, team, status, archived, spam)| {
            status == Status::Open.as_str()
                && !archived
                && !spam
                && inboxes.contains(inbox)
                && visible(*inbox, assignee.unwrap_or(0), team.unwrap_or(0))
        })
        .map(|(id, ..)| id)
        .collect();
    let marked: i64 = if empty.is_empty() {
        0
    } else {
        reads::table
            .filter(reads::user_id.eq(me))
            .filter(reads::conversation_id.eq_any(&empty))
            .filter(reads::marked_unread.eq(true))
            .count()
            .get_result(conn)?
    };
    let empty = empty.len() as i64 - marked;
    counts.unread = (counts.open - read_up_to_date - empty).max(0);
    Ok(counts)
}

/// An empty conversation as [`maintained_counts`] reads it: id, inbox, assignee, team,
/// status, archived, spam.
type EmptyRow = (i64, i64, Option<i64>, Option<i64>, String, bool, bool);

/// Folds each key's rows of `read_up_counts` into one (PostgreSQL, where the triggers only
/// insert; SQLite keeps one row per key already). One statement: a concurrent reader sees
/// the rows before or after, never both. Returns the rows folded away.
pub fn compact_read_up_counts(conn: &mut DbConnection) -> Result<usize, StoreError> {
    match conn {
        DbConnection::Postgresql(pg) => Ok(diesel::sql_query(
            "WITH keys AS (
                 SELECT user_id, inbox_id, assignee_id, team_id FROM read_up_counts
                 GROUP BY 1, 2, 3, 4 HAVING count(*) > 1 OR sum(n) = 0
             ), gone AS (
                 DELETE FROM read_up_counts r USING keys k
                 WHERE (r.user_id, r.inbox_id, r.assignee_id, r.team_id)
                     = (k.user_id, k.inbox_id, k.assignee_id, k.team_id)
                 RETURNING r.user_id, r.inbox_id, r.assignee_id, r.team_id, r.n
             ), folded AS (
                 INSERT INTO read_up_counts (user_id, inbox_id, assignee_id, team_id, n)
                 SELECT user_id, inbox_id, assignee_id, team_id, sum(n) FROM gone
                 GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0
                 RETURNING 1
             )
             SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM folded) AS n",
        )
        .get_result::<Folded>(pg)?
        .n as usize),
        DbConnection::Sqlite(_) => Ok(0),
    }
}

#[derive(QueryableByName)]
struct Folded {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The counts by scanning the filtered rows, for filters the buckets do not keep.
fn scanned_counts(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
    search: Option<&Matching>,
) -> Result<Counts, StoreError> {
    // One COUNT per figure (diesel cannot GROUP BY a boxed query); each is index-served.
    let mut count = |tab: Tab,
                     assignee: Option<AssigneeFilter>,
                     unread_only: bool|
     -> Result<i64, StoreError> {
        let figure = Filter {
            tab: Some(tab),
            assignee,
            unread_only,
            ..filter.clone()
        };
        Ok(base(scope, &figure, search).count().get_result(conn)?)
    };
    let mine = count(Tab::Open, Some(AssigneeFilter::Me), false)?;
    let others = count(Tab::Open, Some(AssigneeFilter::Others), false)?;
    let unassigned = count(Tab::Open, Some(AssigneeFilter::Unassigned), false)?;
    Ok(Counts {
        open: mine + others + unassigned,
        closed: count(Tab::Closed, None, false)?,
        archived: count(Tab::Archived, None, false)?,
        unread: count(Tab::Open, None, true)?,
        mine,
        unassigned,
        others,
    })
}
