//! The connection: PostgreSQL or SQLite picked from the URL scheme, pooled by r2d2, with the
//! SQLite PRAGMAs set on every pooled connection and migrations embedded in the binary.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::StoreError;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// Reads the backend from the URL scheme; anything else is an error, never a new file.
    pub fn from_url(url: &str) -> Result<(Backend, String), StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok((Backend::Postgres, without_loopback_tls(url)));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(StoreError::Config("the sqlite URL names no file".into()));
            }
            return Ok((Backend::Sqlite, path.to_string()));
        }
        Err(StoreError::Config(format!(
            "unsupported database URL scheme in {:?}: use postgres://… or sqlite://FILE",
            redact(url)
        )))
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// The PostgreSQL URL to connect with: to a loopback host without an `sslmode`, TLS is
/// turned off (`sslmode=disable`). libpq's default (`prefer`) negotiates TLS even to
/// localhost, which costs every statement encryption for no protection; an explicit
/// `sslmode` is always kept, and any other host keeps libpq's default.
fn without_loopback_tls(url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    if !loopback || url.contains("sslmode=") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

/// A URL without its password, fit for logs and error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Makes every SQLite connection opened from now on plan its statements without looking at
/// the values bound to them (the query planner stability guarantee).
///
/// The bundled SQLite is built with STAT4, and it then marks a prepared statement expired
/// whenever a parameter its planner looked at is bound again, even to the same value: every
/// `LIMIT ?` (each `.first()`), and a bound value compared with a partial index's condition.
/// Diesel binds every parameter on each run, so its cached statements were parsed and planned
/// again on every execution: a fifth of a send's CPU time went to `sqlite3Prepare`. The
/// plans lose nothing here: this project never runs `ANALYZE` on SQLite (STAT4 has no
/// samples to use) and searches by prefix with ranges, not `LIKE ?`.
fn sqlite_plans_ignore_bound_values() {
    use libsqlite3_sys as ffi;
    use std::ffi::{c_char, c_int};

    unsafe extern "C" fn enable(
        db: *mut ffi::sqlite3,
        _error: *mut *mut c_char,
        _api: *const ffi::sqlite3_api_routines,
    ) -> c_int {
        // SAFETY: SQLite calls this with the handle of a connection it is opening; the
        // option takes an int (1: on) and an optional int pointer for the old value.
        unsafe {
            ffi::sqlite3_db_config(
                db,
                ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
                1 as c_int,
                std::ptr::null_mut::<c_int>(),
            )
        }
    }

    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a function with the signature SQLite expects; it stays valid for
        // the life of the process (registering the same function twice is a no-op).
        let code = unsafe { ffi::sqlite3_auto_extension(Some(enable)) };
        if code != ffi::SQLITE_OK {
            tracing::warn!(code, "SQLite refused the query planner setting");
        }
    });
}

/// A pooled connection, and whether it has lost its server: a statement that failed
/// because the connection closed marks it, and the pool then drops it instead of handing it
/// out again. (Connections are not pinged on every checkout: that was one extra round trip
/// per request.)
pub struct Pooled {
    conn: DbConnection,
    lost: Arc<AtomicBool>,
}

impl std::ops::Deref for Pooled {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// Whether `error` means the connection itself is gone (not that one statement failed).
fn connection_lost(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        error,
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        ) | Error::BrokenTransactionManager
    )
}

#[derive(Debug)]
pub struct Manager {
    backend: Backend,
    target: String,
    /// SQL statements started on this pool's connections.
    queries: Arc<AtomicU64>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let mut conn = match self.backend {
            Backend::Postgres => DbConnection::Postgresql(PgConnection::establish(&self.target)?),
            Backend::Sqlite => {
                sqlite_plans_ignore_bound_values();
                let mut conn = SqliteConnection::establish(&self.target)?;
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                DbConnection::Sqlite(conn)
            }
        };
        let queries = self.queries.clone();
        let lost = Arc::new(AtomicBool::new(false));
        let marks = lost.clone();
        conn.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| {
            use diesel::connection::InstrumentationEvent;
            match event {
                InstrumentationEvent::StartQuery { query, .. } => {
                    queries.fetch_add(1, Ordering::Relaxed);
                    // `RUST_LOG=switchboard::sql=trace` lists every statement a request runs.
                    tracing::trace!(target: "switchboard::sql", "{query}");
                }
                InstrumentationEvent::FinishQuery {
                    error: Some(error), ..
                } if connection_lost(error) => marks.store(true, Ordering::Relaxed),
                _ => {}
            }
        });
        Ok(Pooled { conn, lost })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        use diesel::r2d2::R2D2Connection;
        conn.lost.load(Ordering::Relaxed) || conn.conn.is_broken()
    }
}

