//! The test harness: each test gets a real server on 127.0.0.1:0 over a fresh database of
//! its own (a temporary SQLite file, or a new PostgreSQL database dropped afterwards), and
//! talks to it with a real HTTP client, as the web and mobile apps do.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use api::{Config, Running, spawn};
use futures_util::FutureExt;
use persistence::diesel::{Connection, RunQueryDsl, pg::PgConnection, sql_query};
use rand::RngCore;
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the PostgreSQL tests create their databases.
fn postgres_admin_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// A database of the test's own, removed when it is dropped.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    /// `None` when PostgreSQL cannot be reached outside CI (the test is skipped). On
    /// PostgreSQL the database is a copy of a migrated template.
    pub fn create(backend: Backend, test_name: &str) -> Option<TestDb> {
        TestDb::make(backend, test_name, true)
    }

    /// A database without any schema (for the migration tests).
    pub fn create_empty(backend: Backend, test_name: &str) -> Option<TestDb> {
        TestDb::make(backend, test_name, false)
    }

    fn make(backend: Backend, test_name: &str, migrated: bool) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("switchboard.db").display());
                Some(TestDb::Sqlite { _dir: dir, url })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let mut admin = match PgConnection::establish(&admin_url) {
                    Ok(conn) => conn,
                    Err(error) => {
                        if in_ci() {
                            panic!("CI=true but PostgreSQL is unreachable at {admin_url}: {error}");
                        }
                        skip(test_name, &error.to_string());
                        return None;
                    }
                };
                let name = format!("switchboard_test_{}", random_suffix());
                // A copy of the migrated template is much faster than migrating anew.
                let cloned = migrated
                    && migrated_template(&admin_url).is_some_and(|template| {
                        sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
                            .execute(&mut admin)
                            .is_ok()
                    });
                if !cloned {
                    sql_query(format!("CREATE DATABASE {name}"))
                        .execute(&mut admin)
                        .expect("create test database");
                }
                let url = database_url(&admin_url, &name);
                Some(TestDb::Postgres {
                    admin_url,
                    name,
                    url,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres {
            admin_url, name, ..
        } = self
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

fn random_suffix() -> String {
    let mut suffix = [0u8; 6];
    rand::rng().fill_bytes(&mut suffix);
    suffix.iter().map(|b| format!("{b:02x}")).collect()
}

/// The URL of database `name` on the server of `admin_url`.
fn database_url(admin_url: &str, name: &str) -> String {
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    format!("{base}/{name}")
}

const TEMPLATE_PREFIX: &str = "switchboard_template_";

/// This test process's migrated template database, made once (`None`: clone nothing,
/// migrate each database instead). Named after the process, so concurrent runs never share
/// one; templates of processes that are gone are dropped first, so nothing depends on what
/// an earlier run left.
fn migrated_template(admin_url: &str) -> Option<String> {
    static TEMPLATE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| match make_template(admin_url) {
            Ok(name) => Some(name),
            Err(error) => {
                eprintln!("no migrated template database ({error}); migrating each test database");
                None
            }
        })
        .clone()
}

fn make_template(admin_url: &str) -> Result<String, String> {
    use persistence::diesel::dsl::sql;
    use persistence::diesel::sql_types::Text;
    let mut admin = PgConnection::establish(admin_url).map_err(|error| error.to_string())?;
    let existing: Vec<String> = sql::<Text>(&format!(
        "SELECT datname FROM pg_database WHERE datname LIKE '{TEMPLATE_PREFIX}%'"
    ))
    .load(&mut admin)
    .map_err(|error| error.to_string())?;
    for stale in existing {
        let pid = stale
            .trim_start_matches(TEMPLATE_PREFIX)
            .split('_')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = sql_query(format!("DROP DATABASE IF EXISTS {stale} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
    let name = format!(
        "{TEMPLATE_PREFIX}{}_{}",
        std::process::id(),
        random_suffix()
    );
    sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .map_err(|error| error.to_string())?;
    let store = persistence::Store::open(&database_url(admin_url, &name), 1)
        .map_err(|error| error.to_string())?;
    store.migrate().map_err(|error| error.to_string())?;
    // No connection may stay open to a database that is copied.
    drop(store);
    Ok(name)
}

/// Says that a PostgreSQL test was skipped, on stderr and in the Makefile's skip list.
fn skip(test_name: &str, reason: &str) {
    eprintln!("SKIPPED {test_name} on postgres: PostgreSQL unreachable ({reason})");
    record_skip(test_name);
}

/// Adds a line (a skipped test, and why) to the Makefile's skip list, when there is one.
pub fn record_skip(line: &str) {
    if let Ok(path) = std::env::var("SWITCHBOARD_TEST_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// The configuration tests start from: bootstrap admin known, small pools, one worker.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::for_database(db.url());
    config.bind = "127.0.0.1:0".into();
    config.redis_url = None;
    config.jwt_secret = Some("test secret that is long enough for HS256 signing".into());
    config.bootstrap_org = "Acme".into();
    config.bootstrap_email = ADMIN_EMAIL.into();
    config.bootstrap_password = Some(PASSWORD.into());
    config.db_pool = 4;
    config.workers = Some(1);
    config.shutdown_timeout = 1;
    config.login_failures_per_account = 5;
    config.login_failures_per_address = 20;
    config.check_contract = true;
    // The fake providers and receivers of the tests listen on this machine's loopback,
    // which outbound webhooks may not reach unless the operator allows it.
    config.outbound_allow = "127.0.0.0/8,::1".parse().expect("a loopback allow-list");
    config
}

/// A running server and a client for it. Cheap to clone.
#[derive(Clone)]
pub struct TestApp {
    inner: Arc<Inner>,
}

struct Inner {
    server: Running,
    client: reqwest::Client,
    backend: Backend,
    _db: TestDb,
}

/// Runs one test body against a fresh server on `backend`, always shutting it down.
pub async fn run<F, Fut>(
    backend: Backend,
    test_name: &str,
    configure: impl FnOnce(&mut Config),
    body: F,
) where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::create(backend, test_name) else {
        return;
    };
    let mut config = test_config(&db);
    configure(&mut config);
    let server = spawn(config).await.expect("server starts");
    let app = TestApp {
        inner: Arc::new(Inner {
            server,
            client: reqwest::Client::new(),
            backend,
            _db: db,
        }),
    };
    let outcome = AssertUnwindSafe(body(app.clone())).catch_unwind().await;
    app.inner.server.stop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    // Every response of the test was one its operation's OpenAPI entry lists.
    let violations = app.inner.server.state.contract_violations.take();
    assert!(
        violations.is_empty(),
        "responses the OpenAPI document does not list:\n{}",
        violations.join("\n")
    );
}

/// Like [`run`], with the server's files (attachments) in a temporary directory of the
/// test's own, removed afterwards; `configure` changes the rest.
pub async fn run_with_data_dir<F, Fut>(
    backend: Backend,
    test_name: &str,
    configure: impl FnOnce(&mut Config),
    body: F,
) where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary data directory");
    let data_dir = dir.path().to_path_buf();
    run(
        backend,
        test_name,
        move |config| {
            config.data_dir = data_dir;
            configure(config);
        },
        body,
    )
    .await;
    drop(dir);
}

/// Declares each listed `async fn(TestApp)` as two tests, `sqlite` and `postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends_with!(@each ($crate::support::no_changes) $($name),*);
    };
}

/// Like `on_both_backends!`, with the configuration changed by `$configure`, a
/// `fn(&mut Config)` beside the tests.
#[macro_export]
macro_rules! on_both_backends_with {
    ($configure:ident => $($name:ident),* $(,)?) => {
        $crate::on_both_backends_with!(@each (super::$configure) $($name),*);
    };
    (@each ($configure:path) $($name:ident),*) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                $crate::support::run($crate::support::Backend::Sqlite, concat!(module_path!(), "::sqlite"), $configure, super::$name).await;
            }

            #[actix_web::test]
            async fn postgres() {
                $crate::support::run($crate::support::Backend::Postgres, concat!(module_path!(), "::postgres"), $configure, super::$name).await;
            }
        }
    )*};
}

