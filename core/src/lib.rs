#![doc = include_str!("../README.md")]
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod aggregate;
pub mod batcher;
pub mod circuit_breaker;
pub mod drop_policy;
pub mod event;
pub mod exporter;
pub mod health;
pub mod histogram;
pub mod lanes;
mod outbox;
#[cfg(feature = "alloc")]
pub mod prometheus;
pub mod registry;
pub mod ring;
mod sync;
pub mod telemetry;
pub mod transport;
pub mod wire;

pub use aggregate::{
    AggregateExporter, AggregateExporterConfig, AggregateExporterError, AggregateTelemetry,
    Aggregates, AggregatesConfig, AggregatesError, AggregatesRef, AggregatesStats, NotFinite,
    SeriesId, Shard, ShardView, Snapshot, Totals, Word, Words,
};
pub use batcher::{AdaptiveBatcher, AdaptiveConfig, Level};
pub use circuit_breaker::{BreakerConfig, BreakerState, BreakerTransitions, CircuitBreaker};
pub use drop_policy::{DropCounters, DropEdge, DropMonitor, DropPolicy, DropReason};
pub use event::{Event, KeyId, Kind, Priority};
pub use exporter::{
    Exporter, ExporterConfig, ExporterError, Keys, MAX_DATAGRAMS_PER_SEND, Pressure, PressureConfig,
};
pub use health::{Check, Health, HealthThresholds, Measurements, Status};
pub use histogram::{LatencyHistogram, LogLinearHistogram};
pub use lanes::{Consumer, LaneCapacities, Lanes, LanesError, LanesRef, Producer, StaticLanes};
pub use registry::{Key, Registry, RegistryError};
pub use ring::{CapacityError, Ring, Slot, StaticRing, Storage};
pub use sync::CachePadded;
pub use telemetry::{CountHistogram, Drops, LaneStats, Quantiles, Telemetry, TelemetrySnapshot};
pub use transport::{PartialSend, SendError, Transport};
