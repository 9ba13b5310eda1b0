//! The rings and lanes against crossbeam-queue's `ArrayQueue` and rtrb, on
//! the 24-byte `Event` the pipeline queues.
//!
//! Groups (each measures every contender on the same workload):
//! * `ring_push`, `ring_pop`, `ring_push_pop`: one thread, per operation.
//! * `ring_1p1c`: one producer thread, one consumer thread, per event.
//! * `ring_2p1c`: two producer threads, one consumer, per event. rtrb is
//!   SPSC, so it gets one ring per producer, drained by the one consumer —
//!   the same shape as the lanes' owned sets.
//!
//! Contenders from this crate (lanes under the default `DropByPriority`):
//! * `lanes_producer`: pushes into an owned lane set — `Producer::push` (the
//!   recording path, with the drop policy) on one thread; `Producer::try_push`
//!   in the cross-thread groups, where every contender retries a full queue
//!   so that every event is transferred.
//! * `lanes_shared`: the same through the shared set (compare-and-swap), the
//!   path of producers without a set.
//! * `ring`: the bare multi-producer `Ring`.
//!
//! Consumers use each queue's batch API where it has one (`drain`,
//! `pop_batch`, rtrb's `read_chunk`), as the exporter does.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_queue::ArrayQueue;
use stats_core::{
    DropPolicy, Event, KeyId, Kind, LaneCapacities, Priority, StaticLanes, StaticRing,
};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const CAP: usize = 4096;

fn event(i: u64) -> Event {
    Event::new(
        KeyId::from_raw(i as u32 & 63),
        Kind::Counter,
        1.0,
        i,
        Priority::Medium,
    )
}

/// Lanes are configured as they would be deployed: one owned set per
/// producer thread plus the shared set; every medium lane holds `CAP` events.
/// The one-thread groups have one producer (`group` sizes the others).
type OneProducerLanes = StaticLanes<{ 2 * (CAP + 4) }, 2>;

fn lanes<const N: usize, const SETS: usize>() -> Box<StaticLanes<N, SETS>> {
    let caps = LaneCapacities {
        high: 2,
        medium: CAP,
        low: 2,
    };
    Box::new(StaticLanes::new(caps, DropPolicy::DropByPriority).unwrap())
}

/// Runs `op` `iters` times in rounds of at most `CAP`, timing only `op`;
/// `reset` runs untimed between rounds.
fn rounds(iters: u64, mut op: impl FnMut(u64), mut reset: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(CAP as u64);
        let start = Instant::now();
        for i in 0..n {
            op(i);
        }
        total += start.elapsed();
        reset();
        done += n;
    }
    total
}

fn drain_all(l: &OneProducerLanes) {
    let mut c = l.consumer().unwrap();
    while c.drain(usize::MAX, |e| {
        black_box(e);
    }) > 0
    {}
}

fn push(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_push");
    g.throughput(Throughput::Elements(1));
    g.bench_function("lanes_producer", |b| {
        let l: Box<OneProducerLanes> = lanes();
        let mut p = l.producer().unwrap();
        b.iter_custom(|iters| {
            rounds(
                iters,
                |i| black_box(p.push(event(i))).unwrap(),
                || drain_all(&l),
            )
        })
    });
    g.bench_function("lanes_shared", |b| {
        let l: Box<OneProducerLanes> = lanes();
        b.iter_custom(|iters| {
            rounds(
                iters,
                |i| black_box(l.push(event(i))).unwrap(),
                || drain_all(&l),
            )
        })
    });
    g.bench_function("ring", |b| {
        let r: Box<StaticRing<Event, CAP>> = Box::new(StaticRing::new());
        b.iter_custom(|iters| {
            rounds(
                iters,
                |i| black_box(r.try_push(event(i))).unwrap(),
                || while r.pop_batch(usize::MAX, |_| ()) > 0 {},
            )
        })
    });
    g.bench_function("crossbeam_array_queue", |b| {
        let q = ArrayQueue::new(CAP);
        b.iter_custom(|iters| {
            rounds(
                iters,
                |i| black_box(q.push(event(i))).unwrap(),
                || while q.pop().is_some() {},
            )
        })
    });
    g.bench_function("rtrb", |b| {
        let (mut p, mut c) = rtrb::RingBuffer::new(CAP);
        b.iter_custom(|iters| {
            rounds(
                iters,
                |i| black_box(p.push(event(i))).unwrap(),
                || while c.pop().is_ok() {},
            )
        })
    });
    g.finish();
}

