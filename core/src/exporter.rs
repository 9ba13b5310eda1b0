//! The sans-IO exporter: from the lanes to datagrams on a [`Transport`].
//!
//! [`Exporter::poll`] takes the time as data, drains the lanes (high
//! priority first) into a staging batch, and when the batch is full
//! (`batch_size` events) or its oldest event is `max_batch_age_ns` old, packs
//! it into datagrams and hands them to the transport. A flush also tops each
//! datagram up with whatever else is waiting in the lanes, so under load
//! datagrams leave full (100+ events) rather than one batch each. It returns when it next
//! needs to run; it never sleeps, spawns or reads a clock, so the std and
//! embedded adapters only supply `now` and a transport.
//!
//! A [`CircuitBreaker`] guards the transport: while it is open nothing is
//! drained or sent, events wait in the lanes, and lane-full drops are counted
//! as [`DropReason::CircuitOpen`](crate::DropReason::CircuitOpen).
//!
//! Every event the exporter takes is accounted for in its [`Telemetry`]:
//! sent, lost with a failed send, refused by the encoder, or still staged.

use crate::batcher::{AdaptiveBatcher, AdaptiveConfig};
use crate::circuit_breaker::{BreakerConfig, CircuitBreaker};
use crate::event::{Event, KeyId};
use crate::histogram::LatencyHistogram;
use crate::lanes::Consumer;
use crate::registry::{Key, Registry};
use crate::ring::Storage;
use crate::telemetry::Telemetry;
use crate::transport::Transport;
use crate::wire::{EncodeError, Encoder, EncoderConfig, PushError};
use core::fmt;

/// Where the exporter finds a metric's name and tags when it encodes.
pub trait Keys {
    /// The name and tags behind `id`.
    fn key(&self, id: KeyId) -> Option<Key<'_>>;
}

impl<const K: usize, const B: usize> Keys for Registry<K, B> {
    fn key(&self, id: KeyId) -> Option<Key<'_>> {
        self.get(id)
    }
}

/// How the exporter batches and guards the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ExporterConfig {
    /// Flush when this many events are staged (default 50), unless
    /// `adaptive` chooses the size.
    pub batch_size: usize,
    /// Batch size by lane utilization (off by default; see `batcher.rs`).
    pub adaptive: Option<AdaptiveConfig>,
    /// Flush when the oldest staged event is this old, in ns (default 100 ms).
    pub max_batch_age_ns: u64,
    /// When the breaker opens and for how long.
    pub breaker: BreakerConfig,
    /// Datagram framing (sender id, maximum size).
    pub encoder: EncoderConfig,
}

impl ExporterConfig {
    /// The defaults for `sender_id`: batches of 50 or 100 ms, a breaker
    /// opening after 10 failures for 30 s, 1,472-byte datagrams.
    pub const fn new(sender_id: u64) -> Self {
        ExporterConfig {
            batch_size: 50,
            adaptive: None,
            max_batch_age_ns: 100_000_000,
            breaker: BreakerConfig::DEFAULT,
            encoder: EncoderConfig::new(sender_id),
        }
    }

    /// The same with another batch size.
    pub const fn with_batch_size(self, batch_size: usize) -> Self {
        ExporterConfig { batch_size, ..self }
    }

    /// The same with adaptive batch sizes.
    pub const fn with_adaptive(self, adaptive: AdaptiveConfig) -> Self {
        ExporterConfig {
            adaptive: Some(adaptive),
            ..self
        }
    }

    /// The same with another breaker.
    pub const fn with_breaker(self, breaker: BreakerConfig) -> Self {
        ExporterConfig { breaker, ..self }
    }
}

/// Why an exporter could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ExporterError {
    /// `batch_size` (or an adaptive size) is 0 or more than the staging
    /// capacity.
    BatchSize {
        /// The size given.
        got: usize,
        /// The staging capacity (the `BATCH` parameter).
        max: usize,
    },
    /// The encoder configuration or buffer is unusable.
    Encoder(EncodeError),
}

impl fmt::Display for ExporterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExporterError::BatchSize { got, max } => {
                write!(f, "batch size must be 1..={max}, got {got}")
            }
            ExporterError::Encoder(e) => write!(f, "encoder: {e}"),
        }
    }
}

