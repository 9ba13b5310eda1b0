//! The Unix stream transport (`unix://`): each datagram a frame after its
//! length.

use super::client::ClientTransport;
use super::unix_peer::{UnixPeer, unix_send_error};
use crate::socket_info::SocketInfo;
use stats_core::{SendError, Transport};
use std::io;
use std::path::PathBuf;
use std::time::Instant;

/// A Unix stream socket connected to `path`, non-blocking: each datagram
/// goes as a frame, its length in 4 bytes little-endian and then its bytes,
/// as the Datadog agent reads a stream. A frame the socket takes in part is
/// finished before the next one starts (the next waits, as on a full
/// buffer); a connection that breaks with a frame part-written loses that
/// frame, counted ([`SocketInfo::frames_cut`]). It connects again with
/// backoff, as [`UnixDatagramTransport`](super::UnixDatagramTransport) does.
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
    /// [`UdpTransport::connect`](crate::udp::UdpTransport::connect).
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
    pub(super) fn finish_frame(&mut self) -> Result<bool, SendError> {
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
