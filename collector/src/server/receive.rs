//! A receiving thread: datagrams read in batches, decoded before its
//! shard's lock, taken in under one lock a batch.

use crate::ingest::{Reader, Reading};
use crate::shards::Shards;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a receiving thread waits in `recv` before it looks whether
/// the server is stopping.
pub(super) const RECV_WAKE: Duration = Duration::from_millis(50);

/// The largest datagram a receiving thread takes (UDP's own limit).
pub(super) const MAX_DATAGRAM_BYTES: usize = 65_536;

/// Datagrams a receiving thread reads before it takes its shard's lock,
/// at most: taking the lock (and the shared arrival count, and each gauge
/// written) once for many.
const BATCH: usize = 32;

/// The bytes a receiving thread reads a batch into: a datagram is read
/// while the largest still fits.
const BATCH_BYTES: usize = 256 << 10;

/// A receiving thread: datagrams from `recv` into shard `shard` of
/// `shards` until the server stops. It waits for one (up to [`RECV_WAKE`]), takes what else
/// has arrived (`nonblocking` turns waiting off and on again), up to
/// [`BATCH`], decodes and checks them, then takes the lock once to take
/// them all in. A `recv` error `UnexpectedEof` (a stream's peer gone) or
/// `InvalidData` (a frame longer than any datagram, counted: nothing
/// after it can be framed) ends it.
pub(super) fn receive(
    shards: &Shards,
    shard: usize,
    stopping: &AtomicBool,
    mut recv: impl FnMut(&mut [u8]) -> io::Result<usize>,
    mut nonblocking: impl FnMut(bool) -> io::Result<()>,
) {
    let mut buf = vec![0u8; BATCH_BYTES];
    let mut readers: Vec<Reader> = (0..BATCH).map(|_| Reader::default()).collect();
    let mut ends = Vec::with_capacity(BATCH);
    while !stopping.load(Ordering::Relaxed) {
        let first = match recv(&mut buf[..MAX_DATAGRAM_BYTES]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                shards.count_frame_too_large(shard);
                return;
            }
            Err(_) => continue,
        };
        ends.clear();
        ends.push(first);
        if nonblocking(true).is_ok() {
            let mut at = first;
            while ends.len() < BATCH && buf.len() - at >= MAX_DATAGRAM_BYTES {
                match recv(&mut buf[at..at + MAX_DATAGRAM_BYTES]) {
                    Ok(n) => {
                        at += n;
                        ends.push(at);
                    }
                    Err(_) => break,
                }
            }
            let _ = nonblocking(false);
        }
        // Decoded and checked before the lock.
        let mut start = 0;
        let readings = (readers.iter_mut()).zip(&ends).map(|(reader, &end)| {
            let datagram = &buf[start..end];
            start = end;
            reader.read(datagram)
        });
        let readings: Vec<Reading<'_>> = readings.collect();
        shards.take(shard, readings);
    }
}
