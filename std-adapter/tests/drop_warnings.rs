//! The event pipeline warns once when it starts dropping events and once
//! when it stops, with the counts by reason, through the `log` crate.

mod common;

use common::{capture_logs, events, lines_with};
use stats_std::Stats;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

#[test]
fn drops_are_warned_once_when_they_start_and_once_when_they_stop() {
    capture_logs();
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = events()
        .with_buffer_size(16)
        .with_address(receiver.local_addr().unwrap().to_string());
    let stats = Stats::start(config).unwrap();
    let c = stats.counter("c", &[]).unwrap();
    // Lanes of 16 events, a worker that wakes every millisecond: a loop
    // that records without pause drops for as long as it runs, here over
    // more than two of the warnings' one-second checks.
    let until = Instant::now() + Duration::from_millis(2_500);
    while Instant::now() < until {
        for _ in 0..1_000 {
            c.increment();
        }
    }
    assert!(lines_with("drops stopped").is_empty());
    // Quiet for two checks: the stop is seen.
    std::thread::sleep(Duration::from_millis(2_500));
    let dropped = stats.report().unwrap().snapshot.drops.total();
    assert!(dropped > 0);
    let started = lines_with("dropping events");
    let stopped = lines_with("drops stopped");
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert!(started[0].starts_with("WARN"), "{}", started[0]);
    // The stop line counts the whole episode, by reason.
    assert!(
        stopped[0].contains(&format!("{dropped} events dropped")),
        "{} (dropped {dropped})",
        stopped[0]
    );
    assert!(
        ["lane_full", "evicted_by_priority"]
            .iter()
            .any(|r| stopped[0].contains(r)),
        "{}",
        stopped[0]
    );
    stats.shutdown(Duration::from_secs(2)).unwrap();
}
