//! The one I/O seam: sending a datagram without blocking.
//!
//! The std adapter implements [`Transport`] on a UDP socket, the embedded
//! adapter on an embassy-net socket, and tests on spies and fault injectors.

use core::fmt;

/// Why a datagram was not sent. The exporter counts its events as lost to a
/// failed send and tells the circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SendError {
    /// The send would block (socket buffer full); nothing was sent.
    WouldBlock,
    /// The destination refused it (for instance ICMP port unreachable).
    Refused,
    /// Larger than the transport accepts.
    TooLarge,
    /// No way to the destination now (no route, link down).
    Unreachable,
    /// Any other failure.
    Other,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::WouldBlock => "send would block",
            SendError::Refused => "destination refused the datagram",
            SendError::TooLarge => "datagram too large for the transport",
            SendError::Unreachable => "destination unreachable (no route or link down)",
            SendError::Other => "send failed",
        })
    }
}

impl core::error::Error for SendError {}

/// A [`Transport::send_batch`] that stopped at a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartialSend {
    /// Datagrams sent, from the first; the next one failed and the rest
    /// were not tried.
    pub sent: usize,
    /// Why the next one failed.
    pub error: SendError,
}

/// Sends `datagrams` one [`Transport::send`] at a time, stopping at the first
/// failure: the default [`Transport::send_batch`], for overrides that fall
/// back to it.
pub fn send_each<T: Transport + ?Sized>(
    transport: &mut T,
    datagrams: &[&[u8]],
) -> Result<(), PartialSend> {
    for (sent, datagram) in datagrams.iter().enumerate() {
        transport
            .send(datagram)
            .map_err(|error| PartialSend { sent, error })?;
    }
    Ok(())
}

/// Sends whole datagrams without blocking.
pub trait Transport {
    /// Sends `datagram` now, or fails at once.
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError>;

    /// Sends `datagrams` in order, stopping at the first failure. A transport
    /// that can send several per system call (`sendmmsg`, UDP GSO) overrides
    /// this; the default sends them one by one.
    fn send_batch(&mut self, datagrams: &[&[u8]]) -> Result<(), PartialSend> {
        send_each(self, datagrams)
    }

    /// Largest datagram this transport takes (the exporter never builds a
    /// bigger one).
    fn max_datagram(&self) -> usize;

    /// A reading of the clock the caller passes to
    /// [`Exporter::poll`](crate::Exporter::poll) as `now` (ns), or `None`
    /// (the default) if the transport has none. With a clock the exporter
    /// records how long each send call takes; the core itself reads no
    /// clock.
    fn clock_ns(&self) -> Option<u64> {
        None
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        (**self).send(datagram)
    }

    fn send_batch(&mut self, datagrams: &[&[u8]]) -> Result<(), PartialSend> {
        (**self).send_batch(datagrams)
    }

    fn max_datagram(&self) -> usize {
        (**self).max_datagram()
    }

    fn clock_ns(&self) -> Option<u64> {
        (**self).clock_ns()
    }
}
