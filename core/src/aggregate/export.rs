//! The sans-IO exporter of aggregates: every interval, the series that
//! changed (and, every refresh, all of them) go out as cumulative records
//! in series datagrams (`wire/series.rs`).
//!
//! [`AggregateExporter::poll`] takes the time as data and returns when it
//! next needs to run, like the event [`Exporter`](crate::Exporter): an
//! interval's *pass* walks the series table, reads each series' totals
//! and packs those that changed since they were last sent into datagrams
//! for the transport, behind the same circuit breaker. Because every record
//! is a total since the sender started, nothing is lost when a datagram
//! is: the next record of the series carries it, and a periodic full
//! refresh (default every 10 s) sends every series whatever happened, so a
//! collector that restarted, or missed the last change of a series that
//! then went quiet, has every total again within one refresh. A refused
//! send, or a pass cut short by the breaker, makes the next pass a full
//! one.
//!
//! A transport that would block keeps the datagram and the pass where it
//! is: `poll` returns `now`, and the next poll carries on. Memory is the
//! caller's buffer and this structure; nothing allocates or panics.

use super::{Aggregates, SeriesBuckets, Words};
use crate::circuit_breaker::{BreakerConfig, CircuitBreaker};
use crate::exporter::Keys;
use crate::outbox::Outbox;
use crate::transport::Transport;
use crate::wire::{BucketSource, EncodeError, Encoder, EncoderConfig, PushError};
use core::fmt;

/// Nanoseconds in a second.
const SECOND: u64 = 1_000_000_000;

/// How often an [`AggregateExporter`] sends, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct AggregateExporterConfig {
    /// Time between passes, ns (default 1 s).
    pub interval_ns: u64,
    /// Every series is sent at least this often, changed or not, ns
    /// (default 10 s).
    pub refresh_ns: u64,
    /// When the totals started (the sender's start), ns on the clock
    /// `poll` is given: what "cumulative since" means to a receiver.
    pub started: u64,
    /// Datagram framing (sender id, maximum size; the binary codec).
    pub encoder: EncoderConfig,
    /// When the breaker opens and for how long.
    pub breaker: BreakerConfig,
}

impl AggregateExporterConfig {
    /// Passes every second, a full refresh every 10 s, for `sender_id`
    /// whose totals started at `started`.
    pub const fn new(sender_id: u64, started: u64) -> Self {
        AggregateExporterConfig {
            interval_ns: SECOND,
            refresh_ns: 10 * SECOND,
            started,
            encoder: EncoderConfig::new(sender_id),
            breaker: BreakerConfig::DEFAULT,
        }
    }

    /// The same with another interval and refresh, ns.
    pub const fn with_interval(self, interval_ns: u64, refresh_ns: u64) -> Self {
        AggregateExporterConfig {
            interval_ns,
            refresh_ns,
            ..self
        }
    }

    /// The same with another datagram framing.
    pub const fn with_encoder(self, encoder: EncoderConfig) -> Self {
        AggregateExporterConfig { encoder, ..self }
    }

    /// The same with another breaker.
    pub const fn with_breaker(self, breaker: BreakerConfig) -> Self {
        AggregateExporterConfig { breaker, ..self }
    }
}

/// What an [`AggregateExporter`] has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct AggregateTelemetry {
    /// Passes completed.
    pub passes: u64,
    /// Of them, full refreshes (every series sent).
    pub full_passes: u64,
    /// Passes cut short by the breaker.
    pub passes_abandoned: u64,
    /// Series records in datagrams the transport accepted.
    pub series_sent: u64,
    /// Series records in datagrams the transport refused (sent again by
    /// the next pass, which is a full one).
    pub series_send_failed: u64,
    /// Series the encoder refused: a key too large for any datagram, or
    /// not found.
    pub series_refused: u64,
    /// Datagrams the transport accepted.
    pub datagrams_sent: u64,
    /// Bytes in them.
    pub bytes_sent: u64,
    /// Datagrams the transport refused.
    pub send_errors: u64,
    /// Bytes in them.
    pub bytes_send_failed: u64,
    /// Sends the transport turned away as busy.
    pub send_would_block: u64,
    /// Calls to the transport.
    pub send_calls: u64,
}

