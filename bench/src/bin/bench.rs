//! `bench` (`make bench`, `make bench-smoke`): starts the real `switchboard` binary in two
//! setups (SQLite with the in-process bus, then two instances on PostgreSQL with Redis),
//! measures it from outside against baselines measured in the same run, and writes
//! `target/bench/results.json` and BENCHMARKS.md. `--smoke` runs tiny sizes in seconds, writes
//! `target/bench/smoke/results.json` only, and fails on any error (but not on a missed ratio).
//! Only 127.0.0.1 is ever contacted; every wait is bounded; Ctrl-C stops every child and drops
//! every database the run made.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use switchboard_bench::baselines;
use switchboard_bench::databases;
use switchboard_bench::harness::{Run, Sizes};
use switchboard_bench::http_figures;
use switchboard_bench::lists;
use switchboard_bench::output;
use switchboard_bench::process;
use switchboard_bench::realtime_figures::{self, B3};
use switchboard_bench::report::Figure;
use switchboard_bench::setup::{self, Options};
use switchboard_bench::sys::{self, Machine};
use switchboard_bench::target::{Backend, Scale};

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Benchmarks the switchboard binary against baselines measured in the same run (127.0.0.1 only)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    child: Option<ChildCommand>,
    /// Tiny sizes, both setups, in seconds; fails on any error; writes target/bench/smoke.
    #[arg(long)]
    smoke: bool,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    server: PathBuf,
    /// Conversations to seed (default: 1,000,000 on PostgreSQL, 200,000 on SQLite; smoke 300).
    #[arg(long)]
    conversations: Option<u64>,
    /// The seed of the demo organization.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Seed the templates again instead of reusing them.
    #[arg(long)]
    fresh: bool,
    /// Runs per figure (the median is reported; default 3, smoke 1).
    #[arg(long)]
    runs: Option<usize>,
    /// Setups to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    setups: Vec<String>,
    /// PostgreSQL's maintenance database (on 127.0.0.1).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Redis (on 127.0.0.1).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Results, logs and templates (default target/bench; smoke target/bench/smoke).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The report a full run rewrites (its notes section is kept).
    #[arg(long, default_value = "BENCHMARKS.md")]
    benchmarks: PathBuf,
    /// Only these groups of figures, with the baselines they need (lists, sends, inbound,
    /// idle, fanout, delivery, replay); a partial run leaves the report alone.
    #[arg(long, value_delimiter = ',')]
    only: Vec<Group>,
}

/// The groups of figures `--only` picks from.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Group {
    Lists,
    Sends,
    Inbound,
    Idle,
    Fanout,
    Delivery,
    Replay,
}

/// What a setup's run measures with: Redis (when reachable) and the groups of figures.
struct Wanted<'a> {
    redis: Option<&'a str>,
    groups: Groups<'a>,
}

/// Which groups a run measures: all of them unless `--only` names some.
#[derive(Clone, Copy)]
struct Groups<'a>(&'a [Group]);

impl Groups<'_> {
    fn has(self, group: Group) -> bool {
        self.0.is_empty() || self.0.contains(&group)
    }
}

#[derive(Subcommand)]
enum ChildCommand {
    /// B1: the bare handler (started by the harness itself).
    #[command(name = "__b1", hide = true)]
    B1 {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        bind: String,
        #[arg(long)]
        pool: u32,
    },
    /// B3: the bare WebSocket broadcast (started by the harness itself).
    #[command(name = "__b3", hide = true)]
    B3 {
        #[arg(long)]
        bind: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let served = match &cli.child {
        Some(ChildCommand::B1 {
            database_url,
            bind,
            pool,
        }) => Some(baselines::serve_b1(database_url, bind, *pool)),
        Some(ChildCommand::B3 { bind }) => Some(baselines::serve_b3(bind)),
        None => None,
    };
    if let Some(result) = served {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("bench: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(harness(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `host:port` of a URL, which must be on 127.0.0.1.
fn local_address(url: &str, default_port: u16) -> Result<String, String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("bad port in {url}"))?,
        ),
        None => (host_port, default_port),
    };
    if host != "127.0.0.1" {
        return Err(format!("{url}: the bench only talks to 127.0.0.1"));
    }
    Ok(format!("{host}:{port}"))
}

async fn reachable(address: &str) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(address)
        )
        .await,
        Ok(Ok(_))
    )
}

/// Stops every child and drops every database of the run on Ctrl-C or SIGTERM.
fn on_interrupt() {
    tokio::spawn(async {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        eprintln!("\nbench: interrupted; stopping the servers and dropping the run's databases");
        process::kill_all();
        let _ = tokio::task::spawn_blocking(databases::clean_up_pending).await;
        std::process::exit(130);
    });
}

