//! The core on the target: lanes under every drop policy, the wire format,
//! the histogram's error bound, and the exporter with its circuit breaker,
//! each checked against the conservation law where it applies.

#![no_std]
#![no_main]

use core::num::NonZeroU16;
use cortex_m_rt::entry;
use panic_semihosting as _;
use stats_core::histogram::bucket_count;
use stats_core::wire::{Encoder, EncoderConfig, decode};
use stats_core::{
    BreakerConfig, BreakerState, DropPolicy, Event, Exporter, ExporterConfig, KeyId, Kind,
    LaneCapacities, LogLinearHistogram, Priority, Registry, SendError, StaticLanes, StaticRing,
    Transport,
};
use stats_firmware_qemu::{check, pass};

const CAPS: LaneCapacities = LaneCapacities {
    high: 8,
    medium: 16,
    low: 8,
};
type Lanes = StaticLanes<{ 2 * CAPS.total() }, 2>;

fn event(i: u64, priority: Priority) -> Event {
    Event::new(
        KeyId::from_raw((i % 2) as u32),
        Kind::Counter,
        i as f64,
        i,
        priority,
    )
}

// Its own frame: the micro:bit's stack is small.
#[inline(never)]
fn lanes_conserve_under_every_policy() {
    let sampled = DropPolicy::DropSampled {
        keep_one_in: NonZeroU16::new(4).unwrap(),
        threshold_percent: 50,
    };
    for policy in [
        DropPolicy::DropNewest,
        DropPolicy::DropOldest,
        DropPolicy::DropByPriority,
        sampled,
    ] {
        let lanes = Lanes::new(CAPS, policy).unwrap();
        let mut producer = lanes.producer().unwrap();
        let mut consumer = lanes.consumer().unwrap();
        let mut drained = 0u64;
        for i in 0..500u64 {
            let e = event(i, Priority::ALL[(i % 3) as usize]);
            let _ = if i % 2 == 0 {
                producer.push(e)
            } else {
                lanes.push(e)
            };
            if i % 97 == 0 {
                drained += consumer.drain(usize::MAX, |_| ()) as u64;
            }
        }
        drained += consumer.drain(usize::MAX, |_| ()) as u64;
        let dropped = lanes.drops().total() as u64;
        assert!(dropped > 0, "the lanes never filled");
        assert_eq!(drained + dropped, 500);
        assert_eq!(lanes.len_total(), 0);
    }
}

// Its own frame: the micro:bit's stack is small.
#[inline(never)]
fn high_priority_survives_a_flood_of_low() {
    let lanes = Lanes::new(CAPS, DropPolicy::DropByPriority).unwrap();
    let mut producer = lanes.producer().unwrap();
    for i in 0..100 {
        let _ = producer.push(event(i, Priority::Low));
    }
    for i in 0..8 {
        producer.push(event(i, Priority::High)).unwrap();
    }
    let mut consumer = lanes.consumer().unwrap();
    let mut high = 0;
    consumer.drain(usize::MAX, |e| {
        high += usize::from(e.priority == Priority::High)
    });
    assert_eq!(high, 8);
}

// Its own frame: the micro:bit's stack is small.
#[inline(never)]
fn ring_is_fifo() {
    let ring: StaticRing<u32, 8> = StaticRing::new();
    for round in 0..3u32 {
        for i in 0..8 {
            ring.try_push(round * 8 + i).unwrap();
        }
        assert!(ring.try_push(99).is_err());
        for i in 0..8 {
            assert_eq!(ring.try_pop(), Some(round * 8 + i));
        }
        assert_eq!(ring.try_pop(), None);
    }
}

// Its own frame: the micro:bit's stack is small.
#[inline(never)]
fn a_batch_pop_spans_several_claims_in_order() {
    // A 32-bit consumer claims 16 items at a time: 40 take three claims.
    let ring: StaticRing<u32, 64> = StaticRing::new();
    for i in 0..40 {
        ring.try_push(i).unwrap();
    }
    let mut next = 0;
    let taken = ring.pop_batch(usize::MAX, |v| {
        assert_eq!(v, next);
        next += 1;
    });
    assert_eq!((taken, next), (40, 40));
    assert!(ring.is_empty());
}

// Its own frame: the micro:bit's stack is small.
#[inline(never)]
fn wire_round_trips_and_rejects_corruption() {
    let mut registry: Registry<4, 128> = Registry::new();
    let a = registry.register("temp", &[("room", "lab")]).unwrap();
    let b = registry.register("button", &[]).unwrap();
    let mut encoder = Encoder::new(EncoderConfig::new(42).with_max_datagram(512)).unwrap();
    let mut buf = [0u8; 512];
    let mut writer = encoder.begin(&mut buf, 1_000).unwrap();
    for i in 0..20u64 {
        let key = if i % 2 == 0 { a } else { b };
        let e = Event::new(
            key,
            Kind::Gauge,
            i as f64 * 0.5,
            1_000 + i,
            Priority::Medium,
        );
        writer.push(&e, |id| registry.get(id)).unwrap();
    }
    let len = writer.finish().len();
    let datagram = decode(&buf[..len]).unwrap();
    assert_eq!(datagram.header.sender_id, 42);
    for (i, e) in datagram.events().enumerate() {
        let e = e.unwrap();
        assert_eq!(e.value, i as f64 * 0.5);
        assert_eq!(e.timestamp, 1_000 + i as u64);
        assert_eq!(e.name, if i % 2 == 0 { "temp" } else { "button" });
    }
    for bit in [0usize, 100, 8 * len - 1] {
        buf[bit / 8] ^= 1 << (bit % 8);
        assert!(decode(&buf[..len]).is_err(), "bit {}", bit);
        buf[bit / 8] ^= 1 << (bit % 8);
    }
}

