//! The databases a run works on: a seeded template kept between runs (a PostgreSQL
//! database, or a SQLite file), and a copy of it per run that is thrown away afterwards.
//! Templates are named from what makes them: the conversation count, the seed and a hash of
//! the migrations, so a schema change or another size seeds a new one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use api::seed::{Progress, SeedOptions, seed_demo};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use persistence::Store;

use crate::target::SeededInbox;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::progress::Phase;

/// Databases and files a run made and has not removed yet, for the Ctrl-C handler.
static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());

#[derive(Clone, PartialEq)]
enum Pending {
    Database { admin_url: String, name: String },
    File(PathBuf),
}

fn pending() -> std::sync::MutexGuard<'static, Vec<Pending>> {
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Drops every database and removes every file still pending (the Ctrl-C handler).
pub fn clean_up_pending() {
    let all: Vec<Pending> = pending().drain(..).collect();
    for item in all {
        match item {
            Pending::Database { admin_url, name } => {
                let _ = Postgres::new(&admin_url).drop_database(&name);
            }
            Pending::File(path) => remove_sqlite(&path),
        }
    }
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// The PostgreSQL server, through its maintenance database.
#[derive(Debug, Clone)]
pub struct Postgres {
    /// `postgres://postgres@127.0.0.1:5432/postgres`.
    pub admin_url: String,
}

impl Postgres {
    pub fn new(admin_url: &str) -> Postgres {
        Postgres {
            admin_url: admin_url.to_string(),
        }
    }

    /// The URL of another database on the same server.
    pub fn url_of(&self, database: &str) -> String {
        let (base, query) = match self.admin_url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (self.admin_url.as_str(), None),
        };
        let authority_end = base
            .find("://")
            .map(|scheme| {
                base[scheme + 3..]
                    .find('/')
                    .map_or(base.len(), |slash| scheme + 3 + slash)
            })
            .unwrap_or(base.len());
        let mut url = format!("{}/{database}", &base[..authority_end]);
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    fn connect(&self) -> Result<PgConnection, String> {
        PgConnection::establish(&self.admin_url)
            .map_err(|error| format!("PostgreSQL ({}): {error}", self.admin_url))
    }

    /// `PostgreSQL 15.2 (…)`.
    pub fn version(&self) -> Result<String, String> {
        let mut conn = self.connect()?;
        diesel::select(diesel::dsl::sql::<Text>("version()"))
            .get_result::<String>(&mut conn)
            .map_err(|error| format!("SELECT version(): {error}"))
    }

    pub fn exists(&self, name: &str) -> Result<bool, String> {
        let mut conn = self.connect()?;
        let count = diesel::select(
            diesel::dsl::sql::<BigInt>("(SELECT count(*) FROM pg_database WHERE datname = ")
                .bind::<Text, _>(name)
                .sql(")"),
        )
        .get_result::<i64>(&mut conn)
        .map_err(|error| format!("looking for database {name}: {error}"))?;
        Ok(count > 0)
    }

    /// Creates `name`, empty or as a copy of `template` (file by file: a template of
    /// gigabytes copies in seconds rather than through the WAL). Retries while the template
    /// is in use by another session (another run cloning it), up to a minute.
    pub fn create_database(&self, name: &str, template: Option<&str>) -> Result<(), String> {
        check_identifier(name)?;
        let mut conn = self.connect()?;
        let statement = match template {
            Some(template) => {
                check_identifier(template)?;
                let version = diesel::select(diesel::dsl::sql::<Text>(
                    "current_setting('server_version_num')",
                ))
                .get_result::<String>(&mut conn)
                .map_err(|error| error.to_string())?;
                let file_copy = version.parse::<u32>().is_ok_and(|number| number >= 150_000);
                format!(
                    "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"{}",
                    if file_copy { " STRATEGY FILE_COPY" } else { "" }
                )
            }
            None => format!("CREATE DATABASE \"{name}\""),
        };
        let started = Instant::now();
        loop {
            match conn.batch_execute(&statement) {
                Ok(()) => return Ok(()),
                Err(error)
                    if error
                        .to_string()
                        .contains("is being accessed by other users")
                        && started.elapsed() < Duration::from_secs(60) =>
                {
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(error) => return Err(format!("{statement}: {error}")),
            }
        }
    }

    pub fn drop_database(&self, name: &str) -> Result<(), String> {
        check_identifier(name)?;
        let mut conn = self.connect()?;
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .map_err(|error| format!("dropping database {name}: {error}"))
    }

    fn rename_database(&self, from: &str, to: &str) -> Result<(), String> {
        check_identifier(from)?;
        check_identifier(to)?;
        let mut conn = self.connect()?;
        conn.batch_execute(&format!("ALTER DATABASE \"{from}\" RENAME TO \"{to}\""))
            .map_err(|error| format!("renaming database {from} to {to}: {error}"))
    }
}

/// Names this harness makes: lowercase letters, digits and `_`, at most 63 bytes.
fn check_identifier(name: &str) -> Result<(), String> {
    let fits = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if fits {
        Ok(())
    } else {
        Err(format!("not a bench database name: {name:?}"))
    }
}

/// A database of this run: dropped when it goes out of scope.
pub struct RunDatabase {
    pub postgres: Postgres,
    pub name: String,
    pub url: String,
}

impl RunDatabase {
    /// A copy of `template` named `name`.
    pub fn clone_of(postgres: &Postgres, template: &str, name: &str) -> Result<Self, String> {
        let item = Pending::Database {
            admin_url: postgres.admin_url.clone(),
            name: name.to_string(),
        };
        pending().push(item.clone());
        if let Err(error) = postgres.create_database(name, Some(template)) {
            pending().retain(|pending| *pending != item);
            return Err(error);
        }
        Ok(RunDatabase {
            postgres: postgres.clone(),
            name: name.to_string(),
            url: postgres.url_of(name),
        })
    }
}

impl Drop for RunDatabase {
    fn drop(&mut self) {
        if let Err(error) = self.postgres.drop_database(&self.name) {
            eprintln!("warning: {error}");
        }
        let item = Pending::Database {
            admin_url: self.postgres.admin_url.clone(),
            name: self.name.clone(),
        };
        pending().retain(|pending| *pending != item);
    }
}

/// A SQLite file of this run: removed (with its WAL) when it goes out of scope.
pub struct RunFile {
    pub path: PathBuf,
    pub url: String,
}

impl RunFile {
    /// A copy of the template file at `path`.
    pub fn copy_of(template: &Path, path: &Path) -> Result<RunFile, String> {
        let item = Pending::File(path.to_path_buf());
        pending().push(item.clone());
        remove_sqlite(path);
        if let Err(error) = std::fs::copy(template, path) {
            remove_sqlite(path);
            pending().retain(|pending| *pending != item);
            return Err(format!(
                "copying {} to {}: {error}",
                template.display(),
                path.display()
            ));
        }
        Ok(RunFile {
            path: path.to_path_buf(),
            url: format!("sqlite://{}", path.display()),
        })
    }
}

impl Drop for RunFile {
    fn drop(&mut self) {
        remove_sqlite(&self.path);
        let item = Pending::File(self.path.clone());
        pending().retain(|pending| *pending != item);
    }
}

/// What seeding produced, kept beside the template (the password is not in the database).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seeded {
    pub org_id: i64,
    pub org_name: String,
    pub password: String,
    pub users: Vec<SeededUser>,
    pub inboxes: Vec<SeededInbox>,
    pub conversations: u64,
    /// How long seeding took when the template was made.
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeededUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
}

/// What a template is made of; equal keys, equal templates.
#[derive(Debug, Clone)]
pub struct TemplateKey {
    pub conversations: u64,
    pub seed: u64,
    /// Hash of the migration files (names and contents), both backends.
    pub migrations: String,
}

impl TemplateKey {
    pub fn new(conversations: u64, seed: u64) -> TemplateKey {
        TemplateKey {
            conversations,
            seed,
            migrations: migrations_hash(),
        }
    }

    fn stem(&self) -> String {
        format!("{}_s{}_{}", self.conversations, self.seed, self.migrations)
    }

    pub fn postgres_name(&self) -> String {
        format!("switchboard_bench_tpl_{}", self.stem())
    }

    pub fn sqlite_file(&self, dir: &Path) -> PathBuf {
        dir.join(format!("sqlite_{}.db", self.stem()))
    }
}

/// The first 10 hex digits of a SHA-256 over every migration's path and content.
fn migrations_hash() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files = Vec::new();
    collect_files(&root, &mut files);
    files.sort();
    let mut hash = Sha256::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap_or(file);
        hash.update(relative.to_string_lossy().as_bytes());
        hash.update(std::fs::read(file).unwrap_or_default());
    }
    if files.is_empty() {
        // Not run from this checkout: fall back on the version (use --fresh after a change).
        hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    }
    hex::encode(hash.finalize())[..10].to_string()
}