async fn harness(cli: Cli) -> Result<ExitCode, String> {
    let files = sys::raise_open_files()?;
    if !cli.server.is_file() {
        return Err(format!(
            "no server binary at {} (build it: cargo build --release -p switchboard-api, or pass --server)",
            cli.server.display()
        ));
    }
    let server = std::fs::canonicalize(&cli.server)
        .map_err(|error| format!("{}: {error}", cli.server.display()))?;
    let ci = std::env::var("CI").is_ok_and(|value| value == "true");
    let out = cli.out.clone().unwrap_or_else(|| {
        PathBuf::from(if cli.smoke {
            "target/bench/smoke"
        } else {
            "target/bench"
        })
    });
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(|error| format!("{}: {error}", logs.display()))?;
    let postgres_address = local_address(&cli.postgres_url, 5432)?;
    let redis_address = local_address(&cli.redis_url, 6379)?;
    let (sizes, mut scale) = if cli.smoke {
        (
            Sizes::smoke(),
            Scale {
                conversations: 300,
                deep_page: 2,
                samples: 60,
                runs: 1,
            },
        )
    } else {
        (
            Sizes::full(),
            Scale {
                conversations: 0,
                deep_page: 400,
                samples: 2_000,
                runs: 3,
            },
        )
    };
    if let Some(runs) = cli.runs {
        scale.runs = runs.clamp(1, 20);
    }
    let options = Options {
        server: server.clone(),
        postgres_url: cli.postgres_url.clone(),
        redis_url: cli.redis_url.clone(),
        out: out.clone(),
        templates: PathBuf::from("target/bench/templates"),
        conversations: cli.conversations.or(cli.smoke.then_some(300)),
        seed: cli.seed,
        fresh: cli.fresh,
    };
    let run = Run::new(sizes, scale, cli.smoke, logs);
    on_interrupt();
    run.say(&format!(
        "bench{}: server {}, open files {files}, {} run(s) per figure",
        if cli.smoke { " --smoke" } else { "" },
        server.display(),
        run.scale.runs
    ));

    let mut machine = Machine::read();
    let redis_up = reachable(&redis_address).await;
    if redis_up {
        machine.redis = baselines::redis_version(&cli.redis_url).await.ok();
    }
    let mut figures: Vec<Figure> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut seeded: Vec<(String, u64)> = Vec::new();
    for name in &cli.setups {
        let backend = match name.as_str() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => {
                return Err(format!(
                    "--setups: unknown setup {other:?} (sqlite, postgres)"
                ));
            }
        };
        if backend == Backend::Postgres {
            let postgres_up = reachable(&postgres_address).await;
            if !(postgres_up && redis_up) {
                let missing = match (postgres_up, redis_up) {
                    (false, false) => {
                        format!("PostgreSQL ({postgres_address}) and Redis ({redis_address})")
                    }
                    (false, true) => format!("PostgreSQL ({postgres_address})"),
                    _ => format!("Redis ({redis_address})"),
                };
                let message =
                    format!("the postgres setup needs {missing}, which cannot be reached");
                if ci {
                    return Err(format!("{message} (an error under CI=true)"));
                }
                run.say(&format!("skipping: {message}"));
                skipped.push(message);
                continue;
            }
        }
        let mut scale = run.scale;
        scale.conversations = options.conversations(backend);
        seeded.push((backend.to_string(), scale.conversations));
        let redis = redis_up.then_some(cli.redis_url.as_str());
        match one_setup(
            &run,
            backend,
            &options,
            scale,
            Wanted {
                redis,
                groups: Groups(&cli.only),
            },
            &mut machine,
            &mut failures,
        )
        .await
        {
            Ok(mut more) => figures.append(&mut more),
            Err(error) => {
                run.say(&format!("{backend} setup failed: {error}"));
                failures.push(format!("{backend}: {error}"));
            }
        }
    }

    println!();
    print!("{}", output::table(&figures));
    println!();
    println!("Where the time went:");
    for (phase, took) in run.progress.ledger() {
        println!("  {:>7.1} s  {phase}", took.as_secs_f64());
    }
    println!("  {:>7.1} s  in all", run.progress.elapsed().as_secs_f64());
    // A partial run must not pass for the full one the report was written from.
    let results = out.join(if cli.only.is_empty() {
        "results.json"
    } else {
        "results.partial.json"
    });
    output::write_json(&results, &figures)?;
    println!("\nresults: {}", results.display());
    let problems = run.problems();
    if !cli.only.is_empty() {
        println!(
            "a partial run (--only): {} left as it was",
            cli.benchmarks.display()
        );
    } else if !cli.smoke {
        let ledger = run.progress.ledger();
        let command: Vec<String> = std::env::args().skip(1).collect();
        output::write_benchmarks(
            &cli.benchmarks,
            &figures,
            &output::Context {
                date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
                machine: &machine,
                server: &cli.server,
                command: format!("bench {}", command.join(" ")).trim().to_string(),
                took: run.progress.elapsed(),
                ledger: &ledger,
                skipped: &skipped,
                problems: &problems,
                conversations: &seeded,
            },
        )?;
        println!("report: {}", cli.benchmarks.display());
    }
    let missed = output::missed(&figures);
    if !missed.is_empty() {
        println!(
            "\n{} target(s) missed: {}",
            missed.len(),
            missed
                .iter()
                .map(|figure| figure.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for problem in &problems {
        println!("problem: {problem}");
    }
    for failure in &failures {
        println!("error: {failure}");
    }
    let failed = !failures.is_empty() || (cli.smoke && !problems.is_empty());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One setup from start to stop. A failing group of figures is recorded in `failures` and
/// the others still run; failing to start the setup is the error.
async fn one_setup(
    run: &Run,
    backend: Backend,
    options: &Options,
    scale: Scale,
    wanted: Wanted<'_>,
    machine: &mut Machine,
    failures: &mut Vec<String>,
) -> Result<Vec<Figure>, String> {
    let Wanted { redis, groups } = wanted;
    let b = backend.as_str();
    let mut lab = setup::start(run, backend, options).await?;
    match backend {
        Backend::Postgres => machine.postgres = Some(lab.version.clone()),
        Backend::Sqlite => machine.sqlite = Some(lab.version.clone()),
    }
    let mut figures = Vec::new();
    let mut failed = |group: &str, error: String| {
        run.say(&format!("{b} {group} failed: {error}"));
        failures.push(format!("{b} {group}: {error}"));
    };

    // First, before the bench writes anything: the list figures read the seeded counts.
    if groups.has(Group::Lists) {
        let phase = run.phase(format!("{b} · lists, counts and search (figures 5–7)"));
        let limit = if run.smoke {
            Duration::from_secs(120)
        } else {
            Duration::from_secs(20 * 60)
        };
        match tokio::time::timeout(limit, lists::figures(&lab.target, &scale)).await {
            Ok(Ok(mut more)) => figures.append(&mut more),
            Ok(Err(error)) => failed("lists", error),
            Err(_) => failed("lists", format!("not done within {} s", limit.as_secs())),
        }
        phase.finish();
    }

    let needs_b1 = groups.has(Group::Sends) || groups.has(Group::Inbound);
    let b1 = if !needs_b1 {
        None
    } else {
        match http_figures::b1(run, &lab).await {
            Ok((b1, mut more)) => {
                figures.append(&mut more);
                Some(b1)
            }
            Err(error) => {
                failed("B1", error);
                None
            }
        }
    };
    let b2 = match redis.filter(|_| groups.has(Group::Delivery)) {
        Some(url) => match realtime_figures::b2(run, b, url).await {
            Ok((b2, mut more)) => {
                figures.append(&mut more);
                Some(b2)
            }
            Err(error) => {
                failed("B2", error);
                None
            }
        },
        None => None,
    };
    if let Some(b1) = b1 {
        if groups.has(Group::Sends) {
            match http_figures::sends(run, &lab, &b1).await {
                Ok(mut more) => figures.append(&mut more),
                Err(error) => failed("sends", error),
            }
        }
        if groups.has(Group::Inbound) {
            match http_figures::inbound(run, &lab, &b1).await {
                Ok(mut more) => figures.append(&mut more),
                Err(error) => failed("inbound", error),
            }
        }
    }
    let mut floor = 0.0;
    let needs_b3 =
        groups.has(Group::Idle) || groups.has(Group::Fanout) || groups.has(Group::Delivery);
    if needs_b3 {
        match B3::start(run).await {
            Ok(b3) => {
                if groups.has(Group::Idle) {
                    match realtime_figures::idle(run, &lab, &b3).await {
                        Ok(mut more) => figures.append(&mut more),
                        Err(error) => failed("idle sockets", error),
                    }
                }
                let measured = if groups.has(Group::Fanout) {
                    match realtime_figures::fanout(run, &lab, &b3).await {
                        Ok((mut more, measured)) => {
                            figures.append(&mut more);
                            Ok(measured)
                        }
                        Err(error) => Err(("fan-out", error)),
                    }
                } else if groups.has(Group::Delivery) {
                    // Delivery alone still needs the client's floor.
                    realtime_figures::client_floor(run, &lab, &b3)
                        .await
                        .map_err(|error| ("client floor", error))
                } else {
                    Ok(0.0)
                };
                match measured {
                    Ok(measured) => floor = measured,
                    Err((group, error)) => failed(group, error),
                }
            }
            Err(error) => failed("B3", error),
        }
    }
    if groups.has(Group::Delivery) {
        match realtime_figures::delivery(run, &lab, b2, floor).await {
            Ok(mut more) => figures.append(&mut more),
            Err(error) => failed("delivery", error),
        }
    }
    if groups.has(Group::Replay) {
        match realtime_figures::replay(run, &lab).await {
            Ok(mut more) => figures.append(&mut more),
            Err(error) => failed("replay", error),
        }
    }
    if let Err(error) = lab.check_alive() {
        failed("servers", error);
    }
    let phase = run.phase(format!("{b} · stop and clean up"));
    drop(lab);
    phase.finish();
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_addresses_are_accepted() {
        assert_eq!(
            local_address("postgres://postgres@127.0.0.1:5432/postgres", 5432).unwrap(),
            "127.0.0.1:5432"
        );
        assert_eq!(
            local_address("redis://127.0.0.1", 6379).unwrap(),
            "127.0.0.1:6379"
        );
        assert!(local_address("postgres://db.example.com/x", 5432).is_err());
    }
}
