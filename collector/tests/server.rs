//! The server around the collector: HTTP under hostile clients, OpenMetrics,
//! several UDP receiving threads, the Unix datagram socket, and draining on
//! SIGTERM.

mod common;

use common::get_with;
use stats_collector::outputs::prometheus;
use stats_collector::{Server, Settings};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

fn loopback() -> Settings {
    Settings::on_loopback().with_ingest_threads(1)
}

fn events(server: &Server) -> u64 {
    server.shards().totals().events
}

fn wait_for(server: &Server, want: u64) {
    let start = Instant::now();
    while events(server) < want {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{} of {want} events arrived",
            events(server)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn trickling_clients_neither_hold_the_endpoint_nor_stay_connected() {
    let server = Server::start(&loopback()).unwrap();
    let http = server.http_address().unwrap();
    // Slowloris: more connections than the endpoint keeps, each sending a
    // request head a byte at a time and never finishing it.
    let mut slow: Vec<TcpStream> = (0..300)
        .map(|_| {
            let s = TcpStream::connect(http).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        })
        .collect();
    for (i, s) in slow.iter_mut().enumerate() {
        let _ = s.write_all(&b"GET /metr"[..1 + i % 8]);
    }
    // The endpoint still answers while they trickle on.
    for _ in 0..3 {
        for s in &mut slow {
            let _ = s.write_all(b"i");
        }
        let started = Instant::now();
        let (status, _, body) = get_with(http, "/metrics", "");
        assert_eq!(status, 200);
        assert!(body.contains("stats_collector_datagrams_total 0"), "{body}");
        assert!(started.elapsed() < Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(300));
    }
    // Past the 2 s deadline for a request head, each is closed (with a
    // 408, or at once when it was over the connection limit).
    std::thread::sleep(Duration::from_millis(1_500));
    for s in &mut slow {
        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) => {
                let text = String::from_utf8_lossy(&rest);
                assert!(
                    rest.is_empty() || text.starts_with("HTTP/1.1 408"),
                    "{text}"
                );
            }
            // Closed with bytes it had not read yet.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("still open: {e}"),
        }
    }
}

