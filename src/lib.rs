//! Shared helpers for the workspace's examples, benchmarks and cross-crate
//! tests. Not published.

#![deny(missing_docs)]

pub mod alloc_counter;
pub mod cli;
pub mod http;
pub mod load;
pub mod procfs;
pub mod receiver;
pub mod series_load;
pub mod workload;

/// The README's code examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
