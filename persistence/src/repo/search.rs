//! Conversation search (`GET /v1/conversations?q=` and its counts): which conversations a
//! query matches, answered from indexes on both backends, never by scanning text.
//!
//! A conversation matches when
//! - its contact does: every word of the query begins a word of the contact's name, company
//!   or e-mail address, case-insensitively (`ana lim` finds "Ana Lima"; an e-mail address
//!   typed in full is its words); or, for a query that reads as a phone number (digits and
//!   `+ - ( ) .` and spaces, at least three digits), its digits are the whole of one of the
//!   contact's numbers in any format (`+1 415 555 2671`, `(415) 555-2671`) or a run of digits
//!   of it, its ending above all (`2671`, `5552671`). Served by `contact_terms` (word
//!   prefixes, and every digit suffix of each number: see `domain::contacts::search_terms`),
//!   one range of its primary key;
//! - or one of its messages does: that message contains every word of the query, each as the
//!   beginning of a word, case-insensitively (`refun` finds "Refunded"); a word shorter than
//!   [`MIN_PREFIX`] characters must be a whole word there (a letter or two begins nearly
//!   every message). Every kind of message counts, internal notes included, as it always
//!   did: whoever may see a conversation sees all of its messages, and the caller's
//!   visibility is applied to the conversations as for any list. Served by the GIN index
//!   `messages_body_search` on `messages.search_words` (PostgreSQL) and the FTS5 table
//!   `messages_fts` (SQLite).
//!
//! Words are runs of letters and digits; everything else (quotes, `*`, `:`, `&`, `'`, `%`,
//! `_` …) only separates words, and the user's text reaches the database as bound values,
//! never as SQL or as search syntax. Accents count (`cafe` does not find "café").
//!
//! How the list then uses the indexes depends on how much matches, so
//! [`matching_conversations`] looks first, reading the indexes up to a bound: a search that
//! names at most [`FEW`] conversations (a number, a rare name, a rare word) is answered by
//! their ids, which PostgreSQL reads by primary key and sorts; one that matches more (a
//! common surname, a common word) is a condition checked on the list's own index walk,
//! where matches are dense enough for a page to fill quickly: a hashed set of the contacts,
//! and a probe of each conversation's messages. (SQLite, which keeps no statistics here,
//! walks the list's index in both cases, checking the ids against a set: a search that
//! fills no page reads the tab's index entries, about 0.1 µs each.) Counts, which read every
//! matching row, look the matches up once for all their figures ([`Matching::for_counting`]).

use diesel::expression::{ValidGrouping, is_aggregate};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, HasSqlType, Text};
use domain::OrgId;
use domain::contacts as rules;

use crate::connection::{Backend, MultiBackend};
use crate::schema::{contact_terms, conversations as c};
use crate::{DbConnection, StoreError};

/// A search that names at most this many conversations is answered by their ids.
pub const FEW: usize = 1_000;
/// Message hits read per conversation a search may name, before it counts as matching many.
const HITS_PER_CONVERSATION: usize = 2;
/// How far past the hits bound PostgreSQL's estimate of a word's messages must be for the
/// word to count as common without reading its hits.
const ESTIMATE_SLACK: f64 = 20.0;
/// Conversations a count looks up once for all its figures, at most (beyond: each figure
/// asks the index again).
pub const COUNTED: usize = 200_000;
/// In message text, words this long or longer match by prefix; shorter ones whole.
pub const MIN_PREFIX: usize = 3;
/// SQLite binds a list of ids one value each up to this many, as one JSON array beyond.
const LISTED: usize = 500;

/// A condition on the conversations of a list query.
pub type Condition = Box<dyn BoxableExpression<c::table, MultiBackend, SqlType = Bool>>;

/// What one part of a search (the contact, or the messages) matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// These conversations (all of them).
    Ids(Vec<i64>),
    /// More than were looked up.
    Many,
}

/// A query worked out against the database: which conversations it matches, as a condition
/// for the list's queries ([`Matching::condition`]). Made by [`matching_conversations`] once
/// per request, then used by each of the request's statements.
#[derive(Debug, Clone)]
pub struct Matching {
    backend: Backend,
    org: i64,
    /// `contact_terms` prefixes that must each match a term of the contact.
    prefixes: Vec<String>,
    /// Words that one message must contain.
    words: Vec<String>,
    /// The word whose index entries a lookup reads (PostgreSQL: the rarest by the planner's
    /// estimate; the others are checked on the rows it finds).
    lead: usize,
    contacts: Part,
    messages: Part,
    /// For counting every row rather than filling a page: a common word is then one set for
    /// each statement instead of a probe of each conversation's messages.
    counting: bool,
}

