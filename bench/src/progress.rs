//! Progress while a run goes: one line per phase (a spinner, or a bar when the phase knows
//! its length) on stderr, a line with its duration when it ends, and the ledger of where the
//! time went for the summary. Without a terminal only the finished lines are printed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    ledger: Arc<Mutex<Vec<(String, Duration)>>>,
    started: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            multi: MultiProgress::new(),
            ledger: Arc::new(Mutex::new(Vec::new())),
            started: Instant::now(),
        }
    }

    /// Starts a phase; it ends (and is recorded) when [`Phase::finish`] is called or it drops.
    pub fn phase(&self, name: impl Into<String>) -> Phase {
        let name = name.into();
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(spinner_style());
        bar.set_prefix(name.clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        Phase {
            bar,
            name,
            started: Instant::now(),
            progress: self.clone(),
            finished: Mutex::new(false),
        }
    }

    /// A line above the bars (or on stderr without a terminal).
    pub fn say(&self, line: &str) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Every finished phase and how long it took, in order.
    pub fn ledger(&self) -> Vec<(String, Duration)> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed:>4}] {prefix} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} [{elapsed:>4}] {prefix} [{bar:30}] {human_pos}/{human_len} {per_sec} eta {eta} {msg}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// One phase of the run.
pub struct Phase {
    bar: ProgressBar,
    name: String,
    started: Instant,
    progress: Progress,
    finished: Mutex<bool>,
}

impl Phase {
    /// Turns the spinner into a bar of `length` steps.
    pub fn set_length(&self, length: u64) {
        self.bar.set_style(bar_style());
        self.bar.set_length(length);
    }

    pub fn set_position(&self, position: u64) {
        self.bar.set_position(position);
    }

    /// What the phase is doing now (shown beside its name).
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// A line worth keeping, under the phase's name.
    pub fn note(&self, line: &str) {
        self.progress.say(&format!("    {}: {line}", self.name));
    }

    pub fn finish(self) {
        self.end("done");
    }

    fn end(&self, how: &str) {
        let mut finished = self
            .finished
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *finished {
            return;
        }
        *finished = true;
        let took = self.started.elapsed();
        self.bar.finish_and_clear();
        self.progress.multi.remove(&self.bar);
        self.progress
            .ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((self.name.clone(), took));
        let at = self.progress.elapsed().as_secs_f64();
        let mark = if how == "done" { "✓" } else { "✗" };
        self.progress.say(&format!(
            "{mark} [{at:>6.1} s] {} ({:.1} s{})",
            self.name,
            took.as_secs_f64(),
            if how == "done" {
                String::new()
            } else {
                format!(", {how}")
            }
        ));
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        self.end("stopped");
    }
}
