//! Child processes: the `switchboard serve` instances and the baseline servers. Each one is
//! killed when its handle drops, every live one is killed by [`kill_all`] (the Ctrl-C
//! handler), and the kernel kills them should the harness itself die (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every child still running, for the Ctrl-C handler.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn running() -> std::sync::MutexGuard<'static, Vec<u32>> {
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A free port on 127.0.0.1 (the kernel's pick; a child binds it moments later).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|error| format!("finding a free port: {error}"))
}

/// What to start.
pub struct Spec<'a> {
    /// `switchboard-1`, `b1`: names the log file and error messages.
    pub name: &'a str,
    pub program: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where stdout and stderr go (never a pipe nobody reads).
    pub log: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// A running child; dropping it stops it (SIGTERM, then SIGKILL after a few seconds).
pub struct Child {
    pub name: String,
    pub pid: u32,
    pub url: String,
    pub log: PathBuf,
    child: std::process::Child,
}

impl Child {
    /// Starts the child. Call it from async code or the main thread, never from a blocking
    /// pool thread: the parent-death signal is tied to the thread that forks, and pool
    /// threads come and go.
    pub fn spawn(spec: Spec<'_>) -> Result<Child, String> {
        let log =
            File::create(&spec.log).map_err(|error| format!("{}: {error}", spec.log.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|error| format!("{}: {error}", spec.log.display()))?;
        let mut command = Command::new(spec.program);
        command
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .env_remove("RUST_LOG");
        // Only what the bench sets reaches the child: no SWITCHBOARD_* of the caller's shell.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SWITCHBOARD_") {
                command.env_remove(key);
            }
        }
        command.envs(spec.env.iter().map(|(key, value)| (key, value)));
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent's state.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|error| {
            format!(
                "starting {} ({}): {error}",
                spec.name,
                spec.program.display()
            )
        })?;
        let pid = child.id();
        running().push(pid);
        Ok(Child {
            name: spec.name.to_string(),
            pid,
            url: spec.url,
            log: spec.log,
            child,
        })
    }

    /// Waits until `GET {url}{path}` answers 200, the child exits, or `limit` passes.
    pub async fn wait_ready(&mut self, path: &str, limit: Duration) -> Result<Duration, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|error| error.to_string())?;
        let started = Instant::now();
        let url = format!("{}{path}", self.url);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before it was ready; its log ({}) ends:\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log, 15)
                ));
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "{} was not ready within {} s ({url}); its log ({}) ends:\n{}",
                    self.name,
                    limit.as_secs(),
                    self.log.display(),
                    tail(&self.log, 15)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the child is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.alive() {
            signal(self.pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && self.alive() {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.alive() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        running().retain(|pid| *pid != self.pid);
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a pid of our own child and a valid signal number.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Kills every child still running (the Ctrl-C handler; the handles' drops never run then).
pub fn kill_all() {
    for pid in running().drain(..) {
        signal(pid, libc::SIGKILL);
    }
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
