//! One measured figure, as `target/bench/results.json` and BENCHMARKS.md show it.

use std::time::Duration;

use serde::Serialize;

/// A figure: its value, the baseline it is compared with (same run, same unit), the
/// ratio, the target it must meet and whether it did.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable, dotted: `list.postgres.inbox.page400.p99`.
    pub name: String,
    pub value: f64,
    /// `ms`, `req/s`, `KiB`, `%`, `count`, `statements`.
    pub unit: String,
    /// The baseline's value in the same unit, when the target is a ratio.
    pub baseline: Option<f64>,
    /// What the baseline is: `B1 bare handler p99`, `page 1 p99`.
    pub baseline_name: Option<String>,
    /// `value / baseline`.
    pub ratio: Option<f64>,
    /// The target in words: `≤ 1.2 × page 1`.
    pub target: String,
    pub pass: bool,
}

impl Figure {
    /// A figure that must stay at or below `limit` times its baseline.
    pub fn at_most(
        name: impl Into<String>,
        value: f64,
        unit: &str,
        baseline: (&str, f64),
        limit: f64,
    ) -> Figure {
        Figure::against(name, value, unit, baseline, ("≤", limit))
    }

    /// A figure that must reach at least `limit` times its baseline (throughputs).
    pub fn at_least(
        name: impl Into<String>,
        value: f64,
        unit: &str,
        baseline: (&str, f64),
        limit: f64,
    ) -> Figure {
        Figure::against(name, value, unit, baseline, ("≥", limit))
    }

    /// `value` against `baseline`, its ratio held to the `relation` and `limit` (`≤` or `≥` a factor).
    fn against(
        name: impl Into<String>,
        value: f64,
        unit: &str,
        (baseline_name, baseline): (&str, f64),
        (relation, limit): (&str, f64),
    ) -> Figure {
        let ratio = ratio(value, baseline);
        Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            baseline: Some(baseline),
            baseline_name: Some(baseline_name.into()),
            ratio: Some(ratio),
            target: format!("{relation} {limit} × {baseline_name}"),
            pass: if relation == "≥" {
                ratio >= limit
            } else {
                ratio <= limit
            },
        }
    }

    /// A figure with an absolute target (`zero missing`, `< 5 % of a core`).
    pub fn absolute(
        name: impl Into<String>,
        value: f64,
        unit: &str,
        target: &str,
        pass: bool,
    ) -> Figure {
        Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            baseline: None,
            baseline_name: None,
            ratio: None,
            target: target.into(),
            pass,
        }
    }

    /// A figure shown for reference (a baseline itself, a client floor): no target.
    pub fn reference(name: impl Into<String>, value: f64, unit: &str) -> Figure {
        Figure::absolute(name, value, unit, "reference", true)
    }

    /// A figure shown beside a baseline (with its ratio) but with no target of its own.
    pub fn compared(
        name: impl Into<String>,
        value: f64,
        unit: &str,
        baseline: (&str, f64),
    ) -> Figure {
        Figure {
            target: "reference".into(),
            pass: true,
            ..Figure::at_most(name, value, unit, baseline, f64::INFINITY)
        }
    }

    /// The same figure with its target worded differently (a composite baseline).
    pub fn with_target(mut self, target: impl Into<String>) -> Figure {
        self.target = target.into();
        self
    }

    /// Whether the figure has a target to meet (not a reference).
    pub fn has_target(&self) -> bool {
        self.target != "reference"
    }
}

fn ratio(value: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        value / baseline
    } else {
        f64::INFINITY
    }
}

/// Latency percentiles of one series, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub count: usize,
}

impl Latency {
    pub fn of(samples: &mut [Duration]) -> Latency {
        samples.sort_unstable();
        let at = |p: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
            samples[index.min(samples.len() - 1)].as_secs_f64() * 1000.0
        };
        Latency {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            count: samples.len(),
        }
    }
}

/// The median of several runs' figures (each run's p99, say).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}