/// Which conversations of the organization `org` the search `text` matches (see the module
/// documentation for the rules). A query without a word or a phone number (only punctuation)
/// matches nothing.
pub fn matching_conversations(
    conn: &mut DbConnection,
    org: OrgId,
    text: &str,
) -> Result<Matching, StoreError> {
    matching_within(conn, org, text, FEW)
}

/// [`matching_conversations`], with `few` instead of [`FEW`]: a search naming more than
/// `few` conversations is checked on the list's index walk (`0`: always; for tests).
pub fn matching_within(
    conn: &mut DbConnection,
    org: OrgId,
    text: &str,
    few: usize,
) -> Result<Matching, StoreError> {
    let mut matching = Matching::parse(conn, org, text);
    if !matching.prefixes.is_empty() {
        matching.contacts = matching.contact_part(conn, few)?;
    }
    if !matching.words.is_empty() {
        matching.messages = matching.message_part(conn, few)?;
    }
    Ok(matching)
}

impl Matching {
    /// The query's words and prefixes, nothing looked up yet.
    fn parse(conn: &DbConnection, org: OrgId, text: &str) -> Matching {
        Matching {
            backend: match conn {
                DbConnection::Postgresql(_) => Backend::Postgres,
                DbConnection::Sqlite(_) => Backend::Sqlite,
            },
            org: org.get(),
            prefixes: rules::query_prefixes(text),
            words: rules::query_words(text),
            lead: 0,
            contacts: Part::Ids(Vec::new()),
            messages: Part::Ids(Vec::new()),
            counting: false,
        }
    }

    /// The same search for counting every matching row: what matches many is looked up
    /// once (up to [`COUNTED`] conversations), for all the figures of a count.
    pub fn for_counting(self, conn: &mut DbConnection) -> Result<Matching, StoreError> {
        self.for_counting_within(conn, COUNTED)
    }

    /// [`Matching::for_counting`], looking up `counted` conversations at most (`0`: none;
    /// each statement then asks the indexes itself).
    pub fn for_counting_within(
        mut self,
        conn: &mut DbConnection,
        counted: usize,
    ) -> Result<Matching, StoreError> {
        self.counting = true;
        let over = bound(counted);
        if self.contacts == Part::Many && counted > 0 {
            let ids: Vec<i64> = c::table
                .filter(self.contact_conversations())
                .select(c::id)
                .limit(over)
                .load(conn)?;
            if ids.len() <= counted {
                self.contacts = Part::Ids(ids);
            }
        }
        if self.messages == Part::Many && counted > 0 {
            let ids = self.look_up_messages(conn, over, true)?;
            if ids.len() <= counted {
                self.messages = Part::Ids(ids);
            }
        }
        Ok(self)
    }

    /// Whether the list's queries should read this search's conversations by id: on
    /// SQLite, when the search names them (a few). SQLite keeps no statistics here and
    /// otherwise walks an index of the organization's tab (`org_id`, `status`, …),
    /// checking each entry against the ids: for a rare term in the closed tab of 200,000
    /// conversations, 27 ms instead of 0.03. The list then writes its index-serving terms
    /// so that no index can serve them (`+conversations.org_id = ?`), which leaves the ids.
    /// (PostgreSQL weighs both plans itself.)
    pub fn reads_by_id(&self) -> bool {
        self.backend == Backend::Sqlite
            && matches!(
                (&self.contacts, &self.messages),
                (Part::Ids(_), Part::Ids(_))
            )
    }

    /// The condition on `conversations` for the list's and the counts' queries.
    pub fn condition(&self) -> Condition {
        if let (Part::Ids(contacts), Part::Ids(messages)) = (&self.contacts, &self.messages) {
            let mut ids: Vec<i64> = contacts.iter().chain(messages).copied().collect();
            ids.sort_unstable();
            ids.dedup();
            return self.among(ids);
        }
        let by_contact: Condition = match &self.contacts {
            Part::Ids(ids) => self.among(ids.clone()),
            Part::Many => Box::new(self.contact_conversations()),
        };
        let by_message: Condition = match &self.messages {
            Part::Ids(ids) => self.among(ids.clone()),
            Part::Many if self.counting => self.conversations_with_message(),
            Part::Many => self.has_message(),
        };
        Box::new(by_contact.or(by_message))
    }

