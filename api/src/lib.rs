//! Switchboard's HTTP and WebSocket server. `main.rs` is the `switchboard` command; tests
//! start the same server in-process with [`spawn`].

pub mod asyncapi;
pub mod auth;
pub mod body;
pub mod bootstrap;
mod compress;
pub mod config;
pub mod contract;
pub mod db;
pub mod delivery;
pub mod error;
pub mod links;
pub mod live;
pub mod metrics;
pub mod outbound;
pub mod paging;
pub mod providers;
pub mod rate_limit;
pub mod routes;
pub mod seed;
pub mod service;
pub mod state;
pub mod storage;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use persistence::repo::settings;
use persistence::{Store, StoreError};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, HttpBuilder, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

pub use config::Config;
use delivery::OutboundWebhook;
use state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        version = "1",
        description = "The backend of a shared team inbox: SMS/MMS, WhatsApp, Facebook, Instagram and web chat conversations, worked by a team of agents. Errors are RFC 9457 problem documents whose `code` is stable. The WebSocket protocol (`/v1/ws`: every event type and its data, client frames, close codes) is described by the AsyncAPI document at [/asyncapi.json](/asyncapi.json)."
    ),
    modifiers(&BearerAuth, &OutboundWebhook),
    // Query parameter types, which the path macros name but do not collect.
    components(schemas(
        openapi::ListStatus,
        openapi::AssigneeFilter,
        openapi::ParticipantFilter,
        openapi::ConversationSort,
    )),
    tags(
        (name = "auth", description = "Sign-in and tokens"),
        (name = "me", description = "The signed-in user"),
        (name = "users", description = "The user directory"),
        (name = "teams", description = "Agent groups"),
        (name = "inboxes", description = "Inboxes, settings and members"),
        (name = "channels", description = "Numbers and accounts customers write to"),
        (name = "canned_responses", description = "Saved replies"),
        (name = "tags", description = "Conversation labels"),
        (name = "contacts", description = "The customer directory: search, favorites, opt-outs, history, merge, CSV import and export"),
        (name = "conversations", description = "The shared inbox: conversations, messages, assignment"),
        (name = "surveys", description = "Customer satisfaction surveys (public, token-keyed)"),
        (name = "chats", description = "Internal chats between colleagues: direct and team chats"),
        (name = "attachments", description = "Files sent with messages"),
        (name = "webchat", description = "The website chat widget's visitor API: sessions, messages, files and the visitor's WebSocket"),
        (name = "realtime", description = "WebSocket push and event replay"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // Channel calls are signed with the channel's inbound secret (see docs/webhooks.md).
        components.add_security_scheme(
            "channel_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Switchboard-Signature",
                "`sha256=` and the hex HMAC-SHA256 of the raw body under the channel's inbound secret",
            ))),
        );
        components.add_security_scheme(
            "twilio_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Twilio-Signature",
                "Twilio's request signature: base64 HMAC-SHA1 under the account's auth token over the URL and the sorted POST parameters",
            ))),
        );
        components.add_security_scheme(
            "meta_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Hub-Signature-256",
                "`sha256=` and the hex HMAC-SHA256 of the raw body under the Meta app secret",
            ))),
        );
        components.add_security_scheme(
            "visitor",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A web chat visitor's `visitor_token`, from `POST /v1/webchat/{widget_token}/sessions`"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, built from the same registrations that serve traffic, with each
/// operation's problem responses, summary and security spelled out
/// (`openapi::document::finish`). Built once per process: the docs page, the contract
/// check and the AsyncAPI document all read the same one.
pub fn openapi_json() -> &'static serde_json::Value {
    static DOCUMENT: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
        let (_app, document) = App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .configure(routes::configure)
            .split_for_parts();
        let mut json = serde_json::to_value(&document).unwrap_or_default();
        openapi::document::finish(&mut json);
        json
    });
    &DOCUMENT
}

/// The WebSocket protocol as an AsyncAPI 3.0 document (see [`asyncapi`]).
pub fn asyncapi_json() -> serde_json::Value {
    asyncapi::document(openapi_json())
}

