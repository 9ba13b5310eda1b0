//! Offered load for the load tool and the chaos tests: threads recording a
//! mixed workload through `stats-std` at a rate that follows a profile,
//! timing a sample of their record calls, while the caller's thread samples
//! the pipeline, the receiver, memory and the worker's CPU time.

use crate::procfs;
use stats_core::{LatencyHistogram, Priority, Quantiles};
use stats_std::Stats;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Offered rate over time: straight lines between (time, events/s) points;
/// the last point's rate holds until the end.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    points: Vec<(Duration, f64)>,
}

impl Profile {
    /// `rate` events/s throughout.
    pub fn steady(rate: u64) -> Profile {
        Profile {
            points: vec![(Duration::ZERO, rate as f64)],
        }
    }

    /// Through the given (time, events/s) points, in time order.
    pub fn points(points: &[(Duration, u64)]) -> Profile {
        Profile {
            points: points.iter().map(|&(t, r)| (t, r as f64)).collect(),
        }
    }

    /// The offered rate at `t`, events/s.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let mut before = (Duration::ZERO, 0.0);
        for &(at, rate) in &self.points {
            if t < at {
                let span = (at - before.0).as_secs_f64();
                if span == 0.0 {
                    return rate;
                }
                let f = (t - before.0).as_secs_f64() / span;
                return before.1 + (rate - before.1) * f;
            }
            before = (at, rate);
        }
        before.1
    }
}

/// One sample of the run, taken every `Plan::sample_every`.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Since the start.
    pub at: Duration,
    /// Offered rate then, events/s.
    pub offered_rate: f64,
    /// Record calls made so far.
    pub recorded: u64,
    /// Events the receiver has decoded so far (aggregating at the source:
    /// values its latest totals stand for).
    pub delivered: u64,
    /// Lane utilization, percent.
    pub lane_utilization: f64,
    /// Events dropped so far (all reasons).
    pub dropped: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// The pipeline's own memory in use (lanes, exporter, buffer; or the
    /// aggregation tables' used part), bytes.
    pub pipeline_bytes: usize,
    /// The worker thread's CPU time so far, ns.
    pub worker_cpu_ns: u64,
    /// Whether the circuit breaker was open.
    pub breaker_open: bool,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Offered rate over time.
    pub profile: Profile,
    /// How long.
    pub duration: Duration,
    /// Recording threads.
    pub threads: usize,
    /// Time between samples.
    pub sample_every: Duration,
}

/// What a run did, on the recording side.
#[derive(Debug)]
pub struct Run {
    /// How long recording went on.
    pub elapsed: Duration,
    /// Record calls made.
    pub recorded: u64,
    /// Events the profile offered (what the threads aimed at).
    pub offered: u64,
    /// The samples.
    pub samples: Vec<Sample>,
    /// Duration of the timed record calls (one in 16), ns, with the clock
    /// reads' own cost taken off.
    pub record_latency: Option<Quantiles>,
}

/// Record calls timed: one in this many.
const TIME_ONE_IN: u64 = 16;

