//! A decoding UDP receiver for the demo, the load tool and the chaos tests:
//! it counts every event it decodes (by priority), keeps each sender's
//! latest totals of every series (series datagrams, from a pipeline that
//! aggregates at the source), tracks each sender's sequence numbers
//! exactly (so loss and duplication are known to the datagram), and
//! measures latency: record to receipt for events, totals read to receipt
//! for series.

use socket2::{Domain, Protocol, Socket, Type};
use stats_core::wire::{DecodedTotals, Header, MAGIC, SeriesIter, decode, statsd};
use stats_core::{Kind, LatencyHistogram, Priority};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What has arrived so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events decoded (StatsD: lines).
    pub events: u64,
    /// Of them, by priority (low, medium, high); StatsD lines have none.
    pub by_priority: [u64; 3],
    /// Datagrams that decoded.
    pub datagrams: u64,
    /// Bytes in them.
    pub bytes: u64,
    /// Datagrams (or StatsD lines) that did not decode.
    pub bad: u64,
    /// Datagrams whose sequence number was seen before.
    pub duplicates: u64,
    /// Sequence numbers below each sender's highest that never arrived.
    pub missing: u64,
    /// Series totals: values they stand for by kind (counter additions,
    /// gauge changes, timer and histogram values), from each sender's
    /// latest record of each series.
    pub totals_by_kind: [u64; 4],
    /// Series records taken in (a later record of a series replaces the
    /// earlier one).
    pub records: u64,
}

impl Counts {
    /// Values the series totals stand for, all kinds.
    pub fn totals(&self) -> u64 {
        self.totals_by_kind.iter().sum()
    }
}

/// A sender's latest record of a series: its sequence number, and the
/// values it stands for.
#[derive(Clone, Copy, Debug)]
struct Latest {
    sequence: u64,
    kind: Kind,
    values: u64,
}

#[derive(Default)]
struct Shared {
    events: AtomicU64,
    by_priority: [AtomicU64; 3],
    datagrams: AtomicU64,
    bytes: AtomicU64,
    bad: AtomicU64,
    duplicates: AtomicU64,
    /// Per sender: a bitmap of the sequence numbers seen.
    seen: Mutex<HashMap<u64, Vec<u64>>>,
    /// Per sender and series (kind, name and tags): the latest record.
    latest: Mutex<HashMap<(u64, String), Latest>>,
    records: AtomicU64,
}

/// A receiving thread on a UDP socket. Stops when dropped.
pub struct Receiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    latency: Arc<LatencyHistogram>,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

/// Nanoseconds since the Unix epoch: the pipeline's clock.
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Receiver {
    /// Binds `address` (port 0 for any) asking for a `receive_buffer`-byte
    /// SO_RCVBUF, and starts receiving.
    pub fn start(address: &str, receive_buffer: usize) -> io::Result<Receiver> {
        let address: SocketAddr = address
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{address}: {e}")))?;
        let socket = Socket::new(
            Domain::for_address(address),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        let _ = socket.set_recv_buffer_size(receive_buffer);
        socket.bind(&address.into())?;
        let socket: UdpSocket = socket.into();
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let address = socket.local_addr()?;
        let shared = Arc::new(Shared::default());
        let latency = Arc::new(LatencyHistogram::new());
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, l, st) = (shared.clone(), latency.clone(), stop.clone());
        let join = std::thread::Builder::new()
            .name("receiver".into())
            .spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !st.load(Ordering::Relaxed) {
                    if let Ok(n) = socket.recv(&mut buf) {
                        take(&sh, &l, &buf[..n]);
                    }
                }
            })?;
        Ok(Receiver {
            address,
            shared,
            latency,
            stop,
            join: Some(join),
        })
    }

    /// The address it receives on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Record-to-receipt latency of the events decoded, ns.
    pub fn latency(&self) -> &LatencyHistogram {
        &self.latency
    }

    /// Per sender, a bitmap of the sequence numbers received (bit `s % 64`
    /// of word `s / 64`): merge several receivers' with [`missing_in`].
    pub fn sequences(&self) -> HashMap<u64, Vec<u64>> {
        self.shared
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        let s = &self.shared;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let missing = s.seen.lock().map_or(0, |seen| {
            seen.values()
                .map(|bits| {
                    let highest = bits
                        .iter()
                        .enumerate()
                        .rev()
                        .find(|(_, w)| **w != 0)
                        .map_or(0, |(i, w)| {
                            i as u64 * 64 + 63 - u64::from(w.leading_zeros())
                        });
                    let present: u64 = bits.iter().map(|w| u64::from(w.count_ones())).sum();
                    highest + 1 - present
                })
                .sum()
        });
        let mut totals_by_kind = [0u64; 4];
        if let Ok(latest) = s.latest.lock() {
            for l in latest.values() {
                totals_by_kind[l.kind as usize] += l.values;
            }
        }
        Counts {
            events: load(&s.events),
            by_priority: [0, 1, 2].map(|i| load(&s.by_priority[i])),
            datagrams: load(&s.datagrams),
            bytes: load(&s.bytes),
            bad: load(&s.bad),
            duplicates: load(&s.duplicates),
            missing,
            totals_by_kind,
            records: load(&s.records),
        }
    }

    /// Waits until nothing has arrived for `quiet`, at most `limit`; the
    /// counts then.
    pub fn settle(&self, quiet: Duration, limit: Duration) -> Counts {
        let start = std::time::Instant::now();
        let mut last = (self.counts(), std::time::Instant::now());
        while start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(5));
            let now = self.counts();
            if now != last.0 {
                last = (now, std::time::Instant::now());
            } else if last.1.elapsed() >= quiet {
                break;
            }
        }
        self.counts()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Sequence numbers below each sender's highest that are not in `seen`
