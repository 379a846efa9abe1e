//! A setup under test, ready: its database copied from the seeded template, its
//! `switchboard serve` instances started on it (one on SQLite with the in-process bus, two
//! on PostgreSQL with Redis), the seeded users signed in, and a channel of the bench's own in
//! the seeded "Support" inbox. Dropping it stops the instances, then removes the database.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{Api, Channel};
use crate::databases::{self, Postgres, RunDatabase, RunFile, Seeded, TemplateKey};
use crate::harness::Run;
use crate::process::{self, Child, Spec};
use crate::target::{Account, Backend, SeededInbox, Target};

/// Where the servers and databases are, and what to seed.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `switchboard` binary.
    pub server: PathBuf,
    /// The maintenance database, `postgres://postgres@127.0.0.1:5432/postgres`.
    pub postgres_url: String,
    pub redis_url: String,
    /// Results and logs: `target/bench` (`target/bench/smoke`).
    pub out: PathBuf,
    /// Seeded templates, kept between runs: `target/bench/templates`.
    pub templates: PathBuf,
    /// Conversations to seed; `None`: 1,000,000 on PostgreSQL, 200,000 on SQLite.
    pub conversations: Option<u64>,
    pub seed: u64,
    /// Seed the templates again.
    pub fresh: bool,
}

impl Options {
    pub fn conversations(&self, backend: Backend) -> u64 {
        self.conversations.unwrap_or(match backend {
            Backend::Postgres => 1_000_000,
            Backend::Sqlite => 200_000,
        })
    }
}

enum Database {
    Postgres(RunDatabase),
    Sqlite(RunFile),
}

impl Database {
    fn describe(&self) -> String {
        match self {
            Database::Postgres(database) => format!("database {}", database.name),
            Database::Sqlite(file) => format!("file {}", file.path.display()),
        }
    }
}

/// A running setup.
pub struct Lab {
    pub target: Target,
    /// Declared before the database: the instances stop before it is removed.
    pub instances: Vec<Child>,
    pub seeded: Seeded,
    pub api: Api,
    /// The seeded admin's token.
    pub admin: String,
    /// The seeded "Support" inbox, and the bench's own SMS channel in it.
    pub support: SeededInbox,
    pub channel: Channel,
    pub redis_url: Option<String>,
    /// `PostgreSQL 15.2 …`, `SQLite 3.46.0`.
    pub version: String,
    _database: Database,
    _data: DataDirs,
}

/// The instances' data directories, removed after they stop.
struct DataDirs(Vec<PathBuf>);

impl Drop for DataDirs {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Lab {
    pub fn backend(&self) -> Backend {
        self.target.backend
    }

    /// The instance a client `n` talks to: clients are spread over the instances.
    pub fn url(&self, n: usize) -> &str {
        &self.target.urls[n % self.target.urls.len()]
    }

    /// The instance receivers use in the cross-instance figures: the second one if there is.
    pub fn other_url(&self) -> &str {
        self.url(1)
    }

    /// Signed-in seeded agents of the Support inbox.
    pub fn support_agents(&self) -> Vec<&Account> {
        self.target
            .accounts
            .iter()
            .filter(|account| account.role == "agent" && self.support.members.contains(&account.id))
            .collect()
    }

    /// Alive check of every instance, for the figures' error messages.
    pub fn check_alive(&mut self) -> Result<(), String> {
        for instance in &mut self.instances {
            if !instance.alive() {
                return Err(format!(
                    "{} has exited; its log ({}) ends:\n{}",
                    instance.name,
                    instance.log.display(),
                    process::tail(&instance.log, 15)
                ));
            }
        }
        Ok(())
    }
}

/// Prepares the database and starts the instances of `backend`.
pub async fn start(run: &Run, backend: Backend, options: &Options) -> Result<Lab, String> {
    let b = backend.as_str();
    std::fs::create_dir_all(&options.templates)
        .map_err(|error| format!("{}: {error}", options.templates.display()))?;
    let work = options.out.join("work");
    std::fs::create_dir_all(&work).map_err(|error| format!("{}: {error}", work.display()))?;
    let key = TemplateKey::new(options.conversations(backend), options.seed);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());

    let phase = run.phase(format!(
        "{b} · template ({} conversations)",
        key.conversations
    ));
    let (template, seeded, phase) = {
        let (options, key) = (options.clone(), key.clone());
        tokio::task::spawn_blocking(move || {
            let made = match backend {
                Backend::Postgres => databases::postgres_template(
                    &Postgres::new(&options.postgres_url),
                    &key,
                    &options.templates,
                    options.fresh,
                    &phase,
                ),
                Backend::Sqlite => {
                    databases::sqlite_template(&key, &options.templates, options.fresh, &phase)
                        .map(|(path, seeded)| (path.display().to_string(), seeded))
                }
            };
            made.map(|(template, seeded)| (template, seeded, phase))
        })
        .await
        .map_err(|error| format!("seeding task: {error}"))??
    };
    phase.finish();

