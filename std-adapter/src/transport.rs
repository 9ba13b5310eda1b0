//! Where the client sends, and the one seam between the worker and a
//! socket: an [`Address`] URL picks the transport, each a
//! [`ClientTransport`] (the core's [`Transport`] and what the worker needs
//! of a socket besides).
//!
//! * `udp://host:port`, or a bare `host:port`: UDP ([`UdpTransport`]);
//! * `unixgram:///path`: a Unix datagram socket ([`UnixDatagramTransport`]),
//!   as the Datadog agent and StatsD daemons in containers listen on;
//! * `unix:///path`: a Unix stream socket, each datagram a frame prefixed
//!   with its length ([`UnixStreamTransport`]), as the Datadog agent reads
//!   one.

use crate::socket_info::SocketInfo;
use crate::udp::UdpTransport;
use stats_core::{SendError, Transport};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A destination, from its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// `udp://host:port` or `host:port`: the host name is looked up again
    /// every `transport.resolve_interval_s`.
    Udp(String),
    /// `unixgram:///path`: a Unix datagram socket.
    UnixDatagram(PathBuf),
    /// `unix:///path`: a Unix stream socket, each datagram a
    /// length-prefixed frame.
    UnixStream(PathBuf),
}

/// Bytes per datagram on a Unix socket unless configured: what the
/// Datadog agent, datadog-go and metrics-exporter-dogstatsd use there.
pub const UNIX_MAX_DATAGRAM: usize = 8_192;

/// What an address must look like, for errors.
pub const ADDRESS_FORMS: &str = "host:port, udp://host:port, unixgram:///path or unix:///path";

impl Address {
    /// Reads `text`: `udp://host:port`, `host:port`, `unixgram:///path`
    /// or `unix:///path` (absolute paths). `None` if it is none of them.
    pub fn parse(text: &str) -> Option<Address> {
        let unix = |path: &str, make: fn(PathBuf) -> Address| {
            path.starts_with('/').then(|| make(PathBuf::from(path)))
        };
        if let Some(path) = text.strip_prefix("unixgram://") {
            return unix(path, Address::UnixDatagram);
        }
        if let Some(path) = text.strip_prefix("unix://") {
            return unix(path, Address::UnixStream);
        }
        let host_port = text.strip_prefix("udp://").unwrap_or(text);
        if host_port.contains("://") {
            return None;
        }
        let (host, port) = host_port.rsplit_once(':')?;
        let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
        (!host.is_empty() && port_ok).then(|| Address::Udp(host_port.to_string()))
    }

    /// Bytes per datagram unless configured:
    /// [`DEFAULT_MAX_DATAGRAM`](stats_core::wire::DEFAULT_MAX_DATAGRAM)
    /// (1,432) over UDP, [`UNIX_MAX_DATAGRAM`] (8,192) on a Unix socket.
    pub const fn default_max_datagram(&self) -> usize {
        match self {
            Address::Udp(_) => stats_core::wire::DEFAULT_MAX_DATAGRAM,
            Address::UnixDatagram(_) | Address::UnixStream(_) => UNIX_MAX_DATAGRAM,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Udp(host_port) => write!(f, "udp://{host_port}"),
            Address::UnixDatagram(path) => write!(f, "unixgram://{}", path.display()),
            Address::UnixStream(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// A transport the worker drives: the core's [`Transport`], and what the
/// worker needs of a socket besides. An application may supply its own
/// ([`Stats::start_with_transport`](crate::Stats::start_with_transport)).
pub trait ClientTransport: Transport + Send {
    /// What the socket got from the kernel, for the report.
    fn info(&self) -> SocketInfo {
        SocketInfo::default()
    }

    /// Called every `transport.resolve_interval_s`: looks the destination up again,
    /// or connects again; what changed, for the log, if anything did.
    fn maintain(&mut self) -> io::Result<Option<String>> {
        Ok(None)
    }

    /// Where it sends, for the log.
    fn describe(&self) -> String;
}

impl ClientTransport for UdpTransport {
    fn info(&self) -> SocketInfo {
        UdpTransport::info(self)
    }

    fn maintain(&mut self) -> io::Result<Option<String>> {
        Ok(self
            .re_resolve()?
            .then(|| format!("{} now resolves to {}", self.address(), self.peer())))
    }

    fn describe(&self) -> String {
        self.peer().to_string()
    }
}

/// Connects the transport `address` names.
pub(crate) fn connect(
    address: &Address,
    max_datagram: usize,
    send_buffer_bytes: usize,
    clock: (Instant, u64),
) -> io::Result<Box<dyn ClientTransport>> {
    Ok(match address {
        Address::Udp(host_port) => Box::new(UdpTransport::connect(
            host_port,
            max_datagram,
            send_buffer_bytes,
            clock,
        )?),
        #[cfg(unix)]
        Address::UnixDatagram(path) => Box::new(UnixDatagramTransport::connect(
            path.clone(),
            max_datagram,
            send_buffer_bytes,
            clock,
        )),
        #[cfg(unix)]
        Address::UnixStream(path) => Box::new(UnixStreamTransport::connect(
            path.clone(),
            max_datagram,
            send_buffer_bytes,
            clock,
        )),
        #[cfg(not(unix))]
        Address::UnixDatagram(path) | Address::UnixStream(path) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{}: not on this system", path.display()),
            ));
        }
    })
}

/// How long a Unix transport waits before it connects again after the
/// socket went away, at first; it doubles up to [`MAX_RECONNECT`].
const FIRST_RECONNECT: Duration = Duration::from_millis(100);

/// The longest wait between two attempts to connect again.
const MAX_RECONNECT: Duration = Duration::from_secs(5);

/// When a Unix transport may try to connect again: at once at first, then
/// after [`FIRST_RECONNECT`] doubling to [`MAX_RECONNECT`] while attempts
/// fail.
#[derive(Clone, Copy, Debug)]
struct Reconnect {
    at: Instant,
    wait: Duration,
}

impl Reconnect {
    fn new(now: Instant) -> Self {
        Reconnect {
            at: now,
            wait: FIRST_RECONNECT,
        }
    }