/// (bitmaps as from [`Receiver::sequences`]).
pub fn missing_in(seen: &HashMap<u64, Vec<u64>>) -> u64 {
    seen.values()
        .map(|bits| {
            let Some(highest) = highest_of(bits) else {
                return 0;
            };
            let present: u64 = bits.iter().map(|w| u64::from(w.count_ones())).sum();
            highest + 1 - present
        })
        .sum()
}

/// The highest sequence number any sender's bitmap in `seen` holds.
pub fn highest_in(seen: &HashMap<u64, Vec<u64>>) -> Option<u64> {
    seen.values().filter_map(|bits| highest_of(bits)).max()
}

/// The highest sequence number in one sender's bitmap.
fn highest_of(bits: &[u64]) -> Option<u64> {
    let (i, w) = bits.iter().enumerate().rev().find(|(_, w)| **w != 0)?;
    Some(i as u64 * 64 + 63 - u64::from(w.leading_zeros()))
}

/// Sequence numbers tracked per sender: 2^30 (a 128 MiB bitmap at most).
const MAX_SEQUENCE_WORDS: usize = 1 << 24;

/// Takes in one datagram.
fn take(s: &Shared, latency: &LatencyHistogram, bytes: &[u8]) {
    if !bytes.starts_with(&MAGIC) {
        // StatsD lines: no sequence numbers, no timestamps.
        let (mut good, mut bad) = (0, 0);
        for line in statsd::parse(bytes) {
            match line {
                // A DogStatsD 1.1 line carries several values.
                Ok(statsd::Parsed::Metric(line)) => good += line.numbers().count() as u64,
                Ok(statsd::Parsed::Event(_) | statsd::Parsed::ServiceCheck(_)) => {}
                Err(_) => bad += 1,
            }
        }
        s.events.fetch_add(good, Ordering::Relaxed);
        s.bad.fetch_add(bad, Ordering::Relaxed);
        s.datagrams.fetch_add(1, Ordering::Relaxed);
        s.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        return;
    }
    // Whole or not at all: a datagram with one bad event counts none.
    let Ok(datagram) = decode(bytes).and_then(|d| d.check().map(|()| d)) else {
        s.bad.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let header = datagram.header;
    if let Ok(mut seen) = s.seen.lock() {
        let bits = seen.entry(header.sender_id).or_default();
        let (word, bit) = ((header.sequence / 64) as usize, header.sequence % 64);
        if word > MAX_SEQUENCE_WORDS {
            // Not from a sender of this process's making.
            s.bad.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if word >= bits.len() {
            bits.resize(word + 1, 0);
        }
        if bits[word] & (1 << bit) != 0 {
            s.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        bits[word] |= 1 << bit;
    }
    let now = unix_ns();
    if datagram.is_series() {
        take_series(s, latency, &header, datagram.series(), now);
        s.datagrams.fetch_add(1, Ordering::Relaxed);
        s.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        return;
    }
    let mut by_priority = [0u64; 3];
    for event in datagram.events().flatten() {
        latency.record(now.saturating_sub(event.timestamp));
        by_priority[event.priority.index()] += 1;
    }
    for p in Priority::ALL {
        s.by_priority[p.index()].fetch_add(by_priority[p.index()], Ordering::Relaxed);
    }
    s.events
        .fetch_add(by_priority.iter().sum(), Ordering::Relaxed);
    s.datagrams.fetch_add(1, Ordering::Relaxed);
    s.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
}

/// Takes in a series datagram's records: each replaces its sender's
/// earlier record of the series if it is newer.
fn take_series(
    s: &Shared,
    latency: &LatencyHistogram,
    header: &Header,
    records: SeriesIter<'_>,
    now: u64,
) {
    latency.record(now.saturating_sub(header.base_timestamp));
    let Ok(mut latest) = s.latest.lock() else {
        return;
    };
    // Checked whole before: every record reads.
    for record in records.flatten() {
        s.records.fetch_add(1, Ordering::Relaxed);
        let values = match &record.totals {
            DecodedTotals::Counter { count, .. } => *count,
            DecodedTotals::Gauge { changes, .. } => *changes,
            DecodedTotals::Distribution(d) => d.count,
        };
        // The series' identity: kind, name and tags, apart.
        let mut id = format!("{}\u{0}{}", record.kind as u8, record.name);
        for (k, v) in record.tags() {
            id.push_str(&format!("\u{0}{k}={v}"));
        }
        let now = Latest {
            sequence: header.sequence,
            kind: record.kind,
            values,
        };
        latest
            .entry((header.sender_id, id))
            .and_modify(|l| {
                if now.sequence > l.sequence {
                    *l = now;
                }
            })
            .or_insert(now);
    }
}