fn collect_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, into);
        } else {
            into.push(path);
        }
    }
}

/// Whether the report's password still signs its first user in to the template at `url`.
fn password_opens(url: &str, seeded: &Seeded) -> bool {
    let Some(user) = seeded.users.first() else {
        return false;
    };
    let Ok(store) = Store::open(url, 1) else {
        return false;
    };
    let found =
        store.read(|conn| persistence::repo::users::find_for_login(conn, &user.email, None));
    // No connection may stay open to a template that is copied.
    drop(store);
    found.is_ok_and(|accounts| {
        accounts
            .iter()
            .any(|(_, hash, _)| api::auth::verify_password(&seeded.password, hash))
    })
}

fn read_seeded(path: &Path) -> Option<Seeded> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_seeded(path: &Path, seeded: &Seeded) -> Result<(), String> {
    let text = serde_json::to_string_pretty(seeded).map_err(|error| error.to_string())?;
    std::fs::write(path, text).map_err(|error| format!("{}: {error}", path.display()))
}

/// Migrates an empty database and fills it with the demo organization.
fn seed(url: &str, key: &TemplateKey, phase: &Phase) -> Result<Seeded, String> {
    let store = Store::open(url, 2).map_err(|error| format!("opening {url}: {error}"))?;
    store
        .migrate()
        .map_err(|error| format!("migrating: {error}"))?;
    let options = SeedOptions {
        org: "Bench Co".into(),
        conversations: key.conversations,
        seed: key.seed,
    };
    phase.set_length(key.conversations);
    let report = seed_demo(&store, &options, &|Progress { done, .. }| {
        phase.set_position(done)
    })
    .map_err(|error| format!("seeding: {error}"))?;
    Ok(Seeded {
        org_id: report.org_id.get(),
        org_name: report.org_name.clone(),
        password: report.password.clone(),
        users: report
            .users
            .iter()
            .map(|user| SeededUser {
                id: user.id.get(),
                email: user.email.clone(),
                name: user.name.clone(),
                role: user.role.as_str().to_string(),
            })
            .collect(),
        inboxes: report
            .inboxes
            .iter()
            .map(|inbox| SeededInbox {
                id: inbox.id.get(),
                name: inbox.name.clone(),
                open: inbox.conversations.open,
                members: inbox.members.iter().map(|member| member.get()).collect(),
            })
            .collect(),
        conversations: report.rows.conversations,
        seconds: report.elapsed.as_secs_f64(),
    })
}

