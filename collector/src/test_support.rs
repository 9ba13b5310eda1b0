//! What the collector's unit tests share: a sender that encodes
//! datagrams, a series found by name, a distribution source without
//! buckets.

use crate::aggregation::Series;
use crate::collector::Collector;
use crate::ingest::Reader;
use crate::shards::Shards;
use stats_core::wire::{BucketSource, Encoder, EncoderConfig};
use stats_core::{Event, KeyId, Kind, Priority, Registry};

/// Datagrams from one sender: `events` each of (key, kind, value).
pub(crate) struct Sender {
    pub(crate) registry: Registry<16, 1024>,
    pub(crate) encoder: Encoder,
}

impl Sender {
    pub(crate) fn new(id: u64) -> Self {
        Sender {
            registry: Registry::new(),
            encoder: Encoder::new(EncoderConfig::new(id)).unwrap(),
        }
    }

    pub(crate) fn key(&mut self, name: &str, tags: &[(&str, &str)]) -> KeyId {
        self.registry.register(name, tags).unwrap()
    }

    pub(crate) fn datagram(&mut self, events: &[(KeyId, Kind, f64)]) -> Vec<u8> {
        self.datagram_at(events, 0)
    }

    /// A datagram whose clock reads `base` (ns).
    pub(crate) fn datagram_at(&mut self, events: &[(KeyId, Kind, f64)], base: u64) -> Vec<u8> {
        let mut buf = vec![0u8; 1472];
        let mut w = self.encoder.begin(&mut buf, base).unwrap();
        for &(key, kind, value) in events {
            let e = Event::new(key, kind, value, 1, Priority::Medium);
            w.push(&e, |id| self.registry.get(id)).unwrap();
        }
        let n = w.finish().len();
        buf.truncate(n);
        buf
    }
}

/// Takes `bytes` in on shard `shard` of `shards`, as a receiving thread
/// does.
pub(crate) fn ingest(shards: &Shards, shard: usize, bytes: &[u8]) {
    shards.take(shard, [Reader::default().read(bytes)]);
}

pub(crate) fn find<'c>(c: &'c Collector, name: &str) -> &'c Series {
    c.series().find(|s| s.name == name).unwrap()
}

/// Counters have no buckets.
pub(crate) struct NoBuckets;

impl BucketSource for NoBuckets {
    fn for_each(&self, _: u32, _: &mut dyn FnMut(u16, u64)) {}
}
