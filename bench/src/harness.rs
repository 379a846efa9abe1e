//! What a run carries through every phase: its sizes (the full run's or the smoke run's),
//! its progress display, and the problems it met (a failed request, missing frames), which
//! fail a smoke run and are reported by a full one.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::load::Errors;
use crate::progress::{Phase, Progress};
use crate::report::Figure;
use crate::target::Scale;

/// How big each part of a run is.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Organizations of the cross-organization send figure (one agent each).
    pub orgs: usize,
    /// Agents of the one-organization send figure.
    pub agents: usize,
    /// Concurrent clients of the throughput figures (B1's too).
    pub clients: usize,
    /// How long a throughput run lasts, after a warm-up.
    pub window: Duration,
    pub warmup: Duration,
    /// Sends whose SQL statements are counted.
    pub sql_sends: usize,
    /// Socket counts of the fan-out figure.
    pub fanout: Vec<usize>,
    /// Frames sent per socket count.
    pub fanout_rounds: usize,
    /// Idle sockets of the memory and CPU figure, opened `connect_concurrency` at a time.
    pub idle_sockets: usize,
    pub connect_concurrency: usize,
    /// How long the idle CPU is read.
    pub idle_window: Duration,
    /// Pause after mass connects before memory is read (and before the background of the
    /// statement count is read).
    pub settle: Duration,
    /// Pause between rounds, so that the last one's work is done.
    pub pause: Duration,
    /// Sequential samples of the one-way figures (delivery, B2, the client floor).
    pub oneway_samples: usize,
    /// Events in the replayed history.
    pub history: usize,
    /// Live messages measured per replay run (and idle).
    pub replay_probes: usize,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            orgs: 50,
            agents: 16,
            clients: 16,
            window: Duration::from_secs(8),
            warmup: Duration::from_secs(1),
            sql_sends: 200,
            fanout: vec![1_000, 5_000, 10_000],
            fanout_rounds: 5,
            idle_sockets: 10_000,
            connect_concurrency: 1_000,
            idle_window: Duration::from_secs(10),
            settle: Duration::from_secs(3),
            pause: Duration::from_millis(300),
            oneway_samples: 300,
            history: 10_000,
            replay_probes: 5,
        }
    }

    pub fn smoke() -> Sizes {
        Sizes {
            orgs: 3,
            agents: 4,
            clients: 8,
            window: Duration::from_millis(800),
            warmup: Duration::from_millis(200),
            sql_sends: 10,
            fanout: vec![20, 50],
            fanout_rounds: 2,
            idle_sockets: 50,
            connect_concurrency: 25,
            idle_window: Duration::from_millis(800),
            settle: Duration::from_millis(300),
            pause: Duration::from_millis(50),
            oneway_samples: 20,
            history: 200,
            replay_probes: 2,
        }
    }
}

/// The run's context.
pub struct Run {
    pub progress: Progress,
    pub sizes: Sizes,
    pub scale: Scale,
    pub smoke: bool,
    /// Where logs of the children go.
    pub logs: PathBuf,
    problems: Mutex<Vec<String>>,
}

impl Run {
    pub fn new(sizes: Sizes, scale: Scale, smoke: bool, logs: PathBuf) -> Run {
        Run {
            progress: Progress::new(),
            sizes,
            scale,
            smoke,
            logs,
            problems: Mutex::new(Vec::new()),
        }
    }

    pub fn phase(&self, name: impl Into<String>) -> Phase {
        self.progress.phase(name)
    }

    pub fn say(&self, line: &str) {
        self.progress.say(line);
    }

    /// Something went wrong that a figure shows (a failed request, a missing frame).
    pub fn problem(&self, text: impl Into<String>) {
        let text = text.into();
        self.say(&format!("problem: {text}"));
        self.problems
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(text);
    }

    pub fn problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// `NAME.errors`: failed requests of a figure's series, which must be none.
    pub fn errors_figure(&self, name: &str, errors: &Errors) -> Figure {
        if errors.count > 0 {
            self.problem(format!(
                "{name}: {} failed request(s), the first: {}",
                errors.count,
                errors.first.as_deref().unwrap_or("?")
            ));
        }
        Figure::absolute(
            format!("{name}.errors"),
            errors.count as f64,
            "count",
            "= 0",
            errors.count == 0,
        )
    }

    /// A zero-tolerance count (missing frames, dropped sockets): a figure, and a problem
    /// when it is not zero.
    pub fn must_be_zero(&self, name: &str, count: usize, what: &str) -> Figure {
        if count > 0 {
            self.problem(format!("{name}: {count} {what}"));
        }
        Figure::absolute(name, count as f64, "count", "= 0", count == 0)
    }
}
