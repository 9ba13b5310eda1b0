//! The sans-IO exporter: from the lanes to datagrams on a [`Transport`].
//!
//! [`Exporter::poll`] takes the time as data, drains the lanes (high
//! priority first) into a staging batch, and when the batch is full
//! (`batch_size` events) or its oldest event is `max_batch_age_ns` old, packs
//! it into datagrams and hands them to the transport. A flush also tops each
//! datagram up with whatever else is waiting in the lanes, so under load
//! datagrams leave full (100+ events) rather than one batch each. Datagrams
//! are packed back to back in the caller's buffer and handed over up to
//! [`MAX_DATAGRAMS_PER_SEND`] per [`Transport::send_batch`] call, so a
//! transport with `sendmmsg` sends them in one system call. `poll` returns
//! when it next needs to run; it never sleeps, spawns or reads a clock, so
//! the std and embedded adapters only supply `now` and a transport.
//!
//! A transport that would block
//! ([`SendError::WouldBlock`](crate::SendError::WouldBlock): its buffer is
//! full) is flow control, not failure: the datagram stays encoded, `poll`
//! returns `now` so the adapter comes back soon, and meanwhile the lanes fill
//! and their drop policy applies.
//!
//! A [`CircuitBreaker`] guards the transport: while it is open nothing is
//! drained or sent, events wait in the lanes (and datagrams already encoded
//! wait in the buffer), and lane-full drops are counted as
//! [`DropReason::CircuitOpen`](crate::DropReason::CircuitOpen).
//!
//! Every event the exporter takes is accounted for in its [`Telemetry`]:
//! sent, lost with a failed send, refused by the encoder, or still staged.
//! [`Exporter::snapshot`] adds the lanes' side for the whole conservation
//! law.
//!
//! Memory is fixed at construction: [`Exporter::memory_bytes`] is the lanes,
//! the exporter and the datagram buffer, checked against
//! [`ExporterConfig::max_memory_bytes`]. Lane utilization is reported as a
//! pressure [`Level`] and, on each change, to the callback set with
//! [`Exporter::on_pressure`].

use crate::batcher::{AdaptiveBatcher, AdaptiveConfig, Level};
use crate::circuit_breaker::{BreakerConfig, CircuitBreaker};
use crate::event::{Event, KeyId, Priority};
use crate::histogram::LogLinearHistogram;
use crate::lanes::Consumer;
pub use crate::outbox::MAX_DATAGRAMS_PER_SEND;
use crate::outbox::Outbox;
use crate::registry::{Key, Registry};
use crate::ring::Storage;
use crate::telemetry::{
    CountHistogram, LaneStats, Quantiles, Telemetry, TelemetrySnapshot, WideDrops, Widened,
};
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

/// Lane utilization thresholds for memory pressure (see [`Level`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct PressureConfig {
    /// Utilization, percent, from which pressure is medium (default 50).
    pub medium_percent: u8,
    /// Utilization, percent, from which pressure is high (default 80).
    pub high_percent: u8,
    /// Points past a threshold needed to change level (default 5).
    pub hysteresis_percent: u8,
}

impl PressureConfig {
    /// Medium from 50%, high from 80%, ±5 points.
    pub const DEFAULT: PressureConfig = PressureConfig {
        medium_percent: 50,
        high_percent: 80,
        hysteresis_percent: 5,
    };
}

impl Default for PressureConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A change of memory pressure, as told to the pressure callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pressure {
    /// The new level.
    pub level: Level,
    /// Lane utilization that caused it, percent.
    pub utilization_percent: u8,
    /// Bytes of lanes, exporter and buffer (fixed).
    pub memory_bytes: usize,
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
    /// The most the lanes, exporter and buffer may occupy together
    /// (default 10 MiB).
    pub max_memory_bytes: usize,
    /// When lane utilization counts as memory pressure.
    pub pressure: PressureConfig,
}

