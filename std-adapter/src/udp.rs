//! The UDP transport: a non-blocking, connected socket (socket2), several
//! datagrams per system call with `sendmmsg` on Linux, and periodic
//! re-resolution of the destination's host name.

use crate::socket_info::SocketInfo;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use stats_core::{PartialSend, SendError, Transport};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

/// `IPTOS_LOWDELAY`.
const TOS_LOW_DELAY: u32 = 0x10;

/// A connected UDP socket as a [`Transport`].
pub struct UdpTransport {
    socket: Socket,
    address: String,
    peer: SocketAddr,
    max_datagram: usize,
    send_buffer_bytes: usize,
    info: SocketInfo,
    /// Send one datagram per call (to measure against `sendmmsg`).
    one_per_call: bool,
    started: Instant,
    /// The clock `now` is measured on: ns since `started`, plus `epoch`.
    epoch: u64,
}

fn resolve(address: &str) -> io::Result<SocketAddr> {
    address
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
}

impl UdpTransport {
    /// Resolves `address`, connects a non-blocking socket to it and asks for
    /// `send_buffer_bytes` of send buffer. `clock` is `(started, epoch)`:
    /// the transport's clock reads `epoch + started.elapsed()` in ns.
    pub fn connect(
        address: &str,
        max_datagram: usize,
        send_buffer_bytes: usize,
        clock: (Instant, u64),
    ) -> io::Result<Self> {
        let peer = resolve(address)?;
        let (socket, info) = Self::socket(peer, send_buffer_bytes)?;
        Ok(UdpTransport {
            socket,
            address: address.to_string(),
            peer,
            max_datagram,
            send_buffer_bytes,
            info,
            one_per_call: false,
            started: clock.0,
            epoch: clock.1,
        })
    }

    fn socket(peer: SocketAddr, send_buffer_bytes: usize) -> io::Result<(Socket, SocketInfo)> {
        let socket = Socket::new(Domain::for_address(peer), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_nonblocking(true)?;
        // Best effort: the kernel caps it (net.core.wmem_max).
        let _ = socket.set_send_buffer_size(send_buffer_bytes);
        let low_delay = peer.is_ipv4() && socket.set_tos_v4(TOS_LOW_DELAY).is_ok();
        socket.connect(&SockAddr::from(peer))?;
        let info = SocketInfo {
            send_buffer_bytes: socket.send_buffer_size().unwrap_or(0),
            low_delay,
            frames_cut: 0,
        };
        Ok((socket, info))
    }

    /// Resolves the host name again and reconnects if the address changed
    /// (whether it did). Errors leave the current socket in place.
    pub fn re_resolve(&mut self) -> io::Result<bool> {
        let peer = resolve(&self.address)?;
        self.reconnect(peer)
    }

    /// Connects a new socket to `peer` if it differs from the current one.
    fn reconnect(&mut self, peer: SocketAddr) -> io::Result<bool> {
        if peer == self.peer {
            return Ok(false);
        }
        let (socket, info) = Self::socket(peer, self.send_buffer_bytes)?;
        self.socket = socket;
        self.peer = peer;
        self.info = info;
        Ok(true)
    }

    /// What the kernel granted.
    pub fn info(&self) -> SocketInfo {
        self.info
    }

    /// The address datagrams go to now.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The `host:port` it was given.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends one datagram per system call even where `sendmmsg` exists
    /// (for comparison).
    pub fn set_one_per_call(&mut self, one: bool) {
        self.one_per_call = one;
    }
}

/// Whether the socket has room for a datagram now.
#[cfg(target_os = "linux")]
fn writable(socket: &Socket) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(socket, PollFlags::OUT)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&now)), Ok(1)) && fds[0].revents().contains(PollFlags::OUT)
}

fn send_error(e: &io::Error) -> SendError {
    match e.kind() {
        io::ErrorKind::WouldBlock => SendError::WouldBlock,
        io::ErrorKind::ConnectionRefused => SendError::Refused,
        _ if e.raw_os_error() == Some(90) => SendError::TooLarge, // EMSGSIZE
        _ => SendError::Other,
    }
}

impl UdpTransport {
    /// Whether the kernel has heard since the last look that the destination
    /// refuses datagrams (an ICMP port unreachable). On loopback the answer
    /// to a datagram arrives before its send returns; elsewhere it arrives
    /// later and is found before the next send.
    fn refused(&self) -> bool {
        matches!(self.socket.take_error(), Ok(Some(e)) if e.kind() == io::ErrorKind::ConnectionRefused)
    }
}