/// The pool plus what the api needs to know about the backend. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
    /// SQL statements started by this store, on every pooled connection (for `/metrics`, and
    /// for tests that check a request's statement count does not grow with its page size).
    queries: Arc<AtomicU64>,
    /// SQLite allows one writer: writers queue here instead of failing with SQLITE_BUSY when
    /// a deferred transaction tries to upgrade its lock.
    write_lock: Arc<Mutex<()>>,
}

impl Store {
    /// Opens the pool (checking one connection) without touching the schema.
    pub fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let (backend, target) = Backend::from_url(url)?;
        let queries = Arc::new(AtomicU64::new(0));
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(1))
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(5))
            .build(Manager {
                backend,
                target,
                queries: queries.clone(),
            })
            .map_err(|error| StoreError::Unavailable(format!("{} ({})", error, redact(url))))?;
        Ok(Store {
            pool,
            backend,
            queries,
            write_lock: Arc::new(Mutex::new(())),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// SQL statements this store has started so far.
    pub fn queries_executed(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    pub fn pool_max(&self) -> u32 {
        self.pool.max_size()
    }

    pub fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Runs `work` on a pooled connection, outside any transaction (reads).
    pub fn read<T>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        work(&mut conn)
    }

    /// Runs `work` in one transaction: every row it writes commits together or not at all.
    pub fn write<T>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        let _writer = match self.backend {
            Backend::Sqlite => Some(
                self.write_lock
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            ),
            Backend::Postgres => None,
        };
        let conn: &mut DbConnection = &mut conn;
        match self.backend {
            Backend::Postgres => conn.transaction(work),
            Backend::Sqlite => immediate_transaction(conn, work),
        }
    }

    /// Applies every pending migration.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let applied = match &mut **conn {
            DbConnection::Postgresql(pg) => pg.run_pending_migrations(PG_MIGRATIONS).map(versions),
            DbConnection::Sqlite(lite) => {
                lite.run_pending_migrations(SQLITE_MIGRATIONS).map(versions)
            }
        };
        applied.map_err(|error| StoreError::Config(format!("migration failed: {error}")))
    }

    /// Reverts every applied migration (the migration test uses it; operators rarely should).
    pub fn revert_all(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let reverted = match &mut **conn {
            DbConnection::Postgresql(pg) => pg.revert_all_migrations(PG_MIGRATIONS).map(versions),
            DbConnection::Sqlite(lite) => {
                lite.revert_all_migrations(SQLITE_MIGRATIONS).map(versions)
            }
        };
        reverted.map_err(|error| StoreError::Config(format!("revert failed: {error}")))
    }

    /// Reverts the newest applied migration, if any (the migration tests take a database
    /// back one step, fill it, and apply the step again over the data).
    pub fn revert_last(&self) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        let reverted = match &mut **conn {
            DbConnection::Postgresql(pg) => pg.revert_last_migration(PG_MIGRATIONS),
            DbConnection::Sqlite(lite) => lite.revert_last_migration(SQLITE_MIGRATIONS),
        };
        reverted
            .map(|version| Some(version.to_string()))
            .map_err(|error| StoreError::Config(format!("revert failed: {error}")))
    }

    /// Whether the database answers (for `/readyz`).
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }
}

/// SQLite: a write transaction that takes the write lock at its start (`BEGIN IMMEDIATE`), so
/// another process's writer is waited out under `busy_timeout`. A deferred one that read first
/// fails at once (`SQLITE_BUSY_SNAPSHOT`) when another process committed in between: so did
/// `switchboard create-admin` beside a running server. Savepoints inside nest as usual.
fn immediate_transaction<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let DbConnection::Sqlite(lite) = conn else {
        return conn.transaction(work);
    };
    AnsiTransactionManager::begin_transaction_sql(lite, "BEGIN IMMEDIATE")?;
    let outcome = work(conn);
    let DbConnection::Sqlite(lite) = conn else {
        return outcome;
    };
    match outcome {
        Ok(value) => match AnsiTransactionManager::commit_transaction(lite) {
            Ok(()) => Ok(value),
            Err(error) => {
                let _ = AnsiTransactionManager::rollback_transaction(lite);
                Err(error.into())
            }
        },
        Err(error) => {
            AnsiTransactionManager::rollback_transaction(lite)?;
            Err(error)
        }
    }
}

