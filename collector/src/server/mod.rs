//! The running collector: UDP receiving threads (and Unix datagram and
//! stream sockets) feeding its [`Shards`], one a thread, the HTTP
//! endpoint, the health clock and the pushed outputs (remote write,
//! forwarding) every export interval.
//!
//! Receiving stays on plain threads blocked in `recv` (the hot path: a
//! batch of datagrams in, decoded, then taken in under its shard's lock,
//! nothing else); a Unix stream connection gets a thread of its own that
//! reads its frames the same way, into the Unix streams' shard. The HTTP
//! endpoint is hyper's HTTP/1 server on a small tokio runtime: a
//! connection costs a task, not a thread, so idle or trickling
//! clients cannot take the endpoint's capacity; the request head must
//! arrive within 2 s, and past 256 open connections a new one takes the
//! oldest's place. Rendering runs on tokio's blocking pool, so a large
//! `/metrics` does not hold up the other connections.

mod http;
mod pushed;
mod receive;
mod sockets;
mod streams;

use crate::outputs::forward::Forwarder;
use crate::outputs::push::Destination;
use crate::outputs::{otlp, remote_write};
use crate::settings::Settings;
use crate::shards::Shards;
use pushed::{Outputs, export, unix_ns};
use receive::receive;
use sockets::{context, udp_socket, unix_listener, unix_socket};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use streams::accept_streams;
use tokio::sync::watch;

/// How long [`Drop`] gives the outputs to finish.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running collector. Stops when dropped, or with [`Server::stop`].
pub struct Server {
    shards: Arc<Shards>,
    udp: SocketAddr,
    http: Option<SocketAddr>,
    /// The Unix socket files it made, removed at stop.
    unix: Vec<PathBuf>,
    stopping: Arc<AtomicBool>,
    receivers: Vec<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    /// Tells the tasks to stop (and the outputs to run a last time).
    stop: watch::Sender<bool>,
    /// The pushed outputs' task, which ends after its last run once every
    /// destination's queue is sent.
    exporter: Option<tokio::task::JoinHandle<()>>,
    /// The pushed destinations, whose leftovers a timed-out stop counts.
    destinations: Vec<Arc<Destination>>,
}

