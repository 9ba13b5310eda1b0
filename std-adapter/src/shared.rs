//! The state the client, its handles and the worker share: where values
//! go (lanes or totals), the keys, the clock, the worker's control, the
//! rejection counts; recording into it, and its end when the last client
//! or handle goes.

use crate::aggregation::{Aggregation, Refused};
use crate::clock::Clock;
use crate::config::Config;
use crate::control::Control;
use crate::describe::Descriptions;
use crate::error::{LifecycleError, RecordError};
use crate::keys::KeyTable;
use crate::lanes::StdLanes;
use crate::report::{Rejected, Report};
use rustc_hash::FxHashMap;
use stats_core::wire::Codec;
use stats_core::{CachePadded, Event, KeyId, Kind, Priority, Producer};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// Event mode: a gauge's value, shared by its handles and the dynamic path.
pub(crate) type GaugeValue = Arc<std::sync::Mutex<f64>>;

/// Pushes a thread without a set of its own makes through the shared one
/// between two tries to claim a set (one freed, or drained since).
const CLAIM_RETRY: u32 = 1024;

/// Where recorded values go.
pub(crate) enum Pipeline {
    /// `aggregation = "off"`: events into the lanes.
    Events(Arc<StdLanes>),
    /// `aggregation = "source"`: into the series' totals.
    Source(Aggregation),
}

/// Why a call recorded nothing, other than a drop: the index of its
/// counter (one for each of [`Rejected`]'s fields).
#[derive(Clone, Copy)]
pub(crate) enum Rejection {
    InvalidKey,
    KeyTableFull,
    DynamicDisabled,
    NotFinite,
    ShutDown,
    SampledOut,
}

impl Rejection {
    /// Every reason, in index order.
    const ALL: [Rejection; 6] = [
        Rejection::InvalidKey,
        Rejection::KeyTableFull,
        Rejection::DynamicDisabled,
        Rejection::NotFinite,
        Rejection::ShutDown,
        Rejection::SampledOut,
    ];
}

/// State shared by the client, its handles and the worker.
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) pipeline: Pipeline,
    /// Event mode: each gauge's value, so that `Gauge::add` from any
    /// handle moves the same value.
    pub(crate) gauges: RwLock<FxHashMap<KeyId, GaugeValue>>,
    pub(crate) keys: KeyTable,
    pub(crate) clock: Clock,
    pub(crate) config: Config,
    /// On a cache line of its own: read by every record.
    pub(crate) stopped: CachePadded<AtomicBool>,
    pub(crate) control: Control,
    pub(crate) report: Mutex<Option<Report>>,
    pub(crate) http_address: OnceLock<std::net::SocketAddr>,
    /// Calls rejected before recording, by [`Rejection`].
    pub(crate) rejected: [AtomicU64; Rejection::ALL.len()],
    /// Help texts and units, for the scrape.
    pub(crate) descriptions: Descriptions,
    /// Timer and histogram events are kept when a random draw is at most
    /// this (`u64::MAX / sample_one_in`; `u64::MAX` keeps all).
    pub(crate) sample_below: u64,
}

