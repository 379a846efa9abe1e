//! A cuttable route to a service (Redis, PostgreSQL): a TCP proxy on 127.0.0.1:<port> that a
//! test can cut (closing every connection and the port, as a service that goes away) and
//! restore on the same port (the service is back). Only that test's instances go through
//! it; the machine's service is untouched.
//!
//! The proxy runs on a runtime of its own: a test that waits on the service synchronously
//! (reading the database directly) must not stop the proxy that carries the wait.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::AbortHandle;

use crate::realtime::PATIENCE;

pub(crate) struct Proxy {
    pub(crate) port: u16,
    upstream: String,
    listener: Mutex<Option<AbortHandle>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`) on a free port.
    pub(crate) async fn start(upstream: String) -> Arc<Proxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-proxy")
            .enable_all()
            .build()
            .expect("the proxy's runtime");
        let listener = {
            let _inside = runtime.enter();
            listen(0).expect("a free port for the proxy")
        };
        let port = listener.local_addr().expect("proxy address").port();
        let proxy = Arc::new(Proxy {
            port,
            upstream,
            listener: Mutex::new(None),
            connections: Arc::default(),
            runtime: Some(runtime),
        });
        proxy.serve(listener);
        proxy
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the proxy's runtime runs until it is dropped")
            .handle()
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream.clone();
        let connections = self.connections.clone();
        let task = self.handle().spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let forward = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                let mut open = connections.lock().unwrap();
                open.retain(|handle| !handle.is_finished());
                open.push(forward.abort_handle());
            }
        });
        *self.listener.lock().unwrap() = Some(task.abort_handle());
    }

    /// The service "goes away": the port closes and every open connection drops.
    pub(crate) fn cut(&self) {
        if let Some(listener) = self.listener.lock().unwrap().take() {
            listener.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// The service is back, on the same address.
    pub(crate) async fn restore(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let listening = {
                let _inside = self.handle().enter();
                listen(self.port)
            };
            match listening {
                Ok(listener) => return self.serve(listener),
                Err(error) if Instant::now() < deadline => {
                    eprintln!("proxy port {} not free yet: {error}", self.port);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("cannot listen again on port {}: {error}", self.port),
            }
        }
    }
}

fn listen(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(([127, 0, 0, 1], port).into())?;
    socket.listen(128)
}