    /// `conversations.id` is one of `ids`: an array on PostgreSQL (one value), a list of
    /// values on SQLite, or a JSON array when it is long (SQLite limits a statement's values).
    fn among(&self, ids: Vec<i64>) -> Condition {
        if self.backend == Backend::Sqlite && ids.len() > LISTED {
            let json = format!(
                "[{}]",
                ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
            );
            return Box::new(
                Raw::default()
                    .sql("conversations.id IN (SELECT value FROM json_each(")
                    .text(json)
                    .sql("))"),
            );
        }
        Box::new(c::id.eq_any(ids))
    }

    /// The conversations of the matching contacts, when they are a few.
    fn contact_part(&self, conn: &mut DbConnection, few: usize) -> Result<Part, StoreError> {
        let over = bound(few);
        let contacts: Vec<i64> = contact_terms::table
            .filter(contacts_with(self.org, &self.prefixes))
            .select(contact_terms::contact_id)
            .limit(over)
            .load(conn)?;
        if contacts.len() > few {
            return Ok(Part::Many);
        }
        if contacts.is_empty() {
            return Ok(Part::Ids(Vec::new()));
        }
        // By `conversations_contact` (the contacts are the organization's already).
        let ids: Vec<i64> = c::table
            .filter(c::contact_id.eq_any(contacts))
            .select(c::id)
            .limit(over)
            .load(conn)?;
        Ok(if ids.len() > few {
            Part::Many
        } else {
            Part::Ids(ids)
        })
    }

    /// The conversations with a matching message, when they are a few: the index's hits are
    /// read up to a bound, so a common word costs no more than a rare one to find common.
    fn message_part(&mut self, conn: &mut DbConnection, few: usize) -> Result<Part, StoreError> {
        let hits = few.saturating_mul(HITS_PER_CONVERSATION);
        let over = bound(hits);
        match conn {
            DbConnection::Postgresql(pg) => {
                // GIN has no ordered scan: reading a bounded number of hits still gathers
                // every entry of the words it reads. So the rarest word by the planner's
                // estimate (from the index's statistics) is read, the others checked on its
                // rows; and a search all of whose words are common is taken for common
                // unread. (The estimate is rough: a word without statistics is guessed at a
                // fixed share of the rows; hence the slack.)
                let mut least = f64::INFINITY;
                for (index, word) in self.words.iter().enumerate() {
                    let estimate =
                        estimated_rows(pg, self.org, &tsquery(std::slice::from_ref(word)))?;
                    if estimate < least {
                        least = estimate;
                        self.lead = index;
                    }
                }
                if least > hits as f64 * ESTIMATE_SLACK {
                    return Ok(Part::Many);
                }
            }
            DbConnection::Sqlite(lite) => {
                // Counting the hits reads the index alone; only a few are looked up.
                let counted = diesel::sql_query(
                    "SELECT count(*) AS n FROM \
                     (SELECT 1 FROM messages_fts WHERE messages_fts MATCH ? LIMIT ?)",
                )
                .bind::<Text, _>(fts_query(&self.words))
                .bind::<BigInt, _>(over)
                .get_result::<Count>(lite)?;
                if counted.n >= over {
                    return Ok(Part::Many);
                }
            }
        }
        let found = self.look_up_messages(conn, over, false)?;
        if found.len() > hits {
            return Ok(Part::Many);
        }
        let mut ids = found;
        ids.sort_unstable();
        ids.dedup();
        Ok(if ids.len() > few {
            Part::Many
        } else {
            Part::Ids(ids)
        })
    }

