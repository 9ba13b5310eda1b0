//! What both Unix transports share: the destination and its clock, when
//! to connect again, and how a send error counts.

use crate::socket_info::SocketInfo;
use stats_core::SendError;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a Unix transport waits before it connects again after the
/// socket went away, at first; it doubles up to [`MAX_RECONNECT`].
pub(super) const FIRST_RECONNECT: Duration = Duration::from_millis(100);

/// The longest wait between two attempts to connect again.
pub(super) const MAX_RECONNECT: Duration = Duration::from_secs(5);

/// When a Unix transport may try to connect again: at once at first, then
/// after [`FIRST_RECONNECT`] doubling to [`MAX_RECONNECT`] while attempts
/// fail.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reconnect {
    at: Instant,
    wait: Duration,
}

impl Reconnect {
    pub(super) fn new(now: Instant) -> Self {
        Reconnect {
            at: now,
            wait: FIRST_RECONNECT,
        }
    }

    pub(super) fn due(&self) -> bool {
        Instant::now() >= self.at
    }

    /// An attempt failed, or the connection broke: wait before the next.
    pub(super) fn failed(&mut self) {
        self.at = Instant::now() + self.wait;
        self.wait = (self.wait * 2).min(MAX_RECONNECT);
    }

    pub(super) fn connected(&mut self) {
        self.wait = FIRST_RECONNECT;
    }
}

/// What both Unix transports keep of their destination: its path, the
/// datagram size and send buffer, what the kernel granted, when to try
/// connecting again, and the clock.
#[cfg(unix)]
pub(super) struct UnixPeer {
    pub(super) path: PathBuf,
    pub(super) max_datagram: usize,
    pub(super) send_buffer_bytes: usize,
    pub(super) info: SocketInfo,
    pub(super) reconnect: Reconnect,
    pub(super) started: Instant,
    pub(super) epoch: u64,
}

#[cfg(unix)]
impl UnixPeer {
    pub(super) fn new(
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
    pub(super) fn connected<S: std::os::fd::AsFd>(&mut self, attempt: io::Result<S>) -> Option<S> {
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

    pub(super) fn clock_ns(&self) -> u64 {
        self.epoch + self.started.elapsed().as_nanos() as u64
    }
}

/// A Unix socket's send error as the exporter counts it.
#[cfg(unix)]
pub(super) fn unix_send_error(e: &io::Error) -> SendError {
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
