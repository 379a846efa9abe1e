//! Load shapes: as fast as N clients can go (throughput), and a fixed arrival rate
//! (latency, measured from each request's scheduled start, so a server that falls behind is
//! charged for the queue it builds rather than hiding it).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Semaphore};

use crate::report::Latency;

/// Errors of a series: how many, and the first one's text.
#[derive(Debug, Default, Clone)]
pub struct Errors {
    pub count: u64,
    pub first: Option<String>,
}

impl Errors {
    fn record(&mut self, error: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(error);
        }
    }

    pub fn merge(&mut self, other: &Errors) {
        self.count += other.count;
        if self.first.is_none() {
            self.first.clone_from(&other.first);
        }
    }
}

/// The result of a closed-loop run.
#[derive(Debug, Default, Clone)]
pub struct Throughput {
    /// Requests that succeeded within the window.
    pub completed: u64,
    pub window: Duration,
    pub errors: Errors,
}

impl Throughput {
    pub fn per_second(&self) -> f64 {
        if self.window.is_zero() {
            0.0
        } else {
            self.completed as f64 / self.window.as_secs_f64()
        }
    }
}

/// `clients` clients, each sending its next request when the last one is answered, for
/// `window`. `work(client, n)` makes a client's n-th request.
pub async fn closed_loop<F, Fut>(clients: usize, window: Duration, work: F) -> Throughput
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let work = Arc::new(work);
    let completed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Errors::default()));
    let started = Instant::now();
    let deadline = started + window;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (work, completed, errors) = (work.clone(), completed.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let result = work(client, n).await;
                n += 1;
                match result {
                    Ok(()) if Instant::now() <= deadline => {
                        completed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(()) => {}
                    Err(error) => {
                        errors.lock().await.record(error);
                        // Do not spin on a server that refuses everything.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    for task in tasks {
        if let Err(error) = task.await {
            errors
                .lock()
                .await
                .record(format!("a client task failed: {error}"));
        }
    }
    let errors = errors.lock().await.clone();
    Throughput {
        completed: completed.load(Ordering::Relaxed),
        window,
        errors,
    }
}

/// The result of a fixed-rate run.
#[derive(Debug, Default, Clone)]
pub struct Series {
    pub latency: Latency,
    pub errors: Errors,
    /// Requests per second the server actually answered.
    pub answered_rate: f64,
}

/// `count` requests at `rate` per second (request i is due at `i / rate` s), at most
/// `max_in_flight` at once; each latency runs from the request's due time to its answer.
pub async fn fixed_rate<F, Fut>(rate: f64, count: usize, max_in_flight: usize, work: F) -> Series
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let rate = rate.max(1.0);
    let work = Arc::new(work);
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let samples = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let errors = Arc::new(Mutex::new(Errors::default()));
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for n in 0..count {
        let due = started + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (work, samples, errors) = (work.clone(), samples.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let result = work(n as u64).await;
            let took = due.elapsed();
            drop(permit);
            match result {
                Ok(()) => samples.lock().await.push(took),
                Err(error) => errors.lock().await.record(error),
            }
        }));
    }
    for task in tasks {
        if let Err(error) = task.await {
            errors
                .lock()
                .await
                .record(format!("a request task failed: {error}"));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut samples = samples.lock().await.clone();
    let answered = samples.len();
    Series {
        latency: Latency::of(&mut samples),
        errors: errors.lock().await.clone(),
        answered_rate: if elapsed > 0.0 {
            answered as f64 / elapsed
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fixed_rate_keeps_its_schedule() {
        let series = fixed_rate(200.0, 40, 8, |_| async { Ok(()) }).await;
        assert_eq!(series.latency.count, 40);
        assert!(series.latency.p99 < 50.0, "{series:?}");
    }

    #[tokio::test]
    async fn errors_are_counted_not_timed() {
        let throughput = closed_loop(2, Duration::from_millis(200), |client, _| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if client == 0 {
                Ok(())
            } else {
                Err("refused".to_string())
            }
        })
        .await;
        assert!(throughput.completed > 0);
        assert!(throughput.errors.count > 0);
        assert_eq!(throughput.errors.first.as_deref(), Some("refused"));
    }
}
