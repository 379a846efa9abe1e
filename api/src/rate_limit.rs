//! Failed sign-ins. Two limits, neither of which a stranger can turn against a user:
//! - per account *and* client address: from its `free`-th failure on, each failure holds
//!   that pair for a growing time ([`FIRST_HOLD`], doubling, at most the window). The same account
//!   from another address (its owner, elsewhere) is not held, nor are other accounts from
//!   this address.
//! - per client address, across accounts: at most `per_address` failures in a window, then
//!   the address waits for the window's end (password spraying). Only failures count, so an
//!   office behind one NAT signing in correctly is never held.
//!
//! A success clears its pair. Held requests get 429 with the `Retry-After` to wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The first hold of an account from one address after its free failures; each further
/// failure doubles it, up to the window.
pub const FIRST_HOLD: Duration = Duration::from_secs(5);

struct Window {
    started: Instant,
    failures: u32,
}

struct Pair {
    failures: u32,
    last_failure: Instant,
    held_until: Option<Instant>,
}

#[derive(Default)]
struct Tracked {
    addresses: HashMap<String, Window>,
    pairs: HashMap<(String, String), Pair>,
}

pub struct LoginLimiter {
    window: Duration,
    free: u32,
    per_address: u32,
    tracked: Mutex<Tracked>,
}

/// Above this many tracked keys, expired entries are swept so memory stays bounded.
const SWEEP_ABOVE: usize = 10_000;