/// Like `on_both_backends!`, each test run by `$runner`, an `async fn(Backend, &str, body)`
/// beside the tests that prepares what they need (a data directory, a bucket) and calls
/// `body`.
#[macro_export]
macro_rules! on_both_backends_run_by {
    ($runner:ident => $($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$runner($crate::support::Backend::Sqlite, concat!(module_path!(), "::sqlite"), super::$name).await;
            }

            #[actix_web::test]
            async fn postgres() {
                super::$runner($crate::support::Backend::Postgres, concat!(module_path!(), "::postgres"), super::$name).await;
            }
        }
    )*};
}

/// The test configuration as it is.
pub fn no_changes(_config: &mut Config) {}

/// A response: status, headers and the JSON body (`Value::Null` when there is none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    /// Asserts a problem document with this status and code.
    #[track_caller]
    pub fn expect_problem(self, status: u16, code: &str) -> Reply {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status, "body: {}", self.body);
        assert!(
            self.body["title"].is_string() && self.body["type"].is_string(),
            "body: {}",
            self.body
        );
        self
    }

    pub fn id(&self) -> i64 {
        self.body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
    }
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub refresh_token: String,
    pub user_id: i64,
    pub org_id: i64,
}

impl TestApp {
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    pub fn url(&self, path: &str) -> String {
        self.inner.server.url(path)
    }

