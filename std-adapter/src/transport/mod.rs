//! Where the client sends, and the one seam between the worker and a
//! socket: an [`Address`] URL picks the transport, each a
//! [`ClientTransport`] (the core's [`Transport`](stats_core::Transport) and what the worker needs
//! of a socket besides).
//!
//! * `udp://host:port`, or a bare `host:port`: UDP ([`UdpTransport`]);
//! * `unixgram:///path`: a Unix datagram socket ([`UnixDatagramTransport`]),
//!   as the Datadog agent and StatsD daemons in containers listen on;
//! * `unix:///path`: a Unix stream socket, each datagram a frame prefixed
//!   with its length ([`UnixStreamTransport`]), as the Datadog agent reads
//!   one.

mod address;
mod client;
#[cfg(unix)]
mod unix_datagram;
#[cfg(unix)]
mod unix_peer;
#[cfg(unix)]
mod unix_stream;

pub use address::{ADDRESS_FORMS, Address, UNIX_MAX_DATAGRAM};
pub use client::ClientTransport;
#[cfg(unix)]
pub use unix_datagram::UnixDatagramTransport;
#[cfg(unix)]
pub use unix_stream::UnixStreamTransport;

use crate::udp::UdpTransport;
use std::io;
use std::time::Instant;

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

#[cfg(all(test, unix))]
mod tests;
