//! A destination as a URL: `udp://`, `unixgram://`, `unix://`, or a bare
//! `host:port`.

use std::fmt;
use std::path::PathBuf;

/// A destination, from its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// `udp://host:port` or `host:port`: the host name is looked up again
    /// every `transport.resolve_interval_s`.
    Udp(String),
    /// `unixgram:///path`: a Unix datagram socket.
    UnixDatagram(PathBuf),
    /// `unix:///path`: a Unix stream socket, each datagram a
    /// length-prefixed frame.
    UnixStream(PathBuf),
}

/// Bytes per datagram on a Unix socket unless configured: what the
/// Datadog agent, datadog-go and metrics-exporter-dogstatsd use there.
pub const UNIX_MAX_DATAGRAM: usize = 8_192;

/// What an address must look like, for errors.
pub const ADDRESS_FORMS: &str = "host:port, udp://host:port, unixgram:///path or unix:///path";

impl Address {
    /// Reads `text`: `udp://host:port`, `host:port`, `unixgram:///path`
    /// or `unix:///path` (absolute paths). `None` if it is none of them.
    pub fn parse(text: &str) -> Option<Address> {
        let unix = |path: &str, make: fn(PathBuf) -> Address| {
            path.starts_with('/').then(|| make(PathBuf::from(path)))
        };
        if let Some(path) = text.strip_prefix("unixgram://") {
            return unix(path, Address::UnixDatagram);
        }
        if let Some(path) = text.strip_prefix("unix://") {
            return unix(path, Address::UnixStream);
        }
        let host_port = text.strip_prefix("udp://").unwrap_or(text);
        if host_port.contains("://") {
            return None;
        }
        let (host, port) = host_port.rsplit_once(':')?;
        let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
        (!host.is_empty() && port_ok).then(|| Address::Udp(host_port.to_string()))
    }

    /// Bytes per datagram unless configured:
    /// [`DEFAULT_MAX_DATAGRAM`](stats_core::wire::DEFAULT_MAX_DATAGRAM)
    /// (1,432) over UDP, [`UNIX_MAX_DATAGRAM`] (8,192) on a Unix socket.
    pub const fn default_max_datagram(&self) -> usize {
        match self {
            Address::Udp(_) => stats_core::wire::DEFAULT_MAX_DATAGRAM,
            Address::UnixDatagram(_) | Address::UnixStream(_) => UNIX_MAX_DATAGRAM,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Udp(host_port) => write!(f, "udp://{host_port}"),
            Address::UnixDatagram(path) => write!(f, "unixgram://{}", path.display()),
            Address::UnixStream(path) => write!(f, "unix://{}", path.display()),
        }
    }
}