    fn due(&self) -> bool {
        Instant::now() >= self.at
    }

    /// An attempt failed, or the connection broke: wait before the next.
    fn failed(&mut self) {
        self.at = Instant::now() + self.wait;
        self.wait = (self.wait * 2).min(MAX_RECONNECT);
    }

    fn connected(&mut self) {
        self.wait = FIRST_RECONNECT;
    }
}

/// A Unix datagram socket connected to `path`, non-blocking. When the
/// receiver is not there (no socket file, or nobody reading it) sends fail
/// as refused, and it connects again, with backoff, until it is: a
/// receiver that starts late, restarts, or makes its socket file anew is
/// found again.
#[cfg(unix)]
pub struct UnixDatagramTransport {
    peer: UnixPeer,
    socket: Option<std::os::unix::net::UnixDatagram>,
}

/// What both Unix transports keep of their destination: its path, the
/// datagram size and send buffer, what the kernel granted, when to try
/// connecting again, and the clock.
#[cfg(unix)]
struct UnixPeer {
    path: PathBuf,
    max_datagram: usize,
    send_buffer_bytes: usize,
    info: SocketInfo,
    reconnect: Reconnect,
    started: Instant,
    epoch: u64,
}

#[cfg(unix)]
impl UnixPeer {
    fn new(
        path: PathBuf,
        max_datagram: usize,
        send_buffer_bytes: usize,
        clock: (Instant, u64),
    ) -> Self {
        UnixPeer {
            path,
            max_datagram,
            send_buffer_bytes,
            info: SocketInfo::default(),
            reconnect: Reconnect::new(clock.0),
            started: clock.0,
            epoch: clock.1,
        }
    }

    /// Takes an attempt to connect: a socket that connected gets its send
    /// buffer (best effort: the kernel caps it at net.core.wmem_max) and
    /// ends the backoff; a failure backs off.
    fn connected<S: std::os::fd::AsFd>(&mut self, attempt: io::Result<S>) -> Option<S> {
        match attempt {
            Ok(s) => {
                let r = socket2::SockRef::from(&s);
                let _ = r.set_send_buffer_size(self.send_buffer_bytes);
                self.info.send_buffer_bytes = r.send_buffer_size().unwrap_or(0);
                self.reconnect.connected();
                Some(s)
            }
            Err(_) => {
                self.reconnect.failed();
                None
            }
        }
    }

    fn clock_ns(&self) -> u64 {
        self.epoch + self.started.elapsed().as_nanos() as u64
    }
}

#[cfg(unix)]
impl UnixDatagramTransport {
    /// A transport to the socket at `path` (connected now if it can be, at
    /// the first send otherwise). `clock` is `(started, epoch)`, as for
    /// [`UdpTransport::connect`].
    pub fn connect(
        path: PathBuf,
        max_datagram: usize,
        send_buffer_bytes: usize,
        clock: (Instant, u64),
    ) -> Self {
        let mut t = UnixDatagramTransport {
            peer: UnixPeer::new(path, max_datagram, send_buffer_bytes, clock),
            socket: None,
        };
        t.reconnect();
        t
    }