    /// The conversation ids of the messages matching the words (`distinct`: each once), up
    /// to `limit` rows.
    fn look_up_messages(
        &self,
        conn: &mut DbConnection,
        limit: i64,
        distinct: bool,
    ) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<Id> = match conn {
            DbConnection::Postgresql(pg) => diesel::sql_query(pg_lookup(distinct))
                .bind::<BigInt, _>(self.org)
                .bind::<Text, _>(tsquery(self.lead_word()))
                .bind::<Text, _>(tsquery(&self.words))
                .bind::<BigInt, _>(limit)
                .load(pg)?,
            DbConnection::Sqlite(lite) => diesel::sql_query(sqlite_lookup(distinct))
                .bind::<Text, _>(fts_query(&self.words))
                .bind::<BigInt, _>(limit)
                .load(lite)?,
        };
        Ok(rows.into_iter().map(|row| row.id).collect())
    }

    /// The word a lookup reads the index entries of, as a one-word list.
    fn lead_word(&self) -> &[String] {
        self.words.get(self.lead..=self.lead).unwrap_or_default()
    }

    /// The conversation's contact matches: a set of the contacts (hashed once per statement).
    fn contact_conversations(&self) -> Raw {
        Raw::default()
            .sql(
                "conversations.contact_id IN \
                 (SELECT contact_terms.contact_id FROM contact_terms WHERE ",
            )
            .append(contacts_with(self.org, &self.prefixes))
            .sql(")")
    }

    /// A message of the conversation matches: a probe of its messages
    /// (`messages_conversation`), for a list walking its index until a page is full.
    fn has_message(&self) -> Condition {
        match self.backend {
            // OFFSET 0 keeps the probe a probe: PostgreSQL would otherwise consider
            // gathering every match of a common word first, to hash them.
            Backend::Postgres => Box::new(
                Raw::default()
                    .sql(
                        "EXISTS (SELECT 1 FROM messages \
                         WHERE messages.conversation_id = conversations.id \
                         AND messages.search_words @@ to_tsquery('simple', ",
                    )
                    .text(tsquery(&self.words))
                    .sql(") OFFSET 0)"),
            ),
            // The hits' rowids are read once per statement; `+` keeps SQLite from looking
            // each of them up in every conversation's messages.
            Backend::Sqlite => Box::new(
                Raw::default()
                    .sql(
                        "EXISTS (SELECT 1 FROM messages \
                         WHERE messages.conversation_id = conversations.id \
                         AND +messages.id IN \
                         (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ",
                    )
                    .text(fts_query(&self.words))
                    .sql("))"),
            ),
        }
    }

    /// The conversation is among those with a matching message: the index's hits as one
    /// set per statement, for counting over every row.
    fn conversations_with_message(&self) -> Condition {
        match self.backend {
            Backend::Postgres => Box::new(
                Raw::default()
                    .sql(
                        "conversations.id IN (SELECT messages.conversation_id FROM messages \
                         WHERE messages.org_id = ",
                    )
                    .bigint(self.org)
                    .sql(" AND messages.search_words @@ to_tsquery('simple', ")
                    .text(tsquery(self.lead_word()))
                    .sql(") AND strip(messages.search_words) @@ to_tsquery('simple', ")
                    .text(tsquery(&self.words))
                    .sql("))"),
            ),
            Backend::Sqlite => Box::new(
                Raw::default()
                    .sql(
                        "conversations.id IN (SELECT messages.conversation_id FROM messages \
                         WHERE messages.id IN \
                         (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ",
                    )
                    .text(fts_query(&self.words))
                    .sql("))"),
            ),
        }
    }
}

