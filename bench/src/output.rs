//! Where the figures go: a table on stdout, `results.json` (an array, one object per
//! figure), and BENCHMARKS.md, rewritten each full run except for its hand-written notes
//! section (between `<!-- notes -->` and `<!-- /notes -->`), which is carried over.

use std::path::Path;
use std::time::Duration;

use crate::report::Figure;
use crate::sys::Machine;

pub const NOTES_START: &str = "<!-- notes -->";
pub const NOTES_END: &str = "<!-- /notes -->";
const NOTES_PLACEHOLDER: &str = "_Engineers: explain each missed target here (its cause, the evidence, profiles before and after a fix). Everything between the notes markers survives `make bench` rewriting this file._";

/// A number as the tables show it: fewer decimals as it grows.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 0.1 || magnitude == 0.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn baseline(figure: &Figure) -> String {
    match (&figure.baseline_name, figure.baseline) {
        (Some(name), Some(value)) => format!("{} ({name})", number(value)),
        _ => "–".into(),
    }
}

fn ratio(figure: &Figure) -> String {
    figure
        .ratio
        .filter(|ratio| ratio.is_finite())
        .map_or("–".into(), |ratio| format!("{ratio:.2}"))
}

fn verdict(figure: &Figure) -> &'static str {
    match (figure.has_target(), figure.pass) {
        (false, _) => "",
        (true, true) => "pass",
        (true, false) => "FAIL",
    }
}

/// The figures as aligned columns for a terminal.
pub fn table(figures: &[Figure]) -> String {
    let header = [
        "name", "value", "unit", "baseline", "ratio", "target", "pass",
    ];
    let rows: Vec<[String; 7]> = figures
        .iter()
        .map(|figure| {
            [
                figure.name.clone(),
                number(figure.value),
                figure.unit.clone(),
                baseline(figure),
                ratio(figure),
                figure.target.clone(),
                verdict(figure).to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|title| title.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                let pad = width.saturating_sub(cell.chars().count());
                // Numbers right-aligned, words left-aligned.
                if matches!(column, 1 | 4) {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&header.map(String::from));
    out.push('\n');
    out.push_str(&widths.map(|width| "-".repeat(width)).join("  "));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// `results.json`: an array with one object per figure.
pub fn write_json(path: &Path, figures: &[Figure]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(figures).map_err(|error| error.to_string())?;
    std::fs::write(path, text + "\n").map_err(|error| format!("{}: {error}", path.display()))
}

fn markdown_table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| name | value | unit | baseline | ratio | target | pass |\n|---|---:|---|---|---:|---|---|\n",
    );
    for figure in figures {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            figure.name,
            number(figure.value),
            figure.unit,
            baseline(figure),
            ratio(figure),
            figure.target,
            match verdict(figure) {
                "FAIL" => "**FAIL**",
                other => other,
            }
        ));
    }
    out
}

/// The figures that missed their target.
pub fn missed(figures: &[Figure]) -> Vec<&Figure> {
    figures
        .iter()
        .filter(|figure| figure.has_target() && !figure.pass)
        .collect()
}

/// Everything BENCHMARKS.md states besides the figures.
pub struct Context<'a> {
    pub date: String,
    pub machine: &'a Machine,
    pub server: &'a Path,
    pub command: String,
    pub took: Duration,
    pub ledger: &'a [(String, Duration)],
    pub skipped: &'a [String],
    pub problems: &'a [String],
    pub conversations: &'a [(String, u64)],
}

/// The hand-written notes of an existing BENCHMARKS.md (between the markers).
pub fn notes_of(existing: &str) -> Option<String> {
    let start = existing.find(NOTES_START)? + NOTES_START.len();
    let end = existing[start..].find(NOTES_END)? + start;
    Some(existing[start..end].trim_matches('\n').to_string())
}

