//! A small HTTP/1.1 server for `GET` endpoints: the client's opt-in
//! `/health` and `/metrics`, and the collector's.
//!
//! It runs on its own threads, apart from whatever produces the answers, so
//! a slow or hostile client delays nothing else. Requests are read with a
//! size limit (8 KiB) and a 2 s deadline for the whole request (a client
//! trickling a byte at a time loses its connection when it passes, not
//! only when it pauses 2 s); anything that is not a well-formed
//! `GET` gets 400 (or 405), an unknown path 404; at most `max_connections`
//! are served at once, others get 503 at once.
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const MAX_REQUEST: usize = 8 << 10;
const TIMEOUT: Duration = Duration::from_secs(2);
/// How often the accept loop looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);

/// An answer to a `GET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// 200, 503, ...
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// Answers a path (query string removed), or `None` for 404.
pub type Handler = dyn Fn(&str) -> Option<Response> + Send + Sync;

/// Binds `address`, serves `handler` until `stopped` says so; returns the
/// bound address.
pub fn spawn(
    address: &str,
    max_connections: usize,
    stopped: impl Fn() -> bool + Send + 'static,
    handler: Arc<Handler>,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let active = Arc::new(AtomicUsize::new(0));
    thread::Builder::new()
        .name("stats-http".into())
        .spawn(move || {
            while !stopped() {
                match listener.accept() {
                    Ok((stream, _)) => accept(&handler, max_connections, &active, stream),
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

fn accept(
    handler: &Arc<Handler>,
    max_connections: usize,
    active: &Arc<AtomicUsize>,
    mut stream: TcpStream,
) {
    let _ = stream.set_nonblocking(false);
    // Reads get what is left of the request's deadline (`serve`).
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    if active.fetch_add(1, Ordering::AcqRel) >= max_connections {
        active.fetch_sub(1, Ordering::AcqRel);
        let _ = respond(&mut stream, &text(503, "too many connections\n"));
        return;
    }
    let (handler, active) = (handler.clone(), active.clone());
    let served = thread::Builder::new()
        .name("stats-http-conn".into())
        .spawn(move || {
            let _ = serve(&*handler, &mut stream);
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

/// A plain-text response.
pub fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_string(),
    }
}

fn serve(handler: &Handler, stream: &mut TcpStream) -> io::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break Some(at);
        }
        if buf.len() > MAX_REQUEST {
            break None;
        }
        // What is left of the request's time, for this read.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break None,
        }
    };
    let response = match end.map_or(Request::Malformed, |at| parse(&buf[..at])) {
        Request::Malformed => text(400, "bad request\n"),
        Request::Method => text(405, "only GET\n"),
        Request::Get(path) => handler(&path).unwrap_or_else(|| text(404, "not found\n")),
    };
    respond(stream, &response)
}

fn respond(stream: &mut TcpStream, r: &Response) -> io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    write!(
        stream,
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        r.status,
        r.content_type,
        r.body.len(),
        r.body
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
