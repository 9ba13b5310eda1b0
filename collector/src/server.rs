//! The running collector: UDP receiving threads (and Unix datagram and
//! stream sockets) feeding one [`Collector`], the HTTP endpoint, the
//! health clock and the pushed outputs (remote write, forwarding) every
//! export interval.
//!
//! Receiving stays on plain threads blocked in `recv` (the hot path: a
//! datagram in, decoded under the collector's lock, nothing else); a Unix
//! stream connection gets a thread of its own that reads its frames the
//! same way. The HTTP endpoint is hyper's HTTP/1 server on a small tokio
//! runtime: a connection costs a task, not a thread, so idle or trickling
//! clients cannot take the endpoint's capacity; the request head must
//! arrive within 2 s, and past 256 open connections a new one takes the
//! oldest's place. Rendering runs on tokio's blocking pool, so a large
//! `/metrics` does not hold up the other connections.

use crate::collector::Collector;
use crate::ingest::{Reader, Reading};
use crate::outputs::forward::Forwarder;
use crate::outputs::push::Destination;
use crate::outputs::{otlp, prometheus, remote_write};
use crate::settings::Settings;
use crate::view::View;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// `e` with what it was about in front: `UDP 127.0.0.1:8125: Address
/// already in use`.
fn context(e: io::Error, what: std::fmt::Arguments<'_>) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// How long a receiving thread waits in `recv` before it looks whether
/// the server is stopping.
const RECV_WAKE: Duration = Duration::from_millis(50);

/// How long a client has to send a request's head.
const HEADER_DEADLINE: Duration = Duration::from_secs(2);

/// HTTP connections open at once; a new one past them closes the oldest.
const MAX_CONNECTIONS: usize = 256;

/// How long [`Drop`] gives the outputs to finish.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running collector. Stops when dropped, or with [`Server::stop`].
pub struct Server {
    collector: Arc<Mutex<Collector>>,
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
        let mut state = Collector::new(settings.limits());
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
        state.pushes = destinations.clone();
        let collector = Arc::new(Mutex::new(state));
        let stopping = Arc::new(AtomicBool::new(false));
        let mut receivers = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let (c, s) = (collector.clone(), stopping.clone());
            receivers.push(
                std::thread::Builder::new()
                    .name(format!("collector-rx-{i}"))
                    .spawn(move || {
                        let ready = |on| socket.set_nonblocking(on);
                        receive(&c, &s, |buf| socket.recv(buf), ready)
                    })?,
            );
        }
        let mut unix_paths = Vec::new();
        if let Some((path, socket)) = unix {
            let (c, s) = (collector.clone(), stopping.clone());
            receivers.push(
                std::thread::Builder::new()
                    .name("collector-unix".into())
                    .spawn(move || {
                        let ready = |on| socket.set_nonblocking(on);
                        receive(&c, &s, |buf| socket.recv(buf), ready)
                    })?,
            );
            unix_paths.push(path);
        }
        if let Some((path, listener)) = stream {
            let (c, s) = (collector.clone(), stopping.clone());
            receivers.push(
                std::thread::Builder::new()
                    .name("collector-uds".into())
                    .spawn(move || accept_streams(&listener, &c, &s))?,
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
        runtime.spawn(tick(collector.clone(), stopped.clone()));
        let http = match http {
            Some(listener) => {
                let address = listener.local_addr()?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                runtime.spawn(serve(listener, collector.clone(), stopped.clone()));
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
                collector.clone(),
                settings.export_interval(),
                stopped,
            ))
        });
        drop(_in_runtime);
        Ok(Server {
            collector,
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

    /// The collector (lock it to read).
    pub fn collector(&self) -> &Arc<Mutex<Collector>> {
        &self.collector
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

/// A UDP socket bound to `address`, with `SO_REUSEPORT` when `shared`.
fn udp_socket(address: SocketAddr, shared: bool) -> io::Result<UdpSocket> {
    let bind = || -> io::Result<UdpSocket> {
        let socket = Socket::new(
            Domain::for_address(address),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        if shared {
            #[cfg(unix)]
            socket.set_reuse_port(true)?;
        }
        let _ = socket.set_recv_buffer_size(4 << 20);
        socket.bind(&address.into())?;
        socket.set_read_timeout(Some(RECV_WAKE))?;
        Ok(socket.into())
    };
    bind().map_err(|e| context(e, format_args!("UDP {address}")))
}

/// Binds a Unix socket at `path` with `bind`; a socket file left there
/// (by a collector that did not stop) is replaced, any other file is not.
/// An error names the path.
#[cfg(unix)]
fn bind_unix<T>(
    path: &std::path::Path,
    bind: impl FnOnce(&std::path::Path) -> io::Result<T>,
) -> io::Result<T> {
    use std::os::unix::fs::FileTypeExt;
    let what = format!("Unix socket {}", path.display());
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{what}: a file that is not a socket is there"),
            ));
        }
        std::fs::remove_file(path).map_err(|e| context(e, format_args!("{what}")))?;
    }
    bind(path).map_err(|e| context(e, format_args!("{what}")))
}

/// A Unix datagram socket at `path` ([`bind_unix`]).
#[cfg(unix)]
fn unix_socket(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixDatagram> {
    let socket = bind_unix(path, |p| std::os::unix::net::UnixDatagram::bind(p))?;
    socket.set_read_timeout(Some(RECV_WAKE))?;
    Ok(socket)
}

/// A Unix stream socket listening at `path` ([`bind_unix`]), not
/// blocking in `accept`.
#[cfg(unix)]
fn unix_listener(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixListener> {
    let listener = bind_unix(path, |p| std::os::unix::net::UnixListener::bind(p))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(not(unix))]
fn unix_socket(path: &std::path::Path) -> io::Result<std::convert::Infallible> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("Unix socket {}: not on this system", path.display()),
    ))
}

