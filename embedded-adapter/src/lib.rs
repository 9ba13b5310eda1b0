//! The stats pipeline on a microcontroller: the same `stats-core` lanes and
//! exporter as the server, driven by an embassy task that sends through an
//! `embassy-net` UDP socket.
//!
//! Everything is statically allocated by the caller: the lanes (a
//! `StaticLanes` in a `static`), the key registry, and the runner's
//! [`Resources`] (datagram and socket buffers). Recording — from tasks with
//! a [`TaskRecorder`], from anywhere including interrupt handlers with a
//! [`Recorder`] — never blocks and never allocates; a full lane applies the
//! drop policy and counts the drop. The [`Runner`] task drains, batches,
//! encodes and sends with `embassy_time` as its clock; the circuit breaker,
//! telemetry and health are the core's.
//!
//! ```ignore
//! static LANES: StaticLanes<{ 2 * CAPS.total() }, 2> = ...;
//! static REGISTRY: StaticCell<Registry<16, 512>> = StaticCell::new();
//! static RESOURCES: StaticCell<Resources> = StaticCell::new();
//!
//! let registry = REGISTRY.init(Registry::new());
//! let temperature = registry.register("sensor.temperature", &[("room", "lab")]).unwrap();
//! let config = Config::new(IpEndpoint::new(collector_ip, 8125), board_id);
//! let runner = Runner::new(stack, &LANES, registry, RESOURCES.init(Resources::new()), config)?;
//! spawner.spawn(stats_task(runner).unwrap());   // async fn stats_task(mut r: Runner<..>) -> ! { r.run().await }
//!
//! let recorder = Recorder::new(&LANES);       // Copy: hand it to interrupt handlers too
//! recorder.record(temperature, Kind::Gauge, 21.5, Priority::Medium);
//! ```
//!
//! Or aggregate at the source: an [`AggregateRunner`] sends the cumulative
//! totals of the core's `Aggregates` tables (counters, gauges,
//! distributions) every interval, so a lost datagram loses nothing and the
//! datagram rate does not grow with the recording rate. Tasks record
//! through a `Shard` each (plain loads and stores); interrupt handlers
//! through the tables' own methods.
//!
//! ```ignore
//! const TABLES: AggregatesConfig = AggregatesConfig::new(16, 1);
//! static TABLES_CELL: StaticCell<Aggregates<[Word; TABLES.fixed_words() + 1024]>> = StaticCell::new();
//!
//! let tables = TABLES_CELL.init_with(|| Aggregates::with_storage([const { Word::new() }; TABLES.fixed_words() + 1024], TABLES).unwrap());
//! let presses = tables.insert(registry.register("button.presses", &[]).unwrap(), Kind::Counter).unwrap();
//! let config = Config::aggregated(IpEndpoint::new(collector_ip, 8125), board_id);
//! let runner = AggregateRunner::new(stack, tables, registry, RESOURCES.init(Resources::new()), config)?;
//! let mut shard = Shard::claim(tables).unwrap(); // in one task
//! shard.add(presses, 1);
//! tables.add(presses, 1);                         // from an interrupt handler
//! ```
//!
//! With the `defmt` feature public types derive `defmt::Format` and the
//! runner logs breaker transitions through defmt; without it, it logs
//! nothing. The library picks no critical-section implementation and no
//! embassy-time driver: the firmware does.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod fmt;
mod recorder;
mod runner;
mod transport;

pub use recorder::{Recorder, TaskRecorder};
pub use runner::{AggregateRunner, Config, Error, HISTOGRAM_G, HISTOGRAM_N, Resources, Runner};
pub use stats_core as core;
pub use transport::UdpTransport;

/// The time now on the embassy-time clock, in ns: what events are stamped
/// with and what the exporter is polled with. Not inlined: its 64-bit
/// arithmetic is a few dozen bytes of code at each of its callers.
#[inline(never)]
pub fn now_ns() -> u64 {
    embassy_time::Instant::now()
        .as_micros()
        .saturating_mul(1_000)
}