/// [`openapi_json`] as utoipa's type (what the docs page serves).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    serde_json::from_value(openapi_json().clone()).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// Opens the database (migrating it), settles the signing key and bootstraps the first
/// admin. Returns the state and, on a first start without a configured password, the
/// generated one.
pub fn prepare(config: Config) -> Result<(AppState, Option<String>), StartError> {
    let store = Store::open(&config.database_url, config.db_pool)?;
    store.migrate()?;
    let secret = match (&config.jwt_secret, config.requires_jwt_secret()) {
        (Some(secret), _) if secret.len() >= 32 => secret.clone(),
        (Some(_), _) => {
            return Err(StartError::Config(
                "SWITCHBOARD_JWT_SECRET must be at least 32 characters".into(),
            ));
        }
        (None, true) => {
            return Err(StartError::Config(
                "SWITCHBOARD_JWT_SECRET is required with PostgreSQL or Redis, where instances must agree on it".into(),
            ));
        }
        (None, false) => store
            .read(|conn| settings::get_or_insert(conn, "jwt_secret", &auth::random_token(48)))?,
    };
    // Databases from before contact search get their contacts' terms, once.
    store.write(persistence::repo::contacts::backfill_terms)?;
    let generated_password = bootstrap::first_start(&store, &config)?;
    let storage = storage::Storage::open(&config).map_err(StartError::Config)?;
    let sign_ins = Arc::new(auth::SignIns::new(Duration::from_secs(
        config.sign_in_cache_secs,
    )));
    // The bus and the hub start tasks: prepare runs on the runtime's blocking pool.
    let (bus, reconnections): (Arc<dyn realtime::Bus>, _) = match &config.redis_url {
        Some(url) => {
            // The deployment's own channel on Redis: instances sharing this database agree.
            let namespace = store.read(|conn| {
                settings::get_or_insert(conn, "bus_namespace", &auth::random_token(12))
            })?;
            let redis = realtime::RedisBus::start(url, &namespace).map_err(StartError::Config)?;
            let reconnections = redis.reconnections();
            // Messages may be lost while Redis is away: forget every cached sign-in then.
            sign_ins.listen(&redis, Some(redis.reconnections()));
            (Arc::new(redis), Some(reconnections))
        }
        None => {
            let bus = realtime::LocalBus::new(4096);
            sign_ins.listen(&bus, None);
            (Arc::new(bus), None)
        }
    };
    let hub = realtime::Hub::start(
        bus.clone(),
        Arc::new(live::DbAudience {
            store: store.clone(),
        }),
        realtime::HubConfig {
            queue_capacity: config.ws_queue,
            ..Default::default()
        },
        reconnections,
    );
    if store.backend() == persistence::Backend::Postgres {
        live::start_folding(store.clone());
    }
    live::start_retention(
        store.clone(),
        Duration::from_secs(config.event_retention_hours.saturating_mul(3600)),
    );
    let sealer = providers::Sealer::new(config.credentials_key.as_deref(), &secret)
        .map_err(StartError::Config)?;
    let provider_http =
        outbound::guarded_client(&config.outbound_allow, Duration::from_secs(30), 3)
            .map_err(StartError::Other)?;
    let state = AppState {
        sealer,
        provider_http,
        visitors: rate_limit::RequestLimiter::new(Duration::from_secs(60), config.visitor_rate),
        tokens: auth::TokenKeys::new(&secret, config.access_token_ttl),
        links: links::AttachmentLinks::new(&secret, config.attachment_link_ttl),
        sign_ins,
        storage,
        login_limiter: rate_limit::LoginLimiter::new(
            Duration::from_secs(config.login_window),
            config.login_failures_per_account,
            config.login_failures_per_address,
        ),
        metrics: metrics::Metrics::new().map_err(|error| StartError::Other(error.to_string()))?,
        hub,
        bus,
        decoy_hash: auth::decoy_hash(),
        deliveries: tokio::sync::Notify::new(),
        contract_violations: contract::Violations::default(),
        store,
        config,
    };
    Ok((state, generated_password))
}

async fn serve_asyncapi() -> actix_web::HttpResponse {
    static DOCUMENT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| asyncapi_json().to_string());
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

async fn docs_redirect() -> actix_web::HttpResponse {
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header(("location", "/docs/"))
        .finish()
}