impl Server {
    /// Binds the UDP address (`ingest_threads` sockets with
    /// `SO_REUSEPORT`, each asking for a 4 MiB receive buffer), the Unix
    /// sockets and the HTTP address as `settings` say, connects the
    /// forwarding socket, and starts. An error names the address or
    /// target it is about.
    pub fn start(settings: &Settings) -> io::Result<Server> {
        let settings = settings
            .clone()
            .checked()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let listen = &settings.listen;
        let address: SocketAddr = listen
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{listen}: {e}")))?;
        let threads = settings.ingest_thread_count();
        let mut sockets = vec![udp_socket(address, threads > 1)?];
        let udp = sockets[0].local_addr()?;
        for _ in 1..threads {
            // The same port as the first (which may have been chosen by
            // the system, for port 0).
            sockets.push(udp_socket(udp, true)?);
        }
        let unix = match &settings.listen_unix {
            Some(path) => Some((path.clone(), unix_socket(path)?)),
            None => None,
        };
        let stream = match &settings.listen_unix_stream {
            Some(path) => Some((path.clone(), unix_listener(path)?)),
            None => None,
        };
        let forwarder = match &settings.forward {
            Some(f) => Some(
                Forwarder::new(&f.target, f.dialect, f.max_datagram)
                    .map_err(|e| context(e, format_args!("forwarding to {}", f.target)))?,
            ),
            None => None,
        };
        let http = match &settings.http {
            Some(address) => {
                let listener = std::net::TcpListener::bind(address.as_str())
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(|e| context(e, format_args!("HTTP {address}")))?;
                Some(listener)
            }
            None => None,
        };
        // A shard for each UDP socket, the Unix datagram socket, and the
        // Unix stream connections together.
        let count = threads + usize::from(unix.is_some()) + usize::from(stream.is_some());
        let state = Shards::new(settings.limits(), count);
        state.set_histograms(settings.histograms());
        let memory = state.memory().clone();
        let remote_writes = (settings.remote_write.iter())
            .map(|url| Destination::new(&remote_write::PROTOCOL, url, memory.clone()));
        let otlps = (settings.otlp.iter())
            .map(|url| Destination::new(&otlp::PROTOCOL, url, memory.clone()));
        let destinations = remote_writes
            .chain(otlps)
            .map(|d| d.map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        state.set_pushes(destinations.clone());
        let shards = Arc::new(state);
        let stopping = Arc::new(AtomicBool::new(false));
        let mut receivers = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let (c, s) = (shards.clone(), stopping.clone());
            receivers.push(
                std::thread::Builder::new()
                    .name(format!("collector-rx-{i}"))
                    .spawn(move || {
                        let ready = |on| socket.set_nonblocking(on);
                        receive(&c, i, &s, |buf| socket.recv(buf), ready)
                    })?,
            );
        }
        let mut unix_paths = Vec::new();
        let mut shard = threads;
        if let Some((path, socket)) = unix {
            let (c, s) = (shards.clone(), stopping.clone());
            receivers.push(
                std::thread::Builder::new()
                    .name("collector-unix".into())
                    .spawn(move || {
                        let ready = |on| socket.set_nonblocking(on);
                        receive(&c, shard, &s, |buf| socket.recv(buf), ready)
                    })?,
            );
            unix_paths.push(path);
            shard += 1;
        }
        if let Some((path, listener)) = stream {
            let (c, s) = (shards.clone(), stopping.clone());
            receivers.push(
                std::thread::Builder::new()
                    .name("collector-uds".into())
                    .spawn(move || accept_streams(&listener, &c, shard, &s))?,
            );
            unix_paths.push(path);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("collector-io")
            .enable_all()
            .build()?;
        let (stop, stopped) = watch::channel(false);
        let _in_runtime = runtime.enter();
        runtime.spawn(tick(shards.clone(), stopped.clone()));
        let http = match http {
            Some(listener) => {
                let address = listener.local_addr()?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                runtime.spawn(http::serve(listener, shards.clone(), stopped.clone()));
                Some(address)
            }
            None => None,
        };
        // Always: StatsD sets close their interval there too.
        let exporter = Some({
            let outputs = Outputs {
                forwarder,
                destinations: destinations.clone(),
                labels: settings.labels.clone(),
                started_ns: unix_ns(),
            };
            runtime.spawn(export(
                outputs,
                shards.clone(),
                settings.export_interval(),
                stopped,
            ))
        });
        drop(_in_runtime);
        Ok(Server {
            shards,
            udp,
            http,
            unix: unix_paths,
            stopping,
            receivers,
            runtime: Some(runtime),
            stop,
            exporter,
            destinations,
        })
    }

    /// The UDP address it receives on.
    pub fn udp_address(&self) -> SocketAddr {
        self.udp
    }

    /// The HTTP address, when serving.
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.http
    }

    /// The collector's shards ([`Shards::view`] reads them).
    pub fn shards(&self) -> &Arc<Shards> {
        &self.shards
    }

    /// Stops receiving, runs the pushed outputs a last time and waits up
    /// to `timeout` for them; whether they finished in time.
    pub fn stop(mut self, timeout: Duration) -> bool {
        self.halt(timeout)
    }

    fn halt(&mut self, timeout: Duration) -> bool {
        self.stopping.store(true, Ordering::Relaxed);
        for r in self.receivers.drain(..) {
            let _ = r.join();
        }
        let _ = self.stop.send(true);
        let mut finished = true;
        if let Some(runtime) = self.runtime.take() {
            if let Some(exporter) = self.exporter.take() {
                finished = runtime
                    .block_on(async { tokio::time::timeout(timeout, exporter).await })
                    .is_ok();
            }
            for d in &self.destinations {
                d.abandon();
            }
            runtime.shutdown_timeout(Duration::from_millis(100));
        }
        for path in self.unix.drain(..) {
            let _ = std::fs::remove_file(path);
        }
        finished
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt(STOP_TIMEOUT);
    }
}

/// Moves health's window on every second.
async fn tick(shards: Arc<Shards>, mut stopped: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {
                shards.tick();
            }
            _ = stopped.changed() => return,
        }
    }
}
