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

mod config;
mod error;
mod keys;
mod pressure;
mod ship;
mod staging;
#[cfg(all(test, not(loom)))]
mod tests;

pub use crate::outbox::MAX_DATAGRAMS_PER_SEND;
pub use config::ExporterConfig;
pub use error::ExporterError;
pub use keys::Keys;
pub use pressure::{Pressure, PressureConfig};

use crate::batcher::{AdaptiveBatcher, Level};
use crate::circuit_breaker::CircuitBreaker;
use crate::event::{Event, Priority};
use crate::histogram::LogLinearHistogram;
use crate::lanes::Consumer;
use crate::outbox::Outbox;
use crate::ring::Storage;
use crate::telemetry::{
    CountHistogram, LaneStats, Quantiles, Telemetry, TelemetrySnapshot, WideDrops, Widened,
};
use crate::transport::Transport;
use crate::wire::{EncodeError, Encoder};
use core::fmt;
use staging::Staging;

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