/// The seeded PostgreSQL template for `key`, made if missing (or if `fresh`).
pub fn postgres_template(
    postgres: &Postgres,
    key: &TemplateKey,
    dir: &Path,
    fresh: bool,
    phase: &Phase,
) -> Result<(String, Seeded), String> {
    let name = key.postgres_name();
    let sidecar = dir.join(format!("{name}.json"));
    if fresh {
        postgres.drop_database(&name)?;
        let _ = std::fs::remove_file(&sidecar);
    }
    if postgres.exists(&name)? {
        if let Some(seeded) = read_seeded(&sidecar)
            && password_opens(&postgres.url_of(&name), &seeded)
        {
            phase.note("template kept from an earlier run");
            return Ok((name, seeded));
        }
        // A template whose report is lost, or made again by another checkout on this
        // PostgreSQL (its password is not the one on file): make it again.
        postgres.drop_database(&name)?;
    }
    let building = format!("{name}_b{}", std::process::id());
    let item = Pending::Database {
        admin_url: postgres.admin_url.clone(),
        name: building.clone(),
    };
    pending().push(item.clone());
    let result = (|| {
        postgres.drop_database(&building)?;
        postgres.create_database(&building, None)?;
        let url = postgres.url_of(&building);
        let seeded = seed(&url, key, phase)?;
        phase.note("VACUUM ANALYZE (as autovacuum would after a bulk load)");
        let mut conn = PgConnection::establish(&url).map_err(|error| format!("{url}: {error}"))?;
        conn.batch_execute("VACUUM ANALYZE")
            .map_err(|error| format!("VACUUM ANALYZE: {error}"))?;
        drop(conn);
        write_seeded(&sidecar, &seeded)?;
        postgres.rename_database(&building, &name)?;
        Ok(seeded)
    })();
    match result {
        Ok(seeded) => {
            pending().retain(|pending| *pending != item);
            Ok((name, seeded))
        }
        Err(error) => {
            let _ = postgres.drop_database(&building);
            pending().retain(|pending| *pending != item);
            Err(error)
        }
    }
}

