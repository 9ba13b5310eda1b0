//! Server adapter for the stats pipeline: the [`Stats`] client and its
//! handles, the worker thread driving the core exporter over a
//! [`transport`] (UDP, a Unix datagram socket, or the application's own),
//! the configuration and the lifecycle. The collector is its own crate,
//! `stats-collector`; the pieces both use (the Prometheus text writer,
//! StatsD lines from cumulative totals) are the core's
//! (`stats_core::prometheus`, `stats_core::wire::deltas`).
//!
//! ```no_run
//! use stats_std::{Config, Stats};
//! use std::time::Duration;
//!
//! let stats = Stats::start(Config::default().with_address("127.0.0.1:8125"))?;
//! let requests = stats.counter("http.requests", &[("route", "/api")])?;
//! requests.increment(); // a push into a lock-free lane: no lock, no allocation
//! stats.counter_add("jobs.done", 1, &[("queue", "mail")]); // names known at run time
//! stats.flush(Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(missing_docs)]

mod aggregation;
mod client_telemetry;
mod clock;
pub mod config;
mod control;
mod describe;
mod error;
mod handles;
mod http;
mod keys;
mod lanes;
mod metrics_recorder;
pub mod origin;
mod prometheus;
mod report;
mod shared;
mod socket_info;
mod stats;
pub mod transport;
pub mod udp;
mod worker;

pub use aggregation::AggregationStats;
pub use config::{AggregationMode, Config, ConfigError};
pub use error::{LifecycleError, RecordError, StartError};
pub use handles::{Counter, Gauge, Histogram, Timer, TimerGuard};
pub use keys::InternerStats;
pub use metrics_recorder::MetricsRecorder;
pub use report::{AggregationReport, Rejected, Report};
pub use socket_info::SocketInfo;
pub use stats::Stats;
pub use stats_core;
pub use transport::{Address, ClientTransport};

/// Events the exporter stages per batch at most (the largest `batch_size`).
pub(crate) const BATCH_CAPACITY: usize = 128;