fn versions(list: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    list.into_iter()
        .map(|version| version.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(
            Backend::from_url("sqlite://data/sb.db").unwrap(),
            (Backend::Sqlite, "data/sb.db".into())
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap().0,
            Backend::Postgres
        );
        let error = Backend::from_url("mysql://root:hunter2@h/db")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unsupported database URL scheme"), "{error}");
        assert!(!error.contains("hunter2"), "the password leaked: {error}");
    }

    #[test]
    fn loopback_postgres_skips_tls_unless_asked() {
        let target = |url: &str| Backend::from_url(url).unwrap().1;
        assert_eq!(
            target("postgres://postgres@127.0.0.1:5432/sb"),
            "postgres://postgres@127.0.0.1:5432/sb?sslmode=disable"
        );
        assert_eq!(
            target("postgresql://app:pw@localhost/sb?connect_timeout=3"),
            "postgresql://app:pw@localhost/sb?connect_timeout=3&sslmode=disable"
        );
        assert_eq!(
            target("postgres://app@[::1]:5432/sb"),
            "postgres://app@[::1]:5432/sb?sslmode=disable"
        );
        // Asked for, or another host: libpq decides as configured.
        assert_eq!(
            target("postgres://app@127.0.0.1/sb?sslmode=require"),
            "postgres://app@127.0.0.1/sb?sslmode=require"
        );
        assert_eq!(
            target("postgres://app@db.internal/sb"),
            "postgres://app@db.internal/sb"
        );
        assert_eq!(
            target("postgres://app@10.0.0.5/sb"),
            "postgres://app@10.0.0.5/sb"
        );
    }

    #[test]
    fn sqlite_plans_do_not_depend_on_bound_values() {
        // A partial index whose condition a bound value meets is used only when the planner
        // looks at bound values; with the stability guarantee on, it is not. (The same
        // setting keeps `LIMIT ?` statements prepared between runs.)
        let dir = std::env::temp_dir().join(format!("sb-qpsg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plans.db");
        let _ = std::fs::remove_file(&path);
        let manager = Manager {
            backend: Backend::Sqlite,
            target: path.to_string_lossy().into_owned(),
            queries: Arc::new(AtomicU64::new(0)),
        };
        let mut conn = r2d2::ManageConnection::connect(&manager).unwrap();
        conn.batch_execute(
            "CREATE TABLE t (a INTEGER, b TEXT); CREATE INDEX t_open ON t (a) WHERE b = 'open';",
        )
        .unwrap();
        #[derive(QueryableByName)]
        struct Plan {
            #[diesel(sql_type = diesel::sql_types::Text)]
            detail: String,
        }
        let plan: Vec<Plan> =
            diesel::sql_query("EXPLAIN QUERY PLAN SELECT a FROM t WHERE a = ? AND b = ?")
                .bind::<diesel::sql_types::Integer, _>(1)
                .bind::<diesel::sql_types::Text, _>("open")
                .load(&mut *conn)
                .unwrap();
        let details: Vec<&str> = plan.iter().map(|row| row.detail.as_str()).collect();
        assert!(
            !details.iter().any(|detail| detail.contains("t_open")),
            "the plan used the bound value: {details:?}"
        );
        let literal: Vec<Plan> =
            diesel::sql_query("EXPLAIN QUERY PLAN SELECT a FROM t WHERE a = 1 AND b = 'open'")
                .load(&mut *conn)
                .unwrap();
        assert!(
            literal.iter().any(|row| row.detail.contains("t_open")),
            "the partial index is usable with literals"
        );
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/sb"),
            "postgres://app:***@db:5432/sb"
        );
        assert_eq!(redact("postgres://app@db/sb"), "postgres://app@db/sb");
    }
}