impl ExporterConfig {
    /// The defaults for `sender_id`: batches of 50 or 100 ms, a breaker
    /// opening after 10 failures for 30 s, 1,472-byte datagrams, 10 MiB.
    pub const fn new(sender_id: u64) -> Self {
        ExporterConfig {
            batch_size: 50,
            adaptive: None,
            max_batch_age_ns: 100_000_000,
            breaker: BreakerConfig::DEFAULT,
            encoder: EncoderConfig::new(sender_id),
            max_memory_bytes: 10 << 20,
            pressure: PressureConfig::DEFAULT,
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

    /// The same with another age limit, ns.
    pub const fn with_max_batch_age_ns(self, max_batch_age_ns: u64) -> Self {
        ExporterConfig {
            max_batch_age_ns,
            ..self
        }
    }

    /// The same with another datagram framing.
    pub const fn with_encoder(self, encoder: EncoderConfig) -> Self {
        ExporterConfig { encoder, ..self }
    }

    /// The same with another memory maximum.
    pub const fn with_max_memory_bytes(self, max_memory_bytes: usize) -> Self {
        ExporterConfig {
            max_memory_bytes,
            ..self
        }
    }

    /// The same with other pressure thresholds.
    pub const fn with_pressure(self, pressure: PressureConfig) -> Self {
        ExporterConfig { pressure, ..self }
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
    /// Lanes, exporter and buffer together exceed `max_memory_bytes`.
    MemoryBudget {
        /// Bytes they need.
        needed: usize,
        /// The configured maximum.
        max: usize,
    },
}

impl fmt::Display for ExporterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExporterError::BatchSize { got, max } => {
                write!(f, "batch size must be 1..={max}, got {got}")
            }
            ExporterError::Encoder(e) => write!(f, "encoder: {e}"),
            ExporterError::MemoryBudget { needed, max } => write!(
                f,
                "lanes, exporter and buffer need {needed} bytes, more than the maximum of {max}"
            ),
        }
    }
}

impl core::error::Error for ExporterError {}

/// Batches handed to the transport in one poll at most, so that one poll
/// stays short even with full lanes.
const MAX_BATCHES_PER_POLL: usize = 64;

/// `len` as a whole percentage of `capacity`, at most 100.
fn utilization_percent(len: usize, capacity: usize) -> u8 {
    (len * 100 / capacity.max(1)).min(100) as u8
}

/// Drains lanes into datagrams. `BATCH` is the staging capacity (at least
/// the batch size). The latency histograms are `LogLinearHistogram<G, N>`: by default
/// the 4 KiB [`LatencyHistogram`](crate::LatencyHistogram) (1.6% error);
/// a microcontroller may choose a smaller one (for example `G = 2`,
/// `N = bucket_count(2, 36)`: 560 bytes, 12.5% error).
pub struct Exporter<
    'a,
    S: Storage<Event>,
    const SETS: usize,
    const BATCH: usize = 128,
    const G: u32 = 5,
    const N: usize = 1024,
> {
    consumer: Consumer<'a, S, SETS>,
    encoder: Encoder,
    /// Datagrams encoded, not yet sent.
    outbox: Outbox<'a>,
    batch: heapless::Vec<Event, BATCH>,
    /// Smallest timestamp in `batch`.
    oldest: u64,
    config: ExporterConfig,
    breaker: CircuitBreaker,
    adaptive: Option<AdaptiveBatcher>,
    /// The batch size in force.
    batch_size: usize,
    telemetry: Telemetry,
    /// Events accepted into the lanes since they were made, as a 64-bit
    /// total (the exporter must be made before the lanes' counters wrap).
    pushed: Widened,
    /// Lane drops, as 64-bit totals.
    drops: WideDrops,
    /// Most events seen waiting, by [`Priority::index`].
    peaks: [usize; 3],
    pressure: Level,
    on_pressure: Option<&'a mut dyn FnMut(Pressure)>,
    /// Record to drain (time in the lane), ns.
    lane_latency: LogLinearHistogram<G, N>,
    /// Duration of a transport call, ns.
    send_latency: LogLinearHistogram<G, N>,
    /// Record to encoded for the transport, ns.
    end_to_end_latency: LogLinearHistogram<G, N>,
    /// Events per flushed batch.
    batch_sizes: CountHistogram,
}