fn account(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Whole seconds until `until`, at least 1.
fn seconds_until(until: Instant, now: Instant) -> u64 {
    let left = until.saturating_duration_since(now);
    (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
}

impl LoginLimiter {
    /// `free`: failures of one account from one address before holds begin; `per_address`:
    /// failures from one address, any account, per `window`.
    pub fn new(window: Duration, free: u32, per_address: u32) -> LoginLimiter {
        LoginLimiter {
            window,
            free,
            per_address,
            tracked: Mutex::new(Tracked::default()),
        }
    }

    fn tracked(&self) -> std::sync::MutexGuard<'_, Tracked> {
        self.tracked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Err(seconds)` when this account from this address, or this address, must wait.
    pub fn check(&self, email: &str, address: &str) -> Result<(), u64> {
        let now = Instant::now();
        let tracked = self.tracked();
        let mut wait = 0u64;
        if let Some(window) = tracked.addresses.get(address) {
            let elapsed = now.duration_since(window.started);
            if elapsed < self.window && window.failures >= self.per_address {
                wait = seconds_until(window.started + self.window, now);
            }
        }
        if let Some(pair) = tracked.pairs.get(&(account(email), address.to_string()))
            && let Some(until) = pair.held_until
            && until > now
        {
            wait = wait.max(seconds_until(until, now));
        }
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    pub fn record_failure(&self, email: &str, address: &str) {
        let now = Instant::now();
        let (window, free) = (self.window, self.free);
        let mut tracked = self.tracked();
        if tracked.addresses.len() + tracked.pairs.len() > SWEEP_ABOVE {
            tracked
                .addresses
                .retain(|_, entry| now.duration_since(entry.started) < window);
            tracked
                .pairs
                .retain(|_, pair| now.duration_since(pair.last_failure) < window);
        }
        let entry = tracked
            .addresses
            .entry(address.to_string())
            .or_insert(Window {
                started: now,
                failures: 0,
            });
        if now.duration_since(entry.started) >= window {
            *entry = Window {
                started: now,
                failures: 0,
            };
        }
        entry.failures += 1;

        let pair = tracked
            .pairs
            .entry((account(email), address.to_string()))
            .or_insert(Pair {
                failures: 0,
                last_failure: now,
                held_until: None,
            });
        // A quiet window forgives.
        if now.duration_since(pair.last_failure) >= window {
            pair.failures = 0;
        }
        pair.failures += 1;
        pair.last_failure = now;
        if pair.failures >= free {
            let doublings = (pair.failures - free).min(20);
            let hold = FIRST_HOLD.saturating_mul(1 << doublings).min(window);
            pair.held_until = Some(now + hold);
        }
    }

    /// A successful sign-in clears this account's failures from this address (not the
    /// address's count, nor the account's from elsewhere).
    pub fn record_success(&self, email: &str, address: &str) {
        self.tracked()
            .pairs
            .remove(&(account(email), address.to_string()));
    }
}

/// Requests per key in fixed windows (web chat visitors: per visitor token and per client
/// address). Per instance: behind several instances a client gets at most that many times
/// the rate, which bounds abuse just as well.
pub struct RequestLimiter {
    window: Duration,
    limit: u32,
    tracked: Mutex<HashMap<String, Window>>,
}

impl RequestLimiter {
    pub fn new(window: Duration, limit: u32) -> RequestLimiter {
        RequestLimiter {
            window,
            limit: limit.max(1),
            tracked: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `key`: `Err(seconds)` to wait when the window's allowance is
    /// spent.
    pub fn hit(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut tracked = self
            .tracked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if tracked.len() > SWEEP_ABOVE {
            let window = self.window;
            tracked.retain(|_, kept| now.duration_since(kept.started) < window);
        }
        let entry = tracked.entry(key.to_string()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(entry.started) >= self.window {
            *entry = Window {
                started: now,
                failures: 0,
            };
        }
        if entry.failures >= self.limit {
            return Err(seconds_until(entry.started + self.window, now));
        }
        entry.failures += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_held_from_the_address_that_failed_only() {
        let limiter = LoginLimiter::new(Duration::from_secs(900), 2, 100);
        limiter.record_failure("Ana@example.com", "10.0.0.1");
        assert!(limiter.check("ana@example.com", "10.0.0.1").is_ok());
        limiter.record_failure("ana@example.com", "10.0.0.1");
        let wait = limiter.check("ANA@example.com", "10.0.0.1").unwrap_err();
        assert_eq!(wait, FIRST_HOLD.as_secs());
        // Its owner elsewhere, and other accounts from that address, are not held.
        assert!(limiter.check("ana@example.com", "10.0.0.2").is_ok());
        assert!(limiter.check("bob@example.com", "10.0.0.1").is_ok());
    }

    #[test]
    fn each_further_failure_doubles_the_hold_up_to_the_window() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 1, 100);
        let mut waits = Vec::new();
        for _ in 0..6 {
            limiter.record_failure("ana@example.com", "10.0.0.1");
            waits.push(limiter.check("ana@example.com", "10.0.0.1").unwrap_err());
        }
        assert_eq!(waits, vec![5, 10, 20, 40, 60, 60]);
    }

    #[test]
    fn a_success_clears_its_own_pair_only() {
        let limiter = LoginLimiter::new(Duration::from_secs(900), 1, 100);
        limiter.record_failure("ana@example.com", "10.0.0.1");
        limiter.record_failure("ana@example.com", "10.0.0.2");
        limiter.record_success("ana@example.com", "10.0.0.2");
        assert!(limiter.check("ana@example.com", "10.0.0.2").is_ok());
        assert!(limiter.check("ana@example.com", "10.0.0.1").is_err());
    }

    #[test]
    fn an_address_is_held_across_accounts() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 100, 3);
        for n in 0..3 {
            limiter.record_failure(&format!("user{n}@example.com"), "10.0.0.9");
        }
        assert!(limiter.check("new@example.com", "10.0.0.9").is_err());
        assert!(limiter.check("new@example.com", "10.0.0.8").is_ok());
    }

    #[test]
    fn windows_expire() {
        let limiter = LoginLimiter::new(Duration::from_millis(30), 100, 1);
        limiter.record_failure("ana@example.com", "10.0.0.1");
        assert!(limiter.check("ana@example.com", "10.0.0.1").is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.check("ana@example.com", "10.0.0.1").is_ok());
    }

    #[test]
    fn requests_are_counted_per_key_and_window() {
        let limiter = RequestLimiter::new(Duration::from_secs(60), 3);
        for _ in 0..3 {
            assert_eq!(limiter.hit("visitor:1"), Ok(()));
        }
        let wait = limiter.hit("visitor:1").unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(
            limiter.hit("visitor:2"),
            Ok(()),
            "another key has its own allowance"
        );
        let short = RequestLimiter::new(Duration::from_millis(1), 1);
        assert_eq!(short.hit("a"), Ok(()));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.hit("a"), Ok(()), "a new window starts afresh");
    }
}
