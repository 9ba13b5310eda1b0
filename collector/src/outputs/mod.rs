//! The outputs: what the collector holds, rendered or sent to the
//! engines, each reading it through a [`View`](crate::view::View) (never
//! its state): Prometheus text and health ([`prometheus`]), remote write
//! ([`remote_write`]), OTLP/HTTP ([`otlp`]), each pushed through
//! [`push`]'s bounded, retrying queue, and StatsD forwarding
//! ([`forward`]).

pub mod forward;
pub mod otlp;
pub mod prometheus;
pub mod push;
pub mod remote_write;