impl core::error::Error for ExporterError {}

/// Batches handed to the transport in one poll at most, so that one poll
/// stays short even with full lanes.
const MAX_BATCHES_PER_POLL: usize = 64;

/// Drains lanes into datagrams. `BATCH` is the staging capacity (at least
/// the batch size).
pub struct Exporter<'a, S: Storage<Event>, const SETS: usize, const BATCH: usize = 128> {
    consumer: Consumer<'a, S, SETS>,
    encoder: Encoder,
    buf: &'a mut [u8],
    batch: heapless::Vec<Event, BATCH>,
    /// Smallest timestamp in `batch`.
    oldest: u64,
    config: ExporterConfig,
    breaker: CircuitBreaker,
    adaptive: Option<AdaptiveBatcher>,
    /// The batch size in force.
    batch_size: usize,
    telemetry: Telemetry,
    /// Record to drain (time in the lane), ns.
    lane_latency: LatencyHistogram,
    /// Record to handed to the transport, ns.
    end_to_end_latency: LatencyHistogram,
}

impl<S: Storage<Event>, const SETS: usize, const BATCH: usize> fmt::Debug
    for Exporter<'_, S, SETS, BATCH>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter")
            .field("staged", &self.batch.len())
            .field("breaker", &self.breaker.state())
            .field("telemetry", &self.telemetry)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Storage<Event>, const SETS: usize, const BATCH: usize> Exporter<'a, S, SETS, BATCH> {
    /// An exporter draining through `consumer`, building datagrams in `buf`
    /// (at least `config.encoder.max_datagram` bytes).
    pub fn new(
        consumer: Consumer<'a, S, SETS>,
        buf: &'a mut [u8],
        config: ExporterConfig,
    ) -> Result<Self, ExporterError> {
        let sizes = match config.adaptive {
            Some(a) => [a.low, a.medium, a.high],
            None => [config.batch_size; 3],
        };
        if let Some(&got) = sizes.iter().find(|&&n| n == 0 || n > BATCH) {
            return Err(ExporterError::BatchSize { got, max: BATCH });
        }
        let encoder = Encoder::new(config.encoder).map_err(ExporterError::Encoder)?;
        if buf.len() < config.encoder.max_datagram {
            return Err(ExporterError::Encoder(EncodeError::BufferTooSmall {
                needed: config.encoder.max_datagram,
                got: buf.len(),
            }));
        }
        Ok(Exporter {
            consumer,
            encoder,
            buf,
            batch: heapless::Vec::new(),
            oldest: u64::MAX,
            config,
            breaker: CircuitBreaker::new(config.breaker),
            adaptive: config.adaptive.map(AdaptiveBatcher::new),
            batch_size: config.batch_size,
            telemetry: Telemetry::default(),
            lane_latency: LatencyHistogram::new(),
            end_to_end_latency: LatencyHistogram::new(),
        })
    }

    /// Drains, batches and sends what is due at `now`. Returns when it next
    /// needs to run (a batch ageing out, the breaker's probe time), or `None`
    /// when nothing is pending: call again when events arrive or after a
    /// poll interval of the adapter's choosing.
    pub fn poll<T: Transport + ?Sized, K: Keys + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
        keys: &K,
    ) -> Option<u64> {
        for _ in 0..MAX_BATCHES_PER_POLL {
            let open = !self.breaker.allow(now);
            self.consumer.lanes().set_circuit_open(open);
            if open {
                return self.breaker.deadline();
            }
            if let Some(adaptive) = &mut self.adaptive {
                let lanes = self.consumer.lanes();
                let percent = lanes.len_total() * 100 / lanes.capacity_total().max(1);
                self.batch_size = adaptive.batch_size(percent.min(100) as u8);
            }
            self.fill(now);
            if self.batch.is_empty() {
                return None;
            }
            let due = self.oldest.saturating_add(self.config.max_batch_age_ns);
            if self.batch.len() < self.batch_size && now < due {
                return Some(due);
            }
            self.flush(now, transport, keys);
        }
        // More is waiting: run again at once.
        Some(now)
    }

    /// Tops the staging batch up from the lanes.
    fn fill(&mut self, now: u64) {
        let room = self.batch_size.saturating_sub(self.batch.len());
        let staging = Staging {
            batch: &mut self.batch,
            oldest: &mut self.oldest,
            lane_latency: &self.lane_latency,
        };
        staging.drain(&mut self.consumer, now, room);
    }

    /// Packs the staged events into datagrams and sends them. Stops early if
    /// the breaker opens; what was not sent stays staged.
    fn flush<T: Transport + ?Sized, K: Keys + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
        keys: &K,
    ) {
        self.telemetry.batches += 1;
        self.telemetry.batch_events += self.batch.len() as u64;
        // A transport that takes less than configured (but at least the
        // format's minimum) gets datagrams it takes.
        let max = self
            .config
            .encoder
            .max_datagram
            .min(transport.max_datagram());
        let _ = self.encoder.set_max_datagram(max);
        // Bounds the work of one flush when producers keep the lanes full.
        let mut top_ups = MAX_BATCHES_PER_POLL;
        let mut i = 0;
        while i < self.batch.len() {
            let Ok(mut writer) = self
                .encoder
                .begin(&mut self.buf[..], self.batch[i].timestamp)
            else {
                break;
            };
            loop {
                if i == self.batch.len() {
                    // Everything staged fits: top the datagram up from the
                    // lanes, so datagrams leave full when events are waiting.
                    if top_ups == 0 {
                        break;
                    }
                    top_ups -= 1;
                    self.batch.clear();
                    i = 0;
                    self.oldest = u64::MAX;
                    let staging = Staging {
                        batch: &mut self.batch,
                        oldest: &mut self.oldest,
                        lane_latency: &self.lane_latency,
                    };
                    staging.drain(&mut self.consumer, now, self.batch_size);
                    self.telemetry.batch_events += self.batch.len() as u64;
                    if self.batch.is_empty() {
                        break;
                    }
                }
                match writer.push(&self.batch[i], |id| keys.key(id)) {
                    Ok(()) => {
                        let waited = now.saturating_sub(self.batch[i].timestamp);
                        self.end_to_end_latency.record(waited);
                        i += 1;
                    }
                    Err(PushError::Full) => break,
                    Err(_) => {
                        self.telemetry.events_refused += 1;
                        i += 1;
                    }
                }
            }
            if writer.is_empty() {
                continue;
            }
            let events = writer.events() as u64;
            let datagram = writer.finish();
            match transport.send(datagram) {
                Ok(()) => {
                    self.breaker.on_success();
                    self.telemetry.events_sent += events;
                    self.telemetry.datagrams_sent += 1;
                    self.telemetry.bytes_sent += datagram.len() as u64;
                }
                Err(_) => {
                    self.breaker.on_failure(now);
                    self.telemetry.events_send_failed += events;
                    self.telemetry.send_errors += 1;
                    if !self.breaker.allow(now) {
                        break;
                    }
                }
            }
        }
        // Keep what was not sent (the breaker opened) for later.
        let rest = self.batch.len() - i;
        self.batch.copy_within(i.., 0);
        self.batch.truncate(rest);
        self.oldest = self
            .batch
            .iter()
            .map(|e| e.timestamp)
            .min()
            .unwrap_or(u64::MAX);
    }

    /// The counters so far.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Time from record to drain (in the lane), ns.
    pub fn lane_latency(&self) -> &LatencyHistogram {
        &self.lane_latency
    }

    /// Time from record to being handed to the transport, ns.
    pub fn end_to_end_latency(&self) -> &LatencyHistogram {
        &self.end_to_end_latency
    }

    /// The breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The adaptive batcher, when adaptive batching is on.
    pub fn adaptive(&self) -> Option<&AdaptiveBatcher> {
        self.adaptive.as_ref()
    }

    /// The batch size in force (fixed, or chosen by adaptive batching).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Events taken from the lanes but not yet sent.
    pub fn staged(&self) -> usize {
        self.batch.len()
    }
}