impl Transport for UdpTransport {
    /// Sends one datagram. A refusal already known fails it unsent; one that
    /// answers it fails it too (it went nowhere), so that a destination with
    /// nothing listening counts as failing every send, not every other one.
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        if self.refused() {
            return Err(SendError::Refused);
        }
        match self.socket.send(datagram) {
            Ok(_) if self.refused() => Err(SendError::Refused),
            Ok(_) => Ok(()),
            Err(e) => Err(send_error(&e)),
        }
    }

    #[cfg(target_os = "linux")]
    fn send_batch(&mut self, datagrams: &[&[u8]]) -> Result<(), PartialSend> {
        use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, sendmmsg};
        use std::io::IoSlice;
        const MAX: usize = stats_core::MAX_DATAGRAMS_PER_SEND;
        if self.one_per_call || datagrams.len() == 1 {
            return stats_core::transport::send_each(self, datagrams);
        }
        // The first alone: a destination that refuses is found before the
        // rest go nowhere (`sendmmsg` does not report a refusal that comes
        // back part-way through).
        if let Err(error) = self.send(datagrams[0]) {
            return Err(PartialSend { sent: 0, error });
        }
        let mut sent = 1;
        while sent < datagrams.len() {
            let chunk = &datagrams[sent..datagrams.len().min(sent + MAX)];
            let iovs: [[IoSlice<'_>; 1]; MAX] =
                std::array::from_fn(|i| [IoSlice::new(chunk.get(i).copied().unwrap_or(&[]))]);
            let mut controls: [SendAncillaryBuffer<'_, '_, '_>; MAX] =
                std::array::from_fn(|_| SendAncillaryBuffer::default());
            let mut headers: heapless::Vec<MMsgHdr<'_>, MAX> = heapless::Vec::new();
            for (iov, control) in iovs.iter().zip(controls.iter_mut()).take(chunk.len()) {
                // Cannot fail: at most MAX.
                let _ = headers.push(MMsgHdr::new(iov, control));
            }
            match sendmmsg(&self.socket, headers.as_mut_slice(), SendFlags::empty()) {
                Ok(n) if n > 0 && n < chunk.len() => {
                    // It stopped early: the next datagram failed and
                    // `sendmmsg` dropped the error. A full buffer is flow
                    // control (keep it and try again); with room, the
                    // datagram itself was refused (a firewall, an ICMP
                    // error): it failed, and is not sent twice.
                    let error = if writable(&self.socket) {
                        SendError::Other
                    } else {
                        SendError::WouldBlock
                    };
                    return Err(PartialSend {
                        sent: sent + n,
                        error,
                    });
                }
                Ok(n) if n > 0 => sent += n,
                Ok(_) => {
                    return Err(PartialSend {
                        sent,
                        error: SendError::WouldBlock,
                    });
                }
                Err(e) => {
                    return Err(PartialSend {
                        sent,
                        error: send_error(&io::Error::from(e)),
                    });
                }
            }
        }
        if self.refused() {
            // The last one was answered with a refusal.
            return Err(PartialSend {
                sent: sent - 1,
                error: SendError::Refused,
            });
        }
        Ok(())
    }

    fn max_datagram(&self) -> usize {
        self.max_datagram
    }

    fn clock_ns(&self) -> Option<u64> {
        Some(self.epoch + self.started.elapsed().as_nanos() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    }

    #[test]
    fn a_new_address_gets_a_new_socket_and_the_datagrams() {
        let (old, new) = (receiver(), receiver());
        let address = old.local_addr().unwrap().to_string();
        let mut t = UdpTransport::connect(&address, 1472, 1 << 20, (Instant::now(), 0)).unwrap();
        assert!(t.info().low_delay, "IP_TOS low-delay on IPv4");
        assert!(t.info().send_buffer_bytes > 0);
        // The name still resolves to the same address: nothing changes.
        assert!(!t.re_resolve().unwrap());
        let mut buf = [0u8; 16];
        t.send(b"one").unwrap();
        assert_eq!(old.recv(&mut buf).unwrap(), 3);
        // It resolves elsewhere now: the next datagrams go there.
        assert!(t.reconnect(new.local_addr().unwrap()).unwrap());
        assert_eq!(t.peer(), new.local_addr().unwrap());
        t.send_batch(&[b"two", b"three"]).unwrap();
        assert_eq!(new.recv(&mut buf).unwrap(), 3);
        assert_eq!(new.recv(&mut buf).unwrap(), 5);
    }

    #[test]
    fn an_unresolvable_name_is_an_error_not_a_panic() {
        assert!(
            UdpTransport::connect(
                "no-such-host.invalid:8125",
                1472,
                1 << 20,
                (Instant::now(), 0)
            )
            .is_err()
        );
    }
}
