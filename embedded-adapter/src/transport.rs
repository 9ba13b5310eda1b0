//! The core's [`Transport`] on an embassy-net UDP socket.

use core::task::{Context, Poll, Waker};
use embassy_net::udp::{self, UdpSocket};
use embassy_net::{IpEndpoint, Stack};
use stats_core::{SendError, Transport};

/// An embassy-net UDP socket sending to one endpoint, without waiting: a
/// full socket buffer is [`SendError::WouldBlock`] (the exporter keeps the
/// datagram and the runner waits for room), a link that is down is
/// [`SendError::Unreachable`] (counted, and the circuit breaker hears it).
pub struct UdpTransport<'a> {
    pub(crate) socket: UdpSocket<'a>,
    pub(crate) stack: Stack<'a>,
    destination: IpEndpoint,
    max_datagram: usize,
}

impl<'a> UdpTransport<'a> {
    pub(crate) fn new(
        socket: UdpSocket<'a>,
        stack: Stack<'a>,
        destination: IpEndpoint,
        max_datagram: usize,
    ) -> Self {
        UdpTransport {
            socket,
            stack,
            destination,
            max_datagram,
        }
    }

    /// Where datagrams go.
    pub fn destination(&self) -> IpEndpoint {
        self.destination
    }
}

impl Transport for UdpTransport<'_> {
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        if !self.stack.is_link_up() {
            return Err(SendError::Unreachable);
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self
            .socket
            .poll_send_to(datagram, self.destination, &mut cx)
        {
            Poll::Ready(Ok(())) => Ok(()),
            Poll::Ready(Err(udp::SendError::PacketTooLarge)) => Err(SendError::TooLarge),
            Poll::Ready(Err(_)) => Err(SendError::Unreachable),
            Poll::Pending => Err(SendError::WouldBlock),
        }
    }

    fn max_datagram(&self) -> usize {
        self.max_datagram.min(self.socket.payload_send_capacity())
    }

    fn clock_ns(&self) -> Option<u64> {
        Some(crate::now_ns())
    }
}
