//! Failed sign-ins, counted per account and per client address in fixed windows. A key over
//! its limit is refused until its window ends (the `Retry-After` the client is told).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Window {
    started: Instant,
    failures: u32,
}

pub struct LoginLimiter {
    window: Duration,
    per_account: u32,
    per_address: u32,
    windows: Mutex<HashMap<String, Window>>,
}

/// Above this many tracked keys, expired windows are swept so memory stays bounded.
const SWEEP_ABOVE: usize = 10_000;

impl LoginLimiter {
    pub fn new(window: Duration, per_account: u32, per_address: u32) -> LoginLimiter {
        LoginLimiter {
            window,
            per_account,
            per_address,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &str, address: &str) -> [(String, bool); 2] {
        [
            (format!("account:{}", email.trim().to_lowercase()), true),
            (format!("address:{address}"), false),
        ]
    }

    /// `Err(seconds)` when the account or the address must wait before trying again.
    pub fn check(&self, email: &str, address: &str) -> Result<(), u64> {
        let now = Instant::now();
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut wait = 0u64;
        for (key, is_account) in Self::keys(email, address) {
            let limit = if is_account {
                self.per_account
            } else {
                self.per_address
            };
            if let Some(window) = windows.get(&key) {
                let elapsed = now.duration_since(window.started);
                if elapsed < self.window && window.failures >= limit {
                    wait = wait.max((self.window - elapsed).as_secs().max(1));
                }
            }
        }
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    pub fn record_failure(&self, email: &str, address: &str) {
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > SWEEP_ABOVE {
            let span = self.window;
            windows.retain(|_, window| now.duration_since(window.started) < span);
        }
        for (key, _) in Self::keys(email, address) {
            let window = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(window.started) >= self.window {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures += 1;
        }
    }

    /// A successful sign-in clears the account's failures (not the address's).
    pub fn record_success(&self, email: &str) {
        let key = format!("account:{}", email.trim().to_lowercase());
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_held_after_its_limit() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 2, 100);
        limiter.record_failure("Ana@example.com", "10.0.0.1");
        assert!(limiter.check("ana@example.com", "10.0.0.2").is_ok());
        limiter.record_failure("ana@example.com", "10.0.0.2");
        let wait = limiter.check("ana@example.com", "10.0.0.3").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(limiter.check("bob@example.com", "10.0.0.3").is_ok());
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
        let limiter = LoginLimiter::new(Duration::from_millis(30), 1, 1);
        limiter.record_failure("ana@example.com", "10.0.0.1");
        assert!(limiter.check("ana@example.com", "10.0.0.1").is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.check("ana@example.com", "10.0.0.1").is_ok());
    }
}