#[cfg(not(unix))]
fn unix_listener(path: &std::path::Path) -> io::Result<std::convert::Infallible> {
    unix_socket(path)
}

/// Unix stream connections read at once; one more is closed as it comes
/// (its sender sees the send fail, and counts it).
const MAX_STREAMS: usize = 64;

/// Takes connections on a Unix stream socket until the server stops, each
/// read by [`receive_frames`] on a thread of its own; waits for those
/// before it returns.
#[cfg(unix)]
fn accept_streams(
    listener: &std::os::unix::net::UnixListener,
    collector: &Arc<Mutex<Collector>>,
    stopping: &Arc<AtomicBool>,
) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    let mut accepted = 0usize;
    while !stopping.load(Ordering::Relaxed) {
        connections.retain(|c| !c.is_finished());
        let Ok((stream, _)) = listener.accept() else {
            std::thread::sleep(RECV_WAKE);
            continue;
        };
        if connections.len() >= MAX_STREAMS {
            continue;
        }
        let (c, s) = (collector.clone(), stopping.clone());
        // Within Linux's 15 characters for a thread's name.
        let name = format!("collector-uds{}", accepted % 100);
        accepted += 1;
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || receive_frames(stream, &c, &s));
        if let Ok(connection) = spawned {
            connections.push(connection);
        }
    }
    for c in connections {
        let _ = c.join();
    }
}

/// Reads a Unix stream connection's frames (each a datagram after its
/// length, 4 bytes little-endian, as the Datadog agent reads them) into
/// the collector with [`receive`], until the peer closes it or the server
/// stops.
#[cfg(unix)]
fn receive_frames(
    stream: std::os::unix::net::UnixStream,
    collector: &Mutex<Collector>,
    stopping: &AtomicBool,
) {
    if (stream.set_nonblocking(false))
        .and_then(|()| stream.set_read_timeout(Some(RECV_WAKE)))
        .is_err()
    {
        return;
    }
    let frames = std::cell::RefCell::new(Frames::new(stream));
    receive(
        collector,
        stopping,
        |buf| frames.borrow_mut().next(buf),
        |on| frames.borrow().stream.set_nonblocking(on),
    );
}

/// A Unix stream read as frames: the bytes read and not yet handed out,
/// kept across reads that end within a frame.
#[cfg(unix)]
struct Frames {
    stream: std::os::unix::net::UnixStream,
    read: Box<[u8]>,
    /// The bytes of `read` not yet handed out.
    start: usize,
    end: usize,
}

/// A frame's length prefix.
const FRAME_PREFIX: usize = 4;

#[cfg(unix)]
impl Frames {
    fn new(stream: std::os::unix::net::UnixStream) -> Self {
        Frames {
            stream,
            read: vec![0; FRAME_PREFIX + MAX_DATAGRAM_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next frame's datagram, copied to the front of `out`: its
    /// length. Reads from the stream only when no whole frame is kept.
    /// Errors: the stream's own (`WouldBlock` when nothing came in time),
    /// `UnexpectedEof` once the peer has closed it, `InvalidData` for a
    /// frame longer than `out`.
    fn next(&mut self, out: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        loop {
            let kept = &self.read[self.start..self.end];
            if let Some((prefix, rest)) = kept.split_first_chunk::<FRAME_PREFIX>() {
                let len = u32::from_le_bytes(*prefix) as usize;
                if len > out.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a frame of {len} bytes"),
                    ));
                }
                if let Some(datagram) = rest.get(..len) {
                    out[..len].copy_from_slice(datagram);
                    self.start += FRAME_PREFIX + len;
                    return Ok(len);
                }
            }
            // Part of a frame: moved to the front, and more read after it.
            self.read.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            match self.stream.read(&mut self.read[self.end..])? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => self.end += n,
            }
        }
    }
}