/// Times taking `CAP` events at a time out of a full queue, per event:
/// `fill` refills untimed, `take` empties it.
fn time_takes(iters: u64, mut fill: impl FnMut(), mut take: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        fill();
        let start = Instant::now();
        take();
        total += start.elapsed();
        done += CAP as u64;
    }
    // Scale to the requested count.
    total.mul_f64(iters as f64 / done as f64)
}

fn pop(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_pop");
    g.throughput(Throughput::Elements(1));
    // Drains of a batch of 50 (the exporter's real consumer) and of one.
    for batch in [50, 1] {
        g.bench_function(format!("lanes_drain_{batch}"), |b| {
            let l: Box<OneProducerLanes> = lanes();
            let mut p = l.producer().unwrap();
            let mut c = l.consumer().unwrap();
            b.iter_custom(|iters| {
                time_takes(
                    iters,
                    || (0..CAP as u64).for_each(|i| p.push(event(i)).unwrap()),
                    || {
                        while c.drain(batch, |e| {
                            black_box(e);
                        }) > 0
                        {}
                    },
                )
            })
        });
    }
    g.bench_function("ring", |b| {
        let r: Box<StaticRing<Event, CAP>> = Box::new(StaticRing::new());
        b.iter_custom(|iters| {
            time_takes(
                iters,
                || (0..CAP as u64).for_each(|i| r.try_push(event(i)).unwrap()),
                || while r.try_pop().map(black_box).is_some() {},
            )
        })
    });
    g.bench_function("crossbeam_array_queue", |b| {
        let q = ArrayQueue::new(CAP);
        b.iter_custom(|iters| {
            time_takes(
                iters,
                || (0..CAP as u64).for_each(|i| q.push(event(i)).unwrap()),
                || while q.pop().map(black_box).is_some() {},
            )
        })
    });
    g.bench_function("rtrb", |b| {
        let (mut p, mut c) = rtrb::RingBuffer::new(CAP);
        b.iter_custom(|iters| {
            time_takes(
                iters,
                || (0..CAP as u64).for_each(|i| p.push(event(i)).unwrap()),
                || while c.pop().map(black_box).is_ok() {},
            )
        })
    });
    g.finish();
}

fn push_pop(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_push_pop");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    let mut next = || {
        i += 1;
        event(i)
    };
    g.bench_function("lanes_producer", |b| {
        let l: Box<OneProducerLanes> = lanes();
        let mut p = l.producer().unwrap();
        let mut c = l.consumer().unwrap();
        b.iter(|| {
            p.push(next()).unwrap();
            c.drain(1, |e| {
                black_box(e);
            })
        })
    });
    g.bench_function("ring", |b| {
        let r: Box<StaticRing<Event, CAP>> = Box::new(StaticRing::new());
        b.iter(|| {
            r.try_push(next()).unwrap();
            black_box(r.try_pop())
        })
    });
    g.bench_function("crossbeam_array_queue", |b| {
        let q = ArrayQueue::new(CAP);
        b.iter(|| {
            q.push(next()).unwrap();
            black_box(q.pop())
        })
    });
    g.bench_function("rtrb", |b| {
        let (mut p, mut c) = rtrb::RingBuffer::new(CAP);
        b.iter(|| {
            p.push(next()).unwrap();
            black_box(c.pop().ok())
        })
    });
    g.finish();
}

/// Spins (yielding) until `f` succeeds; on 2 cores a pure spin would starve
/// the other side. Inlined so that the harness adds no call to any
/// contender's push (without it every push here cost ~40 ns more).
#[inline(always)]
fn retry<T>(mut value: T, mut f: impl FnMut(T) -> Result<(), T>) {
    loop {
        match f(value) {
            Ok(()) => return,
            Err(back) => {
                value = back;
                thread::yield_now();
            }
        }
    }
}

