//! The transport seam: an application's own transport, and the address
//! URLs.

use stats_std::stats_core::wire::{DecodedTotals, decode};
use stats_std::stats_core::{SendError, Transport};
use stats_std::{AggregationMode, ClientTransport, Config, StartError, Stats};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keeps every datagram it is given.
struct Spy {
    datagrams: Arc<Mutex<Vec<Vec<u8>>>>,
    max_datagram: usize,
}

impl Transport for Spy {
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        self.datagrams.lock().unwrap().push(datagram.to_vec());
        Ok(())
    }

    fn max_datagram(&self) -> usize {
        self.max_datagram
    }
}

impl ClientTransport for Spy {
    fn describe(&self) -> String {
        "a spy".into()
    }
}

#[test]
fn an_application_s_transport_carries_everything() {
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        let datagrams = Arc::new(Mutex::new(Vec::new()));
        let spy = Spy {
            datagrams: datagrams.clone(),
            max_datagram: 1472,
        };
        let stats =
            Stats::start_with_transport(Config::default().with_aggregation(mode), Box::new(spy))
                .unwrap();
        let hits = stats.counter("spy.hits", &[]).unwrap();
        for _ in 0..25 {
            hits.increment();
        }
        stats.shutdown(Duration::from_secs(2)).unwrap();
        let datagrams = datagrams.lock().unwrap();
        assert_eq!(hits_in(&datagrams, mode), 25.0, "{mode}");
    }
}

/// What `spy.hits` adds up to in `datagrams`: its events summed, or its
/// latest total.
fn hits_in(datagrams: &[Vec<u8>], mode: AggregationMode) -> f64 {
    let mut events = 0.0;
    let mut total = 0;
    for d in datagrams.iter() {
        let d = decode(d).unwrap();
        if d.is_series() {
            for r in d.series() {
                let r = r.unwrap();
                if let (true, DecodedTotals::Counter { sum, .. }) =
                    (r.name == "spy.hits", &r.totals)
                {
                    total = total.max(*sum);
                }
            }
        } else {
            for e in d.events() {
                let e = e.unwrap();
                if e.name == "spy.hits" {
                    events += e.value;
                }
            }
        }
    }
    if mode == AggregationMode::Source {
        total as f64
    } else {
        events
    }
}

/// Over a Unix stream socket (`unix:///path`) to a receiver that reads
/// length-prefixed frames, as the Datadog agent does.
#[cfg(unix)]
#[test]
fn a_unix_stream_carries_every_value_in_frames() {
    use std::io::Read;
    let dir = std::env::temp_dir().join(format!("stats-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agent.sock");
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let reader = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut frames = Vec::new();
            let mut len = [0u8; 4];
            while stream.read_exact(&mut len).is_ok() {
                let mut frame = vec![0; u32::from_le_bytes(len) as usize];
                stream.read_exact(&mut frame).unwrap();
                frames.push(frame);
            }
            frames
        });
        let stats = Stats::start(
            Config::default()
                .with_aggregation(mode)
                .with_address(format!("unix://{}", path.display())),
        )
        .unwrap();
        let hits = stats.counter("spy.hits", &[]).unwrap();
        for _ in 0..25 {
            hits.increment();
        }
        let report = stats.shutdown(Duration::from_secs(2)).unwrap();
        assert_eq!(report.socket.frames_cut, 0);
        drop(stats);
        assert_eq!(hits_in(&reader.join().unwrap(), mode), 25.0, "{mode}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A receiver on a Unix datagram socket whose queue another sender has
/// filled, and that reads nothing for a while: the client keeps the
/// datagram it could not send (a would-block, not a loss) and its lanes
/// then drop, counted. When the receiver reads again, everything sent
/// arrives: nothing is lost uncounted, and aggregating at the source the
/// total is exact.
#[cfg(unix)]
#[test]
fn a_full_unix_socket_buffer_loses_nothing_uncounted() {
    const JUNK: &[u8] = b"junk";
    use stats_std::stats_core::DropReason;
    use stats_std::{RecordError, stats_core::DropPolicy};
    let dir = std::env::temp_dir().join(format!("stats-full-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("slow.sock");
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        let _ = std::fs::remove_file(&path);
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let filler = std::os::unix::net::UnixDatagram::unbound().unwrap();
        filler.set_nonblocking(true).unwrap();
        while filler.send_to(JUNK, &path).is_ok() {}
        let stats = Stats::start(
            Config::default()
                .with_aggregation(mode)
                .with_address(format!("unixgram://{}", path.display()))
                .with_buffer_size(1024)
                .with_drop_policy(DropPolicy::DropNewest),
        )
        .unwrap();
        let hits = stats.counter("spy.hits", &[]).unwrap();
        let mut dropped = 0u64;
        for _ in 0..300_000 {
            match hits.try_add(1) {
                Ok(()) => {}
                Err(RecordError::Dropped(DropReason::LaneFull)) => dropped += 1,
                Err(e) => panic!("{e}"),
            }
        }
        // The client finds the queue full; only then does the receiver
        // read, until the client is done.
        assert!(stats.flush(Duration::from_millis(300)).is_err());
        let reader = std::thread::spawn(move || {
            socket
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut datagrams = Vec::new();
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = socket.recv(&mut buf) {
                if &buf[..n] != JUNK {
                    datagrams.push(buf[..n].to_vec());
                }
            }
            datagrams
        });
        let report = stats.shutdown(Duration::from_secs(5)).unwrap();
        let datagrams = reader.join().unwrap();
        let got = hits_in(&datagrams, mode);
        match report.aggregation {
            Some(a) => {
                assert!(a.sent.send_would_block > 0, "the buffer filled");
                assert_eq!(got, 300_000.0, "the total, exact");
            }
            None => {
                let s = report.snapshot;
                assert!(s.counters.send_would_block > 0, "the buffer filled");
                assert!(s.is_conserved(), "{s:?}");
                assert_eq!(s.drops.total(), dropped);
                assert_eq!(s.counters.events_send_failed, 0);
                assert_eq!(got, s.counters.events_sent as f64);
                assert_eq!(got + dropped as f64, 300_000.0);
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_transport_that_cannot_take_the_datagrams_is_refused_at_start() {
    let spy = Spy {
        datagrams: Arc::default(),
        max_datagram: 512,
    };
    let Err(e) = Stats::start_with_transport(Config::default(), Box::new(spy)) else {
        panic!("a 512-byte transport for 1432-byte datagrams");
    };
    assert!(
        matches!(
            e,
            StartError::TransportTooSmall {
                takes: 512,
                max_datagram: 1432
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("512") && e.to_string().contains("1432"));
}

#[test]
fn addresses_are_checked_and_named() {
    for good in [
        "127.0.0.1:8125",
        "udp://127.0.0.1:8125",
        "unixgram:///tmp/x.sock",
        "unix:///tmp/x.sock",
    ] {
        assert!(
            Config::default().with_address(good).validate().is_ok(),
            "{good}"
        );
    }
    for bad in [
        "localhost",
        "tcp://h:1",
        "unixgram://relative",
        "unix://relative",
    ] {
        let e = Config::default()
            .with_address(bad)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("address") && e.contains("unixgram:///path"),
            "{bad}: {e}"
        );
    }
}
