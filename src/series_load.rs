//! The default mode's load: a sender refreshing many series, every one of
//! them in each pass, as series records (each series' totals since the
//! sender started), for the collector's benchmarks and load tool.

use stats_core::registry::Key;
use stats_core::wire::{BucketSource, Encoder, EncoderConfig};
use stats_core::{KeyId, Kind, Snapshot, Totals};

/// When every sender of the load started, ns since the Unix epoch.
const STARTED: u64 = 1_700_000_000_000_000_000;

/// One sender of series records: `series` series `load.s{j}` tagged with
/// the sender and one of ten shards, even ones counters and odd ones
/// gauges, each moved on every pass.
pub struct SeriesSender {
    /// Each series' key record.
    keys: Vec<String>,
    encoder: Encoder,
    pass: u64,
}

impl SeriesSender {
    /// Sender `id` of `series` series.
    pub fn new(id: u64, series: usize) -> SeriesSender {
        let keys = (0..series)
            .map(|j| {
                let mut record = String::new();
                let (sender, shard) = (id.to_string(), (j % 10).to_string());
                let tags = [("sender", sender.as_str()), ("shard", shard.as_str())];
                Key::write_record(&format!("load.s{j}"), &tags, &mut record)
                    .expect("a key within the limits");
                record
            })
            .collect();
        SeriesSender {
            keys,
            encoder: Encoder::new(EncoderConfig::new(id)).expect("the default configuration"),
            pass: 0,
        }
    }

    /// The next pass: every series' totals in datagrams written in `buf`
    /// (the encoder's datagram size at least), each handed to `send`;
    /// the records written.
    pub fn pass(&mut self, buf: &mut [u8], mut send: impl FnMut(&[u8])) -> usize {
        self.pass += 1;
        let pass = self.pass;
        let keys = &self.keys;
        let key = |k: KeyId| Key::from_record(keys.get(k.get() as usize)?);
        let mut j = 0;
        while j < keys.len() {
            let Ok(mut w) = self
                .encoder
                .begin_series(buf, STARTED + pass * 1_000_000, STARTED)
            else {
                return j;
            };
            let before = j;
            while j < keys.len() {
                let (kind, value) = if j % 2 == 0 {
                    let count = pass;
                    (
                        Kind::Counter,
                        Totals::Counter {
                            sum: pass as i64,
                            count,
                        },
                    )
                } else {
                    (Kind::Gauge, Totals::Gauge { value: pass as f64 })
                };
                let snapshot = Snapshot {
                    key: KeyId::from_raw(j as u32),
                    kind,
                    changes: pass,
                    value,
                };
                if w.push(&snapshot, &NoBuckets, key).is_err() {
                    break;
                }
                j += 1;
            }
            if j == before {
                // A record that fits no datagram (none here): stop.
                return j;
            }
            send(w.finish());
        }
        j
    }
}

/// Counters and gauges have no buckets.
struct NoBuckets;

impl BucketSource for NoBuckets {
    fn for_each(&self, _: u32, _: &mut dyn FnMut(u16, u64)) {}
}