/// The largest datagram a receiving thread takes (UDP's own limit).
const MAX_DATAGRAM_BYTES: usize = 65_536;

/// Datagrams a receiving thread reads before it takes the collector's lock,
/// at most: taking the lock once for many is what lets several threads
/// share it (two threads on two cores, a datagram a lock: half of one
/// thread's rate; 32 a lock: 1.7 times it, `cargo bench --bench collector
/// -- threads`).
const BATCH: usize = 32;

/// The bytes a receiving thread reads a batch into: a datagram is read
/// while the largest still fits.
const BATCH_BYTES: usize = 256 << 10;

/// A receiving thread: datagrams from `recv` into the collector until the
/// server stops. It waits for one (up to [`RECV_WAKE`]), takes what else
/// has arrived (`nonblocking` turns waiting off and on again), up to
/// [`BATCH`], decodes and checks them, then takes the lock once to take
/// them all in. A `recv` error `UnexpectedEof` (a stream's peer gone) or
/// `InvalidData` (a frame longer than any datagram, counted: nothing
/// after it can be framed) ends it.
fn receive(
    collector: &Mutex<Collector>,
    stopping: &AtomicBool,
    mut recv: impl FnMut(&mut [u8]) -> io::Result<usize>,
    mut nonblocking: impl FnMut(bool) -> io::Result<()>,
) {
    let mut buf = vec![0u8; BATCH_BYTES];
    let mut readers: Vec<Reader> = (0..BATCH).map(|_| Reader::default()).collect();
    let mut ends = Vec::with_capacity(BATCH);
    while !stopping.load(Ordering::Relaxed) {
        let first = match recv(&mut buf[..MAX_DATAGRAM_BYTES]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                if let Ok(mut c) = collector.lock() {
                    c.count_frame_too_large();
                }
                return;
            }
            Err(_) => continue,
        };
        ends.clear();
        ends.push(first);
        if nonblocking(true).is_ok() {
            let mut at = first;
            while ends.len() < BATCH && buf.len() - at >= MAX_DATAGRAM_BYTES {
                match recv(&mut buf[at..at + MAX_DATAGRAM_BYTES]) {
                    Ok(n) => {
                        at += n;
                        ends.push(at);
                    }
                    Err(_) => break,
                }
            }
            let _ = nonblocking(false);
        }
        // Decoded and checked before the lock.
        let mut start = 0;
        let readings: Vec<Reading<'_>> = (readers.iter_mut())
            .zip(&ends)
            .map(|(reader, &end)| {
                let datagram = &buf[start..end];
                start = end;
                reader.read(datagram)
            })
            .collect();
        if let Ok(mut c) = collector.lock() {
            for reading in readings {
                c.take(reading);
            }
        }
    }
}