/// Why an aggregate exporter could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AggregateExporterError {
    /// The encoder configuration or buffer is unusable (the codec must be
    /// the binary one).
    Encoder(EncodeError),
    /// The interval is 0, or the refresh is shorter than the interval.
    Interval,
}

impl fmt::Display for AggregateExporterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggregateExporterError::Encoder(e) => write!(f, "encoder: {e}"),
            AggregateExporterError::Interval => {
                f.write_str("the interval must be positive and the refresh at least as long")
            }
        }
    }
}

impl core::error::Error for AggregateExporterError {}

/// A pass through the series table.
#[derive(Clone, Copy, Debug)]
struct Pass {
    /// The next series index to look at.
    cursor: usize,
    /// Every series, changed or not.
    full: bool,
    /// When it started: the records' timestamp.
    timestamp: u64,
}

/// Sends a table's series totals.
pub struct AggregateExporter<'a, S> {
    tables: &'a Aggregates<S>,
    encoder: Encoder,
    outbox: Outbox<'a>,
    config: AggregateExporterConfig,
    breaker: CircuitBreaker,
    /// When the next pass is due (`None`: at the first poll).
    next_pass: Option<u64>,
    /// When the last full pass started.
    last_full: Option<u64>,
    pass: Option<Pass>,
    /// Something was lost on the way: the next pass is a full one.
    resend: bool,
    telemetry: AggregateTelemetry,
}

impl<S: Words> fmt::Debug for AggregateExporter<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregateExporter")
            .field("telemetry", &self.telemetry)
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

impl<'a, S: Words> AggregateExporter<'a, S> {
    /// An exporter of `tables` building datagrams in `buf` (at least
    /// `config.encoder.max_datagram` bytes; a multiple lets it hand
    /// several to the transport per call).
    pub fn new(
        tables: &'a Aggregates<S>,
        buf: &'a mut [u8],
        config: AggregateExporterConfig,
    ) -> Result<Self, AggregateExporterError> {
        if config.interval_ns == 0 || config.refresh_ns < config.interval_ns {
            return Err(AggregateExporterError::Interval);
        }
        if config.encoder.codec != crate::wire::Codec::Native {
            return Err(AggregateExporterError::Encoder(EncodeError::MaxDatagram {
                got: config.encoder.max_datagram,
            }));
        }
        let encoder = Encoder::new(config.encoder).map_err(AggregateExporterError::Encoder)?;
        if buf.len() < config.encoder.max_datagram {
            return Err(AggregateExporterError::Encoder(
                EncodeError::BufferTooSmall {
                    needed: config.encoder.max_datagram,
                    got: buf.len(),
                },
            ));
        }
        Ok(AggregateExporter {
            tables,
            encoder,
            outbox: Outbox::new(buf),
            config,
            breaker: CircuitBreaker::new(config.breaker),
            next_pass: None,
            last_full: None,
            pass: None,
            resend: false,
            telemetry: AggregateTelemetry::default(),
        })
    }