impl Shared {
    /// Waits until everything recorded before the call is sent or
    /// counted, or `timeout` passes.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), LifecycleError> {
        let deadline = Instant::now() + timeout;
        let ticket = {
            let mut state = self.control.lock();
            if state.finished || state.shutdown_deadline.is_some() {
                return Err(LifecycleError::ShutDown);
            }
            state.flush_requested += 1;
            state.flush_requested
        };
        self.control.wake_worker();
        if self
            .control
            .wait(deadline, |s| s.flush_done >= ticket || s.finished)
        {
            Ok(())
        } else {
            Err(LifecycleError::Timeout)
        }
    }

    /// Stops recording, asks the worker to drain and stop (up to
    /// `timeout`), and returns its final report.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<Report, LifecycleError> {
        let deadline = Instant::now() + timeout;
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(a) = self.aggregation() {
            a.close();
        }
        {
            let mut state = self.control.lock();
            if state.shutdown_deadline.is_none() {
                state.shutdown_deadline = Some(deadline);
            }
        }
        self.control.wake_worker();
        // A little grace past the deadline for the worker's final report.
        if !self
            .control
            .wait(deadline + Duration::from_millis(100), |s| s.finished)
        {
            return Err(LifecycleError::Timeout);
        }
        if let Ok(mut join) = self.control.thread.lock()
            && let Some(join) = join.take()
        {
            let _ = join.join();
        }
        self.control
            .lock()
            .final_report
            .ok_or(LifecycleError::ShutDown)
    }

    /// Counts `e` as a rejection (a drop is counted by the lanes).
    pub(crate) fn reject(&self, e: RecordError) -> RecordError {
        let why = match e {
            RecordError::InvalidKey(_) => Rejection::InvalidKey,
            RecordError::KeyTableFull => Rejection::KeyTableFull,
            RecordError::DynamicDisabled => Rejection::DynamicDisabled,
            RecordError::NotFinite => Rejection::NotFinite,
            RecordError::ShutDown => Rejection::ShutDown,
            RecordError::Dropped(_) => return e,
        };
        self.count(why);
        e
    }

    fn count(&self, why: Rejection) {
        self.rejected[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The worker's latest report with the rejection and interner counts
    /// read now.
    pub(crate) fn report(&self) -> Option<Report> {
        let mut report = self.report.lock().ok().and_then(|r| *r)?;
        report.rejected = self.rejected();
        report.interner = self.keys.stats();
        Some(report)
    }

    /// The rejection counts now.
    pub(crate) fn rejected(&self) -> Rejected {
        let r = |why: Rejection| self.rejected[why as usize].load(Ordering::Relaxed);
        Rejected {
            invalid_key: r(Rejection::InvalidKey),
            key_table_full: r(Rejection::KeyTableFull),
            dynamic_disabled: r(Rejection::DynamicDisabled),
            not_finite: r(Rejection::NotFinite),
            shut_down: r(Rejection::ShutDown),
            sampled_out: r(Rejection::SampledOut),
        }
    }

    /// The source-mode state, when aggregating.
    pub(crate) fn aggregation(&self) -> Option<&Aggregation> {
        match &self.pipeline {
            Pipeline::Source(a) => Some(a),
            Pipeline::Events(_) => None,
        }
    }

    /// Event mode: the value `key`'s gauges share.
    pub(crate) fn gauge_value(&self, key: KeyId) -> GaugeValue {
        if let Ok(map) = self.gauges.read()
            && let Some(v) = map.get(&key)
        {
            return v.clone();
        }
        let mut map = self.gauges.write().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().clone()
    }

    /// Event mode: sets `key`'s gauge `gauge` to `value`, or with `change`
    /// moves it by `value`, and records the event it makes: the new value
    /// with the native codec (a lost datagram costs no drift), the change
    /// with a StatsD codec (`+N|g`, as StatsD agents expect). Both under
    /// the value's lock and through the shared lane set, so that the
    /// events of one gauge leave in the order its value moved whichever
    /// threads moved it (each thread's own set is drained in turn, which
    /// would send a later value first).
    pub(crate) fn gauge_event(
        &self,
        gauge: &GaugeValue,
        key: KeyId,
        priority: Priority,
        value: f64,
        change: bool,
    ) -> Result<(), RecordError> {
        let mut v = gauge.lock().unwrap_or_else(|e| e.into_inner());
        let (sent, relative) = if !change {
            *v = value;
            (value, false)
        } else {
            *v += value;
            if self.config.codec == Codec::Native {
                (*v, false)
            } else {
                (value, true)
            }
        };
        self.push(key, Kind::Gauge, sent, relative, priority, true)
    }

    /// Records into the series' totals (source mode) through `f`; after
    /// shutdown the aggregation refuses it (its gate is closed), so this
    /// path has no check of its own.
    #[inline(always)]
    pub(crate) fn aggregate(
        &self,
        f: impl FnOnce(&Aggregation) -> Result<(), Refused>,
    ) -> Result<(), RecordError> {
        match &self.pipeline {
            Pipeline::Source(a) => f(a).map_err(|e| {
                self.reject(match e {
                    Refused::NotFinite => RecordError::NotFinite,
                    Refused::Closed => RecordError::ShutDown,
                })
            }),
            Pipeline::Events(_) => Ok(()),
        }
    }

    /// Records `value` as an event (for a gauge, `relative` makes it a
    /// change): into the shared lane set if `shared_set` (events that must
    /// stay in order across threads), else the thread's own.
    #[inline]
    pub(crate) fn push(
        &self,
        key: KeyId,
        kind: Kind,
        value: f64,
        relative: bool,
        priority: Priority,
        shared_set: bool,
    ) -> Result<(), RecordError> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err(self.reject(RecordError::ShutDown));
        }
        if self.sample_below != u64::MAX
            && matches!(kind, Kind::Timer | Kind::Histogram)
            && !sampled(self.sample_below)
        {
            self.count(Rejection::SampledOut);
            return Ok(());
        }
        let event = Event {
            relative,
            ..Event::new(key, kind, value, self.clock.coarse(), priority)
        };
        let Pipeline::Events(lanes) = &self.pipeline else {
            return Ok(());
        };
        if shared_set {
            return lanes.push(event).map_err(RecordError::Dropped);
        }
        PRODUCERS
            .with(|producers| {
                let mut producers = producers.borrow_mut();
                let at = match producers.iter().position(|p| p.pipeline == self.id) {
                    Some(at) => at,
                    None => {
                        // Let go of the sets of pipelines that are gone.
                        producers.retain(|p| p.alive.load(Ordering::Acquire));
                        producers.push(ThreadProducer {
                            pipeline: self.id,
                            producer: Producer::claim(lanes.clone()),
                            shared_pushes: 0,
                            alive: self.keys.alive(),
                        });
                        producers.len() - 1
                    }
                };
                let thread = &mut producers[at];
                match &mut thread.producer {
                    Some(producer) => producer.push(event),
                    None => {
                        thread.shared_pushes += 1;
                        if thread.shared_pushes == CLAIM_RETRY {
                            thread.shared_pushes = 0;
                            thread.producer = Producer::claim(lanes.clone());
                        }
                        lanes.push(event)
                    }
                }
            })
            .map_err(RecordError::Dropped)
    }
}

