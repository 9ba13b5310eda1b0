//! What the collector's integration tests share: HTTP requests to its
//! endpoint.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `GET path` with `headers` (each line ending in `\r\n`): the status, the
/// response's head and its body.
pub fn get_with(address: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (status, head.to_string(), body.to_string())
}

/// `GET path`: the status and the body.
pub fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = get_with(address, path, "");
    (status, body)
}