    /// Runs what is due at `now`: a pass when the interval has passed,
    /// and sending. Returns when it next needs to run.
    pub fn poll<T: Transport + ?Sized, K: Keys + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
        keys: &K,
    ) -> Option<u64> {
        self.run(now, transport, keys)
    }

    /// Starts a full pass now (whatever the interval) and runs it as far
    /// as the transport and the breaker let it: `true` when every series
    /// has been handed to the transport. For an application's flush and
    /// for shutdown (which sends twice, so that one lost datagram cannot
    /// lose a final total).
    pub fn flush<T: Transport + ?Sized, K: Keys + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
        keys: &K,
    ) -> bool {
        self.pass = Some(Pass {
            cursor: 0,
            full: true,
            timestamp: now,
        });
        self.resend = false;
        self.run(now, transport, keys);
        self.pass.is_none() && self.outbox.is_empty()
    }

    fn run<T: Transport + ?Sized, K: Keys + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
        keys: &K,
    ) -> Option<u64> {
        // Each round fills the buffer at most once: bounded work per poll.
        for _ in 0..64 {
            if !self.breaker.allow(now) {
                if self.pass.take().is_some() {
                    self.telemetry.passes_abandoned += 1;
                    self.resend = true;
                }
                return self.breaker.deadline();
            }
            if !self.outbox.is_empty() && !self.send(now, transport) {
                if self.breaker.allow(now) {
                    return Some(now); // would block: come back soon
                }
                continue; // the breaker opened
            }
            let pass = match self.pass {
                Some(pass) => pass,
                None => {
                    let due = *self.next_pass.get_or_insert(now);
                    if now < due {
                        return Some(due);
                    }
                    let full = self.resend
                        || self
                            .last_full
                            .is_none_or(|at| now >= at.saturating_add(self.config.refresh_ns));
                    self.resend = false;
                    Pass {
                        cursor: 0,
                        full,
                        timestamp: now,
                    }
                }
            };
            let pass = self.fill(pass, transport.max_datagram(), keys);
            if pass.cursor < self.tables.len() {
                self.pass = Some(pass);
                continue;
            }
            // Everything is encoded: the pass is done once it is sent.
            self.pass = None;
            self.telemetry.passes += 1;
            if pass.full {
                self.telemetry.full_passes += 1;
                self.last_full = Some(pass.timestamp);
            }
            // The next pass one interval after this one started (or now,
            // if that has passed already).
            let next = pass.timestamp.saturating_add(self.config.interval_ns);
            self.next_pass = Some(next.max(now));
            if !self.outbox.is_empty() && !self.send(now, transport) && self.breaker.allow(now) {
                return Some(now);
            }
            if self.outbox.is_empty() {
                return self.next_pass;
            }
        }
        Some(now)
    }

    /// Encodes the series of `pass` from its cursor until the buffer is
    /// full or the table ends; the pass as it then stands.
    fn fill<K: Keys + ?Sized>(&mut self, mut pass: Pass, transport_max: usize, keys: &K) -> Pass {
        let max = self.config.encoder.max_datagram.min(transport_max);
        let _ = self.encoder.set_max_datagram(max);
        let tables = self.tables;
        let len = tables.len();
        while pass.cursor < len {
            let Some(buf) = self.outbox.next_buffer(max) else {
                break;
            };
            let Ok(mut writer) =
                self.encoder
                    .begin_series(buf, pass.timestamp, self.config.started)
            else {
                break;
            };
            while pass.cursor < len {
                let Some(series) = tables.series_at(pass.cursor) else {
                    // Being added: its first pass will be the next.
                    pass.cursor += 1;
                    continue;
                };
                let Some(snapshot) = tables.snapshot(series) else {
                    pass.cursor += 1;
                    continue;
                };
                if !pass.full && snapshot.changes == tables.sent(series) {
                    pass.cursor += 1;
                    continue;
                }
                let buckets = SeriesBuckets { tables, series };
                match writer.push(&snapshot, &buckets, |id| keys.key(id)) {
                    Ok(()) => {
                        tables.set_sent(series, snapshot.changes);
                        pass.cursor += 1;
                    }
                    Err(PushError::Full) => break,
                    Err(_) => {
                        self.telemetry.series_refused += 1;
                        pass.cursor += 1;
                    }
                }
            }
            if writer.is_empty() {
                break;
            }
            let series = writer.series();
            let len = writer.finish().len();
            self.outbox.commit(len, series);
        }
        pass
    }

    /// Sends what is encoded; whether all of it went.
    fn send<T: Transport + ?Sized>(&mut self, now: u64, transport: &mut T) -> bool {
        let sent = self.outbox.send(now, transport, &mut self.breaker, |_| {});
        let t = &mut self.telemetry;
        t.send_calls += sent.calls;
        t.series_sent += sent.items;
        t.datagrams_sent += sent.datagrams;
        t.bytes_sent += sent.bytes;
        t.series_send_failed += sent.failed_items;
        t.send_errors += sent.failed_datagrams;
        t.bytes_send_failed += sent.failed_bytes;
        t.send_would_block += u64::from(sent.would_block);
        if sent.failed_datagrams > 0 {
            self.resend = true;
        }
        self.outbox.is_empty()
    }

    /// The counters so far.
    pub fn telemetry(&self) -> &AggregateTelemetry {
        &self.telemetry
    }

    /// The breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The table this exporter reads.
    pub fn tables(&self) -> &'a Aggregates<S> {
        self.tables
    }

    /// Bytes of this structure and its datagram buffer (the table's are
    /// its own, see [`Aggregates::memory_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>() + self.outbox.capacity()
    }

    /// Whether a pass is under way or datagrams wait to be sent.
    pub fn is_busy(&self) -> bool {
        self.pass.is_some() || !self.outbox.is_empty()
    }
}

