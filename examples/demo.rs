//! Records a mixed workload from several threads into the priority lanes
//! while a consumer drains them, then prints what happened to every event.
//!
//! ```text
//! cargo run --release --example demo -- [--threads N] [--events N] [--policy newest|oldest|priority|sampled]
//! ```
//!
//! The consumer is deliberately slower than the producers, so the lanes fill
//! and the drop policy has work to do; the summary shows that every event was
//! drained or counted as dropped, by reason and priority.

use stats_core::{
    DropEdge, DropMonitor, DropPolicy, DropReason, Event, Kind, LaneCapacities, Lanes, Priority,
    Registry, StaticLanes,
};
use std::num::NonZeroU16;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CAPS: LaneCapacities = LaneCapacities {
    high: 256,
    medium: 1024,
    low: 512,
};
/// The shared set plus four owned sets.
type DemoLanes = StaticLanes<{ 5 * CAPS.total() }, 5>;

struct Args {
    threads: usize,
    events: u64,
    policy: DropPolicy,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        threads: 4,
        events: 2_000_000,
        policy: DropPolicy::DropByPriority,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--threads" => {
                args.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?;
            }
            "--events" => args.events = value()?.parse().map_err(|e| format!("--events: {e}"))?,
            "--policy" => {
                args.policy = match value()?.as_str() {
                    "newest" => DropPolicy::DropNewest,
                    "oldest" => DropPolicy::DropOldest,
                    "priority" => DropPolicy::DropByPriority,
                    "sampled" => DropPolicy::DropSampled {
                        keep_one_in: NonZeroU16::new(4).unwrap_or(NonZeroU16::MIN),
                        threshold_percent: 75,
                    },
                    other => return Err(format!("--policy: unknown policy {other:?}")),
                }
            }
            "--help" | "-h" => {
                return Err("usage: demo [--threads N] [--events N] [--policy newest|oldest|priority|sampled]".into());
            }
            other => return Err(format!("unknown flag {other:?} (try --help)")),
        }
    }
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut registry: Registry<64, 4096> = Registry::new();
    let keys = [
        ("http.requests", Kind::Counter, Priority::High),
        ("queue.depth", Kind::Gauge, Priority::Medium),
        ("db.query", Kind::Timer, Priority::Medium),
        ("payload.bytes", Kind::Histogram, Priority::Low),
    ]
    .map(|(name, kind, priority)| {
        let id = registry
            .register(name, &[("service", "demo"), ("region", "local")])
            .expect("the demo registry has room for its four metrics");
        (id, kind, priority)
    });

    let lanes: Box<DemoLanes> = match DemoLanes::new(CAPS, args.policy) {
        Ok(lanes) => Box::new(lanes),
        Err(e) => {
            eprintln!("lanes: {e}");
            return ExitCode::FAILURE;
        }
    };
    let per_thread = args.events / args.threads as u64;
    let recorded = per_thread * args.threads as u64;
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let (drained, edges) = std::thread::scope(|s| {
        for _ in 0..args.threads {
            let lanes = &*lanes;
            s.spawn(move || {
                // Threads beyond the owned sets share set 0.
                let mut own = lanes.producer();
                for i in 0..per_thread {
                    let (key, kind, priority) = keys[(i % 4) as usize];
                    let event = Event::new(key, kind, (i % 1000) as f64, i, priority);
                    let _ = match own.as_mut() {
                        Some(p) => p.push(event),
                        None => lanes.push(event),
                    };
                }
            });
        }
        let consumer = s.spawn(|| consume(&lanes, &done));
        // The scope joins the producers when this closure returns; signal
        // the consumer once they are done.
        let producers_done = s.spawn(|| {
            while lanes.pushed() as u64 + dropped_on_push(&lanes) < recorded {
                std::thread::sleep(Duration::from_millis(1));
            }
            done.store(true, Ordering::Release);
        });
        producers_done.join().ok();
        consumer.join().unwrap_or_default()
    });
    let elapsed = started.elapsed();
    report(&args, &lanes, recorded, drained, &edges, elapsed)
}

/// Drops that refused the incoming event (as opposed to evicting a queued one).
fn dropped_on_push<S: stats_core::Storage<Event>, const SETS: usize>(
    lanes: &Lanes<S, SETS>,
) -> u64 {
    let drops = lanes.drops();
    (drops.by_reason(DropReason::LaneFull) + drops.by_reason(DropReason::Sampled)) as u64
}

/// Drains 64 events at a time with a pause, slower than the producers, and
/// notes drop episodes (checked every 5 ms, as an adapter's poll would).
fn consume(lanes: &DemoLanes, done: &AtomicBool) -> (u64, Vec<DropEdge>) {
    let mut drained = 0u64;
    let mut monitor = DropMonitor::new();
    let mut edges = Vec::new();
    let mut last_check = Instant::now();
    let Some(mut consumer) = lanes.consumer() else {
        return (0, edges);
    };
    loop {
        let finished = done.load(Ordering::Acquire);
        let n = consumer.drain(64, |_| ());
        drained += n as u64;
        if finished || last_check.elapsed() >= Duration::from_millis(5) {
            last_check = Instant::now();
            edges.extend(monitor.observe(lanes.drops().total()));
        }
        if n == 0 && finished {
            return (drained, edges);
        }
        std::hint::spin_loop();
        for _ in 0..200 {
            std::hint::spin_loop();
        }
    }
}

fn report(
    args: &Args,
    lanes: &DemoLanes,
    recorded: u64,
    drained: u64,
    edges: &[DropEdge],
    elapsed: Duration,
) -> ExitCode {
    let drops = lanes.drops();
    let dropped = drops.total() as u64;
    let buffered = lanes.len_total() as u64;
    println!(
        "stats-core lanes demo: {} threads, policy {:?}",
        args.threads, args.policy
    );
    println!(
        "  recorded   {recorded:>12}  in {:.2?} ({:.1} M events/s)",
        elapsed,
        recorded as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!("  drained    {drained:>12}");
    println!("  dropped    {dropped:>12}");
    for reason in DropReason::ALL {
        let n = drops.by_reason(reason);
        if n > 0 {
            let by_priority: Vec<String> = Priority::ALL
                .iter()
                .map(|&p| format!("{p:?} {}", drops.get(reason, p)))
                .collect();
            println!(
                "    {:<20} {n:>10}  ({})",
                reason.as_str(),
                by_priority.join(", ")
            );
        }
    }
    println!("  buffered   {buffered:>12}");
    let episodes = edges
        .iter()
        .filter(|e| matches!(e, DropEdge::Started { .. }))
        .count();
    println!("  drop episodes signalled: {episodes} (one warning each, not one per event)");
    let held = recorded == drained + dropped + buffered;
    println!(
        "  conservation: recorded = drained + dropped + buffered  ->  {recorded} = {drained} + {dropped} + {buffered}  [{}]",
        if held { "HOLDS" } else { "BROKEN" }
    );
    if held {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
