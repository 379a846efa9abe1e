//! Configuration: flags of `switchboard serve`, each also a `SWITCHBOARD_*` variable.

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// `sqlite://FILE` (embedded default) or `postgres://…`.
    #[arg(
        long,
        env = "SWITCHBOARD_DATABASE_URL",
        default_value = "sqlite://switchboard.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Redis for the event bus across instances; unset: the in-process bus.
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Signs access tokens. Required with PostgreSQL or Redis (instances must agree);
    /// otherwise generated once and kept in the database.
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// The address customers reach this server at, for links sent to them (surveys).
    /// Default: `http://` + the bind address.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// How long the event log keeps events for `resume` and `GET /v1/events`, in hours.
    #[arg(long, env = "SWITCHBOARD_EVENT_RETENTION_HOURS", default_value_t = 168)]
    pub event_retention_hours: u64,

    /// Frames a WebSocket may have queued before it counts as too slow and is closed.
    #[arg(long, env = "SWITCHBOARD_WS_QUEUE", default_value_t = 256)]
    pub ws_queue: usize,

    /// Largest upload (`POST /v1/attachments`) and inbound channel call, in bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_UPLOAD", default_value_t = 16 * 1024 * 1024)]
    pub max_upload: usize,

    /// How long a signed attachment link sent to a channel provider works, in seconds.
    #[arg(long, env = "SWITCHBOARD_ATTACHMENT_LINK_TTL", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    pub attachment_link_ttl: u64,

    /// Where attachments are stored when `storage_url` is unset.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// `s3://bucket/prefix`: attachments on S3-compatible object storage, which every
    /// instance shares; unset: files under the data directory (one instance only).
    #[arg(long, env = "SWITCHBOARD_STORAGE_URL")]
    pub storage_url: Option<String>,

    /// The object storage's endpoint (MinIO, Ceph, R2, …); unset: AWS.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub storage_endpoint: Option<String>,

    /// The object storage's region.
    #[arg(long, env = "AWS_REGION")]
    pub storage_region: Option<String>,

    /// The object storage's access key id (or the usual AWS credential chain when unset).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub storage_key_id: Option<String>,

    /// The object storage's secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub storage_secret: Option<String>,

    /// First start with an empty database: the organization to create.
    #[arg(long, env = "SWITCHBOARD_BOOTSTRAP_ORG", default_value = "Switchboard")]
    pub bootstrap_org: String,

    /// First start: the admin's e-mail.
    #[arg(
        long,
        env = "SWITCHBOARD_BOOTSTRAP_EMAIL",
        default_value = "admin@switchboard.local"
    )]
    pub bootstrap_email: String,

    /// First start: the admin's password; unset, one is generated and printed once.
    #[arg(long, env = "SWITCHBOARD_BOOTSTRAP_PASSWORD", hide_env_values = true)]
    pub bootstrap_password: Option<String>,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "SWITCHBOARD_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: i64,

    /// Lifetime of refresh tokens, in days.
    #[arg(long, env = "SWITCHBOARD_REFRESH_TOKEN_DAYS", default_value_t = 30)]
    pub refresh_token_days: i64,

    /// Seconds during which a refresh token just spent still trades (two tabs refreshing at
    /// once both stay signed in); a reuse after that revokes the session. 0 turns it off.
    #[arg(long, env = "SWITCHBOARD_REFRESH_REUSE_GRACE_SECS", default_value_t = domain::policy::REFRESH_REUSE_GRACE_SECONDS, value_parser = clap::value_parser!(i64).range(0..=60))]
    pub refresh_reuse_grace_secs: i64,

    /// Failed sign-ins of one account from one client address before that pair is held
    /// (5 s, doubling with each further failure, at most the window); the account from
    /// elsewhere is not held.
    #[arg(
        long,
        env = "SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT",
        default_value_t = 5
    )]
    pub login_failures_per_account: u32,

    /// Failed sign-ins from one client address, any account, within the window; then the
    /// address waits for the window's end. Only failures count.
    #[arg(
        long,
        env = "SWITCHBOARD_LOGIN_FAILURES_PER_ADDRESS",
        default_value_t = 20
    )]
    pub login_failures_per_address: u32,

    /// The sign-in rate-limit window, in seconds.
    #[arg(long, env = "SWITCHBOARD_LOGIN_WINDOW", default_value_t = 900)]
    pub login_window: u64,

    /// Seconds an instance keeps a checked sign-in before reading the user again. A sign-out,
    /// new password, deactivation or role change is heard over the bus and applies at once
    /// on every instance; this bounds how long a lost bus message could delay it. 0: read
    /// the user on every request.
    #[arg(long, env = "SWITCHBOARD_SIGN_IN_CACHE_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub sign_in_cache_secs: u64,

    /// Read the client address from `X-Forwarded-For` (only behind a proxy you run).
    #[arg(long, env = "SWITCHBOARD_TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,

    /// Largest JSON request body, in bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_BODY", default_value_t = 1024 * 1024)]
    pub max_body: usize,

    /// Database connections in the pool.
    #[arg(long, env = "SWITCHBOARD_DB_POOL", default_value_t = 16)]
    pub db_pool: u32,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "SWITCHBOARD_WORKERS")]
    pub workers: Option<usize>,

    /// Seconds in-flight requests get to finish on SIGTERM/SIGINT.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout: u64,

    /// Checks every response against the OpenAPI document and records what it does not
    /// list (the test suite turns this on; see `contract`).
    #[arg(skip)]
    pub check_contract: bool,

    /// Log format: `text` or `json`.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", default_value = "text")]
    pub log_format: String,

    /// Address ranges outbound webhooks may reach besides the public internet, e.g.
    /// `10.1.0.0/16,127.0.0.1`; loopback, private, link-local and metadata addresses are
    /// refused otherwise (when a channel is saved, and again on every send).
    #[arg(long, env = "SWITCHBOARD_OUTBOUND_ALLOW", default_value = "")]
    pub outbound_allow: domain::outbound::OutboundPolicy,

    /// When set, `GET /metrics` answers only requests bearing it (`Authorization: Bearer …`).
    #[arg(long, env = "SWITCHBOARD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Attempts at delivering an outbound message before it is marked failed.
    #[arg(long, env = "SWITCHBOARD_DELIVERY_MAX_ATTEMPTS", default_value_t = 8)]
    pub delivery_max_attempts: u32,

    /// Wait before the first retry of a delivery, in milliseconds; it doubles with each
    /// further attempt, up to five minutes.
    #[arg(
        long,
        env = "SWITCHBOARD_DELIVERY_BASE_DELAY_MS",
        default_value_t = 1000
    )]
    pub delivery_base_delay_ms: u64,

    /// How long one delivery attempt may take (connecting, sending, the provider's answer),
    /// in milliseconds; longer counts as a failed attempt ("timed out").
    #[arg(long, env = "SWITCHBOARD_DELIVERY_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=50_000))]
    pub delivery_timeout_ms: u64,

    /// Seals provider credentials (Twilio tokens, Meta app secrets) in the database: 32
    /// bytes as base64 or 64 hex digits. Unset: derived from the JWT secret. Changing it
    /// leaves the sealed credentials unreadable: the channels must be connected again.
    #[arg(long, env = "SWITCHBOARD_CREDENTIALS_KEY", hide_env_values = true)]
    pub credentials_key: Option<String>,

    /// Twilio's REST API (a local stand-in in tests).
    #[arg(
        long,
        env = "SWITCHBOARD_TWILIO_API_URL",
        default_value = "https://api.twilio.com"
    )]
    pub twilio_api_url: String,

    /// Meta's Graph API, unversioned (a local stand-in in tests).
    #[arg(
        long,
        env = "SWITCHBOARD_META_GRAPH_URL",
        default_value = "https://graph.facebook.com"
    )]
    pub meta_graph_url: String,

    /// How long a web chat visitor's token works, in seconds; the widget starts a new
    /// session after that.
    #[arg(long, env = "SWITCHBOARD_VISITOR_TOKEN_TTL", default_value_t = 12 * 3600, value_parser = clap::value_parser!(u64).range(60..=30 * 24 * 3600))]
    pub visitor_token_ttl: u64,

    /// Web chat requests one visitor token may make per minute (messages, uploads,
    /// reads); the same again per client address for starting sessions.
    #[arg(long, env = "SWITCHBOARD_VISITOR_RATE", default_value_t = 60)]
    pub visitor_rate: u32,
}

impl Config {
    /// The configuration a test or embedder starts from: every default, on the given database.
    pub fn for_database(database_url: &str) -> Config {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        // No arguments: the declared defaults, and any SWITCHBOARD_* variables set.
        let mut config = Defaults::parse_from(["switchboard"]).config;
        config.database_url = database_url.to_string();
        config
    }

    /// The base of links sent to customers.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.bind),
        }
    }

    /// Several instances must share the signing key, so a shared deployment needs one given.
    pub fn requires_jwt_secret(&self) -> bool {
        self.redis_url.is_some() || !self.database_url.starts_with("sqlite:")
    }
}
