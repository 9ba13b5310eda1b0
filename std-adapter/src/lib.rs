//! Server adapter for the stats pipeline.
//!
//! Re-exports the core so a server application depends on one crate. The
//! worker thread, UDP transport and configuration build on these types.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use stats_core as core;