/// Rewrites BENCHMARKS.md, keeping its notes section.
pub fn write_benchmarks(
    path: &Path,
    figures: &[Figure],
    context: &Context<'_>,
) -> Result<(), String> {
    let notes = std::fs::read_to_string(path)
        .ok()
        .and_then(|existing| notes_of(&existing))
        .filter(|notes| !notes.trim().is_empty())
        .unwrap_or_else(|| NOTES_PLACEHOLDER.to_string());
    let text = benchmarks_markdown(figures, context, &notes);
    std::fs::write(path, text).map_err(|error| format!("{}: {error}", path.display()))
}

fn benchmarks_markdown(figures: &[Figure], context: &Context<'_>, notes: &str) -> String {
    let machine = context.machine;
    let unknown = || "not reached".to_string();
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    out.push_str(&format!(
        "Written by `make bench` ({}) on {}, in {:.1} minutes. Everything but the notes section is \
         rewritten by the next run; `target/bench/results.json` has the same figures as JSON.\n\n",
        context.command,
        context.date,
        context.took.as_secs_f64() / 60.0
    ));
    out.push_str(METHOD);
    out.push_str("\n## Machine\n\n| | |\n|---|---|\n");
    out.push_str(&format!(
        "| cores | {} ({}) |\n",
        machine.cores, machine.cpu
    ));
    out.push_str(&format!("| memory | {:.1} GiB |\n", machine.memory_gib));
    out.push_str(&format!("| kernel | Linux {} |\n", machine.kernel));
    out.push_str(&format!(
        "| PostgreSQL | {} |\n",
        machine.postgres.clone().unwrap_or_else(unknown)
    ));
    out.push_str(&format!(
        "| Redis | {} |\n",
        machine.redis.clone().unwrap_or_else(unknown)
    ));
    out.push_str(&format!(
        "| SQLite | {} (bundled with the server) |\n",
        machine.sqlite.clone().unwrap_or_else(unknown)
    ));
    out.push_str(&format!("| server | `{}` |\n", context.server.display()));
    for (backend, conversations) in context.conversations {
        out.push_str(&format!(
            "| seeded on {backend} | {conversations} conversations |\n"
        ));
    }
    if !context.skipped.is_empty() {
        out.push_str("\nSkipped setups:\n\n");
        for skipped in context.skipped {
            out.push_str(&format!("- {skipped}\n"));
        }
    }
    out.push_str("\n## Figures\n\n");
    out.push_str(&markdown_table(figures));
    out.push_str("\n## Where the time went\n\n| phase | seconds |\n|---|---:|\n");
    for (phase, took) in context.ledger {
        out.push_str(&format!("| {phase} | {:.1} |\n", took.as_secs_f64()));
    }
    out.push_str(REPRODUCE);
    out.push_str("\n## Targets missed\n\n");
    let missed = missed(figures);
    if missed.is_empty() {
        out.push_str("None: every figure with a target met it.\n");
    } else {
        out.push_str("Listed by the run; the explanation of each goes in the notes below.\n\n");
        for figure in missed {
            out.push_str(&format!(
                "- `{}`: {} {}{}, target {}\n",
                figure.name,
                number(figure.value),
                figure.unit,
                match (figure.ratio, &figure.baseline_name) {
                    (Some(ratio), Some(name)) if ratio.is_finite() =>
                        format!(" = {ratio:.2} × {name}"),
                    _ => String::new(),
                },
                figure.target
            ));
        }
    }
    if !context.problems.is_empty() {
        out.push_str("\nProblems during the run:\n\n");
        for problem in context.problems {
            out.push_str(&format!("- {}\n", problem.replace('\n', " ")));
        }
    }
    out.push_str("\n## Notes\n\n");
    out.push_str(NOTES_START);
    out.push('\n');
    out.push_str(notes);
    out.push('\n');
    out.push_str(NOTES_END);
    out.push('\n');
    out
}

const METHOD: &str = "## Method

