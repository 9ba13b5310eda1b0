//! The reference workload the wire-format benchmarks and size checks use:
//! ten series with three tags each and mixed kinds, recorded about one
//! microsecond apart.
//!
//! | series | kind | values |
//! |---|---|---|
//! | 3 request counters | counter | 1 |
//! | 2 queue gauges | gauge | integers 0..1000 |
//! | 3 latency timers | timer | integer nanoseconds, 50 µs..5 ms |
//! | 2 size histograms | histogram | fractional, e.g. 0.37 × 4096 |

use stats_core::{Event, KeyId, Kind, Priority, Registry};

/// The registry of the reference series.
pub type WorkloadRegistry = Registry<64, 8192>;

/// The ten series: name, kind.
pub const SERIES: [(&str, Kind); 10] = [
    ("http.server.requests", Kind::Counter),
    ("http.client.requests", Kind::Counter),
    ("db.queries", Kind::Counter),
    ("queue.depth", Kind::Gauge),
    ("pool.connections", Kind::Gauge),
    ("http.server.latency", Kind::Timer),
    ("http.client.latency", Kind::Timer),
    ("db.query.latency", Kind::Timer),
    ("payload.size", Kind::Histogram),
    ("batch.fill", Kind::Histogram),
];

/// Registers the ten series, each with `service`, `region` and `host` tags.
pub fn registry() -> (WorkloadRegistry, [KeyId; 10]) {
    let mut registry = WorkloadRegistry::new();
    let ids = SERIES.map(|(name, _)| {
        registry
            .register(
                name,
                &[
                    ("service", "checkout"),
                    ("region", "eu-west-1"),
                    ("host", "web-01"),
                ],
            )
            .expect("the reference registry has room for ten series")
    });
    (registry, ids)
}

/// `n` events of the reference workload, starting at `start_ns`.
pub fn events(ids: &[KeyId; 10], n: usize, start_ns: u64) -> Vec<Event> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let s = i % SERIES.len();
            let kind = SERIES[s].1;
            let value = match kind {
                Kind::Counter => 1.0,
                Kind::Gauge => (x % 1000) as f64,
                Kind::Timer => (50_000 + x % 4_950_000) as f64,
                Kind::Histogram => (x % 4096) as f64 * 0.37,
            };
            let priority = Priority::ALL[(x % 3) as usize];
            Event::new(
                ids[s],
                kind,
                value,
                start_ns + i as u64 * 1_000 + x % 200,
                priority,
            )
        })
        .collect()
}

/// Packs `events` into datagrams of the encoder's size, one after another in
/// `buf`, handing each finished datagram to `sink`. Returns how many events
/// were refused as too large for any datagram.
pub fn encode_all(
    encoder: &mut stats_core::wire::Encoder,
    registry: &WorkloadRegistry,
    events: &[Event],
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]),
) -> usize {
    use stats_core::wire::PushError;
    let mut refused = 0;
    let mut i = 0;
    while i < events.len() {
        let mut writer = encoder
            .begin(buf, events[i].timestamp)
            .expect("buffer fits max_datagram");
        while let Some(event) = events.get(i) {
            match writer.push(event, |id| registry.get(id)) {
                Ok(()) => i += 1,
                Err(PushError::Full) => break,
                Err(_) => {
                    refused += 1;
                    i += 1;
                }
            }
        }
        if !writer.is_empty() {
            sink(writer.finish());
        }
    }
    refused
}

/// The same events as JSON, one object per event with its name and tags —
/// what a naive JSON-over-UDP client sends (the benchmarks' baseline).
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct JsonEvent<'a> {
    /// Metric name.
    #[serde(borrow)]
    pub name: &'a str,
    /// Tags as key/value pairs.
    #[serde(borrow)]
    pub tags: Vec<(&'a str, &'a str)>,
    /// "counter", "gauge", "timer" or "histogram".
    pub kind: &'a str,
    /// The value.
    pub value: f64,
    /// Nanoseconds.
    pub timestamp: u64,
    /// "low", "medium" or "high".
    pub priority: &'a str,
}

/// The JSON form of `event`.
pub fn json_event<'a>(registry: &'a WorkloadRegistry, event: &Event) -> Option<JsonEvent<'a>> {
    let key = registry.get(event.key)?;
    Some(JsonEvent {
        name: key.name(),
        tags: key.tags().collect(),
        kind: match event.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Timer => "timer",
            Kind::Histogram => "histogram",
        },
        value: event.value,
        timestamp: event.timestamp,
        priority: match event.priority {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        },
    })
}