/// Runs `plan` against `stats`; `delivered` tells the samples how many
/// events have arrived (for example from a [`Receiver`]). Returns when the
/// duration is over (the pipeline is left running for the caller to shut
/// down and account).
///
/// [`Receiver`]: crate::receiver::Receiver
pub fn run(stats: &Stats, delivered: &dyn Fn() -> u64, plan: &Plan) -> Run {
    let recorded = Arc::new(AtomicU64::new(0));
    let offered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let latency = Arc::new(LatencyHistogram::new());
    let started = Instant::now();
    let threads: Vec<_> = (0..plan.threads.max(1))
        .map(|t| {
            let (stats, recorded, offered, stop, latency) = (
                stats.clone(),
                recorded.clone(),
                offered.clone(),
                stop.clone(),
                latency.clone(),
            );
            let profile = plan.profile.clone();
            let share = 1.0 / plan.threads.max(1) as f64;
            std::thread::spawn(move || {
                record(
                    &stats, t, &profile, share, started, &stop, &recorded, &offered, &latency,
                )
            })
        })
        .collect();
    let mut samples = Vec::new();
    let cpu = || procfs::thread_cpu_ns("stats-worker").unwrap_or(0);
    let mut next = started;
    loop {
        let now = Instant::now();
        let at = now - started;
        if now >= next || at >= plan.duration {
            let report = stats.report();
            let snapshot = report.map(|r| r.snapshot);
            let aggregation = report.and_then(|r| r.aggregation);
            let breaker = match aggregation {
                Some(a) => a.breaker,
                None => snapshot.map_or(stats_core::BreakerState::Closed, |s| s.breaker),
            };
            samples.push(Sample {
                at,
                offered_rate: plan.profile.rate_at(at),
                recorded: recorded.load(Ordering::Relaxed),
                delivered: delivered(),
                lane_utilization: snapshot.map_or(0.0, |s| s.lane_utilization_percent()),
                dropped: snapshot.map_or(0, |s| s.drops.total()),
                rss_bytes: procfs::rss_bytes("self").unwrap_or(0),
                pipeline_bytes: match aggregation {
                    Some(a) => a.memory_used_bytes,
                    None => snapshot.map_or(0, |s| s.memory_bytes),
                },
                worker_cpu_ns: cpu(),
                breaker_open: breaker != stats_core::BreakerState::Closed,
            });
            next += plan.sample_every;
        }
        if at >= plan.duration {
            break;
        }
        std::thread::sleep(
            next.saturating_duration_since(Instant::now())
                .min(plan.duration.saturating_sub(at))
                .max(Duration::from_millis(1)),
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Run {
        elapsed: started.elapsed(),
        recorded: recorded.load(Ordering::Relaxed),
        offered: offered.load(Ordering::Relaxed),
        samples,
        record_latency: Quantiles::of(&latency),
    }
}

/// One recording thread: counters, gauges, timers and histograms at mixed
/// priorities, paced every millisecond to its share of the profile's rate.
#[allow(clippy::too_many_arguments)]
fn record(
    stats: &Stats,
    thread: usize,
    profile: &Profile,
    share: f64,
    started: Instant,
    stop: &AtomicBool,
    recorded: &AtomicU64,
    offered: &AtomicU64,
    latency: &LatencyHistogram,
) {
    let requests = stats
        .counter("load.requests", &[("thread", &thread.to_string())])
        .expect("valid name");
    let errors = stats
        .counter("load.errors", &[])
        .expect("valid name")
        .with_priority(Priority::High);
    let depth = stats.gauge("load.depth", &[]).expect("valid name");
    let query = stats.timer("load.query", &[]).expect("valid name");
    let size = stats
        .histogram("load.size", &[])
        .expect("valid name")
        .with_priority(Priority::Low);
    // What two back-to-back clock reads cost, taken off every timed call.
    let clock_cost = (0..1_000)
        .map(|_| {
            let a = Instant::now();
            Instant::now() - a
        })
        .min()
        .unwrap_or_default();
    let mut target = 0.0f64;
    let mut done = 0u64;
    let mut last = started;
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ thread as u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        target += profile.rate_at(now - started) * share * (now - last).as_secs_f64();
        last = now;
        while (done as f64) < target && !stop.load(Ordering::Relaxed) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let timed = done.is_multiple_of(TIME_ONE_IN);
            let t0 = timed.then(Instant::now);
            match x % 10 {
                0..=4 => requests.increment(),
                5 => errors.increment(),
                6 => depth.set((x >> 40) as f64),
                7 | 8 => query.record(Duration::from_nanos(50_000 + (x >> 44))),
                _ => size.record((x >> 48) as f64),
            }
            if let Some(t0) = t0 {
                let took = t0.elapsed().saturating_sub(clock_cost);
                latency.record(took.as_nanos() as u64);
            }
            done += 1;
            if done.is_multiple_of(1024) {
                recorded.fetch_add(1024, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    recorded.fetch_add(done % 1024, Ordering::Relaxed);
    offered.fetch_add(target as u64, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_interpolate_between_points_and_hold_the_last() {
        let ramp = Profile::points(&[
            (Duration::ZERO, 0),
            (Duration::from_secs(1), 100_000),
            (Duration::from_secs(3), 100_000),
            (Duration::from_secs(4), 0),
        ]);
        assert_eq!(ramp.rate_at(Duration::from_millis(500)), 50_000.0);
        assert_eq!(ramp.rate_at(Duration::from_secs(2)), 100_000.0);
        assert_eq!(ramp.rate_at(Duration::from_millis(3_750)), 25_000.0);
        assert_eq!(ramp.rate_at(Duration::from_secs(9)), 0.0);
        assert_eq!(Profile::steady(7).rate_at(Duration::from_secs(5)), 7.0);
    }
}
