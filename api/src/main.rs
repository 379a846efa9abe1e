//! The `switchboard` command: serve, migrate, create-admin, seed-demo, openapi.

use std::net::TcpListener;
use std::process::ExitCode;

use actix_web::web;
use clap::{Parser, Subcommand};
use persistence::Store;
use switchboard_api::seed::{Progress, SeedOptions, seed_demo as seed};
use switchboard_api::{Config, bootstrap, delivery, openapi_document, prepare, server};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Switchboard: the backend of a shared team inbox"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrates the database and serves the API.
    // Boxed: the configuration dwarfs the other commands' arguments.
    Serve(Box<Config>),
    /// Applies pending migrations and exits.
    Migrate {
        #[arg(
            long,
            env = "SWITCHBOARD_DATABASE_URL",
            default_value = "sqlite://switchboard.db",
            hide_env_values = true
        )]
        database_url: String,
    },
    /// Creates an admin, and the organization if it does not exist yet.
    CreateAdmin {
        #[arg(
            long,
            env = "SWITCHBOARD_DATABASE_URL",
            default_value = "sqlite://switchboard.db",
            hide_env_values = true
        )]
        database_url: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "SWITCHBOARD_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
    /// Fills the database with a new demo organization (people, inboxes, customers,
    /// conversations, chats) and prints how to sign in.
    SeedDemo {
        #[arg(
            long,
            env = "SWITCHBOARD_DATABASE_URL",
            default_value = "sqlite://switchboard.db",
            hide_env_values = true
        )]
        database_url: String,
        /// How many conversations (a million for benchmarks).
        #[arg(long, default_value_t = 5_000)]
        conversations: u64,
        /// The new organization's name (an existing one is refused).
        #[arg(long, default_value = "Demo Co")]
        org: String,
        /// The random seed: the same seed makes the same organization.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Prints the OpenAPI document.
    Openapi,
    /// Prints the AsyncAPI document of the WebSocket protocol.
    Asyncapi,
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if json {
        builder.json().init()
    } else {
        builder.init()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => {
            init_logging(config.log_format == "json");
            switchboard_api::tune_allocator();
            serve(*config)
        }
        Command::Migrate { database_url } => {
            init_logging(false);
            migrate(&database_url)
        }
        Command::CreateAdmin {
            database_url,
            org,
            email,
            password,
            name,
        } => {
            init_logging(false);
            create_admin(&database_url, &org, &email, &password, &name)
        }
        Command::SeedDemo {
            database_url,
            conversations,
            org,
            seed,
        } => {
            init_logging(false);
            seed_demo(
                &database_url,
                SeedOptions {
                    org,
                    conversations,
                    seed,
                },
            )
        }
        Command::Asyncapi => serde_json::to_string_pretty(&switchboard_api::asyncapi_json())
            .map(|json| println!("{json}"))
            .map_err(|error| error.to_string()),
        Command::Openapi => openapi_document()
            .to_pretty_json()
            .map(|json| println!("{json}"))
            .map_err(|error| error.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard: {message}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(database_url: &str) -> Result<(), String> {
    let store = Store::open(database_url, 1).map_err(|error| error.to_string())?;
    let applied = store.migrate().map_err(|error| error.to_string())?;
    println!("{} migration(s) applied", applied.len());
    Ok(())
}

fn create_admin(
    database_url: &str,
    org: &str,
    email: &str,
    password: &str,
    name: &str,
) -> Result<(), String> {
    let store = Store::open(database_url, 1).map_err(|error| error.to_string())?;
    store.migrate().map_err(|error| error.to_string())?;
    let created = bootstrap::create_admin(&store, org, email, password, name)
        .map_err(|error| error.to_string())?;
    let org_note = if created.org_created {
        " (new organization)"
    } else {
        ""
    };
    println!(
        "admin {} created in {}{}",
        created.email, created.org_name, org_note
    );
    Ok(())
}

fn seed_demo(database_url: &str, options: SeedOptions) -> Result<(), String> {
    let store = Store::open(database_url, 1).map_err(|error| error.to_string())?;
    store.migrate().map_err(|error| error.to_string())?;
    let bar = indicatif::ProgressBar::new(options.conversations);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} seeding {msg} [{bar:40}] {human_pos}/{human_len} conversations, {per_sec}, eta {eta}",
        )
        .map_err(|error| error.to_string())?
        .progress_chars("=> "),
    );
    bar.set_message(options.org.clone());
    let report = seed(&store, &options, &|Progress { done, .. }| {
        bar.set_position(done)
    })
    .map_err(|error| error.to_string());
    bar.finish_and_clear();
    let report = report?;
    let states = report.conversations;
    let rows = &report.rows;
    println!(
        "Seeded {:?} (organization {}) in {:.1} s: {} rows.",
        report.org_name,
        report.org_id,
        report.elapsed.as_secs_f64(),
        rows.total()
    );
    println!(
        "  {} conversations: {} open, {} closed, {} archived, {} spam",
        rows.conversations, states.open, states.closed, states.archived, states.spam
    );
    println!(
        "  {} messages, {} contacts, {} activity entries, {} chats with {} messages",
        rows.messages, rows.contacts, rows.activity, rows.chats, rows.chat_messages
    );
    for inbox in &report.inboxes {
        let c = inbox.conversations;
        println!(
            "  inbox {:?} ({}): {} open, {} closed, {} archived, {} spam",
            inbox.name, inbox.kind, c.open, c.closed, c.archived, c.spam
        );
    }
    println!();
    println!(
        "Every demo user's password is {}  (shown once)",
        report.password
    );
    for user in &report.users {
        println!(
            "  {:<8} {:<34} {}",
            user.role.as_str(),
            user.email,
            user.name
        );
    }
    if let Some(admin) = report.users.first() {
        println!();
        println!(
            "  curl -s http://127.0.0.1:8080/v1/auth/login -H 'content-type: application/json' \\"
        );
        println!(
            "       -d '{{\"email\":\"{}\",\"password\":\"{}\"}}'",
            admin.email, report.password
        );
    }
    Ok(())
}

#[actix_web::main]
async fn serve(config: Config) -> Result<(), String> {
    let bind = config.bind.clone();
    let bootstrap_email = config.bootstrap_email.clone();
    let (state, generated) = web::block(move || prepare(config))
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
    let listener =
        TcpListener::bind(&bind).map_err(|error| format!("cannot listen on {bind}: {error}"))?;
    let addr = listener.local_addr().map_err(|error| error.to_string())?;
    tracing::info!(%addr, database = state.store.backend().name(), bus = state.bus.name(), "switchboard listening");
    println!("Switchboard is listening on http://{addr}  (API reference: http://{addr}/docs)");
    if let Some(password) = generated {
        println!(
            "First start: sign in as {bootstrap_email} with password {password}  (shown once; change it)"
        );
        println!("  curl -s http://{addr}/v1/auth/login -H 'content-type: application/json' \\");
        println!("       -d '{{\"email\":\"{bootstrap_email}\",\"password\":\"{password}\"}}'");
    }
    let state = web::Data::new(state);
    let server = server(state.clone(), listener).map_err(|error| error.to_string())?;
    switchboard_api::stop_on_signal(state.clone(), server.handle());
    // One delivery worker per process, beside the server rather than in each HTTP worker.
    let delivery = delivery::start(state)?;
    let served = server.await.map_err(|error| error.to_string());
    // The server stopped (a signal): let the sends in flight finish before exiting.
    delivery.stop().await;
    served?;
    tracing::info!("switchboard stopped");
    Ok(())
}
