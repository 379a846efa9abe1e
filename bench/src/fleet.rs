//! Many open WebSockets at once, each read by a task of its own (which also answers the
//! server's pings), reporting when a marked `message.created` frame arrives and when a
//! socket ends. Used for the server's sockets and for B3's alike.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Socket};

/// A marked frame on one socket.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub socket: usize,
    pub marker: u64,
    pub at: Instant,
}

enum Report {
    Arrival(Arrival),
    Ended { how: String },
}

/// What opening a batch of sockets gave.
#[derive(Debug, Default)]
pub struct Opened {
    pub connected: usize,
    pub refused: usize,
    pub first_refusal: Option<String>,
    pub took: Duration,
}

pub struct Fleet {
    shutdown: watch::Sender<bool>,
    readers: Vec<JoinHandle<()>>,
    sender: mpsc::UnboundedSender<Report>,
    reports: mpsc::UnboundedReceiver<Report>,
    /// Sockets opened so far (indexes run on across batches).
    pub opened: usize,
    /// Sockets that ended, by how (close code, `ended`, an error).
    pub ended: BTreeMap<String, usize>,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

impl Fleet {
    pub fn new() -> Fleet {
        let (shutdown, _) = watch::channel(false);
        let (sender, reports) = mpsc::unbounded_channel();
        Fleet {
            shutdown,
            readers: Vec::new(),
            sender,
            reports,
            opened: 0,
            ended: BTreeMap::new(),
        }
    }

    /// Sockets still open, as far as the reports read so far tell.
    pub fn open(&self) -> usize {
        self.opened - self.ended.values().sum::<usize>()
    }

    /// Opens `count` more sockets, `concurrency` connects at a time; `url(index)` is the
    /// WebSocket URL (with its token) of the socket with that fleet-wide index. Sources
    /// rotate over [`client::SOURCES`] loopback addresses.
    pub async fn grow(
        &mut self,
        count: usize,
        concurrency: usize,
        url: impl Fn(usize) -> String,
    ) -> Opened {
        let started = Instant::now();
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut connects = Vec::with_capacity(count);
        for index in self.opened..self.opened + count {
            let (url, permits) = (url(index), permits.clone());
            connects.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
                client::connect(&url, Some(client::source_for(index))).await
            }));
        }
        let mut opened = Opened::default();
        for (offset, connect) in connects.into_iter().enumerate() {
            let socket = match connect.await {
                Ok(Ok(socket)) => socket,
                Ok(Err(error)) => {
                    opened.refused += 1;
                    opened.first_refusal.get_or_insert(error);
                    continue;
                }
                Err(error) => {
                    opened.refused += 1;
                    opened.first_refusal.get_or_insert(error.to_string());
                    continue;
                }
            };
            opened.connected += 1;
            let index = self.opened + offset;
            self.readers.push(tokio::spawn(read(
                index,
                socket,
                self.sender.clone(),
                self.shutdown.subscribe(),
            )));
        }
        // Refused sockets take an index too, and count as ended.
        self.opened += count;
        if opened.refused > 0 {
            *self.ended.entry("refused".into()).or_default() += opened.refused;
        }
        opened.took = started.elapsed();
        opened
    }

    /// Waits until `expected` distinct sockets have received the frame marked `marker`, or
    /// `limit` passes; returns the arrivals (one per socket). Other markers' frames (late
    /// ones of an earlier round) are skipped.
    pub async fn arrivals(
        &mut self,
        marker: u64,
        expected: usize,
        limit: Duration,
    ) -> Vec<Arrival> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = HashSet::with_capacity(expected);
        let mut arrivals = Vec::with_capacity(expected);
        while arrivals.len() < expected {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(Report::Arrival(arrival))) => {
                    if arrival.marker == marker && seen.insert(arrival.socket) {
                        arrivals.push(arrival);
                    }
                }
                Ok(Some(Report::Ended { how })) => *self.ended.entry(how).or_default() += 1,
                Ok(None) | Err(_) => break,
            }
        }
        arrivals
    }

    /// Reads the reports that are waiting (sockets that ended), without waiting.
    pub fn settle(&mut self) {
        while let Ok(report) = self.reports.try_recv() {
            if let Report::Ended { how } = report {
                *self.ended.entry(how).or_default() += 1;
            }
        }
    }

    /// Closes every socket (a close frame each, a few seconds for all) and waits for the
    /// readers.
    pub async fn close(mut self) {
        let _ = self.shutdown.send(true);
        let readers = std::mem::take(&mut self.readers);
        let all = futures_util::future::join_all(readers);
        let _ = tokio::time::timeout(Duration::from_secs(10), all).await;
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for reader in &self.readers {
            reader.abort();
        }
    }
}

async fn read(
    index: usize,
    mut socket: Socket,
    reports: mpsc::UnboundedSender<Report>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(3), async {
                    let _ = socket.send(Message::Close(None)).await;
                    // Until the server's answering close frame; then this side closes the
                    // connection (actix would wait a second for the client to go first).
                    while let Some(Ok(message)) = socket.next().await {
                        if message.is_close() {
                            break;
                        }
                    }
                })
                .await;
                return;
            }
            frame = socket.next() => {
                let ended = match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(marker) = client::find_marker(text.as_str()) {
                            let arrival = Arrival { socket: index, marker, at: Instant::now() };
                            let _ = reports.send(Report::Arrival(arrival));
                        }
                        None
                    }
                    Some(Ok(Message::Close(frame))) => Some(
                        frame.map_or("close".to_string(), |frame| u16::from(frame.code).to_string()),
                    ),
                    Some(Ok(_)) => None,
                    Some(Err(error)) => Some(format!("error: {error}")),
                    None => Some("ended".to_string()),
                };
                if let Some(how) = ended {
                    let _ = reports.send(Report::Ended { how });
                    return;
                }
            }
        }
    }
}