/// A thread's lane set in one pipeline it records into.
struct ThreadProducer {
    pipeline: u64,
    /// `None`: no owned set was free and empty, so the thread uses the
    /// shared one (and tries again every [`CLAIM_RETRY`] pushes).
    producer: Option<Producer<Arc<StdLanes>>>,
    /// Pushes through the shared set since the last try.
    shared_pushes: u32,
    /// Whether the pipeline still exists (its key table's flag).
    alive: Arc<AtomicBool>,
}

thread_local! {
    static PRODUCERS: RefCell<Vec<ThreadProducer>> = const { RefCell::new(Vec::new()) };
}

/// Shuts the pipeline down when the last `Stats` or handle goes.
pub(crate) struct Life {
    pub(crate) shared: Arc<Shared>,
}

impl Drop for Life {
    fn drop(&mut self) {
        let _ = self.shared.shutdown(Duration::from_secs(1));
    }
}

/// Whether this value is in the sample: a draw from the thread's
/// xorshift generator at most `below`.
pub(crate) fn sampled(below: u64) -> bool {
    thread_local! {
        static STATE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            // Seeded apart per thread (its state's address) and per run.
            let address = state as *const std::cell::Cell<u64> as u64;
            let time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            x = (address ^ time.rotate_left(32)) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x <= below
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::PRODUCERS;
    use crate::config::{AggregationMode as Mode, Config};
    use crate::stats::Stats;

    /// A pipeline in `mode` sending to a loopback socket of its own
    /// (returned, so that it stays bound).
    pub(crate) fn pipeline(mode: Mode) -> (Stats, std::net::UdpSocket) {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = receiver.local_addr().unwrap().to_string();
        let config = Config::default()
            .with_address(address)
            .with_aggregation(mode);
        (Stats::start(config).unwrap(), receiver)
    }

    #[test]
    fn a_thread_lets_go_of_the_lanes_of_pipelines_that_are_gone() {
        let held = || PRODUCERS.with(|p| p.borrow().len());
        let before = held();
        for _ in 0..3 {
            let (stats, _rx) = pipeline(Mode::Off);
            stats.counter("c", &[]).unwrap().increment();
            drop(stats);
        }
        // Each new pipeline's first record dropped the previous one's set.
        assert_eq!(held(), before + 1);
    }
}