`target/release/bench` measures the real `switchboard` binary from outside, in two setups run one
after the other: **sqlite** (one `switchboard serve` on SQLite with the in-process bus) and
**postgres** (two instances on one PostgreSQL database with Redis between them, the same
`SWITCHBOARD_JWT_SECRET`). Each setup's database is a copy of a seeded template
(`switchboard_api::seed::seed_demo`, the loader of `switchboard seed-demo`; PostgreSQL
templates get `VACUUM ANALYZE` once, as autovacuum would after a bulk load) kept between runs
in `target/bench/templates`; the copy is thrown away afterwards. The seeded users sign in with
`POST /v1/auth/login`; everything else is made through the API (organizations' first admins
through the library, as `switchboard create-admin` does). The servers run with their defaults
(pool of 16, one worker per core, request logs at `info`) except for a longer token lifetime.

These machines are noisy, so every target is a multiple of a baseline measured in the same
run, on the same machine, by the same client code:

- **B1**: a bare actix-web handler (its own process) doing a send's JSON parse and one
  INSERT into a table of its own through a `persistence::Store` pool of 16 on the setup's
  database: throughput at the run's client count, latency at a fixed rate of half that.
- **B2**: raw Redis PUBLISH → SUBSCRIBE from one process over two connections, one at a time.
- **B3**: a minimal actix-ws broadcast server (its own process): N sockets, one trigger, a
  frame of a `message.created`'s size to each. The **client floor** is one frame from B3 to
  one socket (trigger → receipt).

Throughputs are closed loops (each client sends its next request when the last is answered).
Latencies run at a fixed arrival rate of half of B1's maximum and are timed from each request's
scheduled start, so a server that falls behind is charged for its queue. One-way figures
(delivery, B2, the client floor, a live event's delay) are sequential samples, and fan-out is
timed from the trigger's request to each socket's frame. Each figure is the median of several
runs. Sends and webhooks are spread over the instances; in the delivery
figure the sender is on the first instance and the receiving agent's socket on the second;
fan-out sockets are spread over the instances, idle sockets all go to the first (its memory
and CPU are read from `/proc/PID/status` and `/proc/PID/stat`). The harness raises its open-file
limit to the hard limit (the servers inherit it) and binds client sockets to rotating
127.0.0.x source addresses.
";

const REPRODUCE: &str = "
## Reproduce

```sh
make bench                                   # release build, then both setups (PostgreSQL, Redis on 127.0.0.1)
target/release/bench --fresh                 # seed the templates again
target/release/bench --conversations 100000  # smaller databases (templates per size)
target/release/bench --setups postgres --only sends,inbound  # some figures; leaves this file alone
make bench-smoke                             # tiny sizes, debug build, seconds (CI); never touches this file
```

The first run seeds the templates (about 5 minutes for a million conversations on PostgreSQL,
2 for SQLite's 200,000 on two cores); later runs copy them. Figures go to
`target/bench/results.json` (`results.partial.json` for `--only`), the servers' logs to
`target/bench/logs/`.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_survive_a_rewrite() {
        let existing = format!("# old\n\n{NOTES_START}\nWhy the send p99 is high.\n{NOTES_END}\n");
        assert_eq!(
            notes_of(&existing).as_deref(),
            Some("Why the send p99 is high.")
        );
        assert_eq!(notes_of("no markers"), None);
    }

    #[test]
    fn missed_targets_are_listed_and_references_are_not() {
        let figures = vec![
            Figure::at_least("send.x.throughput", 10.0, "req/s", ("B1", 100.0), 0.7),
            Figure::reference("b1.x.throughput", 100.0, "req/s"),
            Figure::absolute("idle.x.cpu", 1.0, "%", "< 5 %", true),
        ];
        let names: Vec<&str> = missed(&figures).iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["send.x.throughput"]);
        let machine = Machine::default();
        let context = Context {
            date: "today".into(),
            machine: &machine,
            server: Path::new("target/release/switchboard"),
            command: "bench".into(),
            took: Duration::from_secs(60),
            ledger: &[],
            skipped: &[],
            problems: &[],
            conversations: &[],
        };
        let text = benchmarks_markdown(&figures, &context, "kept");
        assert!(text.contains("- `send.x.throughput`: 10.0 req/s = 0.10 × B1"));
        assert_eq!(notes_of(&text).as_deref(), Some("kept"));
        assert!(table(&figures).contains("FAIL"));
    }
}
