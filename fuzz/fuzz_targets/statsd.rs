//! The StatsD line parser is total: any bytes give lines (metrics,
//! DogStatsD events and service checks) or typed errors,
//! never a panic, at most one per `\n`-separated piece, and every line it
//! accepts holds what the collector relies on: a name and a value with no
//! separator in them, a sample rate in [`MIN_SAMPLE_RATE`], 1, and a
//! number (when there is one) that is finite.
//!
//! `cargo +nightly fuzz run statsd` (from `fuzz/`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use stats_core::wire::statsd::{MIN_SAMPLE_RATE, Parsed, parse};

fuzz_target!(|data: &[u8]| {
    let pieces = data.split(|&b| b == b'\n').count();
    let mut lines = 0;
    for line in parse(data) {
        lines += 1;
        let line = match line {
            Ok(Parsed::Metric(line)) => line,
            Ok(Parsed::Event(e)) => {
                assert!(!e.title.is_empty());
                let _ = stats_core::wire::statsd::tag_pairs(e.tags).count();
                continue;
            }
            Ok(Parsed::ServiceCheck(c)) => {
                assert!(!c.name.is_empty() && !c.name.contains('|'));
                continue;
            }
            Err(_) => continue,
        };
        assert!(!line.name.is_empty() && !line.value.is_empty());
        assert!(!line.name.contains(['\n', ':']));
        assert!(!line.value.contains(['\n', '|']));
        assert!((MIN_SAMPLE_RATE..=1.0).contains(&line.sample_rate));
        if let Some(v) = line.number() {
            assert!(v.is_finite());
        }
        // Reading the tags and the sign does not panic either.
        let _ = (line.tag_pairs().count(), line.is_change());
    }
    assert!(lines <= pieces);
});
