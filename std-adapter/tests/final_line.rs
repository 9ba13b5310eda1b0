//! Shutdown logs one final telemetry line through the `log` crate.

mod common;

use common::{capture_logs, events, lines_with};
use stats_std::Stats;
use std::net::UdpSocket;
use std::time::Duration;

#[test]
fn shutdown_logs_a_final_telemetry_line() {
    capture_logs();
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stats =
        Stats::start(events().with_address(receiver.local_addr().unwrap().to_string())).unwrap();
    let c = stats.counter("c", &[]).unwrap();
    for _ in 0..7 {
        c.increment();
    }
    stats.shutdown(Duration::from_secs(2)).unwrap();
    let lines = lines_with("shut down");
    let last = lines.first().expect("a final line");
    assert!(last.starts_with("INFO"), "{last}");
    assert!(last.contains("received 7 sent 7"), "{last}");
}