/// A series datagram reads a distribution's buckets from its table.
impl<S: Words> BucketSource for SeriesBuckets<'_, S> {
    fn for_each(&self, shift: u32, f: &mut dyn FnMut(u16, u64)) {
        for (id, count) in self.tables.buckets(self.series, shift) {
            f(id, count);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::aggregate::{AggregatesConfig, Shard, Word};
    use crate::event::Kind;
    use crate::registry::Registry;
    use crate::transport::{PartialSend, SendError};
    use crate::wire::{DecodedTotals, decode};
    use std::boxed::Box;
    use std::collections::BTreeMap;
    use std::string::{String, ToString};
    use std::vec;
    use std::vec::Vec;

    const S: u64 = 1_000_000_000;

    type Table = Aggregates<Box<[Word]>>;

    fn table(series: usize) -> Table {
        let config = AggregatesConfig::new(series, 2);
        let words: Box<[Word]> = (0..config.fixed_words() + (1 << 16))
            .map(|_| Word::new())
            .collect();
        Aggregates::with_storage(words, config).unwrap()
    }

    /// Keeps what it is given; refuses while `down`; busy while `busy`.
    #[derive(Default)]
    struct Spy {
        sent: Vec<Vec<u8>>,
        down: bool,
        busy: bool,
        /// Bytes of the datagrams refused.
        refused_bytes: u64,
    }

    impl Transport for Spy {
        fn send(&mut self, d: &[u8]) -> Result<(), SendError> {
            if self.busy {
                return Err(SendError::WouldBlock);
            }
            if self.down {
                self.refused_bytes += d.len() as u64;
                return Err(SendError::Refused);
            }
            self.sent.push(d.to_vec());
            Ok(())
        }
        fn send_batch(&mut self, datagrams: &[&[u8]]) -> Result<(), PartialSend> {
            crate::transport::send_each(self, datagrams)
        }
        fn max_datagram(&self) -> usize {
            1472
        }
    }

    /// A receiver of cumulative records: the latest (by sequence) per
    /// series, as the collector keeps them.
    #[derive(Default)]
    struct Latest {
        series: BTreeMap<(String, Kind), (u64, String)>,
        records: usize,
    }

    impl Latest {
        fn take(&mut self, datagrams: &[Vec<u8>]) {
            for d in datagrams {
                let dg = decode(d).unwrap();
                let seq = dg.header.sequence;
                for s in dg.series() {
                    let s = s.unwrap();
                    self.records += 1;
                    let shown = match &s.totals {
                        DecodedTotals::Counter { sum, count } => std::format!("{sum}/{count}"),
                        DecodedTotals::Gauge { value, changes } => {
                            std::format!("{value}/{changes}")
                        }
                        DecodedTotals::Distribution(d) => {
                            std::format!("{}/{}/{}/{}", d.count, d.sum, d.min, d.max)
                        }
                    };
                    let entry = self
                        .series
                        .entry((s.name.to_string(), s.kind))
                        .or_insert((seq, shown.clone()));
                    if seq >= entry.0 {
                        *entry = (seq, shown);
                    }
                }
            }
        }

        fn get(&self, name: &str, kind: Kind) -> Option<&str> {
            self.series
                .get(&(name.to_string(), kind))
                .map(|(_, v)| v.as_str())
        }
    }

    fn config() -> AggregateExporterConfig {
        AggregateExporterConfig::new(9, 0).with_breaker(BreakerConfig::new(2, 5 * S))
    }

    #[test]
    fn passes_send_what_changed_and_refreshes_send_everything() {
        let mut registry: Registry<64, 4096> = Registry::new();
        let tables = table(8);
        let mut buf = vec![0u8; 4 * 1472];
        let a = registry.register("a", &[]).unwrap();
        let b = registry.register("b", &[]).unwrap();
        let ca = tables.insert(a, Kind::Counter).unwrap();
        tables.insert(b, Kind::Counter).unwrap();
        let mut ex = AggregateExporter::new(&tables, &mut buf, config()).unwrap();
        let mut spy = Spy::default();
        // The first poll is a full pass: both series, at zero.
        assert_eq!(ex.poll(0, &mut spy, &registry), Some(S));
        let mut got = Latest::default();
        got.take(&spy.sent);
        assert_eq!(got.records, 2);
        assert_eq!(got.get("a", Kind::Counter), Some("0/0"));
        // Only `a` changes: the next pass sends only `a`.
        tables.add(ca, 5);
        spy.sent.clear();
        assert_eq!(ex.poll(S / 2, &mut spy, &registry), Some(S), "not due yet");
        assert!(spy.sent.is_empty());
        ex.poll(S, &mut spy, &registry);
        let mut step = Latest::default();
        step.take(&spy.sent);
        assert_eq!(step.records, 1);
        assert_eq!(step.get("a", Kind::Counter), Some("5/1"));
        // Nothing changes: nothing is sent until the refresh, 10 s after
        // the first full pass, sends both.
        for t in 2..10 {
            spy.sent.clear();
            ex.poll(t * S, &mut spy, &registry);
            assert!(spy.sent.is_empty(), "at {t} s");
        }
        ex.poll(10 * S, &mut spy, &registry);
        let mut refresh = Latest::default();
        refresh.take(&spy.sent);
        assert_eq!(refresh.records, 2);
        assert_eq!(refresh.get("b", Kind::Counter), Some("0/0"));
        let t = ex.telemetry();
        assert_eq!((t.passes, t.full_passes), (11, 2));
        assert_eq!(t.series_sent, 5);
    }

    #[test]
    fn datagrams_per_pass_do_not_grow_with_the_rate() {
        let mut registry: Registry<64, 4096> = Registry::new();
        let tables = table(40);
        let mut buf = vec![0u8; 16 * 1472];
        let mut ids = Vec::new();
        for i in 0..12 {
            let k = registry
                .register(&std::format!("requests.{i}"), &[("route", "/api")])
                .unwrap();
            ids.push(tables.insert(k, Kind::Counter).unwrap());
        }
        for i in 0..3 {
            let k = registry
                .register(&std::format!("latency.{i}"), &[])
                .unwrap();
            ids.push(tables.insert(k, Kind::Timer).unwrap());
        }
        let mut ex = AggregateExporter::new(&tables, &mut buf, config()).unwrap();
        let mut spy = Spy::default();
        let mut shard = Shard::claim(&tables).unwrap();
        let mut per_pass = Vec::new();
        // 10 k, then 10 M values in a one-second interval: 10 k and 10 M
        // events a second.
        for (pass, rate) in [10_000u64, 10_000_000].into_iter().enumerate() {
            for i in 0..rate {
                let s = ids[(i % 15) as usize];
                if s.kind() == Kind::Counter {
                    shard.add(s, 1);
                } else {
                    // The same 30 latencies, 15 buckets, at either rate.
                    shard.record(s, (1_000 + (i % 30) * 100) as f64).unwrap();
                }
            }
            spy.sent.clear();
            ex.poll(pass as u64 * S, &mut spy, &registry);
            per_pass.push((spy.sent.len(), spy.sent.iter().map(Vec::len).sum::<usize>()));
        }
        // The same series changed: the same datagrams. Their bytes grow
        // only with the digits of the totals (a varint byte per 128-fold).
        assert_eq!(per_pass[0].0, per_pass[1].0, "{per_pass:?}");
        let (low, high) = (per_pass[0].1 as f64, per_pass[1].1 as f64);
        assert!(high / low < 1.25, "{per_pass:?}");
    }

    #[test]
    fn a_refused_send_makes_the_next_pass_full_and_totals_arrive() {
        let mut registry: Registry<64, 4096> = Registry::new();
        let tables = table(8);
        let mut buf = vec![0u8; 4 * 1472];
        let k = registry.register("hits", &[]).unwrap();
        let quiet = registry.register("quiet", &[]).unwrap();
        let c = tables.insert(k, Kind::Counter).unwrap();
        let q = tables.insert(quiet, Kind::Gauge).unwrap();
        let mut ex = AggregateExporter::new(&tables, &mut buf, config()).unwrap();
        let mut spy = Spy::default();
        let mut got = Latest::default();
        ex.poll(0, &mut spy, &registry);
        tables.set(q, 3.0); // its only change, lost with the datagram
        tables.add(c, 1);
        spy.down = true;
        ex.poll(S, &mut spy, &registry);
        assert_eq!(ex.telemetry().send_errors, 1);
        assert!(spy.refused_bytes > 0);
        assert_eq!(ex.telemetry().bytes_send_failed, spy.refused_bytes);
        spy.down = false;
        tables.add(c, 1);
        ex.poll(2 * S, &mut spy, &registry);
        got.take(&spy.sent);
        assert_eq!(got.get("hits", Kind::Counter), Some("2/2"));
        assert_eq!(
            got.get("quiet", Kind::Gauge),
            Some("3/1"),
            "the pass after a loss is full"
        );
        assert_eq!(ex.telemetry().full_passes, 2);
    }

    #[test]
    fn the_breaker_stops_passes_and_recovery_resends_everything() {
        let mut registry: Registry<64, 4096> = Registry::new();
        let tables = table(8);
        let mut buf = vec![0u8; 1472];
        let k = registry.register("hits", &[]).unwrap();
        let c = tables.insert(k, Kind::Counter).unwrap();
        let mut ex = AggregateExporter::new(&tables, &mut buf, config()).unwrap();
        let mut spy = Spy {
            down: true,
            ..Spy::default()
        };
        for t in 0..3 {
            tables.add(c, 1);
            ex.poll(t * S, &mut spy, &registry);
        }
        assert!(matches!(
            ex.breaker().state(),
            crate::BreakerState::Open { .. }
        ));
        // Open: nothing is tried until the probe time.
        let errors = ex.telemetry().send_errors;
        assert_eq!(ex.poll(3 * S, &mut spy, &registry), Some(6 * S));
        assert_eq!(ex.telemetry().send_errors, errors);
        spy.down = false;
        ex.poll(6 * S, &mut spy, &registry);
        let mut got = Latest::default();
        got.take(&spy.sent);
        assert_eq!(got.get("hits", Kind::Counter), Some("3/3"));
    }

    #[test]
    fn a_busy_transport_keeps_the_pass_and_flush_sends_everything() {
        let mut registry: Registry<64, 4096> = Registry::new();
        let tables = table(64);
        let mut buf = vec![0u8; 1472];
        for i in 0..60 {
            let k = registry
                .register(&std::format!("series.number.{i}"), &[("host", "web-01")])
                .unwrap();
            let c = tables.insert(k, Kind::Counter).unwrap();
            tables.add(c, i);
        }
        let mut ex = AggregateExporter::new(&tables, &mut buf, config()).unwrap();
        let mut spy = Spy {
            busy: true,
            ..Spy::default()
        };
        assert_eq!(ex.poll(0, &mut spy, &registry), Some(0), "come back soon");
        assert!(ex.is_busy());
        spy.busy = false;
        ex.poll(1, &mut spy, &registry);
        let mut got = Latest::default();
        got.take(&spy.sent);
        assert_eq!(got.series.len(), 60);
        assert!(
            spy.sent.len() > 1,
            "60 series need several datagrams of 1,472 bytes"
        );
        // A flush is a full pass at once, whatever the interval.
        spy.sent.clear();
        assert!(ex.flush(2, &mut spy, &registry));
        let mut again = Latest::default();
        again.take(&spy.sent);
        assert_eq!(again.series.len(), 60);
        assert_eq!(again.get("series.number.59", Kind::Counter), Some("59/1"));
    }

    #[test]
    fn configurations_that_cannot_work_are_refused() {
        let tables = table(2);
        let mut buf = vec![0u8; 100];
        assert!(matches!(
            AggregateExporter::new(&tables, &mut buf, config()),
            Err(AggregateExporterError::Encoder(
                EncodeError::BufferTooSmall { .. }
            ))
        ));
        let mut buf = vec![0u8; 1472];
        assert_eq!(
            AggregateExporter::new(&tables, &mut buf, config().with_interval(S, S / 2)).err(),
            Some(AggregateExporterError::Interval)
        );
    }
}
