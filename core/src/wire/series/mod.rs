//! Version 3 datagrams (and version 2, still read): cumulative series
//! totals (`WIRE.md`, "Version 3: series").
//!
//! Where a version 1 datagram carries events, a series datagram
//! carries, for each series it names, the totals since the sender started:
//! a counter's sum and count, a gauge's value and change count, a
//! distribution's bucket counts, unbucketed count, sum, minimum and
//! maximum. Each record supersedes the ones before it, so a lost,
//! duplicated or reordered datagram costs nothing once a later one
//! arrives. The header, key definitions and CRC are version 1's.

mod read;
mod write;

pub use read::{DecodedBuckets, DecodedDistribution, DecodedSeries, DecodedTotals, SeriesIter};
pub use write::SeriesWriter;

/// The version byte of the series datagrams this crate writes: version 3,
/// whose bucket ids are exponential (`crate::aggregate::bucket_of`).
pub const SERIES_VERSION: u8 = 3;

/// The version byte of the series datagrams of earlier senders, still
/// read: bucket ids were log-linear (the top 16 bits of an `f64`), and are
/// converted as they are read ([`DecodedDistribution::buckets`]).
pub const SERIES_VERSION_2: u8 = 2;

/// The largest shift a version 2 record may carry.
pub(super) const MAX_SHIFT_2: u32 = 12;

/// Meta byte of a series record: bits 0-1 kind, bits 2-5 the bucket
/// shift (distributions), bit 6 the value (gauge) or sum (distribution) as
/// a zigzag integer instead of an `f64`, bit 7 the minimum and maximum as
/// zigzag integers (distributions).
pub(super) const SHIFT_SHIFT: u8 = 2;
pub(super) const SHIFT_MASK: u8 = 0b0011_1100;
pub(super) const INT_VALUE: u8 = 0b0100_0000;
pub(super) const INT_EXTREMES: u8 = 0b1000_0000;

/// Where a series record finds its distribution's buckets: `(id >> shift,
/// count)` in ascending id order, each id once (as
/// [`Aggregates::buckets`](crate::Aggregates::buckets) gives them).
pub trait BucketSource {
    /// Calls `f` for each bucket at `shift`, in ascending id order.
    fn for_each(&self, shift: u32, f: &mut dyn FnMut(u16, u64));
}

#[cfg(test)]
mod tests;
