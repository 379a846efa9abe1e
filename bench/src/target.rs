//! A running setup under test: one or more `switchboard serve` instances on one database,
//! seeded by `switchboard seed-demo`'s loader.

use std::fmt;

/// Which database and bus the instances run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite and the in-process bus, one instance (the embedded default).
    Sqlite,
    /// PostgreSQL and Redis, two instances.
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How big a run is: `make bench` runs the full sizes, the CI smoke run tiny ones.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Conversations seeded (messages follow, about ten per conversation).
    pub conversations: u64,
    /// The deep page of the list figures (page 400 in the full run).
    pub deep_page: usize,
    /// Requests per measured series.
    pub samples: usize,
    /// Runs per figure; the median of their results is reported.
    pub runs: usize,
}

/// A seeded user the bench signs in as.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub email: String,
    /// `admin`, `manager` or `agent`.
    pub role: String,
    pub access_token: String,
}

/// A seeded inbox and its open conversations (also kept beside each template).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SeededInbox {
    pub id: i64,
    pub name: String,
    pub open: u64,
    pub members: Vec<i64>,
}

/// Everything a figure needs to reach the setup.
#[derive(Debug, Clone)]
pub struct Target {
    pub backend: Backend,
    /// Base URLs of the instances (`http://127.0.0.1:PORT`), the first one first.
    pub urls: Vec<String>,
    /// The instances' database, for baselines that run the same SQL in the bench process.
    pub database_url: String,
    pub jwt_secret: String,
    pub org_id: i64,
    /// The seeded users, signed in.
    pub accounts: Vec<Account>,
    pub inboxes: Vec<SeededInbox>,
    pub conversations: u64,
    /// Server process ids, for memory and CPU readings from /proc.
    pub pids: Vec<u32>,
}

impl Target {
    pub fn url(&self) -> &str {
        &self.urls[0]
    }

    /// The first seeded account with `role`.
    pub fn account(&self, role: &str) -> Option<&Account> {
        self.accounts.iter().find(|account| account.role == role)
    }
}
