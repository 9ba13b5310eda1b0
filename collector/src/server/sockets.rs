//! The sockets a collector receives on: UDP (shared with `SO_REUSEPORT`
//! among receiving threads), Unix datagram and Unix stream, each error
//! naming what it is about.

use super::receive::RECV_WAKE;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// `e` with what it was about in front: `UDP 127.0.0.1:8125: Address
/// already in use`.
pub(super) fn context(e: io::Error, what: std::fmt::Arguments<'_>) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A UDP socket bound to `address`, with `SO_REUSEPORT` when `shared`.
pub(super) fn udp_socket(address: SocketAddr, shared: bool) -> io::Result<UdpSocket> {
    let bind = || -> io::Result<UdpSocket> {
        let socket = Socket::new(
            Domain::for_address(address),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        if shared {
            #[cfg(unix)]
            socket.set_reuse_port(true)?;
        }
        let _ = socket.set_recv_buffer_size(4 << 20);
        socket.bind(&address.into())?;
        socket.set_read_timeout(Some(RECV_WAKE))?;
        Ok(socket.into())
    };
    bind().map_err(|e| context(e, format_args!("UDP {address}")))
}

/// Binds a Unix socket at `path` with `bind`; a socket file left there
/// (by a collector that did not stop) is replaced, any other file is not.
/// An error names the path.
#[cfg(unix)]
pub(super) fn bind_unix<T>(
    path: &std::path::Path,
    bind: impl FnOnce(&std::path::Path) -> io::Result<T>,
) -> io::Result<T> {
    use std::os::unix::fs::FileTypeExt;
    let what = format!("Unix socket {}", path.display());
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{what}: a file that is not a socket is there"),
            ));
        }
        std::fs::remove_file(path).map_err(|e| context(e, format_args!("{what}")))?;
    }
    bind(path).map_err(|e| context(e, format_args!("{what}")))
}

/// A Unix datagram socket at `path` ([`bind_unix`]).
#[cfg(unix)]
pub(super) fn unix_socket(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixDatagram> {
    let socket = bind_unix(path, |p| std::os::unix::net::UnixDatagram::bind(p))?;
    socket.set_read_timeout(Some(RECV_WAKE))?;
    Ok(socket)
}

/// A Unix stream socket listening at `path` ([`bind_unix`]), not
/// blocking in `accept`.
#[cfg(unix)]
pub(super) fn unix_listener(
    path: &std::path::Path,
) -> io::Result<std::os::unix::net::UnixListener> {
    let listener = bind_unix(path, |p| std::os::unix::net::UnixListener::bind(p))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(not(unix))]
pub(super) fn unix_socket(path: &std::path::Path) -> io::Result<std::convert::Infallible> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("Unix socket {}: not on this system", path.display()),
    ))
}

#[cfg(not(unix))]
pub(super) fn unix_listener(path: &std::path::Path) -> io::Result<std::convert::Infallible> {
    unix_socket(path)
}
