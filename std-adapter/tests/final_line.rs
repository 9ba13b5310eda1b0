//! Shutdown logs one final telemetry line through the `log` crate.

use stats_std::{AggregationMode, Config, Stats};
use std::net::UdpSocket;
use std::sync::Mutex;
use std::time::Duration;

/// The event pipeline (`aggregation = "off"`), which these tests are about.
fn events() -> Config {
    Config::default().with_aggregation(AggregationMode::Off)
}

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

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

#[test]
fn shutdown_logs_a_final_telemetry_line() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stats =
        Stats::start(events().with_address(receiver.local_addr().unwrap().to_string())).unwrap();
    let c = stats.counter("c", &[]).unwrap();
    for _ in 0..7 {
        c.increment();
    }
    stats.shutdown(Duration::from_secs(2)).unwrap();
    let lines = LINES.lock().unwrap();
    let last = lines
        .iter()
        .find(|l| l.contains("shut down"))
        .expect("a final line");
    assert!(last.starts_with("INFO"), "{last}");
    assert!(last.contains("received 7 sent 7"), "{last}");
}