/// Moves health's window on every second.
async fn tick(collector: Arc<Mutex<Collector>>, mut stopped: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {
                if let Ok(mut c) = collector.lock() {
                    c.tick();
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

/// What runs every export interval.
struct Outputs {
    forwarder: Option<Forwarder>,
    destinations: Vec<Arc<Destination>>,
    labels: BTreeMap<String, String>,
    /// When the cumulative totals started (OTLP's start time).
    started_ns: u64,
}

/// Nanoseconds since the Unix epoch.
fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Outputs {
    /// One run: forwards, and queues every series for each destination.
    fn run(&mut self, collector: &Mutex<Collector>) {
        let Ok(mut c) = collector.lock() else {
            return;
        };
        let held = Instant::now();
        c.close_sets();
        if let Some(f) = &mut self.forwarder {
            c.forwarded = Some(f.forward(&c));
        }
        if self.destinations.is_empty() {
            return;
        }
        let now = unix_ns();
        let wants = |output: &str| self.destinations.iter().any(|d| d.output == output);
        let remote_write = if wants("remote_write") {
            remote_write::requests(View::of(&c), &self.labels, (now / 1_000_000) as i64)
        } else {
            Vec::new()
        };
        let otlp = if wants("otlp") {
            otlp::requests(View::of(&c), &self.labels, self.started_ns, now)
        } else {
            Vec::new()
        };
        c.export_held = held.elapsed();
        drop(c);
        for d in &self.destinations {
            let requests = if d.output == "otlp" {
                &otlp
            } else {
                &remote_write
            };
            for r in requests {
                d.enqueue(r.clone());
            }
        }
    }
}

/// The pushed outputs: every `interval`, and once more when the server
/// stops; then waits for every destination's queue to be sent.
async fn export(
    mut outputs: Outputs,
    collector: Arc<Mutex<Collector>>,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let (drain, draining) = watch::channel(false);
    let senders: Vec<_> = outputs
        .destinations
        .iter()
        .map(|d| {
            let (d, draining) = (d.clone(), draining.clone());
            tokio::spawn(async move { d.run(draining).await })
        })
        .collect();
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        let last = tokio::select! {
            _ = every.tick() => false,
            _ = stopped.changed() => true,
        };
        // Building the requests takes the state's lock and time in
        // proportion to the series (0.2 s at 100,000): off the runtime's
        // thread, so that the senders and the HTTP endpoint go on.
        let c = collector.clone();
        outputs = match tokio::task::spawn_blocking(move || {
            outputs.run(&c);
            outputs
        })
        .await
        {
            Ok(outputs) => outputs,
            Err(_) => break,
        };
        if last {
            break;
        }
    }
    // The last run is queued: the senders finish what is left and end.
    let _ = drain.send(true);
    for s in senders {
        let _ = s.await;
    }
}

/// Accepts HTTP connections until the server stops. Past
/// [`MAX_CONNECTIONS`] open ones, a new connection takes the place of the
/// oldest (closed): clients that trickle or sit idle cannot keep a new one
/// out, and each is closed anyway when its request head is not in within
/// [`HEADER_DEADLINE`].
async fn serve(
    listener: tokio::net::TcpListener,
    collector: Arc<Mutex<Collector>>,
    mut stopped: watch::Receiver<bool>,
) {
    let open: Arc<Mutex<VecDeque<(u64, AbortHandle)>>> = Arc::default();
    let mut next = 0u64;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let id = next;
        next += 1;
        let (collector, registry) = (collector.clone(), open.clone());
        let connection = async move {
            let service = hyper::service::service_fn(move |request| {
                let collector = collector.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(collector, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_DEADLINE)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Ok(mut open) = registry.lock() {
                open.retain(|(at, _)| *at != id);
            }
        };
        // Spawned under the lock, so that the connection cannot take
        // itself off the list before it is on it.
        if let Ok(mut open) = open.lock() {
            if open.len() >= MAX_CONNECTIONS
                && let Some((_, oldest)) = open.pop_front()
            {
                oldest.abort();
            }
            let task = tokio::spawn(connection);
            open.push_back((id, task.abort_handle()));
        }
    }
}

/// `text/plain; version=0.0.4`, Prometheus's text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics 1.0, when the client's `Accept` asks for it.
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn answer(
    collector: Arc<Mutex<Collector>>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let respond = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(v) = content_type.parse() {
            response.headers_mut().insert(CONTENT_TYPE, v);
        }
        response
    };
    let text = "text/plain; charset=utf-8";
    if request.method() != Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            text,
            "only GET is served\n".into(),
        );
    }
    let openmetrics = request
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let path = request.uri().path().to_string();
    let rendered = tokio::task::spawn_blocking(move || {
        let c = collector.lock().ok()?;
        Some(match path.as_str() {
            "/metrics" => Page::Metrics(prometheus::render_metrics_as(View::of(&c), openmetrics)),
            "/health" => {
                let (body, unhealthy) = prometheus::render_health(View::of(&c));
                Page::Health(body, unhealthy)
            }
            _ => Page::NotFound,
        })
    })
    .await;
    match rendered {
        Ok(Some(Page::Metrics(body))) => {
            let kind = if openmetrics {
                OPENMETRICS_TEXT
            } else {
                PROMETHEUS_TEXT
            };
            respond(StatusCode::OK, kind, body)
        }
        Ok(Some(Page::Health(body, unhealthy))) => {
            let status = if unhealthy {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            respond(status, "application/json", body)
        }
        Ok(Some(Page::NotFound)) => respond(
            StatusCode::NOT_FOUND,
            text,
            "not found: GET /metrics or /health\n".into(),
        ),
        _ => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            text,
            "the collector's state is not readable\n".into(),
        ),
    }
}

/// What a path renders to.
enum Page {
    Metrics(String),
    /// The JSON, and whether it is unhealthy.
    Health(String, bool),
    NotFound,
}