    let phase = run.phase(format!("{b} · copy the template"));
    let (database, url, version) = {
        let options = options.clone();
        tokio::task::spawn_blocking(move || -> Result<(Database, String, String), String> {
            match backend {
                Backend::Postgres => {
                    let postgres = Postgres::new(&options.postgres_url);
                    let name = format!("switchboard_bench_{}_{stamp}", std::process::id());
                    let copy = RunDatabase::clone_of(&postgres, &template, &name)?;
                    let version = postgres.version()?;
                    let url = copy.url.clone();
                    Ok((Database::Postgres(copy), url, version))
                }
                Backend::Sqlite => {
                    let path = options.out.join("work").join("sqlite.db");
                    let copy = RunFile::copy_of(std::path::Path::new(&template), &path)?;
                    let version = format!("SQLite {}", databases::sqlite_version(&copy.url)?);
                    let url = copy.url.clone();
                    Ok((Database::Sqlite(copy), url, version))
                }
            }
        })
        .await
        .map_err(|error| format!("copying task: {error}"))??
    };
    phase.note(&database.describe());
    phase.finish();

    let count = match backend {
        Backend::Postgres => 2,
        Backend::Sqlite => 1,
    };
    let phase = run.phase(format!("{b} · start {count} instance(s)"));
    let secret = api::auth::random_token(48);
    let redis_url = (backend == Backend::Postgres).then(|| options.redis_url.clone());
    let mut instances = Vec::new();
    let mut data_dirs = DataDirs(Vec::new());
    for n in 1..=count {
        let port = process::free_port()?;
        let data = work.join(format!("{b}-data-{n}"));
        std::fs::create_dir_all(&data).map_err(|error| format!("{}: {error}", data.display()))?;
        data_dirs.0.push(data.clone());
        let mut env = vec![
            ("SWITCHBOARD_BIND".to_string(), format!("127.0.0.1:{port}")),
            ("SWITCHBOARD_DATABASE_URL".into(), url.clone()),
            ("SWITCHBOARD_JWT_SECRET".into(), secret.clone()),
            ("SWITCHBOARD_DATA_DIR".into(), data.display().to_string()),
            // A run outlives the default 15 minutes of an access token.
            ("SWITCHBOARD_ACCESS_TOKEN_TTL".into(), "43200".into()),
            ("SWITCHBOARD_SHUTDOWN_TIMEOUT".into(), "3".into()),
        ];
        if let Some(redis) = &redis_url {
            env.push(("SWITCHBOARD_REDIS_URL".into(), redis.clone()));
        }
        let name = format!("switchboard-{b}-{n}");
        instances.push(Child::spawn(Spec {
            name: &name,
            program: &options.server,
            args: vec!["serve".into()],
            env,
            log: run.logs.join(format!("{name}.log")),
            url: format!("http://127.0.0.1:{port}"),
        })?);
    }
    for instance in &mut instances {
        let took = instance
            .wait_ready("/readyz", Duration::from_secs(180))
            .await?;
        phase.note(&format!(
            "{} ready in {:.1} s ({})",
            instance.name,
            took.as_secs_f64(),
            instance.url
        ));
    }
    phase.finish();

    let phase = run.phase(format!("{b} · sign in {} seeded users", seeded.users.len()));
    let api = Api::new()?;
    let base = instances[0].url.clone();
    let started = Instant::now();
    let mut accounts = Vec::new();
    for user in &seeded.users {
        let (token, id) = api.login(&base, &user.email, &seeded.password).await?;
        accounts.push(Account {
            id,
            email: user.email.clone(),
            role: user.role.clone(),
            access_token: token,
        });
    }
    phase.note(&format!(
        "{} logins in {:.1} s",
        accounts.len(),
        started.elapsed().as_secs_f64()
    ));
    let admin = accounts
        .iter()
        .find(|account| account.role == "admin")
        .map(|account| account.access_token.clone())
        .ok_or("the seeded organization has no admin")?;
    let support = seeded
        .inboxes
        .iter()
        .find(|inbox| inbox.name == "Support")
        .or_else(|| seeded.inboxes.first())
        .cloned()
        .ok_or("the seeded organization has no inbox")?;
    let created = api
        .post(
            &format!("{base}/v1/inboxes/{}/channels", support.id),
            Some(&admin),
            json!({"type": "sms", "address": "+14155559001", "name": "Bench line"}),
        )
        .await?;
    let channel = Channel {
        id: created["id"].as_i64().ok_or("the channel's id")?,
        secret: created["inbound_secret"]
            .as_str()
            .ok_or("the channel's inbound_secret")?
            .to_string(),
    };
    phase.finish();

    let target = Target {
        backend,
        urls: instances
            .iter()
            .map(|instance| instance.url.clone())
            .collect(),
        database_url: url,
        jwt_secret: secret,
        org_id: seeded.org_id,
        accounts,
        inboxes: seeded.inboxes.clone(),
        conversations: seeded.conversations,
        pids: instances.iter().map(|instance| instance.pid).collect(),
    };
    Ok(Lab {
        target,
        instances,
        seeded,
        api,
        admin,
        support,
        channel,
        redis_url,
        version,
        _database: database,
        _data: data_dirs,
    })
}