/// The seeded SQLite template file for `key`, made if missing (or if `fresh`).
pub fn sqlite_template(
    key: &TemplateKey,
    dir: &Path,
    fresh: bool,
    phase: &Phase,
) -> Result<(PathBuf, Seeded), String> {
    let path = key.sqlite_file(dir);
    let sidecar = path.with_extension("json");
    if fresh {
        remove_sqlite(&path);
        let _ = std::fs::remove_file(&sidecar);
    }
    if path.exists()
        && let Some(seeded) = read_seeded(&sidecar)
    {
        phase.note("template kept from an earlier run");
        return Ok((path, seeded));
    }
    let building = path.with_extension(format!("building{}", std::process::id()));
    pending().push(Pending::File(building.clone()));
    let result = (|| {
        remove_sqlite(&building);
        let url = format!("sqlite://{}", building.display());
        let seeded = seed(&url, key, phase)?;
        // Everything into the main file, so that copying it copies the database.
        let store = Store::open(&url, 1).map_err(|error| error.to_string())?;
        store
            .read(|conn| {
                conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    .map_err(Into::into)
            })
            .map_err(|error| format!("checkpointing {}: {error}", building.display()))?;
        drop(store);
        write_seeded(&sidecar, &seeded)?;
        std::fs::rename(&building, &path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(seeded)
    })();
    remove_sqlite(&building);
    let item = Pending::File(building);
    pending().retain(|pending| *pending != item);
    result.map(|seeded| (path, seeded))
}

/// `SELECT sqlite_version()` of the SQLite the server is built with (the same bundled one).
pub fn sqlite_version(url: &str) -> Result<String, String> {
    let store = Store::open(url, 1).map_err(|error| error.to_string())?;
    store
        .read(|conn| match conn {
            persistence::DbConnection::Sqlite(lite) => {
                diesel::select(diesel::dsl::sql::<Text>("sqlite_version()"))
                    .get_result::<String>(lite)
                    .map_err(Into::into)
            }
            persistence::DbConnection::Postgresql(_) => Ok("not SQLite".to_string()),
        })
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_other_databases_keep_the_server_and_the_options() {
        let pg = Postgres::new("postgres://postgres@127.0.0.1:5432/postgres");
        assert_eq!(pg.url_of("x"), "postgres://postgres@127.0.0.1:5432/x");
        let pg = Postgres::new("postgres://u:p@127.0.0.1/postgres?sslmode=disable");
        assert_eq!(pg.url_of("y"), "postgres://u:p@127.0.0.1/y?sslmode=disable");
        let pg = Postgres::new("postgres://127.0.0.1:5432");
        assert_eq!(pg.url_of("z"), "postgres://127.0.0.1:5432/z");
    }

    #[test]
    fn only_plain_names_are_used_in_statements() {
        assert!(check_identifier("switchboard_bench_1").is_ok());
        assert!(check_identifier("a\"; DROP").is_err());
        assert!(check_identifier(&"a".repeat(64)).is_err());
    }
}
