//! The Unix datagram transport (`unixgram://`).

use super::client::ClientTransport;
use super::unix_peer::{UnixPeer, unix_send_error};
use crate::socket_info::SocketInfo;
use stats_core::{SendError, Transport};
use std::io;
use std::path::PathBuf;
use std::time::Instant;

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

#[cfg(unix)]
impl UnixDatagramTransport {
    /// A transport to the socket at `path` (connected now if it can be, at
    /// the first send otherwise). `clock` is `(started, epoch)`, as for
    /// [`UdpTransport::connect`](crate::udp::UdpTransport::connect).
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
