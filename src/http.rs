//! `GET` on a local HTTP endpoint, for the examples and benchmarks that
//! read one (a collector's `/metrics`, collectd's `write_prometheus`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The body of `GET path` at `address` (HTTP/1.0: the server closes the
/// connection after its answer), waiting up to 5 s for each read.
pub fn get(address: SocketAddr, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let head = text
        .find("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP response"))?;
    text.drain(..head + 4);
    Ok(text)
}