/// The exporter's staging state, borrowed apart from its encoder and buffer
/// (which a datagram being built holds).
struct Staging<'s, const BATCH: usize> {
    batch: &'s mut heapless::Vec<Event, BATCH>,
    oldest: &'s mut u64,
    lane_latency: &'s LatencyHistogram,
}

impl<const BATCH: usize> Staging<'_, BATCH> {
    /// Moves up to `max` events (at most the batch's free room) from the
    /// lanes into the batch, recording each one's time in the lane.
    fn drain<S: Storage<Event>, const SETS: usize>(
        self,
        consumer: &mut Consumer<'_, S, SETS>,
        now: u64,
        max: usize,
    ) {
        let Staging {
            batch,
            oldest,
            lane_latency,
        } = self;
        consumer.drain(max, |event| {
            *oldest = (*oldest).min(event.timestamp);
            lane_latency.record(now.saturating_sub(event.timestamp));
            // Cannot fail: callers ask for at most the free room.
            let _ = batch.push(event);
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::drop_policy::{DropPolicy, DropReason};
    use crate::event::{Kind, Priority};
    use crate::lanes::{LaneCapacities, StaticLanes};
    use crate::transport::SendError;
    use crate::wire::decode;
    use std::vec;
    use std::vec::Vec;

    const MS: u64 = 1_000_000;
    const CAPS: LaneCapacities = LaneCapacities {
        high: 16,
        medium: 64,
        low: 16,
    };
    type TestLanes = StaticLanes<{ 2 * 96 }, 2>;

    /// Keeps every datagram; fails while `down`, or every `fail_every`-th send.
    #[derive(Default)]
    struct Spy {
        sent: Vec<Vec<u8>>,
        down: bool,
        fail_every: usize,
        attempts: usize,
        max: usize,
    }

    impl Transport for Spy {
        fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
            self.attempts += 1;
            if datagram.len() > self.max() {
                return Err(SendError::TooLarge);
            }
            if self.down || (self.fail_every > 0 && self.attempts.is_multiple_of(self.fail_every)) {
                return Err(SendError::Refused);
            }
            self.sent.push(datagram.to_vec());
            Ok(())
        }
        fn max_datagram(&self) -> usize {
            self.max()
        }
    }

    impl Spy {
        fn max(&self) -> usize {
            if self.max == 0 { 1472 } else { self.max }
        }
        fn delivered(&self) -> Vec<(std::string::String, f64, u64)> {
            let mut out = Vec::new();
            for d in &self.sent {
                for e in decode(d).unwrap().events() {
                    let e = e.unwrap();
                    out.push((e.name.into(), e.value, e.timestamp));
                }
            }
            out
        }
    }

    struct Setup {
        lanes: TestLanes,
        registry: Registry<16, 1024>,
        buf: Vec<u8>,
    }

    fn setup() -> Setup {
        let mut registry = Registry::new();
        registry.register("requests", &[("route", "/")]).unwrap();
        registry.register("latency", &[]).unwrap();
        Setup {
            lanes: TestLanes::new(CAPS, DropPolicy::DropByPriority).unwrap(),
            registry,
            buf: vec![0; 1472],
        }
    }

    fn event(i: u64, at: u64) -> Event {
        Event::new(
            KeyId::from_raw((i % 2) as u32),
            Kind::Counter,
            i as f64,
            at,
            Priority::Medium,
        )
    }

    /// recorded = sent + failed + refused + lane drops + in lanes + staged
    fn conserved<const B: usize>(
        recorded: u64,
        lanes: &TestLanes,
        ex: &Exporter<'_, [crate::ring::Slot<Event>; 192], 2, B>,
    ) {
        let t = ex.telemetry();
        let accounted = t.events_sent
            + t.events_send_failed
            + t.events_refused
            + lanes.drops().total() as u64
            + lanes.len_total() as u64
            + ex.staged() as u64;
        assert_eq!(recorded, accounted, "{t:?}");
    }

    #[test]
    fn flushes_on_size_then_on_age() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let config = ExporterConfig::new(7);
        let mut ex: Exporter<'_, _, 2> =
            Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
        let mut spy = Spy::default();
        // Ten events: not a full batch, so they wait for their age.
        for i in 0..10 {
            p.push(event(i, 1_000 + i)).unwrap();
        }
        let due = Some(1_000 + 100 * MS);
        assert_eq!(ex.poll(2_000, &mut spy, &s.registry), due);
        assert_eq!(ex.poll(999 + 100 * MS, &mut spy, &s.registry), due);
        assert!(spy.sent.is_empty());
        assert_eq!(ex.poll(1_000 + 100 * MS, &mut spy, &s.registry), None);
        assert_eq!(spy.delivered().len(), 10);
        // They spent about 1 µs in the lanes and 100 ms in all before the send.
        let lane_p50 = ex.lane_latency().percentile(0.5).unwrap();
        assert!((990..=1_000).contains(&lane_p50), "{lane_p50}");
        let e2e = ex.end_to_end_latency().percentile(1.0).unwrap() as f64;
        assert!((e2e - 100e6).abs() / 100e6 < 0.02, "{e2e}");
        // Seventy more: a full batch goes at once, topped up with the rest,
        // in one datagram.
        for i in 10..80 {
            p.push(event(i, 1_000 + i)).unwrap();
        }
        assert_eq!(ex.poll(200 * MS, &mut spy, &s.registry), None);
        assert_eq!(spy.sent.len(), 2);
        let got = spy.delivered();
        assert_eq!(got.len(), 80);
        assert!(got.iter().enumerate().all(|(i, (name, v, t))| {
            *v == i as f64 && *t == 1_000 + i as u64 && name == ["requests", "latency"][i % 2]
        }));
        let t = ex.telemetry();
        assert_eq!((t.batches, t.batch_events, t.datagrams_sent), (2, 80, 2));
        conserved(80, &s.lanes, &ex);
    }

    #[test]
    fn breaker_opens_holds_events_and_recovers() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let config = ExporterConfig::new(7)
            .with_batch_size(1)
            .with_breaker(BreakerConfig::new(3, 30_000 * MS));
        let mut ex: Exporter<'_, _, 2> =
            Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
        let mut spy = Spy {
            down: true,
            ..Spy::default()
        };
        let mut recorded = 0;
        // Three failed sends (one event each) open the breaker.
        let mut next = None;
        for i in 0..3 {
            p.push(event(i, i)).unwrap();
            recorded += 1;
            next = ex.poll(10, &mut spy, &s.registry);
        }
        assert_eq!(next, Some(10 + 30_000 * MS));
        assert_eq!(ex.telemetry().events_send_failed, 3);
        // What comes next waits in the lanes.
        for i in 3..5 {
            p.push(event(i, i)).unwrap();
            recorded += 1;
        }
        assert_eq!(ex.poll(11, &mut spy, &s.registry), next);
        assert_eq!(s.lanes.len_total(), 2);
        // While open: nothing is drained; a full lane drops as "circuit open".
        for i in 5..200 {
            let _ = p.push(event(i, i));
            recorded += 1;
        }
        assert_eq!(ex.poll(20 * MS, &mut spy, &s.registry), next);
        assert_eq!(spy.attempts, 3);
        assert!(s.lanes.drops().by_reason(DropReason::CircuitOpen) > 0);
        conserved(recorded, &s.lanes, &ex);
        // The destination comes back; the probe succeeds and delivery resumes.
        spy.down = false;
        let mut now = 10 + 30_000 * MS;
        while ex.poll(now, &mut spy, &s.registry).is_some() {
            now += 1;
        }
        assert_eq!(ex.breaker().state(), crate::BreakerState::Closed);
        assert_eq!(ex.breaker().transitions().closed, 1);
        assert_eq!(s.lanes.len_total(), 0);
        assert_eq!(spy.delivered().len() as u64, ex.telemetry().events_sent);
        conserved(recorded, &s.lanes, &ex);
        // Closed again, so a full lane's drops are plain lane-full once more.
        for i in 0..200 {
            let _ = p.push(event(i, now));
            recorded += 1;
        }
        assert!(s.lanes.drops().by_reason(DropReason::LaneFull) > 0);
        conserved(recorded, &s.lanes, &ex);
    }

    #[test]
    fn every_third_send_failing_loses_only_those_and_counts_them() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let config = ExporterConfig::new(7).with_batch_size(5);
        let mut ex: Exporter<'_, _, 2> =
            Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
        let mut spy = Spy {
            fail_every: 3,
            ..Spy::default()
        };
        let mut now = 0;
        for round in 0..40 {
            for i in 0..5 {
                p.push(event(round * 5 + i, now)).unwrap();
            }
            ex.poll(now, &mut spy, &s.registry);
            now += MS;
        }
        let t = *ex.telemetry();
        assert_eq!(t.events_sent + t.events_send_failed, 200);
        assert_eq!(t.send_errors, spy.attempts as u64 / 3);
        assert_eq!(spy.delivered().len() as u64, t.events_sent);
        assert_eq!(ex.breaker().state(), crate::BreakerState::Closed);
        conserved(200, &s.lanes, &ex);
    }

    #[test]
    fn a_transport_that_takes_small_datagrams_gets_small_datagrams() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        for i in 0..60 {
            p.push(event(i, i)).unwrap();
        }
        let mut ex: Exporter<'_, _, 2> = Exporter::new(
            s.lanes.consumer().unwrap(),
            &mut s.buf,
            ExporterConfig::new(7),
        )
        .unwrap();
        let mut spy = Spy {
            max: 512,
            ..Spy::default()
        };
        while ex.poll(u64::MAX / 2, &mut spy, &s.registry).is_some() {}
        assert!(spy.sent.iter().all(|d| d.len() <= 512));
        assert_eq!(spy.delivered().len(), 60);
        assert_eq!(ex.telemetry().send_errors, 0);
    }

    #[test]
    fn adaptive_batching_flushes_small_batches_when_lanes_are_quiet() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let config = ExporterConfig::new(7).with_adaptive(AdaptiveConfig::DEFAULT);
        let mut ex: Exporter<'_, _, 2> =
            Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
        let mut spy = Spy::default();
        for i in 0..10 {
            p.push(event(i, i)).unwrap();
        }
        // 10 of 192 slots used: low utilization, batches of 10 go at once
        // (a fixed batch of 50 would wait for the age limit).
        assert_eq!(ex.poll(20, &mut spy, &s.registry), None);
        assert_eq!((ex.batch_size(), spy.delivered().len()), (10, 10));
        // Lanes more than 80% full (160 of 192 slots): batches of 100.
        for i in 0..100 {
            let _ = p.push(event(i, 30));
            let _ = s.lanes.push(event(i, 30));
        }
        assert_eq!(s.lanes.len_total(), 160);
        assert_eq!(ex.poll(40, &mut spy, &s.registry), None);
        // It went up to 100 for the full lanes and back down once they drained.
        let adaptive = ex.adaptive().unwrap();
        assert_eq!((adaptive.changes(), ex.batch_size()), (3, 10));
        assert_eq!(spy.delivered().len(), 170);
        conserved(210, &s.lanes, &ex);
    }

    #[test]
    fn configuration_errors_are_typed() {
        let mut s = setup();
        let c = s.lanes.consumer().unwrap();
        let bad = ExporterConfig::new(7).with_batch_size(129);
        assert_eq!(
            Exporter::<_, 2>::new(c, &mut s.buf, bad).err(),
            Some(ExporterError::BatchSize { got: 129, max: 128 })
        );
        let c = s.lanes.consumer().unwrap();
        let adaptive = AdaptiveConfig {
            high: 200,
            ..AdaptiveConfig::DEFAULT
        };
        assert_eq!(
            Exporter::<_, 2>::new(
                c,
                &mut s.buf,
                ExporterConfig::new(7).with_adaptive(adaptive)
            )
            .err(),
            Some(ExporterError::BatchSize { got: 200, max: 128 })
        );
        let mut small = [0u8; 100];
        let c = s.lanes.consumer().unwrap();
        assert!(matches!(
            Exporter::<_, 2>::new(c, &mut small, ExporterConfig::new(7)).err(),
            Some(ExporterError::Encoder(EncodeError::BufferTooSmall { .. }))
        ));
    }
}
