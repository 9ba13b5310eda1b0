//! Shared helpers for the workspace's examples, benchmarks and cross-crate
//! tests. Not published.

#![deny(missing_docs)]

pub mod alloc_counter;
pub mod workload;