impl<S: Storage<Event>, const SETS: usize, const BATCH: usize, const G: u32, const N: usize>
    fmt::Debug for Exporter<'_, S, SETS, BATCH, G, N>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter")
            .field("staged", &self.staged())
            .field("breaker", &self.breaker.state())
            .field("telemetry", &self.telemetry)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Storage<Event>, const SETS: usize, const BATCH: usize, const G: u32, const N: usize>
    Exporter<'a, S, SETS, BATCH, G, N>
{
    /// An exporter draining through `consumer`, building datagrams in `buf`
    /// (at least `config.encoder.max_datagram` bytes; a multiple lets it
    /// hand several datagrams to the transport per call).
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
        let needed = Self::footprint(&consumer, buf.len());
        if needed > config.max_memory_bytes {
            return Err(ExporterError::MemoryBudget {
                needed,
                max: config.max_memory_bytes,
            });
        }
        Ok(Exporter {
            pushed: Widened::default(),
            drops: WideDrops::default(),
            consumer,
            encoder,
            outbox: Outbox::new(buf),
            batch: heapless::Vec::new(),
            oldest: u64::MAX,
            config,
            breaker: CircuitBreaker::new(config.breaker),
            adaptive: config.adaptive.map(AdaptiveBatcher::new),
            batch_size: config.batch_size,
            telemetry: Telemetry::default(),
            peaks: [0; 3],
            pressure: Level::Low,
            on_pressure: None,
            lane_latency: LogLinearHistogram::new(),
            send_latency: LogLinearHistogram::new(),
            end_to_end_latency: LogLinearHistogram::new(),
            batch_sizes: CountHistogram::new(),
        })
    }

    fn footprint(consumer: &Consumer<'a, S, SETS>, buf: usize) -> usize {
        consumer.lanes().memory_bytes() + size_of::<Self>() + buf
    }

    /// Bytes of the lanes, this exporter and its datagram buffer: fixed
    /// from construction.
    pub fn memory_bytes(&self) -> usize {
        Self::footprint(&self.consumer, self.outbox.capacity())
    }

    /// Calls `callback` whenever the pressure level changes (checked at
    /// each poll).
    pub fn on_pressure(&mut self, callback: &'a mut dyn FnMut(Pressure)) {
        self.on_pressure = Some(callback);
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
        self.run(now, transport, keys, false)
    }

    /// Sends everything staged and waiting in the lanes now, whatever its
    /// age (for an application's flush or shutdown). Returns `true` when
    /// nothing is left; `false` when the breaker is open or producers kept
    /// the lanes busy beyond one poll's work (call again, or give up at a
    /// deadline).
    pub fn flush<T: Transport + ?Sized, K: Keys + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
        keys: &K,
    ) -> bool {
        self.run(now, transport, keys, true);
        self.staged() == 0 && self.consumer.lanes().len_total() == 0
    }

    fn run<T: Transport + ?Sized, K: Keys + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
        keys: &K,
        force: bool,
    ) -> Option<u64> {
        let utilization = self.observe_lanes();
        self.observe_pressure(utilization);
        for _ in 0..MAX_BATCHES_PER_POLL {
            let open = !self.breaker.allow(now);
            self.consumer.lanes().set_circuit_open(open);
            if open {
                return self.breaker.deadline();
            }
            if !self.outbox.is_empty() && !self.send_encoded(now, transport) {
                if self.breaker.allow(now) {
                    // The transport is busy (would block): try again soon.
                    return Some(now);
                }
                continue; // the breaker opened
            }
            if let Some(adaptive) = &mut self.adaptive {
                let lanes = self.consumer.lanes();
                let percent = utilization_percent(lanes.len_total(), lanes.capacity_total());
                self.batch_size = adaptive.batch_size(percent);
            }
            self.fill(now);
            if self.batch.is_empty() {
                return None;
            }
            let due = self.oldest.saturating_add(self.config.max_batch_age_ns);
            if !force && self.batch.len() < self.batch_size && now < due {
                return Some(due);
            }
            self.ship(now, transport, keys);
        }
        // More is waiting: run again at once.
        Some(now)
    }

    /// Updates the lane peaks; the lanes' utilization, percent.
    fn observe_lanes(&mut self) -> u8 {
        let lanes = self.consumer.lanes();
        let mut len = 0;
        for p in Priority::ALL {
            let n = lanes.len(p);
            self.peaks[p.index()] = self.peaks[p.index()].max(n);
            len += n;
        }
        utilization_percent(len, lanes.capacity_total())
    }

    /// Moves the pressure level with `utilization`, telling the callback.
    fn observe_pressure(&mut self, utilization: u8) {
        let c = self.config.pressure;
        let level = self.pressure.next(
            utilization,
            c.medium_percent,
            c.high_percent,
            c.hysteresis_percent,
        );
        if level == self.pressure {
            return;
        }
        self.pressure = level;
        let memory_bytes = self.memory_bytes();
        if let Some(callback) = self.on_pressure.as_mut() {
            callback(Pressure {
                level,
                utilization_percent: utilization,
                memory_bytes,
            });
        }
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
    /// the breaker opens; what was not sent stays staged or encoded.
    fn ship<T: Transport + ?Sized, K: Keys + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
        keys: &K,
    ) {
        self.telemetry.batches += 1;
        self.telemetry.batch_events += self.batch.len() as u64;
        self.batch_sizes.record(self.batch.len() as u64);
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
        loop {
            // Encode until the staged events are in or the outbox is full.
            while i < self.batch.len() {
                match self.encode_datagram(now, max, i, &mut top_ups, keys) {
                    Some(next) => i = next,
                    None => break,
                }
            }
            if self.outbox.is_empty() || !self.send_encoded(now, transport) || i == self.batch.len()
            {
                break;
            }
        }
        // Keep what was not encoded (the breaker opened) for later.
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

    /// Encodes the staged events from `i` into one datagram of at most
    /// `max` bytes; where the next datagram starts. When every staged
    /// event is in and there is room left, restages the batch from the
    /// lanes (while `top_ups` last), so that datagrams leave full when
    /// events are waiting. `None` if no datagram could be begun (the
    /// outbox is full).
    #[inline(always)]
    fn encode_datagram<K: Keys + ?Sized>(
        &mut self,
        now: u64,
        max: usize,
        mut i: usize,
        top_ups: &mut usize,
        keys: &K,
    ) -> Option<usize> {
        let Exporter {
            consumer,
            encoder,
            outbox,
            batch,
            oldest,
            batch_size,
            telemetry,
            lane_latency,
            end_to_end_latency,
            ..
        } = self;
        let buf = outbox.next_buffer(max)?;
        let mut writer = encoder.begin(buf, batch[i].timestamp).ok()?;
        loop {
            if i == batch.len() {
                if *top_ups == 0 {
                    break;
                }
                *top_ups -= 1;
                batch.clear();
                i = 0;
                *oldest = u64::MAX;
                let staging = Staging {
                    batch: &mut *batch,
                    oldest: &mut *oldest,
                    lane_latency: &*lane_latency,
                };
                staging.drain(consumer, now, *batch_size);
                telemetry.batch_events += batch.len() as u64;
                if batch.is_empty() {
                    break;
                }
            }
            match writer.push(&batch[i], |id| keys.key(id)) {
                Ok(()) => {
                    end_to_end_latency.record(now.saturating_sub(batch[i].timestamp));
                    i += 1;
                }
                Err(PushError::Full) => break,
                Err(_) => {
                    telemetry.events_refused += 1;
                    i += 1;
                }
            }
        }
        if !writer.is_empty() {
            let events = writer.events();
            let len = writer.finish().len();
            outbox.commit(len, events);
        }
        Some(i)
    }

    /// Hands the encoded datagrams to the transport while the breaker allows
    /// and the transport does not block. Returns whether all went (sent or
    /// lost to a failed send); the rest wait for later.
    fn send_encoded<T: Transport + ?Sized>(&mut self, now: u64, transport: &mut T) -> bool {
        let latency = &self.send_latency;
        let sent = self
            .outbox
            .send(now, transport, &mut self.breaker, |ns| latency.record(ns));
        let t = &mut self.telemetry;
        t.send_calls += sent.calls;
        t.events_sent += sent.items;
        t.datagrams_sent += sent.datagrams;
        t.bytes_sent += sent.bytes;
        t.events_send_failed += sent.failed_items;
        t.send_errors += sent.failed_datagrams;
        t.bytes_send_failed += sent.failed_bytes;
        t.send_would_block += u64::from(sent.would_block);
        self.outbox.is_empty()
    }

    /// The counters so far.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Everything the telemetry knows now, lanes included (see
    /// [`TelemetrySnapshot`]). Copies four histograms (about 13 KiB with the
    /// default latency histograms) to compute their quantiles.
    pub fn snapshot(&mut self) -> TelemetrySnapshot {
        self.observe_lanes();
        let lanes = self.consumer.lanes();
        let caps = lanes.capacities();
        let drops = self.drops.update(lanes.drops());
        let pushed = self.pushed.update(lanes.pushed());
        let stats = Priority::ALL.map(|p| LaneStats {
            len: lanes.len(p),
            peak: self.peaks[p.index()],
            capacity: caps.of(p) * SETS,
        });
        TelemetrySnapshot {
            events_received: pushed + drops.at_entry(),
            counters: self.telemetry,
            drops,
            lanes: stats,
            staged: self.staged() as u64,
            breaker: self.breaker.state(),
            breaker_transitions: self.breaker.transitions(),
            lane_latency: Quantiles::of(&self.lane_latency),
            send_latency: Quantiles::of(&self.send_latency),
            end_to_end_latency: Quantiles::of(&self.end_to_end_latency),
            batch_size: Quantiles::of(&self.batch_sizes),
            memory_bytes: self.memory_bytes(),
            memory_max_bytes: self.config.max_memory_bytes,
            pressure: self.pressure,
        }
    }

    /// Time from record to drain (in the lane), ns.
    pub fn lane_latency(&self) -> &LogLinearHistogram<G, N> {
        &self.lane_latency
    }

    /// Duration of each transport call, ns (recorded when the transport has
    /// a clock, see [`Transport::clock_ns`]).
    pub fn send_latency(&self) -> &LogLinearHistogram<G, N> {
        &self.send_latency
    }

    /// Time from record to being encoded for the transport, ns.
    pub fn end_to_end_latency(&self) -> &LogLinearHistogram<G, N> {
        &self.end_to_end_latency
    }

    /// Events per flushed batch.
    pub fn batch_sizes(&self) -> &CountHistogram {
        &self.batch_sizes
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

    /// The memory pressure level at the last poll.
    pub fn pressure(&self) -> Level {
        self.pressure
    }

    /// Events taken from the lanes but not yet sent: staged, or encoded in
    /// datagrams waiting for the breaker.
    pub fn staged(&self) -> usize {
        self.batch.len() + self.outbox.items()
    }
}

/// The exporter's staging state, borrowed apart from its encoder and buffer
/// (which a datagram being built holds).
struct Staging<'s, const BATCH: usize, const G: u32, const N: usize> {
    batch: &'s mut heapless::Vec<Event, BATCH>,
    oldest: &'s mut u64,
    lane_latency: &'s LogLinearHistogram<G, N>,
}