#[test]
fn openmetrics_when_asked_and_plain_text_otherwise() {
    let server = Server::start(&loopback()).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(b"jobs.done:3|c|#queue:mail", server.udp_address())
        .unwrap();
    wait_for(&server, 1);
    let http = server.http_address().unwrap();
    let (status, head, text) = get_with(http, "/metrics", "");
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(text.contains("# TYPE jobs_done_total counter\n"), "{text}");
    assert!(
        text.contains("jobs_done_total{queue=\"mail\"} 3\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"));
    let accept = "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n";
    let (status, head, om) = get_with(http, "/metrics", accept);
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    // A counter's family is named without `_total`; its samples keep it.
    assert!(om.contains("# TYPE jobs_done counter\n"), "{om}");
    assert!(om.contains("jobs_done_total{queue=\"mail\"} 3\n"), "{om}");
    assert!(
        om.contains("# TYPE stats_collector_datagrams counter\n"),
        "{om}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert_eq!(om.matches("# EOF").count(), 1);
}

#[test]
fn other_paths_and_methods_are_refused() {
    let server = Server::start(&loopback()).unwrap();
    let http = server.http_address().unwrap();
    assert_eq!(get_with(http, "/nothing", "").0, 404);
    let (status, _, body) = get_with(http, "/health", "");
    assert_eq!(status, 200);
    assert!(body.starts_with("{\"status\":\"healthy\""), "{body}");
    let mut stream = TcpStream::connect(http).unwrap();
    write!(
        stream,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
    // Not HTTP at all.
    let mut stream = TcpStream::connect(http).unwrap();
    stream.write_all(b"\x16\x03\x01garbage\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 400"),
        "{response}"
    );
}

#[test]
fn several_receiving_threads_share_one_port_and_lose_nothing() {
    let server = Server::start(&loopback().with_ingest_threads(4)).unwrap();
    // Many senders (source ports), so the kernel spreads them over the
    // four sockets.
    let senders: Vec<UdpSocket> = (0..32)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    std::thread::scope(|scope| {
        for s in &senders {
            let to = server.udp_address();
            scope.spawn(move || {
                for _ in 0..100 {
                    s.send_to(b"spread:1|c", to).unwrap();
                    std::thread::sleep(Duration::from_micros(50));
                }
            });
        }
    });
    wait_for(&server, 3_200);
    let text = prometheus::render_metrics(&server.shards().view());
    assert!(text.contains("\nspread_total 3200\n"), "{text}");
}

#[test]
fn a_unix_datagram_socket_receives_and_is_removed_at_stop() {
    let dir = std::env::temp_dir().join(format!("stats-collector-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("collector.sock");
    // A socket file left behind (by a collector killed before it could
    // remove it) is replaced.
    drop(std::os::unix::net::UnixDatagram::bind(&path).unwrap());
    assert!(path.exists());
    let server = Server::start(&loopback().with_listen_unix(&path)).unwrap();
    let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
    for _ in 0..10 {
        client.send_to(b"over.unix:2|c", &path).unwrap();
    }
    wait_for(&server, 10);
    let text = prometheus::render_metrics(&server.shards().view());
    assert!(text.contains("\nover_unix_total 20\n"), "{text}");
    server.stop(Duration::from_secs(1));
    assert!(!path.exists(), "removed at stop");
    // Any other file there is not the collector's to replace.
    std::fs::write(&path, b"data").unwrap();
    let Err(e) = Server::start(&loopback().with_listen_unix(&path)) else {
        panic!("replaced a regular file");
    };
    assert!(
        e.to_string()
            .contains(&format!("Unix socket {}", path.display())),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"data");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A Unix stream socket (`listen_unix_stream`): frames (a length, 4
/// bytes little-endian, then the datagram) read whole however the bytes
/// are split across writes, from two connections at once; a frame longer
/// than any datagram is counted and ends its connection only; the socket
/// file is removed at stop.
#[test]
fn a_unix_stream_socket_reads_frames_and_is_removed_at_stop() {
    use std::os::unix::net::UnixStream;
    let dir = std::env::temp_dir().join(format!("stats-collector-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("collector.sock");
    let server = Server::start(&loopback().with_listen_unix_stream(&path)).unwrap();
    let frame = |datagram: &[u8]| {
        let mut f = (datagram.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(datagram);
        f
    };
    let mut bytes = Vec::new();
    for i in 0..100 {
        bytes.extend(frame(format!("over.stream:{}|c", i % 3 + 1).as_bytes()));
    }
    // 200 values (1, 2, 3, 1, ...: 199 for each 100) over two
    // connections, one in pieces of 7 bytes that split prefixes and
    // datagrams, the other whole.
    let mut pieces = UnixStream::connect(&path).unwrap();
    let mut whole = UnixStream::connect(&path).unwrap();
    for piece in bytes.chunks(7) {
        pieces.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    whole.write_all(&bytes).unwrap();
    wait_for(&server, 200);
    let text = prometheus::render_metrics(&server.shards().view());
    assert!(text.contains("\nover_stream_total 398\n"), "{text}");
    // A frame longer than any datagram: counted, and that connection
    // closed; the other reads on.
    pieces.write_all(&(1u32 << 20).to_le_bytes()).unwrap();
    let mut end = [0u8; 1];
    pieces
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(pieces.read(&mut end).unwrap(), 0, "closed by the collector");
    let invalid = server.shards().view().invalid().clone();
    assert_eq!(invalid.get("frame_too_large"), Some(&1), "{invalid:?}");
    whole.write_all(&frame(b"over.stream:2|c")).unwrap();
    wait_for(&server, 201);
    server.stop(Duration::from_secs(1));
    assert!(!path.exists(), "removed at stop");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sigterm_runs_the_pushed_outputs_once_more_before_exit() {
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    agent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    drop(udp);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stats-collector"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--no-http"])
        .args(["--forward", &agent.local_addr().unwrap().to_string()])
        .args(["--forward-codec", "statsd", "--export-interval", "3600"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut banner = [0u8; 16];
    out.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"receiving on udp");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"drained:5|c", ("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // An hour before the next export: only the stop sends it.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut buf = [0u8; 1500];
    let n = agent.recv(&mut buf).expect("forwarded at SIGTERM");
    assert_eq!(&buf[..n], b"drained:5|c");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
