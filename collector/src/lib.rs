//! The stats pipeline's collector: receives datagrams (the native format,
//! version 1 events and version 2 cumulative totals, and StatsD or
//! DogStatsD lines), accounts for every sender, aggregates every series,
//! and feeds what the user runs: Prometheus scrapes (`GET /metrics`), a
//! StatsD agent (forwarding), Prometheus remote write (Prometheus,
//! VictoriaMetrics, Mimir, Thanos receive) and OTLP/HTTP (OpenTelemetry).
//!
//! * **Ingest** ([`Collector::ingest`]): a datagram is taken whole or not
//!   at all; invalid ones are counted by error kind. Receiving threads
//!   read (decode and check) datagrams with a [`Reader`] of their own, and
//!   take a batch of them into a collector of their own ([`Shards::take`]),
//!   under a lock no other receiving thread takes: the [`shards`] share
//!   each series' id and gauge, and which one accounts for each sender
//!   (a datagram from a sender another shard accounts for is handed over
//!   to it), and are merged when exporting and rendering ([`View`]).
//! * **Per-sender accounting** ([`senders`]) from each datagram's sender id
//!   and sequence number: datagrams received, lost (sequence gaps),
//!   duplicated, reordered, restarts; a 64-datagram window tells duplicates
//!   from late arrivals, and a jump ahead larger than
//!   [`MAX_SEQUENCE_JUMP`] is suspect (forged or corrupt): ignored and
//!   counted, not loss.
//! * **Aggregation** ([`aggregation`]): events (version 1 datagrams, StatsD
//!   lines) per series (name, tags and kind): counters summed, gauges keep
//!   their last value, timers and histograms into a distribution (count,
//!   exact sum, extremes, exponential buckets on Prometheus's schema 4
//!   boundaries, 2.2% error). Totals
//!   (version 2 datagrams, from senders that aggregate at the source) are
//!   cumulative: per series and sender, the record with the highest
//!   sequence number is kept, so a lost, duplicated or reordered datagram
//!   changes nothing once a later record arrives; a restarted sender's
//!   final totals carry on, so the series stays monotonic.
//! * **Bounded memory**: at most `max_series` series (further events fold
//!   into one overflow series per kind, counted; further totals are counted
//!   and not kept) and `max_senders` tracked senders. A sender proves
//!   itself with a second datagram; when the table is full, a new sender
//!   takes the place of the oldest one that has not, and past that,
//!   datagrams from others are aggregated but not accounted, and counted.
//!   A byte budget (`max_memory`, [`memory`]) bounds what the series, their
//!   buckets, each sender's totals, the sender table and the pushed
//!   outputs' queues hold together.
//! * **Outputs** ([`outputs`]), each reading the collector through a
//!   [`View`]: Prometheus text and OpenMetrics
//!   ([`outputs::prometheus::render_metrics`]; distributions as histograms
//!   whose `le` counts are exact, [`histograms`]), health
//!   ([`outputs::prometheus::render_health`]), Prometheus remote write
//!   ([`outputs::remote_write`]) and OTLP/HTTP ([`outputs::otlp`]), each
//!   through [`outputs::push`]'s bounded, retrying queue, StatsD forwarding
//!   ([`outputs::forward`]).
//! * **The server** ([`Server`]): UDP receiving threads, the HTTP endpoint
//!   and the pushed outputs, started from [`Settings`] (the command line
//!   and a TOML file, [`settings`]).
//!
//! ```no_run
//! use stats_collector::{Server, Settings};
//!
//! let server = Server::start(&Settings::default().with_listen("127.0.0.1:8125"))?;
//! println!("receiving on {}", server.udp_address());
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod aggregation;
mod collector;
mod gauges;
mod health;
pub mod histograms;
pub mod ingest;
mod key_texts;
pub mod lines;
pub mod memory;
pub mod outputs;
pub mod senders;
pub mod server;
pub mod sets;
pub mod settings;
pub mod shards;
mod shared;
#[cfg(test)]
mod test_support;
pub mod view;

pub use aggregation::{Aggregate, Distribution, Series};
pub use collector::{Collector, IngestTotals};
pub use health::HEALTH_WINDOW;
pub use histograms::Histograms;
pub use ingest::{Reader, Reading};
pub use memory::{Memory, MemoryRefused};
pub use senders::{MAX_SEQUENCE_JUMP, SenderStats};
pub use server::Server;
pub use settings::Settings;
pub use shards::Shards;
pub use shared::{ForwardStats, Limits};
pub use view::View;
