//! What the receiving threads' collectors share ([`crate::shards`]): each
//! series' id (by its canonical key, the same in every thread's
//! collector) and a gauge's cell, which thread's collector accounts for
//! each sender, the arrival count, and what the outputs set and read (how
//! distributions leave, the pushed destinations, what the last export
//! did, health's window). A thread locks the names on its first sight of
//! a key text and the owners on its first sight of a sender, never for a
//! value.

use crate::aggregation::{CELL_BYTES, GaugeCell};
use crate::health::{HEALTH_WINDOW, HealthCounts};
use crate::histograms::Histograms;
use crate::memory::{ALLOCATION_BYTES, Memory};
use crate::outputs::push::Destination;
use rustc_hash::FxHashMap;
use stats_core::Kind;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Limits on what the collector keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Series kept; further ones fold into an overflow series per kind.
    pub max_series: usize,
    /// Senders whose sequences are tracked.
    pub max_senders: usize,
    /// Bytes the series, the sender table and the pushed outputs' queues
    /// share ([`crate::memory`]).
    pub max_memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series: 10_000,
            max_senders: 1_024,
            max_memory: 256 << 20,
        }
    }
}

/// What forwarding has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardStats {
    /// Intervals forwarded.
    pub intervals: u64,
    /// Lines sent.
    pub lines: u64,
    /// Datagrams sent.
    pub datagrams: u64,
    /// Datagrams the socket refused (their lines are lost).
    pub send_errors: u64,
    /// Lines lost with them.
    pub lines_lost: u64,
    /// Lines that could not be written: a non-finite value, or a name and
    /// tags longer than a datagram.
    pub lines_refused: u64,
}

/// Shared by the collectors of one server (or owned by a collector that
/// stands alone).
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) memory: Arc<Memory>,
    names: Mutex<Names>,
    /// The collector (its place among the shards) that accounts for each
    /// tracked sender.
    owners: Mutex<FxHashMap<u64, usize>>,
    /// Datagrams taken in so far: what orders gauge values that arrived
    /// on different threads. Written for each datagram: on a cache line
    /// of its own.
    arrivals: Arrivals,
    /// The gauge overflow series' cell.
    pub(crate) overflow_gauge: Arc<GaugeCell>,
    pub(crate) outward: Mutex<Outward>,
}

/// A count on cache lines of its own.
#[derive(Default)]
#[repr(align(128))]
struct Arrivals(AtomicU64);

/// Series ids by canonical key (kind, name, tags as a key record).
#[derive(Debug, Default)]
struct Names {
    index: FxHashMap<Box<str>, usize>,
    /// By id: a gauge series' cell (`None` for the other kinds).
    gauges: Vec<Option<Arc<GaugeCell>>>,
}

/// What the outputs set and read, beside the series.
#[derive(Default)]
pub(crate) struct Outward {
    /// How distributions leave as histograms.
    pub(crate) histograms: Histograms,
    /// The pushed destinations, for their counters.
    pub(crate) pushes: Vec<Arc<Destination>>,
    /// What forwarding has done, when it is on.
    pub(crate) forwarded: Option<ForwardStats>,
    /// The longest the last run of the pushed outputs held a collector at
    /// once (taking its view a chunk of series at a time): ingest waited
    /// that long at most.
    pub(crate) export_held: Duration,
    /// The counts health judges, at each of the last [`HEALTH_WINDOW`]
    /// ticks, oldest first.
    pub(crate) health_window: VecDeque<HealthCounts>,
}

/// A series' id, as [`Shared::name`] gives it.
pub(crate) struct Named {
    pub(crate) id: usize,
    /// A gauge's cell.
    pub(crate) gauge: Option<Arc<GaugeCell>>,
    /// Named by this call: its name and tags as this caller has them are
    /// the ones it is shown with.
    pub(crate) first: bool,
}

