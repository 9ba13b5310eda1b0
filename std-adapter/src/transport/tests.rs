//! The transports' tests: addresses, and the Unix transports against
//! real sockets.

use super::unix_peer::{FIRST_RECONNECT, MAX_RECONNECT};
use super::*;
use stats_core::{SendError, Transport};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn addresses_read_as_urls_or_host_port() {
    for (text, want) in [
        (
            "localhost:8125",
            Some(Address::Udp("localhost:8125".into())),
        ),
        (
            "udp://10.0.0.1:9000",
            Some(Address::Udp("10.0.0.1:9000".into())),
        ),
        ("[::1]:8125", Some(Address::Udp("[::1]:8125".into()))),
        (
            "unixgram:///run/statsd.sock",
            Some(Address::UnixDatagram("/run/statsd.sock".into())),
        ),
        ("unixgram://relative.sock", None),
        (
            "unix:///var/run/datadog/dsd.socket",
            Some(Address::UnixStream("/var/run/datadog/dsd.socket".into())),
        ),
        ("unix://relative", None),
        ("localhost", None),
        ("localhost:0", None),
        (":8125", None),
        ("tcp://host:1", None),
    ] {
        assert_eq!(Address::parse(text), want, "{text}");
    }
    let a = Address::parse("unixgram:///tmp/x.sock").unwrap();
    assert_eq!(Address::parse(&a.to_string()), Some(a));
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stats-unix-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("s.sock")
}

#[test]
fn a_receiver_gone_then_back_is_found_again() {
    let path = temp_path("back");
    let _ = std::fs::remove_file(&path);
    let mut t = UnixDatagramTransport::connect(path.clone(), 8192, 1 << 20, (Instant::now(), 0));
    // Nobody there yet.
    assert_eq!(t.send(b"early"), Err(SendError::Refused));
    let receiver = UnixDatagram::bind(&path).unwrap();
    receiver.set_nonblocking(true).unwrap();
    // Within the backoff it does not try; after it, it connects.
    std::thread::sleep(FIRST_RECONNECT * 2);
    assert_eq!(t.send(b"one"), Ok(()));
    let mut buf = [0u8; 64];
    let n = receiver.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"one");
    // The file removed and made anew by a new receiver.
    drop(receiver);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(t.send(b"lost"), Err(SendError::Refused));
    let receiver = UnixDatagram::bind(&path).unwrap();
    std::thread::sleep(FIRST_RECONNECT * 2);
    assert_eq!(t.send(b"two"), Ok(()));
    let n = receiver.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"two");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// Reads frames (4-byte little-endian length, then the bytes) until
/// the connection ends or is quiet for a second.
fn frames(mut stream: std::os::unix::net::UnixStream) -> Vec<Vec<u8>> {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut out = Vec::new();
    let mut len = [0u8; 4];
    while stream.read_exact(&mut len).is_ok() {
        let mut frame = vec![0; u32::from_le_bytes(len) as usize];
        if stream.read_exact(&mut frame).is_err() {
            break;
        }
        out.push(frame);
    }
    out
}

/// Sends `datagram` until the transport takes it (a full buffer keeps
/// it); panics on another error.
fn send_until_taken(t: &mut UnixStreamTransport, datagram: &[u8]) {
    loop {
        match t.send(datagram) {
            Ok(()) => return,
            Err(SendError::WouldBlock) => std::thread::sleep(Duration::from_micros(50)),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_stream_carries_every_datagram_as_a_whole_frame_in_order() {
    let path = temp_path("stream");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut t = UnixStreamTransport::connect(path.clone(), 8192, 1 << 16, (Instant::now(), 0));
    let (stream, _) = listener.accept().unwrap();
    // The receiver starts late: the socket buffer fills first, and
    // frames are taken in part.
    let sent: Vec<Vec<u8>> = (0..2_000u32)
        .map(|i| vec![(i % 251) as u8; 1 + (i as usize * 37) % 8_000])
        .collect();
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        frames(stream)
    });
    for d in &sent {
        send_until_taken(&mut t, d);
    }
    // The last frame out, then the connection closed.
    while !t.finish_frame().unwrap() {
        std::thread::sleep(Duration::from_micros(50));
    }
    drop(t);
    assert_eq!(reader.join().unwrap(), sent);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_stream_receiver_gone_then_back_is_found_again() {
    let path = temp_path("stream-back");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut t = UnixStreamTransport::connect(path.clone(), 8192, 1 << 16, (Instant::now(), 0));
    let (stream, _) = listener.accept().unwrap();
    t.send(b"one").unwrap();
    drop(listener);
    std::fs::remove_file(&path).unwrap();
    let got = frames(stream);
    assert_eq!(got, [b"one".to_vec()]);
    // The peer is gone: a send fails (at the latest the second).
    let failed = (0..10).any(|_| t.send(b"lost").is_err());
    assert!(failed, "sends to a closed connection fail");
    assert_eq!(t.send(b"lost"), Err(SendError::Refused), "not yet due");
    // A new listener at the path: found after the backoff.
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::sleep(MAX_RECONNECT.min(FIRST_RECONNECT * 8));
    let start = Instant::now();
    while t.send(b"two").is_err() {
        assert!(start.elapsed() < MAX_RECONNECT * 2, "not found again");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(t);
    let (stream, _) = listener.accept().unwrap();
    assert_eq!(frames(stream), [b"two".to_vec()]);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_full_socket_buffer_keeps_the_datagram() {
    let path = temp_path("full");
    let _ = std::fs::remove_file(&path);
    let receiver = UnixDatagram::bind(&path).unwrap();
    let mut t = UnixDatagramTransport::connect(path.clone(), 8192, 1 << 20, (Instant::now(), 0));
    let datagram = [7u8; 4096];
    let mut sent = 0;
    let full = loop {
        match t.send(&datagram) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 1_000_000, "never full");
    };
    assert_eq!(full, SendError::WouldBlock, "after {sent}");
    // Room again once the receiver reads: the same datagram goes.
    let mut buf = [0u8; 8192];
    receiver.recv(&mut buf).unwrap();
    assert_eq!(t.send(&datagram), Ok(()));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
