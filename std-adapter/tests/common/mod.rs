//! What the integration tests share: the event pipeline's configuration,
//! a logger that keeps what it is given, and HTTP requests to an endpoint.
//! Each test file uses some of them.
#![allow(dead_code)]

use stats_std::{AggregationMode, Config};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

/// The event pipeline (`aggregation = "off"`), which many tests are about.
pub fn events() -> Config {
    Config::default().with_aggregation(AggregationMode::Off)
}

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A logger that keeps every line, as `LEVEL message`.
struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut lines) = LINES.lock() {
            lines.push(format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

/// Installs the keeping logger at `Info` (once a test process).
pub fn capture_logs() {
    log::set_logger(&Capture).expect("the first logger of this test process");
    log::set_max_level(log::LevelFilter::Info);
}

/// The lines logged so far that contain `text`.
pub fn lines_with(text: &str) -> Vec<String> {
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    lines.iter().filter(|l| l.contains(text)).cloned().collect()
}

/// Sends `request` raw to `address`; returns the status and the body.
pub fn exchange(address: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `GET path`: the status and the body.
pub fn get(address: SocketAddr, path: &str) -> (u16, String) {
    exchange(
        address,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}
