//! Embassy adapter for the stats pipeline.
//!
//! Re-exports the core so firmware depends on one crate; the embassy-net task
//! that drives the pipeline builds on these types.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use stats_core as core;