/// 3.1% error (`G = 4`) up to 2^30: 1.7 KiB, and as much again on the
/// stack for a snapshot (the 4 KiB server histogram's snapshot would not
/// fit the micro:bit's stack next to everything else).
static LATENCY: LogLinearHistogram<4, { bucket_count(4, 30) }> = LogLinearHistogram::new();

// Its own frame: the micro:bit's stack is small.
#[inline(never)]
fn histogram_stays_within_its_error_bound() {
    // 10,000 values spread over five decades.
    let value = |i: u64| 1_000 + (i * 7_919) % 10_000 * (1 + i % 97) * 13;
    let mut max = 0;
    for i in 0..10_000 {
        LATENCY.record(value(i));
        max = max.max(value(i));
    }
    let snapshot = LATENCY.snapshot();
    assert_eq!(snapshot.count(), 10_000);
    let top = snapshot.percentile(1.0).unwrap() as f64;
    assert!(
        (top - max as f64).abs() / (max as f64) <= 0.031,
        "max {} vs {}",
        top,
        max
    );
    // A small one: 12.5% error (the embedded exporter can use this one).
    let small: LogLinearHistogram<2, { bucket_count(2, 36) }> = LogLinearHistogram::new();
    for v in 1..=1_000 {
        small.record(v);
    }
    let p50 = small.percentile(0.5).unwrap() as f64;
    assert!((p50 - 500.0).abs() / 500.0 <= 0.125, "p50 {}", p50);
}

/// A transport that fails while `down` and counts what it delivered.
struct Spy {
    down: bool,
    events: u64,
}

impl Transport for Spy {
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        if self.down {
            return Err(SendError::Unreachable);
        }
        self.events += u64::from(
            decode(datagram)
                .map_err(|_| SendError::Other)?
                .header
                .event_count,
        );
        Ok(())
    }
    fn max_datagram(&self) -> usize {
        512
    }
}

// Its own frame: the micro:bit's stack is small.
#[inline(never)]
fn exporter_breaker_cycle_conserves_every_event() {
    static LANES: Lanes = match Lanes::new(CAPS, DropPolicy::DropByPriority) {
        Ok(l) => l,
        Err(_) => panic!(),
    };
    let mut registry: Registry<4, 64> = Registry::new();
    registry.register("a", &[]).unwrap();
    registry.register("b", &[]).unwrap();
    let mut buf = [0u8; 512];
    let config = ExporterConfig::new(1)
        .with_batch_size(4)
        .with_breaker(BreakerConfig::new(2, 1_000))
        .with_encoder(EncoderConfig::new(1).with_max_datagram(512));
    let mut exporter: Exporter<'_, _, 2, 16, 2, { bucket_count(2, 36) }> =
        Exporter::new(LANES.consumer().unwrap(), &mut buf, config).unwrap();
    let mut spy = Spy {
        down: true,
        events: 0,
    };
    let mut producer = LANES.producer().unwrap();
    let mut recorded = 0;
    for now in 0..40u64 {
        let _ = producer.push(event(now, Priority::Medium));
        recorded += 1;
        exporter.poll(now, &mut spy, &registry);
    }
    assert!(matches!(
        exporter.breaker().state(),
        BreakerState::Open { .. }
    ));
    let before = exporter.snapshot();
    assert!(before.is_conserved());
    assert_eq!(before.events_received, recorded);
    spy.down = false;
    let mut now = 2_000;
    while exporter.poll(now, &mut spy, &registry).is_some() {
        now += 1;
    }
    let after = exporter.snapshot();
    assert_eq!(after.breaker, BreakerState::Closed);
    assert_eq!(after.counters.events_sent, spy.events);
    assert!(after.is_conserved());
    assert_eq!(after.buffered(), 0);
}

#[entry]
fn main() -> ! {
    check(
        "lanes conserve under every policy",
        lanes_conserve_under_every_policy,
    );
    check(
        "high priority survives a flood of low",
        high_priority_survives_a_flood_of_low,
    );
    check("ring is FIFO", ring_is_fifo);
    check(
        "a batch pop spans several claims in order",
        a_batch_pop_spans_several_claims_in_order,
    );
    check(
        "wire round-trips and rejects corruption",
        wire_round_trips_and_rejects_corruption,
    );
    check(
        "histogram stays within its error bound",
        histogram_stays_within_its_error_bound,
    );
    check(
        "exporter breaker cycle conserves every event",
        exporter_breaker_cycle_conserves_every_event,
    );
    pass()
}