/// `limit + 1`, as SQL wants it: one row more than a bound tells the bound is passed.
fn bound(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// The message lookup on PostgreSQL: `$1` the organization, `$2` the lead word's query (its
/// index entries are read), `$3` every word's (checked on the rows found; `strip()` of the
/// column keeps the planner from reading the other words' entries too), `$4` the limit.
fn pg_lookup(distinct: bool) -> String {
    format!(
        "SELECT {}messages.conversation_id AS id FROM messages \
         WHERE messages.org_id = $1 AND messages.search_words @@ to_tsquery('simple', $2) \
         AND strip(messages.search_words) @@ to_tsquery('simple', $3) LIMIT $4",
        if distinct { "DISTINCT " } else { "" },
    )
}

/// The message lookup on SQLite: the FTS5 query, then the limit.
fn sqlite_lookup(distinct: bool) -> String {
    if distinct {
        "SELECT DISTINCT messages.conversation_id AS id FROM messages WHERE messages.id IN \
         (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?) LIMIT ?"
            .to_string()
    } else {
        // The limit on the hits themselves: only that many are looked up in `messages`.
        "SELECT messages.conversation_id AS id FROM messages WHERE messages.id IN \
         (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? LIMIT ?)"
            .to_string()
    }
}

/// The words as a `tsquery`: each quoted (so nothing in it is an operator), `:*` for a
/// prefix, all of them required.
fn tsquery(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            let quoted = format!("'{}'", word.replace('\\', "\\\\").replace('\'', "''"));
            if word.chars().count() >= MIN_PREFIX {
                format!("{quoted}:*")
            } else {
                quoted
            }
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

/// The words as an FTS5 query: each a quoted string (so nothing in it is syntax), `*` for a
/// prefix, all of them required.
fn fts_query(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            let quoted = format!("\"{}\"", word.replace('"', "\"\""));
            if word.chars().count() >= MIN_PREFIX {
                format!("{quoted}*")
            } else {
                quoted
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The contact directory's search (`GET /v1/contacts?q=`): `contacts.id` is a contact
/// matching every prefix, by the same rule as a conversation search's contact part
/// ([`contacts_with`]). When at most [`FEW`] contacts match (counted up to a bound), the
/// organization's term is written so that no index serves it (`+contacts.org_id`), so the
/// matches are read by id and sorted rather than every contact walked by name, each checked
/// against the matches until a page is full. SQLite keeps no statistics and always walked
/// (8.5 ms for a number among 200,000 contacts; 0.7 ms by id); PostgreSQL estimates a
/// multi-word match (an e-mail address) at a fraction of the organization and walked too
/// (272 ms among 700,000 contacts for one match; 0.8 ms by id). Beyond that, matches are
/// dense enough for the walk to fill a page at once.
pub fn contact_directory_matches(
    conn: &mut DbConnection,
    org: OrgId,
    prefixes: &[String],
) -> Result<ContactCondition, StoreError> {
    let org = org.get();
    let matched: Vec<i64> = contact_terms::table
        .filter(contacts_with(org, prefixes))
        .select(contact_terms::contact_id)
        .limit(bound(FEW))
        .load(conn)?;
    let few = matched.len() <= FEW;
    let org_term = if few {
        "+contacts.org_id = "
    } else {
        "contacts.org_id = "
    };
    Ok(Box::new(
        Raw::default()
            .sql(org_term)
            .bigint(org)
            .sql(" AND contacts.id IN (SELECT contact_terms.contact_id FROM contact_terms WHERE ")
            .append(contacts_with(org, prefixes))
            .sql(")"),
    ))
}

/// A condition on the contact directory's queries.
pub type ContactCondition =
    Box<dyn BoxableExpression<crate::schema::contacts::table, MultiBackend, SqlType = Bool>>;

/// `contact_terms` rows of the organization's contacts that have a term matching each
/// prefix (`prefixes` is not empty): one range of the table's primary key for the longest
/// prefix (the likeliest to be rare), and each other prefix checked among the terms of the
/// contacts found (`contact_terms_contact`), so a common one (`example` of every e-mail
/// address) is never read whole.
fn contacts_with(org: i64, prefixes: &[String]) -> Raw {
    let mut ordered: Vec<&String> = prefixes.iter().collect();
    ordered.sort_by_key(|prefix| std::cmp::Reverse(prefix.len()));
    let mut raw = Raw::default();
    for (index, prefix) in ordered.into_iter().enumerate() {
        if index == 0 {
            raw = raw
                .sql("contact_terms.org_id = ")
                .bigint(org)
                .sql(" AND contact_terms.term >= ")
                .text(prefix.clone())
                .sql(" AND contact_terms.term < ")
                .text(rules::prefix_end(prefix));
        } else {
            let alias = format!("t{index}");
            raw = raw
                .sql(&format!(
                    " AND EXISTS (SELECT 1 FROM contact_terms {alias} \
                     WHERE {alias}.contact_id = contact_terms.contact_id AND {alias}.term >= "
                ))
                .text(prefix.clone())
                .sql(&format!(" AND {alias}.term < "))
                .text(rules::prefix_end(prefix))
                .sql(")");
        }
    }
    raw
}

/// A condition written in SQL, user values bound (never part of the text): the parts of a
/// search that diesel's DSL cannot say (text-index operators) or whose shape depends on the
/// query (one check per word).
#[derive(Debug, Clone, Default)]
struct Raw {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    Sql(String),
    Text(String),
    BigInt(i64),
}

impl Raw {
    fn sql(mut self, text: &str) -> Raw {
        self.pieces.push(Piece::Sql(text.to_string()));
        self
    }

    fn text(mut self, value: String) -> Raw {
        self.pieces.push(Piece::Text(value));
        self
    }

    fn bigint(mut self, value: i64) -> Raw {
        self.pieces.push(Piece::BigInt(value));
        self
    }

    fn append(mut self, other: Raw) -> Raw {
        self.pieces.extend(other.pieces);
        self
    }
}

impl Expression for Raw {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for Raw {}

impl<QS> SelectableExpression<QS> for Raw {}

impl<GB> ValidGrouping<GB> for Raw {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for Raw {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> QueryFragment<DB> for Raw
where
    DB: diesel::backend::Backend + HasSqlType<Text> + HasSqlType<BigInt>,
    String: diesel::serialize::ToSql<Text, DB>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        for piece in &self.pieces {
            match piece {
                Piece::Sql(text) => out.push_sql(text),
                Piece::Text(value) => out.push_bind_param::<Text, _>(value)?,
                Piece::BigInt(value) => out.push_bind_param::<BigInt, _>(value)?,
            }
        }
        Ok(())
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct PlanText {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    plan: String,
}

#[derive(QueryableByName)]
struct PlanDetail {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// The planner's estimate of the organization's messages matching `tsquery` (PostgreSQL).
fn estimated_rows(
    pg: &mut diesel::pg::PgConnection,
    org: i64,
    tsquery: &str,
) -> Result<f64, StoreError> {
    let plan: Vec<PlanText> = diesel::sql_query(
        "EXPLAIN (FORMAT JSON) SELECT messages.conversation_id FROM messages \
         WHERE messages.org_id = $1 AND messages.search_words @@ to_tsquery('simple', $2)",
    )
    .bind::<BigInt, _>(org)
    .bind::<Text, _>(tsquery)
    .load(pg)?;
    let text = plan
        .first()
        .map(|row| row.plan.as_str())
        .unwrap_or_default();
    let rows = text
        .split_once("\"Plan Rows\":")
        .and_then(|(_, rest)| {
            let number: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            number.parse::<f64>().ok()
        })
        // No estimate: look, as for a rare word.
        .unwrap_or(0.0);
    Ok(rows)
}

/// The plan of the message lookup a search of `text` runs (PostgreSQL `EXPLAIN`, SQLite
/// `EXPLAIN QUERY PLAN`, one line per node): for tests that check it is served by the text
/// index, and for operators checking theirs.
pub fn explain_message_lookup(
    conn: &mut DbConnection,
    org: OrgId,
    text: &str,
) -> Result<Vec<String>, StoreError> {
    let matching = Matching::parse(conn, org, text);
    let limit = bound(FEW * HITS_PER_CONVERSATION);
    Ok(match conn {
        DbConnection::Postgresql(pg) => diesel::sql_query(format!("EXPLAIN {}", pg_lookup(false)))
            .bind::<BigInt, _>(matching.org)
            .bind::<Text, _>(tsquery(matching.lead_word()))
            .bind::<Text, _>(tsquery(&matching.words))
            .bind::<BigInt, _>(limit)
            .load::<PlanText>(pg)?
            .into_iter()
            .map(|row| row.plan)
            .collect(),
        DbConnection::Sqlite(lite) => {
            diesel::sql_query(format!("EXPLAIN QUERY PLAN {}", sqlite_lookup(false)))
                .bind::<Text, _>(fts_query(&matching.words))
                .bind::<BigInt, _>(limit)
                .load::<PlanDetail>(lite)?
                .into_iter()
                .map(|row| row.detail)
                .collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_quote_every_word_and_keep_no_syntax() {
        let words = rules::query_words(r#"Refund "x* it's a:b & 100%_"#);
        assert_eq!(words, vec!["refund", "x", "it", "s", "a", "b"]);
        assert_eq!(tsquery(&words), "'refund':* & 'x' & 'it' & 's' & 'a' & 'b'");
        assert_eq!(fts_query(&words), r#""refund"* "x" "it" "s" "a" "b""#);
        let words = rules::query_words("Café crème");
        assert_eq!(tsquery(&words), "'café':* & 'crème':*");
        assert_eq!(fts_query(&words), r#""café"* "crème"*"#);
    }
}