    pub fn running(&self) -> &Running {
        &self.inner.server
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.inner.client
    }

    /// Sends a request; `token` adds the bearer header, `body` a JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.inner.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        into_reply(request.send().await.expect("request reaches the server")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.send(reqwest::Method::PUT, path, Some(token), body)
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, Some(token), None)
            .await
    }

    /// Signs in; panics unless it succeeds.
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let reply = self
            .send(
                reqwest::Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await
            .expect(200);
        session_from(&reply.body)
    }

    /// The bootstrap admin of the first organization.
    pub async fn admin(&self) -> Session {
        self.login(ADMIN_EMAIL, PASSWORD).await
    }

    /// Creates a user with `role` through the API (as `admin`) and signs them in.
    pub async fn user(&self, admin: &Session, role: &str, name: &str) -> Session {
        let email = format!(
            "{}@{}.example.com",
            name.to_lowercase().replace(' ', "."),
            admin.org_id
        );
        self.post(
            "/v1/users",
            &admin.token,
            json!({"email": email, "name": name, "role": role, "password": PASSWORD}),
        )
        .await
        .expect(201);
        self.login(&email, PASSWORD).await
    }

    /// A second organization with its own admin (through `create-admin`'s code path).
    pub async fn other_org(&self, org: &str) -> Session {
        let store = self.inner.server.state.store.clone();
        let email = format!("admin@{}.example.com", org.to_lowercase().replace(' ', "-"));
        let (org_name, admin_email) = (org.to_string(), email.clone());
        actix_web::web::block(move || {
            api::bootstrap::create_admin(&store, &org_name, &admin_email, PASSWORD, "Other Admin")
        })
        .await
        .expect("blocking pool")
        .expect("second organization");
        self.login(&email, PASSWORD).await
    }

    /// A shared inbox created by `admin`, with `members` added.
    pub async fn inbox(
        &self,
        admin: &Session,
        name: &str,
        settings: Value,
        members: &[&Session],
    ) -> i64 {
        let mut body = json!({"name": name});
        if let (Some(target), Some(extra)) = (body.as_object_mut(), settings.as_object()) {
            target.extend(extra.clone());
        }
        let id = self
            .post("/v1/inboxes", &admin.token, body)
            .await
            .expect(201)
            .id();
        for member in members {
            self.put(
                &format!("/v1/inboxes/{id}/members/{}", member.user_id),
                &admin.token,
                None,
            )
            .await
            .expect(200);
        }
        id
    }
}

pub fn session_from(body: &Value) -> Session {
    Session {
        token: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string(),
        refresh_token: body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string(),
        user_id: body["user"]["id"].as_i64().expect("user.id"),
        org_id: body["user"]["org_id"].as_i64().expect("user.org_id"),
    }
}

pub async fn into_reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("response body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

impl TestApp {
    /// Another server on this test's database (a restart, or a second instance), with the
    /// test configuration changed by `configure`. The caller stops it.
    pub async fn spawn_another(&self, configure: impl FnOnce(&mut Config)) -> Running {
        let mut config = test_config(&self.inner._db);
        configure(&mut config);
        spawn(config).await.expect("another server starts")
    }
}