    /// Connects a new socket to the path; whether it could.
    fn reconnect(&mut self) -> bool {
        let attempt = std::os::unix::net::UnixDatagram::unbound().and_then(|s| {
            s.set_nonblocking(true)?;
            s.connect(&self.peer.path)?;
            Ok(s)
        });
        self.socket = self.peer.connected(attempt);
        self.socket.is_some()
    }

    /// The socket, connected again first if it went away and the backoff
    /// has passed.
    fn socket(&mut self) -> Option<&std::os::unix::net::UnixDatagram> {
        if self.socket.is_none() && self.peer.reconnect.due() {
            self.reconnect();
        }
        self.socket.as_ref()
    }
}

#[cfg(unix)]
impl Transport for UnixDatagramTransport {
    /// Sends one datagram. A full socket buffer is [`SendError::WouldBlock`]
    /// (kept, tried again); a receiver that is gone fails the send as
    /// refused and the socket is connected again later.
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        let Some(socket) = self.socket() else {
            return Err(SendError::Refused);
        };
        match socket.send(datagram) {
            Ok(_) => Ok(()),
            Err(e) => {
                let error = unix_send_error(&e);
                if error == SendError::Refused {
                    // The receiver closed or its file went: connect again.
                    self.socket = None;
                    self.peer.reconnect.failed();
                }
                Err(error)
            }
        }
    }

    fn max_datagram(&self) -> usize {
        self.peer.max_datagram
    }

    fn clock_ns(&self) -> Option<u64> {
        Some(self.peer.clock_ns())
    }
}

#[cfg(unix)]
impl ClientTransport for UnixDatagramTransport {
    fn info(&self) -> SocketInfo {
        self.peer.info
    }

    fn maintain(&mut self) -> io::Result<Option<String>> {
        let was = self.socket.is_some();
        if !was && self.reconnect() {
            return Ok(Some(format!("connected to {}", self.describe())));
        }
        Ok(None)
    }

    fn describe(&self) -> String {
        format!("unixgram://{}", self.peer.path.display())
    }
}

/// A Unix stream socket connected to `path`, non-blocking: each datagram
/// goes as a frame, its length in 4 bytes little-endian and then its bytes,
/// as the Datadog agent reads a stream. A frame the socket takes in part is
/// finished before the next one starts (the next waits, as on a full
/// buffer); a connection that breaks with a frame part-written loses that
/// frame, counted ([`SocketInfo::frames_cut`]). It connects again with
/// backoff, as [`UnixDatagramTransport`] does.
#[cfg(unix)]
pub struct UnixStreamTransport {
    peer: UnixPeer,
    stream: Option<std::os::unix::net::UnixStream>,
    /// The frame being written, and how much of it is written.
    frame: Vec<u8>,
    written: usize,
}

#[cfg(unix)]
impl UnixStreamTransport {
    /// A transport to the listening socket at `path` (connected now if it
    /// can be, at a later send otherwise). `clock` as for
    /// [`UdpTransport::connect`].
    pub fn connect(
        path: PathBuf,
        max_datagram: usize,
        send_buffer_bytes: usize,
        clock: (Instant, u64),
    ) -> Self {
        let mut t = UnixStreamTransport {
            peer: UnixPeer::new(path, max_datagram, send_buffer_bytes, clock),
            stream: None,
            frame: Vec::with_capacity(4 + max_datagram),
            written: 0,
        };
        t.connect_now();
        t
    }

    /// Connects to the path; whether it could.
    fn connect_now(&mut self) -> bool {
        let attempt = std::os::unix::net::UnixStream::connect(&self.peer.path).and_then(|s| {
            s.set_nonblocking(true)?;
            Ok(s)
        });
        self.stream = self.peer.connected(attempt);
        self.stream.is_some()
    }

    /// The connection broke: a frame part-written is lost (counted).
    fn broken(&mut self) {
        if self.written > 0 && self.written < self.frame.len() {
            self.peer.info.frames_cut += 1;
        }
        self.frame.clear();
        self.written = 0;
        self.stream = None;
        self.peer.reconnect.failed();
    }

