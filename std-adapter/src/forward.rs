//! Forwarding the collector's aggregates to a StatsD or DogStatsD agent, so
//! an existing agent (Datadog, Telegraf, Etsy statsd) receives what the
//! pipeline collected.
//!
//! Each interval, every series sends what changed since the previous one:
//!
//! * a counter, the increase (`name:N|c`);
//! * a gauge, its value if it changed;
//! * a timer or histogram, one line per non-empty bucket of the interval's
//!   distribution: the bucket's midpoint with a sample rate of 1/count
//!   (`name:2.01|ms|@0.25` stands for 4 values near 2.01 ms). The agent's
//!   count is exact; its percentiles are the collector's (3.1% error); its
//!   sum is approximated from the midpoints.
//!
//! Lines are joined by newlines up to the datagram size.

use crate::collector::{Aggregate, Collector};
use stats_core::Kind;
use stats_core::histogram::{Snapshot, bucket_count};
use stats_core::wire::statsd::{self, Dialect, Line, LineError};
use std::io;
use std::net::UdpSocket;
use std::time::Duration;

/// Where and how a collector forwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The agent's address, `host:port`.
    pub target: String,
    /// The dialect it speaks.
    pub dialect: Dialect,
    /// How often to forward.
    pub interval: Duration,
    /// Largest datagram to send.
    pub max_datagram: usize,
}

impl Forward {
    /// Forwarding to `target` in `dialect` every 10 s, in datagrams of at
    /// most 1,432 bytes (what DogStatsD clients send by default).
    pub fn new(target: impl Into<String>, dialect: Dialect) -> Forward {
        Forward {
            target: target.into(),
            dialect,
            interval: Duration::from_secs(10),
            max_datagram: 1432,
        }
    }
}

/// What forwarding has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardStats {
    /// Intervals forwarded.
    pub intervals: u64,
    /// Lines sent.
    pub lines: u64,
    /// Datagrams sent.
    pub datagrams: u64,
    /// Datagrams the socket refused (their lines are lost).
    pub send_errors: u64,
    /// Lines lost with them.
    pub lines_lost: u64,
    /// Lines that could not be written: a non-finite value, or a name and
    /// tags longer than a datagram.
    pub lines_refused: u64,
}

/// A series' state at the previous interval.
enum Last {
    Counter(f64),
    Gauge(u64),
    Distribution(Box<Snapshot<4, { bucket_count(4, 40) }>>),
}

/// Sends a [`Collector`]'s aggregates as StatsD lines.
pub struct Forwarder {
    socket: UdpSocket,
    dialect: Dialect,
    max_datagram: usize,
    /// By series index; overflow series after the regular ones, by kind.
    last: Vec<Option<Last>>,
    last_overflow: [Option<Last>; 4],
    buf: Vec<u8>,
    pending: u64,
    stats: ForwardStats,
}

