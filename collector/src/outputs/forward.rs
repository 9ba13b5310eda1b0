//! Forwarding the collector's aggregates to a StatsD or DogStatsD agent, so
//! an existing agent (Datadog, Telegraf, Etsy statsd) receives what the
//! pipeline collected: each interval, what changed since the previous one
//! (`stats_core::wire::deltas`: counter increases, gauge values, distribution buckets at
//! a sample rate), joined by newlines up to the datagram size.

use crate::aggregation::{Aggregate, Series};
use crate::shared::ForwardStats;
use crate::view::View;
use serde::Deserialize;
use stats_core::wire::deltas::{Current, Deltas};
use stats_core::wire::packer::Packer;
use stats_core::wire::statsd::Dialect;
use std::io;
use std::net::UdpSocket;

/// Where and how a collector forwards (every export interval, and once
/// more when it stops).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// The agent's address, `host:port`.
    pub target: String,
    /// The dialect it speaks (TOML `codec`: `statsd`, `dogstatsd` or
    /// `dogstatsd-distribution`).
    #[serde(
        rename = "codec",
        default = "Forward::default_dialect",
        deserialize_with = "codec"
    )]
    pub dialect: Dialect,
    /// Largest datagram to send.
    #[serde(default = "Forward::default_max_datagram")]
    pub max_datagram: usize,
}

impl Forward {
    /// Forwarding to `target` in `dialect`, in datagrams of at most 1,432
    /// bytes (what DogStatsD clients send by default).
    pub fn new(target: impl Into<String>, dialect: Dialect) -> Forward {
        Forward {
            target: target.into(),
            dialect,
            max_datagram: Forward::default_max_datagram(),
        }
    }

    /// DogStatsD, unless told otherwise.
    pub fn default_dialect() -> Dialect {
        Dialect::DogStatsd
    }

    fn default_max_datagram() -> usize {
        stats_core::wire::DEFAULT_MAX_DATAGRAM
    }
}

fn codec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Dialect, D::Error> {
    let name = String::deserialize(d)?;
    Dialect::from_name(&name).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "codec: expected statsd, dogstatsd or dogstatsd-distribution, got {name:?}"
        ))
    })
}

/// Sends a collector's aggregates (a [`View`] of them) as StatsD lines.
pub struct Forwarder {
    socket: UdpSocket,
    packer: Packer,
    /// By series index.
    deltas: Deltas,
    /// The overflow series, by kind.
    overflow_deltas: Deltas,
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
            packer: Packer::new(
                dialect,
                max_datagram.clamp(
                    stats_core::wire::MIN_DATAGRAM,
                    stats_core::wire::MAX_DATAGRAM,
                ),
                "",
            ),
            deltas: Deltas::default(),
            overflow_deltas: Deltas::default(),
            stats: ForwardStats::default(),
        })
    }

    /// Sends what changed since the previous call; the totals so far.
    pub fn forward(&mut self, view: &View) -> ForwardStats {
        let (series, overflow) = view.series_parts();
        for (index, s) in series.iter().enumerate() {
            self.series(false, index, s);
        }
        for (index, s) in overflow.iter().enumerate() {
            if let Some(s) = s {
                self.series(true, index, s);
            }
        }
        let Forwarder {
            socket,
            packer,
            stats,
            ..
        } = self;
        packer.flush(&mut |datagram, lines| send(socket, stats, datagram, lines));
        self.stats.intervals += 1;
        self.stats
    }

    /// The totals so far.
    pub fn stats(&self) -> ForwardStats {
        self.stats
    }

    fn series(&mut self, overflow: bool, index: usize, series: &Series) {
        let aggregate = series.aggregate();
        let mut buckets;
        let current = match &aggregate {
            Aggregate::Counter(total) => Current::Counter(*total),
            Aggregate::Gauge(value) => Current::Gauge(*value),
            Aggregate::Distribution(d) => {
                buckets = d.buckets().map(|(s, id, c)| ((s as u8, id), c));
                Current::Distribution {
                    buckets: &mut buckets,
                    min: d.min,
                    max: d.max,
                    timer: d.timer,
                }
            }
        };
        let Forwarder {
            socket,
            packer,
            deltas,
            overflow_deltas,
            stats,
        } = self;
        let deltas = if overflow { overflow_deltas } else { deltas };
        deltas.lines(index, current, |values, rate| {
            let tags = series.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            let mut sender = |datagram: &[u8], lines: u64| send(socket, stats, datagram, lines);
            let pushed = packer.push(&series.name, tags, series.kind, values, rate, &mut sender);
            if pushed.is_err() {
                stats.lines_refused += 1;
            }
        });
    }
}

/// Sends one datagram of `lines` lines, counting the outcome.
fn send(socket: &UdpSocket, stats: &mut ForwardStats, datagram: &[u8], lines: u64) {
    match socket.send(datagram) {
        Ok(_) => {
            stats.datagrams += 1;
            stats.lines += lines;
        }
        Err(_) => {
            stats.send_errors += 1;
            stats.lines_lost += lines;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::Collector;
    use crate::shared::Limits;
    use stats_core::wire::statsd::{MetricType, parse};

    /// Forwards `c` once to a local socket; the lines received, as
    /// (name, value, type, rate, tags).
    fn forward_once(
        f: &mut Forwarder,
        rx: &UdpSocket,
        c: &Collector,
    ) -> Vec<(String, String, MetricType, f64, String)> {
        let before = f.stats().datagrams;
        let stats = f.forward(&View::of(c));
        let mut out = Vec::new();
        let mut buf = [0u8; 65_536];
        for _ in before..stats.datagrams {
            let n = rx.recv(&mut buf).unwrap();
            assert!(n <= 512);
            for l in parse(&buf[..n]) {
                let l = l.unwrap().metric().unwrap();
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
        // Three timers at 2 ms stand as one line at rate 1/3, as `2`;
        // one at 100 ms, as `100` (the series' maximum).
        let t = find(&first, "t");
        assert_eq!(t.len(), 2);
        let total: f64 = t.iter().map(|l| 1.0 / l.3).sum();
        assert!((total - 4.0).abs() < 1e-9, "{t:?}");
        let three = t.iter().find(|l| (l.3 - 1.0 / 3.0).abs() < 1e-9).unwrap();
        assert_eq!(three.1, "2");
        let one = t.iter().find(|l| l.3 == 1.0).unwrap();
        assert_eq!(one.1, "100");
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
            f.forward(&View::of(&c));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let stats = f.stats();
        assert!(stats.send_errors >= 1, "{stats:?}");
        assert_eq!(stats.lines + stats.lines_lost, 5);
    }
}
