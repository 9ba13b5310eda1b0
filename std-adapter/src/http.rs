//! The opt-in HTTP endpoint: `GET /health` (JSON; 200 when healthy or
//! degraded, 503 when unhealthy) and `GET /metrics` (Prometheus text format
//! 0.0.4).
//!
//! It runs on its own thread, apart from the worker, and reads only the
//! report the worker publishes, so a slow or hostile client cannot delay
//! sending. Requests are read with a size limit (8 KiB) and a 2 s timeout;
//! anything that is not a well-formed `GET` gets 400 (or 404/405); at most
//! `http_max_connections` are served at once, others get 503 at once.

use crate::prometheus;
use crate::stats::Shared;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

const MAX_REQUEST: usize = 8 << 10;
const TIMEOUT: Duration = Duration::from_secs(2);
/// How often the accept loop looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);

/// Binds the listener and starts serving; returns the bound address.
pub(crate) fn spawn(shared: Arc<Shared>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(shared.config.http_address.as_str())?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let active = Arc::new(AtomicUsize::new(0));
    thread::Builder::new()
        .name("stats-http".into())
        .spawn(move || {
            while !shared.stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => accept(&shared, &active, stream),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(STOP_POLL),
                    Err(e) => {
                        log::warn!("stats: http accept: {e}");
                        thread::sleep(STOP_POLL);
                    }
                }
            }
        })?;
    Ok(address)
}

fn accept(shared: &Arc<Shared>, active: &Arc<AtomicUsize>, mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    if active.fetch_add(1, Ordering::AcqRel) >= shared.config.http_max_connections {
        active.fetch_sub(1, Ordering::AcqRel);
        let _ = respond(&mut stream, 503, "text/plain", "too many connections\n");
        return;
    }
    let (shared, active) = (shared.clone(), active.clone());
    let served = thread::Builder::new()
        .name("stats-http-conn".into())
        .spawn(move || {
            let _ = serve(&shared, &mut stream);
            active.fetch_sub(1, Ordering::AcqRel);
        });
    if let Err(e) = served {
        log::warn!("stats: http connection thread: {e}");
    }
}

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Get(String),
    Method,
    Malformed,
}

/// Parses the head of a request (up to the blank line).
fn parse(head: &[u8]) -> Request {
    let Ok(head) = std::str::from_utf8(head) else {
        return Request::Malformed;
    };
    let mut lines = head.split("\r\n");
    let Some(first) = lines.next() else {
        return Request::Malformed;
    };
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Malformed;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Request::Malformed;
    }
    // Every header line must be `name: value`.
    if lines
        .take_while(|l| !l.is_empty())
        .any(|l| !l.contains(':'))
    {
        return Request::Malformed;
    }
    if method != "GET" {
        return Request::Method;
    }
    let path = target.split('?').next().unwrap_or(target);
    Request::Get(path.to_string())
}

fn serve(shared: &Shared, stream: &mut TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break Some(at);
        }
        if buf.len() > MAX_REQUEST {
            break None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break None,
        }
    };
    let request = end.map_or(Request::Malformed, |at| parse(&buf[..at]));
    let report = shared.report();
    match (request, report) {
        (Request::Malformed, _) => respond(stream, 400, "text/plain", "bad request\n"),
        (Request::Method, _) => respond(stream, 405, "text/plain", "only GET\n"),
        (Request::Get(path), Some(report)) if path == "/health" => {
            let status = if report.health.status == stats_core::Status::Unhealthy {
                503
            } else {
                200
            };
            respond(
                stream,
                status,
                "application/json",
                &prometheus::health(&report),
            )
        }
        (Request::Get(path), Some(report)) if path == "/metrics" => respond(
            stream,
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            &prometheus::metrics(&report),
        ),
        (Request::Get(path), None) if path == "/health" || path == "/metrics" => {
            respond(stream, 503, "text/plain", "starting\n")
        }
        (Request::Get(_), _) => respond(stream, 404, "text/plain", "not found\n"),
    }
}

fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_or_are_malformed() {
        assert_eq!(
            parse(b"GET /health?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*"),
            Request::Get("/health".into())
        );
        assert_eq!(parse(b"POST /health HTTP/1.1"), Request::Method);
        for bad in [
            &b"GET /health"[..],
            b"GET  /health HTTP/1.1",
            b"GET health HTTP/1.1",
            b"GET /health SPDY/3",
            b"GET /health HTTP/1.1\r\nno colon here",
            b"\xff\xfe",
            b"",
        ] {
            assert_eq!(parse(bad), Request::Malformed, "{bad:?}");
        }
    }
}