/// Times one thread per entry of `producers`, each pushing its share of
/// `iters` events through its own closure, while the calling thread consumes
/// all of them with `pop` (which returns how many it took).
fn mp1c<P>(producers: Vec<P>, iters: u64, mut pop: impl FnMut() -> usize) -> Duration
where
    P: FnMut(Event) -> Result<(), Event> + Send,
{
    let count = producers.len() as u64;
    let per = iters.div_ceil(count);
    let go = AtomicBool::new(false);
    thread::scope(|s| {
        for mut push in producers {
            let go = &go;
            s.spawn(move || {
                while !go.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                for i in 0..per {
                    retry(event(i), &mut push);
                }
            });
        }
        let start = Instant::now();
        go.store(true, Ordering::Release);
        let mut got = 0;
        while got < per * count {
            let n = pop();
            if n == 0 {
                thread::yield_now();
            }
            got += n as u64;
        }
        start.elapsed()
    })
}

fn cross_thread(c: &mut Criterion) {
    group::<{ 2 * (CAP + 4) }, 2>(c, 1);
    group::<{ 3 * (CAP + 4) }, 3>(c, 2);
}

/// `ring_{producers}p1c`, with lanes of one owned set per producer.
fn group<const N: usize, const SETS: usize>(c: &mut Criterion, producers: usize) {
    {
        let mut g = c.benchmark_group(format!("ring_{producers}p1c"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("lanes_producer", |b| {
            let l: Box<StaticLanes<N, SETS>> = lanes();
            b.iter_custom(|iters| {
                let pushers = (0..producers)
                    .map(|_| {
                        let mut p = l.producer().unwrap();
                        move |e| p.try_push(e)
                    })
                    .collect();
                let mut c = l.consumer().unwrap();
                mp1c(pushers, iters, || {
                    c.drain(256, |e| {
                        black_box(e);
                    })
                })
            })
        });
        g.bench_function("lanes_shared", |b| {
            let l: Box<StaticLanes<N, SETS>> = lanes();
            b.iter_custom(|iters| {
                let pushers = (0..producers).map(|_| |e| l.try_push(e)).collect();
                let mut c = l.consumer().unwrap();
                mp1c(pushers, iters, || {
                    c.drain(256, |e| {
                        black_box(e);
                    })
                })
            })
        });
        g.bench_function("ring", |b| {
            let r: Box<StaticRing<Event, CAP>> = Box::new(StaticRing::new());
            b.iter_custom(|iters| {
                let pushers = (0..producers).map(|_| |e| r.try_push(e)).collect();
                mp1c(pushers, iters, || {
                    r.pop_batch(256, |e| {
                        black_box(e);
                    })
                })
            })
        });
        g.bench_function("crossbeam_array_queue", |b| {
            let q = ArrayQueue::new(CAP);
            b.iter_custom(|iters| {
                let pushers = (0..producers).map(|_| |e| q.push(e)).collect();
                mp1c(pushers, iters, || {
                    let mut n = 0;
                    while n < 256 && q.pop().map(black_box).is_some() {
                        n += 1;
                    }
                    n
                })
            })
        });
        g.bench_function("rtrb_per_producer", |b| {
            b.iter_custom(|iters| {
                let (ps, mut cs): (Vec<_>, Vec<_>) =
                    (0..producers).map(|_| rtrb::RingBuffer::new(CAP)).unzip();
                let pushers = ps
                    .into_iter()
                    .map(|mut p| move |e| p.push(e).map_err(|rtrb::PushError::Full(e)| e))
                    .collect();
                mp1c(pushers, iters, || {
                    cs.iter_mut()
                        .map(|c| match c.read_chunk(c.slots().min(256)) {
                            Ok(chunk) => chunk.into_iter().map(black_box).count(),
                            Err(_) => 0,
                        })
                        .sum()
                })
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config(2);
    targets = push, pop, push_pop, cross_thread
}
criterion_main!(benches);