    /// Writes what is left of the current frame; whether it is all out.
    fn finish_frame(&mut self) -> Result<bool, SendError> {
        while self.written < self.frame.len() {
            let Some(stream) = self.stream.as_ref() else {
                return Err(SendError::Refused);
            };
            match write_some(stream, &self.frame[self.written..]) {
                Ok(0) => {
                    self.broken();
                    return Err(SendError::Refused);
                }
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let error = unix_send_error(&e);
                    self.broken();
                    return Err(error);
                }
            }
        }
        Ok(true)
    }
}

#[cfg(unix)]
impl Transport for UnixStreamTransport {
    /// Sends one datagram as a frame. It waits ([`SendError::WouldBlock`],
    /// the datagram kept) while the frame before is not all written or the
    /// socket takes none of this one; a frame taken in part counts as sent
    /// and is finished first at the next call.
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        let Ok(len) = u32::try_from(datagram.len()) else {
            return Err(SendError::TooLarge);
        };
        if self.stream.is_none() && !(self.peer.reconnect.due() && self.connect_now()) {
            return Err(SendError::Refused);
        }
        if !self.finish_frame()? {
            return Err(SendError::WouldBlock);
        }
        self.frame.clear();
        self.frame.extend_from_slice(&len.to_le_bytes());
        self.frame.extend_from_slice(datagram);
        self.written = 0;
        match self.finish_frame() {
            // Not a byte of it went: as if never tried.
            Ok(false) if self.written == 0 => {
                self.frame.clear();
                Err(SendError::WouldBlock)
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn max_datagram(&self) -> usize {
        self.peer.max_datagram
    }

    fn clock_ns(&self) -> Option<u64> {
        Some(self.peer.clock_ns())
    }
}

#[cfg(unix)]
impl ClientTransport for UnixStreamTransport {
    fn info(&self) -> SocketInfo {
        self.peer.info
    }

    fn maintain(&mut self) -> io::Result<Option<String>> {
        if self.stream.is_none() && self.connect_now() {
            return Ok(Some(format!("connected to {}", self.describe())));
        }
        // A frame left part-written goes on even when nothing new is sent.
        let _ = self.finish_frame();
        Ok(None)
    }

    fn describe(&self) -> String {
        format!("unix://{}", self.peer.path.display())
    }
}

/// Writes what `stream` takes of `bytes` now, without raising SIGPIPE on a
/// broken connection where the system allows (a host program may not
/// ignore the signal, as Rust's own start-up does).
#[cfg(target_os = "linux")]
fn write_some(stream: &std::os::unix::net::UnixStream, bytes: &[u8]) -> io::Result<usize> {
    rustix::net::send(stream, bytes, rustix::net::SendFlags::NOSIGNAL).map_err(io::Error::from)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn write_some(mut stream: &std::os::unix::net::UnixStream, bytes: &[u8]) -> io::Result<usize> {
    use std::io::Write;
    stream.write(bytes)
}

/// A Unix socket's send error as the exporter counts it.
#[cfg(unix)]
fn unix_send_error(e: &io::Error) -> SendError {
    match e.kind() {
        io::ErrorKind::WouldBlock => SendError::WouldBlock,
        // ENOBUFS: the receiver's queue is full (Linux answers a full Unix
        // datagram queue with EAGAIN, others with ENOBUFS).
        _ if e.raw_os_error() == Some(105) => SendError::WouldBlock,
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::NotFound
        | io::ErrorKind::NotConnected
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset => SendError::Refused,
        _ if e.raw_os_error() == Some(90) => SendError::TooLarge, // EMSGSIZE
        _ => SendError::Other,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn addresses_read_as_urls_or_host_port() {
        for (text, want) in [
            (
                "localhost:8125",
                Some(Address::Udp("localhost:8125".into())),
            ),
            (
                "udp://10.0.0.1:9000",
                Some(Address::Udp("10.0.0.1:9000".into())),
            ),
            ("[::1]:8125", Some(Address::Udp("[::1]:8125".into()))),
            (
                "unixgram:///run/statsd.sock",
                Some(Address::UnixDatagram("/run/statsd.sock".into())),
            ),
            ("unixgram://relative.sock", None),
            (
                "unix:///var/run/datadog/dsd.socket",
                Some(Address::UnixStream("/var/run/datadog/dsd.socket".into())),
            ),
            ("unix://relative", None),
            ("localhost", None),
            ("localhost:0", None),
            (":8125", None),
            ("tcp://host:1", None),
        ] {
            assert_eq!(Address::parse(text), want, "{text}");
        }
        let a = Address::parse("unixgram:///tmp/x.sock").unwrap();
        assert_eq!(Address::parse(&a.to_string()), Some(a));
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stats-unix-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("s.sock")
    }

    #[test]
    fn a_receiver_gone_then_back_is_found_again() {
        let path = temp_path("back");
        let _ = std::fs::remove_file(&path);
        let mut t =
            UnixDatagramTransport::connect(path.clone(), 8192, 1 << 20, (Instant::now(), 0));
        // Nobody there yet.
        assert_eq!(t.send(b"early"), Err(SendError::Refused));
        let receiver = UnixDatagram::bind(&path).unwrap();
        receiver.set_nonblocking(true).unwrap();
        // Within the backoff it does not try; after it, it connects.
        std::thread::sleep(FIRST_RECONNECT * 2);
        assert_eq!(t.send(b"one"), Ok(()));
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"one");
        // The file removed and made anew by a new receiver.
        drop(receiver);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(t.send(b"lost"), Err(SendError::Refused));
        let receiver = UnixDatagram::bind(&path).unwrap();
        std::thread::sleep(FIRST_RECONNECT * 2);
        assert_eq!(t.send(b"two"), Ok(()));
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"two");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Reads frames (4-byte little-endian length, then the bytes) until
    /// the connection ends or is quiet for a second.
    fn frames(mut stream: std::os::unix::net::UnixStream) -> Vec<Vec<u8>> {
        use std::io::Read;
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut out = Vec::new();
        let mut len = [0u8; 4];
        while stream.read_exact(&mut len).is_ok() {
            let mut frame = vec![0; u32::from_le_bytes(len) as usize];
            if stream.read_exact(&mut frame).is_err() {
                break;
            }
            out.push(frame);
        }
        out
    }

    /// Sends `datagram` until the transport takes it (a full buffer keeps
    /// it); panics on another error.
    fn send_until_taken(t: &mut UnixStreamTransport, datagram: &[u8]) {
        loop {
            match t.send(datagram) {
                Ok(()) => return,
                Err(SendError::WouldBlock) => std::thread::sleep(Duration::from_micros(50)),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_stream_carries_every_datagram_as_a_whole_frame_in_order() {
        let path = temp_path("stream");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut t = UnixStreamTransport::connect(path.clone(), 8192, 1 << 16, (Instant::now(), 0));
        let (stream, _) = listener.accept().unwrap();
        // The receiver starts late: the socket buffer fills first, and
        // frames are taken in part.
        let sent: Vec<Vec<u8>> = (0..2_000u32)
            .map(|i| vec![(i % 251) as u8; 1 + (i as usize * 37) % 8_000])
            .collect();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            frames(stream)
        });
        for d in &sent {
            send_until_taken(&mut t, d);
        }
        // The last frame out, then the connection closed.
        while !t.finish_frame().unwrap() {
            std::thread::sleep(Duration::from_micros(50));
        }
        drop(t);
        assert_eq!(reader.join().unwrap(), sent);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_stream_receiver_gone_then_back_is_found_again() {
        let path = temp_path("stream-back");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut t = UnixStreamTransport::connect(path.clone(), 8192, 1 << 16, (Instant::now(), 0));
        let (stream, _) = listener.accept().unwrap();
        t.send(b"one").unwrap();
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        let got = frames(stream);
        assert_eq!(got, [b"one".to_vec()]);
        // The peer is gone: a send fails (at the latest the second).
        let failed = (0..10).any(|_| t.send(b"lost").is_err());
        assert!(failed, "sends to a closed connection fail");
        assert_eq!(t.send(b"lost"), Err(SendError::Refused), "not yet due");
        // A new listener at the path: found after the backoff.
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::sleep(MAX_RECONNECT.min(FIRST_RECONNECT * 8));
        let start = Instant::now();
        while t.send(b"two").is_err() {
            assert!(start.elapsed() < MAX_RECONNECT * 2, "not found again");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(t);
        let (stream, _) = listener.accept().unwrap();
        assert_eq!(frames(stream), [b"two".to_vec()]);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_full_socket_buffer_keeps_the_datagram() {
        let path = temp_path("full");
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).unwrap();
        let mut t =
            UnixDatagramTransport::connect(path.clone(), 8192, 1 << 20, (Instant::now(), 0));
        let datagram = [7u8; 4096];
        let mut sent = 0;
        let full = loop {
            match t.send(&datagram) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 1_000_000, "never full");
        };
        assert_eq!(full, SendError::WouldBlock, "after {sent}");
        // Room again once the receiver reads: the same datagram goes.
        let mut buf = [0u8; 8192];
        receiver.recv(&mut buf).unwrap();
        assert_eq!(t.send(&datagram), Ok(()));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
