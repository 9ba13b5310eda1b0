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
    /// Any other failure.
    Other,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::WouldBlock => "send would block",
            SendError::Refused => "destination refused the datagram",
            SendError::TooLarge => "datagram too large for the transport",
            SendError::Other => "send failed",
        })
    }
}

impl core::error::Error for SendError {}

/// Sends whole datagrams without blocking.
pub trait Transport {
    /// Sends `datagram` now, or fails at once.
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError>;

    /// Largest datagram this transport takes (the exporter never builds a
    /// bigger one).
    fn max_datagram(&self) -> usize;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        (**self).send(datagram)
    }

    fn max_datagram(&self) -> usize {
        (**self).max_datagram()
    }
}
