//! Where the client sends, and the one seam between the worker and a
//! socket: an [`Address`] URL picks the transport, each a
//! [`ClientTransport`] (the core's [`Transport`] and what the worker needs
//! of a socket besides).
//!
//! * `udp://host:port`, or a bare `host:port`: UDP ([`UdpTransport`]);
//! * `unixgram:///path`: a Unix datagram socket ([`UnixDatagramTransport`]),
//!   as the Datadog agent and StatsD daemons in containers listen on.

use crate::udp::{SocketInfo, UdpTransport};
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
    /// every `resolve_interval_s`.
    Udp(String),
    /// `unixgram:///path`: a Unix datagram socket.
    UnixDatagram(PathBuf),
}

/// What an address must look like, for errors.
pub const ADDRESS_FORMS: &str = "host:port, udp://host:port or unixgram:///path";

impl Address {
    /// Reads `text`: `udp://host:port`, `host:port` or `unixgram:///path`
    /// (an absolute path). `None` if it is none of them.
    pub fn parse(text: &str) -> Option<Address> {
        if let Some(path) = text.strip_prefix("unixgram://") {
            return path
                .starts_with('/')
                .then(|| Address::UnixDatagram(PathBuf::from(path)));
        }
        let host_port = text.strip_prefix("udp://").unwrap_or(text);
        if host_port.contains("://") {
            return None;
        }
        let (host, port) = host_port.rsplit_once(':')?;
        let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
        (!host.is_empty() && port_ok).then(|| Address::Udp(host_port.to_string()))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Udp(host_port) => write!(f, "udp://{host_port}"),
            Address::UnixDatagram(path) => write!(f, "unixgram://{}", path.display()),
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

    /// Called every `resolve_interval_s`: looks the destination up again,
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
        #[cfg(not(unix))]
        Address::UnixDatagram(path) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("unixgram://{}: not on this system", path.display()),
            ));
        }
    })
}

/// How long a Unix transport waits before it connects again after the
/// socket went away, at first; it doubles up to [`MAX_RECONNECT`].
const FIRST_RECONNECT: Duration = Duration::from_millis(100);

/// The longest wait between two attempts to connect again.
const MAX_RECONNECT: Duration = Duration::from_secs(5);

/// A Unix datagram socket connected to `path`, non-blocking. When the
/// receiver is not there (no socket file, or nobody reading it) sends fail
/// as refused, and it connects again, with backoff, until it is: a
/// receiver that starts late, restarts, or makes its socket file anew is
/// found again.
#[cfg(unix)]
pub struct UnixDatagramTransport {
    path: PathBuf,
    socket: Option<std::os::unix::net::UnixDatagram>,
    max_datagram: usize,
    send_buffer_bytes: usize,
    info: SocketInfo,
    /// When to try connecting again, and the wait after that.
    retry: (Instant, Duration),
    started: Instant,
    epoch: u64,
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
            path,
            socket: None,
            max_datagram,
            send_buffer_bytes,
            info: SocketInfo::default(),
            retry: (clock.0, FIRST_RECONNECT),
            started: clock.0,
            epoch: clock.1,
        };
        t.reconnect();
        t
    }

    /// Connects a new socket to the path; whether it could.
    fn reconnect(&mut self) -> bool {
        let socket = std::os::unix::net::UnixDatagram::unbound().and_then(|s| {
            s.set_nonblocking(true)?;
            let r = socket2::SockRef::from(&s);
            // Best effort: the kernel caps it (net.core.wmem_max).
            let _ = r.set_send_buffer_size(self.send_buffer_bytes);
            s.connect(&self.path)?;
            Ok(s)
        });
        match socket {
            Ok(s) => {
                self.info = SocketInfo {
                    send_buffer_bytes: socket2::SockRef::from(&s).send_buffer_size().unwrap_or(0),
                    low_delay: false,
                };
                self.socket = Some(s);
                self.retry.1 = FIRST_RECONNECT;
                true
            }
            Err(_) => {
                self.socket = None;
                let wait = self.retry.1;
                self.retry = (Instant::now() + wait, (wait * 2).min(MAX_RECONNECT));
                false
            }
        }
    }

    /// The socket, connected again first if it went away and the backoff
    /// has passed.
    fn socket(&mut self) -> Option<&std::os::unix::net::UnixDatagram> {
        if self.socket.is_none() && Instant::now() >= self.retry.0 {
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
                    self.retry = (Instant::now() + FIRST_RECONNECT, FIRST_RECONNECT * 2);
                }
                Err(error)
            }
        }
    }

    fn max_datagram(&self) -> usize {
        self.max_datagram
    }

    fn clock_ns(&self) -> Option<u64> {
        Some(self.epoch + self.started.elapsed().as_nanos() as u64)
    }
}

#[cfg(unix)]
impl ClientTransport for UnixDatagramTransport {
    fn info(&self) -> SocketInfo {
        self.info
    }

    fn maintain(&mut self) -> io::Result<Option<String>> {
        let was = self.socket.is_some();
        if !was && self.reconnect() {
            return Ok(Some(format!("connected to {}", self.describe())));
        }
        Ok(None)
    }

    fn describe(&self) -> String {
        format!("unixgram://{}", self.path.display())
    }
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