/// Builds the HTTP server on a bound listener.
pub fn server(
    state: web::Data<AppState>,
    listener: TcpListener,
) -> Result<actix_web::dev::Server, StartError> {
    let max_body = state.config.max_body;
    // Raw bodies are the channel providers' calls, which may inline attachments.
    let max_upload = state.config.max_upload.max(max_body);
    let workers = state.config.workers;
    let shutdown = state.config.shutdown_timeout;
    let document = openapi_document();
    let factory = move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(error::extractors::json),
            )
            .app_data(web::QueryConfig::default().error_handler(error::extractors::query))
            .app_data(web::PathConfig::default().error_handler(error::extractors::path))
            .app_data(web::PayloadConfig::default().limit(max_upload))
            .configure(routes::configure)
            .split_for_parts();
        app.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", document.clone()))
            .route("/docs", web::get().to(docs_redirect))
            .route("/asyncapi.json", web::get().to(serve_asyncapi))
            .default_service(web::to(contract::unrouted))
            .wrap(from_fn(error::framework_problems))
            .wrap(from_fn(contract::observe))
            .wrap(from_fn(compress::in_place))
            .wrap(Compress::default())
            .wrap(from_fn(metrics::observe))
            .wrap(from_fn(routes::webchat::cors))
    };
    // Signals are ours to handle (see `stop_on_signal`): sockets must close with 1001
    // before the server stops.
    let mut server = HttpServer::new(factory)
        .on_connect(no_delay)
        .shutdown_timeout(shutdown)
        .disable_signals();
    if let Some(workers) = workers {
        server = server.workers(workers.max(1));
    }
    let server = server
        .listen(listener)
        .map_err(|error| StartError::Bind("listener".into(), error))?;
    Ok(server.run())
}

/// Turns Nagle's algorithm off on every accepted connection. A response leaves in several
/// writes (headers, then the body in chunks; a compressed body always does), and with Nagle
/// on each write after the first waits for the client's ACK of the one before, which a
/// client delays by up to 40 ms: every gzip response paid that.
fn no_delay(connection: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Err(error) = stream.set_nodelay(true)
    {
        tracing::debug!(%error, "TCP_NODELAY could not be set");
    }
}

/// A server started in-process (tests, embedding).
pub struct Running {
    pub addr: SocketAddr,
    pub state: web::Data<AppState>,
    handle: actix_web::dev::ServerHandle,
    delivery: delivery::Worker,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops accepting, lets in-flight requests finish, then stops the delivery worker
    /// (its sends in flight finish too) and returns.
    pub async fn stop(&self) {
        shut_down(&self.state, &self.handle).await;
        self.delivery.stop().await;
    }
}

/// The graceful stop: WebSocket sessions close with 1001 ("going away", clients resume
/// elsewhere), then the server stops accepting and lets in-flight requests finish.
pub async fn shut_down(state: &AppState, handle: &actix_web::dev::ServerHandle) {
    state.hub.shutdown();
    // A moment for the sessions to send their close frames.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while state.hub.connected() > 0 && std::time::Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stop(true).await;
}

/// Stops the server gracefully on SIGTERM or SIGINT.
pub fn stop_on_signal(state: web::Data<AppState>, handle: actix_web::dev::ServerHandle) {
    actix_web::rt::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
        tracing::info!("shutting down: closing sockets, finishing requests");
        shut_down(&state, &handle).await;
    });
}

/// Makes the C allocator return large blocks to the system when they are freed. Each sign-in
/// hashes with argon2 in 19 MiB, on whichever blocking thread runs it; glibc raises its mmap
/// threshold after the first such block is freed and then keeps later ones in each thread's
/// arena, so a server that signed in a dozen users held a dozen idle 19 MiB blocks. A fixed
/// threshold (which also turns the raising off) keeps blocks of 1 MiB and more out of the
/// arenas.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called once, before the server starts
    // its threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Prepares and starts a server on `config.bind` (port 0 picks a free one).
pub async fn spawn(config: Config) -> Result<Running, StartError> {
    let bind = config.bind.clone();
    let (state, _) = web::block(move || prepare(config))
        .await
        .map_err(|error| StartError::Other(error.to_string()))??;
    let listener =
        TcpListener::bind(&bind).map_err(|error| StartError::Bind(bind.clone(), error))?;
    let addr = listener
        .local_addr()
        .map_err(|error| StartError::Bind(bind, error))?;
    let state = web::Data::new(state);
    let server = server(state.clone(), listener)?;
    let handle = server.handle();
    // One delivery worker per process, beside the server rather than in each HTTP worker.
    let delivery = delivery::start(state.clone()).map_err(StartError::Other)?;
    actix_web::rt::spawn(server);
    Ok(Running {
        addr,
        state,
        handle,
        delivery,
    })
}