impl<const BATCH: usize, const G: u32, const N: usize> Staging<'_, BATCH, G, N> {
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
    use crate::event::Kind;
    use crate::health::{HealthThresholds, Status};
    use crate::lanes::{LaneCapacities, StaticLanes};
    use crate::transport::{PartialSend, SendError};
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
    /// With `send_cost` it has a clock that each send advances.
    #[derive(Default)]
    struct Spy {
        sent: Vec<Vec<u8>>,
        down: bool,
        fail_every: usize,
        attempts: usize,
        max: usize,
        /// Datagrams offered per `send_batch` call.
        calls: Vec<usize>,
        send_cost: u64,
        clock: u64,
        /// Would block (buffer full) while set.
        busy: bool,
        /// Bytes of the datagrams refused.
        refused_bytes: u64,
    }

    impl Transport for Spy {
        fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
            self.attempts += 1;
            self.clock += self.send_cost;
            if datagram.len() > self.max() {
                return Err(SendError::TooLarge);
            }
            if self.busy {
                return Err(SendError::WouldBlock);
            }
            if self.down || (self.fail_every > 0 && self.attempts.is_multiple_of(self.fail_every)) {
                self.refused_bytes += datagram.len() as u64;
                return Err(SendError::Refused);
            }
            self.sent.push(datagram.to_vec());
            Ok(())
        }
        fn send_batch(&mut self, datagrams: &[&[u8]]) -> Result<(), PartialSend> {
            self.calls.push(datagrams.len());
            crate::transport::send_each(self, datagrams)
        }
        fn max_datagram(&self) -> usize {
            self.max()
        }
        fn clock_ns(&self) -> Option<u64> {
            (self.send_cost > 0).then_some(self.clock)
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

    /// An exporter sending batches of one, whose breaker opens after 3
    /// failures for 30 s.
    fn batches_of_one<'a>(
        lanes: &'a TestLanes,
        buf: &'a mut [u8],
    ) -> Exporter<'a, [crate::Slot<Event>; 2 * 96], 2> {
        let config = ExporterConfig::new(7)
            .with_batch_size(1)
            .with_breaker(BreakerConfig::new(3, 30_000 * MS));
        Exporter::new(lanes.consumer().unwrap(), buf, config).unwrap()
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

    /// An event whose value takes the full eight bytes on the wire.
    fn wide_event(i: u64, at: u64) -> Event {
        Event {
            value: i as f64 * 1.1,
            ..event(i, at)
        }
    }

    /// recorded = sent + failed + refused + lane drops + in lanes + staged,
    /// from the exporter's own counts and from its snapshot.
    fn conserved<const B: usize>(
        recorded: u64,
        lanes: &TestLanes,
        ex: &mut Exporter<'_, [crate::ring::Slot<Event>; 192], 2, B>,
    ) -> TelemetrySnapshot {
        let t = ex.telemetry();
        let accounted = t.events_sent
            + t.events_send_failed
            + t.events_refused
            + lanes.drops().total() as u64
            + lanes.len_total() as u64
            + ex.staged() as u64;
        assert_eq!(recorded, accounted, "{t:?}");
        let snapshot = ex.snapshot();
        assert_eq!(snapshot.events_received, recorded);
        assert!(snapshot.is_conserved(), "{snapshot:?}");
        snapshot
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
        conserved(80, &s.lanes, &mut ex);
    }

    #[test]
    fn flush_sends_everything_whatever_its_age() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let mut ex: Exporter<'_, _, 2> = Exporter::new(
            s.lanes.consumer().unwrap(),
            &mut s.buf,
            ExporterConfig::new(7),
        )
        .unwrap();
        let mut spy = Spy::default();
        for i in 0..7 {
            p.push(event(i, 0)).unwrap();
        }
        assert_eq!(ex.poll(1, &mut spy, &s.registry), Some(100 * MS));
        assert!(ex.flush(1, &mut spy, &s.registry));
        assert_eq!(spy.delivered().len(), 7);
        conserved(7, &s.lanes, &mut ex);
        // While the destination is down and the breaker opens, flush says so.
        spy.down = true;
        let mut recorded = 7;
        for round in 0..12 {
            p.push(event(round, 2)).unwrap();
            recorded += 1;
            let done = ex.flush(2, &mut spy, &s.registry);
            // Ten failed sends (each losing its event) open the breaker.
            assert_eq!(done, round < 10, "round {round}");
        }
        conserved(recorded, &s.lanes, &mut ex);
    }

    #[test]
    fn breaker_opens_holds_events_and_recovers() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let mut ex = batches_of_one(&s.lanes, &mut s.buf);
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
        conserved(recorded, &s.lanes, &mut ex);
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
        conserved(recorded, &s.lanes, &mut ex);
        // Closed again, so a full lane's drops are plain lane-full once more.
        for i in 0..200 {
            let _ = p.push(event(i, now));
            recorded += 1;
        }
        assert!(s.lanes.drops().by_reason(DropReason::LaneFull) > 0);
        conserved(recorded, &s.lanes, &mut ex);
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
        conserved(200, &s.lanes, &mut ex);
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
        conserved(60, &s.lanes, &mut ex);
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
        conserved(210, &s.lanes, &mut ex);
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

    #[test]
    fn several_datagrams_go_per_call_and_a_mid_batch_failure_loses_one() {
        let s = setup();
        let mut p = s.lanes.producer().unwrap();
        // Room for four 512-byte datagrams in the buffer.
        let mut buf = vec![0u8; 4 * 512];
        let config = ExporterConfig {
            encoder: EncoderConfig::new(7).with_max_datagram(512),
            ..ExporterConfig::new(7).with_batch_size(80)
        };
        let mut ex: Exporter<'_, _, 2> =
            Exporter::new(s.lanes.consumer().unwrap(), &mut buf, config).unwrap();
        let mut spy = Spy::default();
        for i in 0..80 {
            p.push(wide_event(i, 0)).unwrap();
        }
        assert_eq!(ex.poll(0, &mut spy, &s.registry), None);
        // 80 events need two 512-byte datagrams: one call carries both.
        assert_eq!(spy.calls, [2]);
        assert_eq!(spy.delivered().len(), 80);
        // Now the first datagram of a call fails: only its events are lost,
        // and the second goes in another call.
        spy.calls.clear();
        spy.fail_every = spy.attempts + 1;
        for i in 0..80 {
            p.push(wide_event(i, 1)).unwrap();
        }
        assert_eq!(ex.poll(1, &mut spy, &s.registry), None);
        assert_eq!(spy.calls, [2, 1]);
        let t = *ex.telemetry();
        assert_eq!((t.send_errors, t.datagrams_sent, t.send_calls), (1, 3, 3));
        assert!(spy.refused_bytes > 0);
        assert_eq!(t.bytes_send_failed, spy.refused_bytes);
        assert!(t.events_send_failed > 0 && t.events_send_failed < 80);
        assert_eq!(t.events_sent + t.events_send_failed, 160);
        assert_eq!(spy.delivered().len() as u64, t.events_sent);
        conserved(160, &s.lanes, &mut ex);
    }

    #[test]
    fn refusals_on_every_other_send_open_the_breaker() {
        // A remote collector that is gone: its ICMP refusals fail every
        // second send.
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let mut ex = batches_of_one(&s.lanes, &mut s.buf);
        let mut spy = Spy {
            fail_every: 2,
            ..Spy::default()
        };
        for i in 0..10 {
            assert_eq!(ex.breaker().state(), crate::BreakerState::Closed);
            p.push(event(i, i)).unwrap();
            ex.poll(10 + i, &mut spy, &s.registry);
        }
        // The fifth failure in ten sends brings the score to 6.
        assert_eq!(spy.attempts, 10);
        assert_eq!(ex.telemetry().events_send_failed, 5);
        assert!(matches!(
            ex.breaker().state(),
            crate::BreakerState::Open { .. }
        ));
        conserved(10, &s.lanes, &mut ex);
    }

    #[test]
    fn a_transport_that_would_block_keeps_its_datagrams_and_the_breaker_shut() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let config = ExporterConfig::new(7)
            .with_batch_size(10)
            .with_breaker(BreakerConfig::new(1, 1_000));
        let mut ex: Exporter<'_, _, 2> =
            Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
        let mut spy = Spy {
            busy: true,
            ..Spy::default()
        };
        for i in 0..30 {
            p.push(event(i, 0)).unwrap();
        }
        // Busy: nothing lost, nothing counted against the breaker, and poll
        // asks to run again at once.
        for now in 0..5 {
            assert_eq!(ex.poll(now, &mut spy, &s.registry), Some(now));
        }
        let t = *ex.telemetry();
        assert_eq!((t.events_send_failed, t.send_errors), (0, 0));
        assert!(t.send_would_block >= 5);
        assert_eq!(ex.breaker().state(), crate::BreakerState::Closed);
        conserved(30, &s.lanes, &mut ex);
        // Ready again: everything goes, in order.
        spy.busy = false;
        assert_eq!(ex.poll(10, &mut spy, &s.registry), None);
        let got = spy.delivered();
        assert!(got.iter().map(|e| e.1 as u64).eq(0..30));
        conserved(30, &s.lanes, &mut ex);
    }

    #[test]
    fn datagrams_encoded_when_the_breaker_opens_wait_for_it() {
        let s = setup();
        let mut p = s.lanes.producer().unwrap();
        let mut buf = vec![0u8; 4 * 512];
        let config = ExporterConfig {
            encoder: EncoderConfig::new(7).with_max_datagram(512),
            ..ExporterConfig::new(7)
                .with_batch_size(80)
                .with_breaker(BreakerConfig::new(1, 1_000))
        };
        let mut ex: Exporter<'_, _, 2> =
            Exporter::new(s.lanes.consumer().unwrap(), &mut buf, config).unwrap();
        let mut spy = Spy {
            down: true,
            ..Spy::default()
        };
        for i in 0..80 {
            p.push(wide_event(i, 0)).unwrap();
        }
        // Several datagrams encoded; the first fails and opens the breaker.
        assert_eq!(ex.poll(0, &mut spy, &s.registry), Some(1_000));
        assert_eq!(spy.calls, [2]);
        let lost = ex.telemetry().events_send_failed;
        assert!(lost > 0 && lost < 80, "{lost}");
        assert_eq!(ex.staged() as u64, 80 - lost);
        conserved(80, &s.lanes, &mut ex);
        // After the open period the waiting datagrams go first, intact.
        spy.down = false;
        assert_eq!(ex.poll(1_000, &mut spy, &s.registry), None);
        assert_eq!(ex.staged(), 0);
        let got = spy.delivered();
        assert_eq!(got.len() as u64, 80 - lost);
        assert!(got.iter().map(|e| (e.1 / 1.1).round() as u64).eq(lost..80));
        conserved(80, &s.lanes, &mut ex);
    }

    #[test]
    fn send_latency_comes_from_the_transport_clock() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let mut ex: Exporter<'_, _, 2> = Exporter::new(
            s.lanes.consumer().unwrap(),
            &mut s.buf,
            ExporterConfig::new(7).with_batch_size(10),
        )
        .unwrap();
        let mut spy = Spy::default();
        for i in 0..10 {
            p.push(event(i, 0)).unwrap();
        }
        ex.poll(0, &mut spy, &s.registry);
        // No clock: nothing recorded.
        assert_eq!(ex.send_latency().snapshot().count(), 0);
        spy.send_cost = 250_000;
        for round in 1..=4 {
            for i in 0..10 {
                p.push(event(i, round)).unwrap();
            }
            ex.poll(round, &mut spy, &s.registry);
        }
        let q = conserved(50, &s.lanes, &mut ex).send_latency.unwrap();
        assert_eq!(q.count, 4);
        assert!((q.p50 as f64 - 250e3).abs() / 250e3 < 0.02, "{q:?}");
    }

    #[test]
    fn snapshot_reports_drops_lanes_batches_and_health() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let config = ExporterConfig::new(7).with_breaker(BreakerConfig::new(1, 1_000 * MS));
        let mut ex: Exporter<'_, _, 2> =
            Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
        let mut spy = Spy::default();
        let quiet = ex.snapshot();
        assert_eq!(
            quiet.health(None, &HealthThresholds::DEFAULT).status,
            Status::Healthy
        );
        // 100 medium events into a 64-slot medium lane (owned set) that may
        // overflow into the 16-slot low lane: 80 fit, 20 are refused.
        let mut recorded = 0;
        for i in 0..100 {
            let _ = p.push(event(i, 0));
            recorded += 1;
        }
        let snap = conserved(recorded, &s.lanes, &mut ex);
        assert_eq!(snap.drops.get(DropReason::LaneFull, Priority::Medium), 20);
        assert_eq!(snap.drops.by_priority(Priority::Medium), 20);
        assert_eq!(snap.lanes[Priority::Medium.index()].len, 64);
        assert_eq!(snap.lanes[Priority::Low.index()].len, 16);
        assert_eq!(snap.lanes[Priority::Medium.index()].capacity, 128);
        // 20% dropped: unhealthy on the drop-rate check alone.
        let h = snap.health(Some(&quiet), &HealthThresholds::DEFAULT);
        assert_eq!(h.status, Status::Unhealthy);
        assert_eq!(h.checks[1].status, Status::Unhealthy);
        // Drained and sent: lanes empty, peaks kept, batch sizes recorded.
        assert_eq!(ex.poll(0, &mut spy, &s.registry), None);
        let after = conserved(recorded, &s.lanes, &mut ex);
        assert_eq!(after.lanes[Priority::Medium.index()].len, 0);
        assert_eq!(after.lanes[Priority::Medium.index()].peak, 64);
        assert_eq!(after.counters.events_sent, 80);
        let batches = after.batch_size.unwrap();
        assert_eq!(batches.count, 1);
        assert!((47..=53).contains(&batches.max), "{batches:?}");
        // A window with no drops and no errors is healthy again.
        let h = after.health(Some(&snap), &HealthThresholds::DEFAULT);
        assert_eq!(h.status, Status::Healthy, "{h:?}");
        // A failed send opens the breaker (threshold 1): unhealthy, and said.
        spy.down = true;
        p.push(event(0, 0)).unwrap();
        recorded += 1;
        ex.poll(200 * MS, &mut spy, &s.registry);
        let down = conserved(recorded, &s.lanes, &mut ex);
        assert!(matches!(down.breaker, crate::BreakerState::Open { .. }));
        assert_eq!(down.breaker_transitions.opened, 1);
        let h = down.health(Some(&after), &HealthThresholds::DEFAULT);
        assert_eq!(h.status, Status::Unhealthy);
        assert_eq!(h.checks[4].status, Status::Unhealthy);
        assert_eq!(h.checks[2].value, 1.0);
    }

    #[test]
    fn memory_over_the_budget_is_a_configuration_error() {
        let mut s = setup();
        let c = s.lanes.consumer().unwrap();
        let ex: Exporter<'_, _, 2> = Exporter::new(c, &mut s.buf, ExporterConfig::new(7)).unwrap();
        let needed = ex.memory_bytes();
        // 192 slots of 32 bytes, the 1,472-byte buffer, four histograms.
        assert!(needed > 192 * 32 + 1472 + 3 * 4096, "{needed}");
        assert!(needed < 10 << 20);
        drop(ex);
        let c = s.lanes.consumer().unwrap();
        let tight = ExporterConfig::new(7).with_max_memory_bytes(needed - 1);
        assert_eq!(
            Exporter::<_, 2>::new(c, &mut s.buf, tight).err(),
            Some(ExporterError::MemoryBudget {
                needed,
                max: needed - 1
            })
        );
    }

    #[test]
    fn pressure_callback_hears_each_level_change_once() {
        let mut s = setup();
        let mut p = s.lanes.producer().unwrap();
        let mut heard: Vec<(Level, u8)> = Vec::new();
        let mut callback = |pressure: Pressure| {
            heard.push((pressure.level, pressure.utilization_percent));
        };
        let mut spy = Spy {
            down: true,
            ..Spy::default()
        };
        let pressure = PressureConfig {
            medium_percent: 40,
            high_percent: 70,
            hysteresis_percent: 5,
        };
        let config = ExporterConfig::new(7)
            .with_batch_size(1)
            .with_breaker(BreakerConfig::new(1, 1_000 * MS))
            .with_pressure(pressure);
        {
            let mut ex: Exporter<'_, _, 2> =
                Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
            ex.on_pressure(&mut callback);
            // Open the breaker so polls do not drain.
            p.push(event(0, 0)).unwrap();
            ex.poll(0, &mut spy, &s.registry);
            // 192 slots; medium from 45% (87), high from 75% (144): 81, then
            // 101, then 150 events waiting.
            for i in 0..80 {
                s.lanes.push(event(i, 1)).unwrap();
            }
            ex.poll(1, &mut spy, &s.registry);
            assert_eq!(ex.pressure(), Level::Low);
            for (pushes, level) in [(20, Level::Medium), (49, Level::High)] {
                for i in 0..pushes {
                    p.push(event(i, 1)).unwrap();
                }
                ex.poll(1, &mut spy, &s.registry);
                ex.poll(2, &mut spy, &s.registry);
                assert_eq!(ex.pressure(), level);
            }
            // The destination is back: the lanes drain and pressure falls.
            spy.down = false;
            let mut now = 1_000 * MS;
            while ex.poll(now, &mut spy, &s.registry).is_some() {
                now += 1;
            }
            ex.poll(now, &mut spy, &s.registry);
            assert_eq!(ex.pressure(), Level::Low);
        }
        let levels: Vec<Level> = heard.iter().map(|h| h.0).collect();
        assert_eq!(
            levels,
            [Level::Medium, Level::High, Level::Low],
            "{heard:?}"
        );
    }
}
