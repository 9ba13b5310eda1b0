//! What the worker needs of a transport besides sending: the socket's
//! report, upkeep, and a name for the log.

use crate::socket_info::SocketInfo;
use crate::udp::UdpTransport;
use stats_core::Transport;
use std::io;

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