impl Forwarder {
    /// Sends to `target` (`host:port`) in `dialect`, datagrams of at most
    /// `max_datagram` bytes (clamped to 512..=65,507).
    pub fn new(target: &str, dialect: Dialect, max_datagram: usize) -> io::Result<Forwarder> {
        let socket = UdpSocket::bind(if target.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })?;
        socket.connect(target)?;
        socket.set_nonblocking(true)?;
        Ok(Forwarder {
            socket,
            dialect,
            max_datagram: max_datagram.clamp(512, 65_507),
            last: Vec::new(),
            last_overflow: [None, None, None, None],
            buf: Vec::new(),
            pending: 0,
            stats: ForwardStats::default(),
        })
    }

    /// Sends what changed since the previous call; the totals so far.
    pub fn forward(&mut self, collector: &Collector) -> ForwardStats {
        let (series, overflow) = collector.series_parts();
        self.last.resize_with(series.len(), || None);
        let mut last = std::mem::take(&mut self.last);
        for (s, last) in series.iter().zip(last.iter_mut()) {
            self.series(&s.name, &s.tags, s.kind, &s.aggregate, last);
        }
        self.last = last;
        let mut last_overflow = std::mem::take(&mut self.last_overflow);
        for (s, last) in overflow.iter().zip(last_overflow.iter_mut()) {
            if let Some(s) = s {
                self.series(&s.name, &s.tags, s.kind, &s.aggregate, last);
            }
        }
        self.last_overflow = last_overflow;
        self.send();
        self.stats.intervals += 1;
        self.stats
    }

    /// The totals so far.
    pub fn stats(&self) -> ForwardStats {
        self.stats
    }

    fn series(
        &mut self,
        name: &str,
        tags: &[(String, String)],
        kind: Kind,
        aggregate: &Aggregate,
        last: &mut Option<Last>,
    ) {
        match aggregate {
            Aggregate::Counter(sum) => {
                let before = match last {
                    Some(Last::Counter(v)) => *v,
                    _ => 0.0,
                };
                if *sum != before {
                    self.line(name, tags, kind, sum - before, 1.0);
                }
                *last = Some(Last::Counter(*sum));
            }
            Aggregate::Gauge(value) => {
                if !matches!(last, Some(Last::Gauge(bits)) if *bits == value.to_bits()) {
                    self.line(name, tags, kind, *value, 1.0);
                }
                *last = Some(Last::Gauge(value.to_bits()));
            }
            Aggregate::Distribution { histogram, .. } => {
                let now = histogram.snapshot();
                let interval = match last {
                    Some(Last::Distribution(before)) => now.since(before),
                    _ => now.clone(),
                };
                for (low, width, count) in interval.buckets() {
                    let midpoint = (low + (width - 1) / 2) as f64;
                    self.line(name, tags, kind, midpoint, 1.0 / count as f64);
                }
                *last = Some(Last::Distribution(Box::new(now)));
            }
        }
    }

    fn line(&mut self, name: &str, tags: &[(String, String)], kind: Kind, value: f64, rate: f64) {
        let line = Line {
            name,
            tags: tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            kind,
            value,
            relative: false,
            sample_rate: rate,
        };
        loop {
            let used = self.buf.len();
            let at = used + usize::from(used > 0);
            self.buf.resize(at.max(self.max_datagram), 0);
            let written = match self.buf.get_mut(at..self.max_datagram) {
                Some(room) => statsd::write_line(self.dialect, &line, room),
                None => Err(LineError::NoRoom { needed: 1 }),
            };
            match written {
                Ok(n) => {
                    if used > 0 {
                        self.buf[used] = b'\n';
                    }
                    self.buf.truncate(at + n);
                    self.pending += 1;
                    return;
                }
                Err(LineError::NoRoom { .. }) if used > 0 => {
                    // Full: send what is there and try again in a fresh one.
                    self.buf.truncate(used);
                    self.send();
                }
                Err(_) => {
                    self.buf.truncate(used);
                    self.stats.lines_refused += 1;
                    return;
                }
            }
        }
    }

    fn send(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self.socket.send(&self.buf) {
            Ok(_) => {
                self.stats.datagrams += 1;
                self.stats.lines += self.pending;
            }
            Err(_) => {
                self.stats.send_errors += 1;
                self.stats.lines_lost += self.pending;
            }
        }
        self.buf.clear();
        self.pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::Limits;
    use stats_core::wire::statsd::{MetricType, parse};

    /// Forwards `c` once to a local socket; the lines received, as
    /// (name, value, type, rate, tags).
    fn forward_once(
        f: &mut Forwarder,
        rx: &UdpSocket,
        c: &Collector,
    ) -> Vec<(String, String, MetricType, f64, String)> {
        let before = f.stats().datagrams;
        let stats = f.forward(c);
        let mut out = Vec::new();
        let mut buf = [0u8; 65_536];
        for _ in before..stats.datagrams {
            let n = rx.recv(&mut buf).unwrap();
            assert!(n <= 512);
            for l in parse(&buf[..n]) {
                let l = l.unwrap();
                out.push((
                    l.name.to_string(),
                    l.value.to_string(),
                    l.metric_type,
                    l.sample_rate,
                    l.tags.to_string(),
                ));
            }
        }
        out
    }

    #[test]
    fn each_interval_sends_what_changed() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut f = Forwarder::new(
            &rx.local_addr().unwrap().to_string(),
            Dialect::DogStatsd,
            512,
        )
        .unwrap();
        let mut c = Collector::new(Limits::default());
        c.ingest(b"hits:3|c|#route:/a\nq:7|g\nt:2|ms\nt:2|ms\nt:2|ms\nt:100|ms");
        let first = forward_once(&mut f, &rx, &c);
        let find = |lines: &[(String, String, MetricType, f64, String)], name: &str| {
            lines
                .iter()
                .filter(|l| l.0 == name)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            find(&first, "hits"),
            [(
                "hits".into(),
                "3".into(),
                MetricType::Counter,
                1.0,
                "route:/a".into()
            )]
        );
        assert_eq!(find(&first, "q")[0].1, "7");
        // Three timers near 2 ms stand as one line at rate 1/3; one at 100 ms.
        let t = find(&first, "t");
        assert_eq!(t.len(), 2);
        let total: f64 = t.iter().map(|l| 1.0 / l.3).sum();
        assert!((total - 4.0).abs() < 1e-9, "{t:?}");
        let near_2: f64 = t[0].1.parse().unwrap();
        assert!((near_2 - 2.0).abs() / 2.0 < 0.032, "{near_2}");
        // Nothing changed: nothing is sent.
        assert!(forward_once(&mut f, &rx, &c).is_empty());
        // Only the increase, the new gauge value, the new timer.
        c.ingest(b"hits:2|c|#route:/a\nq:7|g\nt:5|ms");
        let third = forward_once(&mut f, &rx, &c);
        assert_eq!(find(&third, "hits")[0].1, "2");
        assert!(
            find(&third, "q").is_empty(),
            "an unchanged gauge is not resent"
        );
        assert_eq!(find(&third, "t").len(), 1);
        assert_eq!(find(&third, "t")[0].3, 1.0);
        assert_eq!(f.stats().intervals, 3);
    }

    #[test]
    fn many_series_split_into_datagrams_and_nothing_is_miscounted() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut f =
            Forwarder::new(&rx.local_addr().unwrap().to_string(), Dialect::Etsy, 512).unwrap();
        let mut c = Collector::new(Limits::default());
        let text: String = (0..200)
            .map(|i| format!("counter.number.{i}:{i}|c\n"))
            .collect();
        c.ingest(text.as_bytes());
        let lines = forward_once(&mut f, &rx, &c);
        // Counter 0 never moved, so 199 lines.
        assert_eq!(lines.len(), 199);
        let stats = f.stats();
        assert_eq!(
            (stats.lines, stats.lines_lost, stats.lines_refused),
            (199, 0, 0)
        );
        assert!(stats.datagrams > 5);
    }

    #[test]
    fn a_refused_send_counts_its_lines_as_lost() {
        // Nothing listens on a port we bound and closed: the kernel answers
        // with ICMP port unreachable and the next send fails.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut f = Forwarder::new(&port.to_string(), Dialect::Etsy, 512).unwrap();
        let mut c = Collector::new(Limits::default());
        for round in 0..5 {
            c.ingest(format!("g:{round}|g").as_bytes());
            f.forward(&c);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let stats = f.stats();
        assert!(stats.send_errors >= 1, "{stats:?}");
        assert_eq!(stats.lines + stats.lines_lost, 5);
    }
}