/// Why a key has no series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unnamed {
    /// `max_series` series are named.
    Full,
    /// The memory budget had no room.
    NoRoom,
}

/// The bytes `entries` more places in a map of `(K, V)` hold (an entry
/// and its control byte, at 7/8 of the places used at most).
pub(crate) fn map_places<K, V>(entries: usize) -> u64 {
    ((size_of::<(K, V)>() + 1) * entries * 8 / 7) as u64
}

/// Places `len` entries of a table that holds `room` add when one more
/// is put in (tables double when full).
pub(crate) fn growth(len: usize, room: usize) -> usize {
    if len == room { room.max(4) } else { 0 }
}

impl Shared {
    /// Nothing named yet, within `limits`.
    pub(crate) fn new(limits: Limits) -> Self {
        Shared {
            limits,
            memory: Arc::new(Memory::new(limits.max_memory)),
            names: Mutex::default(),
            owners: Mutex::default(),
            arrivals: Arrivals::default(),
            overflow_gauge: Arc::default(),
            outward: Mutex::new(Outward {
                health_window: VecDeque::with_capacity(HEALTH_WINDOW + 1),
                ..Outward::default()
            }),
        }
    }

    /// Counts a datagram's arrival; its number (from 1).
    pub(crate) fn arrival(&self) -> u64 {
        self.arrivals.0.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Series named so far: ids are below it.
    pub(crate) fn named(&self) -> usize {
        self.names().gauges.len()
    }

    /// The id of the series of canonical key `key` (its first byte its
    /// `kind`), named now if new, and its gauge's cell.
    pub(crate) fn name(&self, key: &str, kind: Kind) -> Result<Named, Unnamed> {
        let mut names = self.names();
        let names = &mut *names;
        if let Some(&id) = names.index.get(key) {
            return Ok(Named {
                id,
                gauge: names.gauges[id].clone(),
                first: false,
            });
        }
        let id = names.gauges.len();
        if id >= self.limits.max_series {
            return Err(Unnamed::Full);
        }
        // Its key and cell, and the tables' growth when they are full:
        // counted before it is named, so the budget holds.
        let (index_room, ids_room) = (names.index.capacity(), names.gauges.capacity());
        let cell = if kind == Kind::Gauge { CELL_BYTES } else { 0 };
        let own = key.len() as u64 + ALLOCATION_BYTES + cell;
        let grows = map_places::<Box<str>, usize>(growth(names.index.len(), index_room))
            + (growth(id, ids_room) * size_of::<Option<Arc<GaugeCell>>>()) as u64;
        if !self.memory.grow(own + grows) {
            return Err(Unnamed::NoRoom);
        }
        let gauge = (kind == Kind::Gauge).then(|| Arc::new(GaugeCell::default()));
        names.gauges.push(gauge.clone());
        names.index.insert(key.into(), id);
        let grown = map_places::<Box<str>, usize>(names.index.capacity() - index_room)
            + ((names.gauges.capacity() - ids_room) * size_of::<Option<Arc<GaugeCell>>>()) as u64;
        self.memory.changed(grows, grown);
        Ok(Named {
            id,
            gauge,
            first: true,
        })
    }

    /// Moves health's window on with `counts` (every collector's).
    pub(crate) fn tick(&self, counts: HealthCounts) {
        let mut outward = self.outward();
        outward.health_window.push_back(counts);
        if outward.health_window.len() > HEALTH_WINDOW {
            outward.health_window.pop_front();
        }
    }

    /// The names (a lock poisoned by a panic taken all the same: each
    /// call leaves them whole).
    fn names(&self) -> MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The senders' owners.
    pub(crate) fn owners(&self) -> MutexGuard<'_, FxHashMap<u64, usize>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the outputs set and read.
    pub(crate) fn outward(&self) -> MutexGuard<'_, Outward> {
        self.outward.lock().unwrap_or_else(|e| e.into_inner())
    }
}
