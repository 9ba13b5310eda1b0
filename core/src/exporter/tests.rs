//! The exporter's tests against a spy transport: batching by size and
//! age, flushes, failed and refused sends, the breaker, telemetry and
//! memory pressure.

use super::*;
use crate::batcher::AdaptiveConfig;
use crate::circuit_breaker::BreakerConfig;
use crate::drop_policy::{DropPolicy, DropReason};
use crate::event::KeyId;
use crate::event::Kind;
use crate::health::{HealthThresholds, Status};
use crate::lanes::{LaneCapacities, StaticLanes};
use crate::registry::Registry;
use crate::transport::{PartialSend, SendError};
use crate::wire::EncoderConfig;
use crate::wire::decode;
use std::vec;
use std::vec::Vec;

const MS: u64 = 1_000_000;
const CAPS: LaneCapacities = LaneCapacities {
    high: 16,
    medium: 64,
    low: 16,
};
type TestLanes = StaticLanes<{ 2 * 96 }, 2>;

/// Keeps every datagram; fails while `down`, or every `fail_every`-th send.
/// With `send_cost` it has a clock that each send advances.
#[derive(Default)]
struct Spy {
    sent: Vec<Vec<u8>>,
    down: bool,
    fail_every: usize,
    attempts: usize,
    max: usize,
    /// Datagrams offered per `send_batch` call.
    calls: Vec<usize>,
    send_cost: u64,
    clock: u64,
    /// Would block (buffer full) while set.
    busy: bool,
    /// Bytes of the datagrams refused.
    refused_bytes: u64,
}

impl Transport for Spy {
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        self.attempts += 1;
        self.clock += self.send_cost;
        if datagram.len() > self.max() {
            return Err(SendError::TooLarge);
        }
        if self.busy {
            return Err(SendError::WouldBlock);
        }
        if self.down || (self.fail_every > 0 && self.attempts.is_multiple_of(self.fail_every)) {
            self.refused_bytes += datagram.len() as u64;
            return Err(SendError::Refused);
        }
        self.sent.push(datagram.to_vec());
        Ok(())
    }
    fn send_batch(&mut self, datagrams: &[&[u8]]) -> Result<(), PartialSend> {
        self.calls.push(datagrams.len());
        crate::transport::send_each(self, datagrams)
    }
    fn max_datagram(&self) -> usize {
        self.max()
    }
    fn clock_ns(&self) -> Option<u64> {
        (self.send_cost > 0).then_some(self.clock)
    }
}

impl Spy {
    fn max(&self) -> usize {
        if self.max == 0 { 1472 } else { self.max }
    }
    fn delivered(&self) -> Vec<(std::string::String, f64, u64)> {
        let mut out = Vec::new();
        for d in &self.sent {
            for e in decode(d).unwrap().events() {
                let e = e.unwrap();
                out.push((e.name.into(), e.value, e.timestamp));
            }
        }
        out
    }
}

/// An exporter sending batches of one, whose breaker opens after 3
/// failures for 30 s.
fn batches_of_one<'a>(
    lanes: &'a TestLanes,
    buf: &'a mut [u8],
) -> Exporter<'a, [crate::Slot<Event>; 2 * 96], 2> {
    let config = ExporterConfig::new(7)
        .with_batch_size(1)
        .with_breaker(BreakerConfig::new(3, 30_000 * MS));
    Exporter::new(lanes.consumer().unwrap(), buf, config).unwrap()
}

struct Setup {
    lanes: TestLanes,
    registry: Registry<16, 1024>,
    buf: Vec<u8>,
}

fn setup() -> Setup {
    let mut registry = Registry::new();
    registry.register("requests", &[("route", "/")]).unwrap();
    registry.register("latency", &[]).unwrap();
    Setup {
        lanes: TestLanes::new(CAPS, DropPolicy::DropByPriority).unwrap(),
        registry,
        buf: vec![0; 1472],
    }
}

fn event(i: u64, at: u64) -> Event {
    Event::new(
        KeyId::from_raw((i % 2) as u32),
        Kind::Counter,
        i as f64,
        at,
        Priority::Medium,
    )
}

/// An event whose value takes the full eight bytes on the wire.
fn wide_event(i: u64, at: u64) -> Event {
    Event {
        value: i as f64 * 1.1,
        ..event(i, at)
    }
}

/// recorded = sent + failed + refused + lane drops + in lanes + staged,
/// from the exporter's own counts and from its snapshot.
fn conserved<const B: usize>(
    recorded: u64,
    lanes: &TestLanes,
    ex: &mut Exporter<'_, [crate::ring::Slot<Event>; 192], 2, B>,
) -> TelemetrySnapshot {
    let t = ex.telemetry();
    let accounted = t.events_sent
        + t.events_send_failed
        + t.events_refused
        + lanes.drops().total() as u64
        + lanes.len_total() as u64
        + ex.staged() as u64;
    assert_eq!(recorded, accounted, "{t:?}");
    let snapshot = ex.snapshot();
    assert_eq!(snapshot.events_received, recorded);
    assert!(snapshot.is_conserved(), "{snapshot:?}");
    snapshot
}

#[test]
fn flushes_on_size_then_on_age() {
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    let config = ExporterConfig::new(7);
    let mut ex: Exporter<'_, _, 2> =
        Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
    let mut spy = Spy::default();
    // Ten events: not a full batch, so they wait for their age.
    for i in 0..10 {
        p.push(event(i, 1_000 + i)).unwrap();
    }
    let due = Some(1_000 + 100 * MS);
    assert_eq!(ex.poll(2_000, &mut spy, &s.registry), due);
    assert_eq!(ex.poll(999 + 100 * MS, &mut spy, &s.registry), due);
    assert!(spy.sent.is_empty());
    assert_eq!(ex.poll(1_000 + 100 * MS, &mut spy, &s.registry), None);
    assert_eq!(spy.delivered().len(), 10);
    // They spent about 1 µs in the lanes and 100 ms in all before the send.
    let lane_p50 = ex.lane_latency().percentile(0.5).unwrap();
    assert!((990..=1_000).contains(&lane_p50), "{lane_p50}");
    let e2e = ex.end_to_end_latency().percentile(1.0).unwrap() as f64;
    assert!((e2e - 100e6).abs() / 100e6 < 0.02, "{e2e}");
    // Seventy more: a full batch goes at once, topped up with the rest,
    // in one datagram.
    for i in 10..80 {
        p.push(event(i, 1_000 + i)).unwrap();
    }
    assert_eq!(ex.poll(200 * MS, &mut spy, &s.registry), None);
    assert_eq!(spy.sent.len(), 2);
    let got = spy.delivered();
    assert_eq!(got.len(), 80);
    assert!(got.iter().enumerate().all(|(i, (name, v, t))| {
        *v == i as f64 && *t == 1_000 + i as u64 && name == ["requests", "latency"][i % 2]
    }));
    let t = ex.telemetry();
    assert_eq!((t.batches, t.batch_events, t.datagrams_sent), (2, 80, 2));
    conserved(80, &s.lanes, &mut ex);
}

#[test]
fn flush_sends_everything_whatever_its_age() {
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    let mut ex: Exporter<'_, _, 2> = Exporter::new(
        s.lanes.consumer().unwrap(),
        &mut s.buf,
        ExporterConfig::new(7),
    )
    .unwrap();
    let mut spy = Spy::default();
    for i in 0..7 {
        p.push(event(i, 0)).unwrap();
    }
    assert_eq!(ex.poll(1, &mut spy, &s.registry), Some(100 * MS));
    assert!(ex.flush(1, &mut spy, &s.registry));
    assert_eq!(spy.delivered().len(), 7);
    conserved(7, &s.lanes, &mut ex);
    // While the destination is down and the breaker opens, flush says so.
    spy.down = true;
    let mut recorded = 7;
    for round in 0..12 {
        p.push(event(round, 2)).unwrap();
        recorded += 1;
        let done = ex.flush(2, &mut spy, &s.registry);
        // Ten failed sends (each losing its event) open the breaker.
        assert_eq!(done, round < 10, "round {round}");
    }
    conserved(recorded, &s.lanes, &mut ex);
}

#[test]
fn breaker_opens_holds_events_and_recovers() {
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    let mut ex = batches_of_one(&s.lanes, &mut s.buf);
    let mut spy = Spy {
        down: true,
        ..Spy::default()
    };
    let mut recorded = 0;
    // Three failed sends (one event each) open the breaker.
    let mut next = None;
    for i in 0..3 {
        p.push(event(i, i)).unwrap();
        recorded += 1;
        next = ex.poll(10, &mut spy, &s.registry);
    }
    assert_eq!(next, Some(10 + 30_000 * MS));
    assert_eq!(ex.telemetry().events_send_failed, 3);
    // What comes next waits in the lanes.
    for i in 3..5 {
        p.push(event(i, i)).unwrap();
        recorded += 1;
    }
    assert_eq!(ex.poll(11, &mut spy, &s.registry), next);
    assert_eq!(s.lanes.len_total(), 2);
    // While open: nothing is drained; a full lane drops as "circuit open".
    for i in 5..200 {
        let _ = p.push(event(i, i));
        recorded += 1;
    }
    assert_eq!(ex.poll(20 * MS, &mut spy, &s.registry), next);
    assert_eq!(spy.attempts, 3);
    assert!(s.lanes.drops().by_reason(DropReason::CircuitOpen) > 0);
    conserved(recorded, &s.lanes, &mut ex);
    // The destination comes back; the probe succeeds and delivery resumes.
    spy.down = false;
    let mut now = 10 + 30_000 * MS;
    while ex.poll(now, &mut spy, &s.registry).is_some() {
        now += 1;
    }
    assert_eq!(ex.breaker().state(), crate::BreakerState::Closed);
    assert_eq!(ex.breaker().transitions().closed, 1);
    assert_eq!(s.lanes.len_total(), 0);
    assert_eq!(spy.delivered().len() as u64, ex.telemetry().events_sent);
    conserved(recorded, &s.lanes, &mut ex);
    // Closed again, so a full lane's drops are plain lane-full once more.
    for i in 0..200 {
        let _ = p.push(event(i, now));
        recorded += 1;
    }
    assert!(s.lanes.drops().by_reason(DropReason::LaneFull) > 0);
    conserved(recorded, &s.lanes, &mut ex);
}

#[test]
fn every_third_send_failing_loses_only_those_and_counts_them() {
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    let config = ExporterConfig::new(7).with_batch_size(5);
    let mut ex: Exporter<'_, _, 2> =
        Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
    let mut spy = Spy {
        fail_every: 3,
        ..Spy::default()
    };
    let mut now = 0;
    for round in 0..40 {
        for i in 0..5 {
            p.push(event(round * 5 + i, now)).unwrap();
        }
        ex.poll(now, &mut spy, &s.registry);
        now += MS;
    }
    let t = *ex.telemetry();
    assert_eq!(t.events_sent + t.events_send_failed, 200);
    assert_eq!(t.send_errors, spy.attempts as u64 / 3);
    assert_eq!(spy.delivered().len() as u64, t.events_sent);
    assert_eq!(ex.breaker().state(), crate::BreakerState::Closed);
    conserved(200, &s.lanes, &mut ex);
}

#[test]
fn a_transport_that_takes_small_datagrams_gets_small_datagrams() {
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    for i in 0..60 {
        p.push(event(i, i)).unwrap();
    }
    let mut ex: Exporter<'_, _, 2> = Exporter::new(
        s.lanes.consumer().unwrap(),
        &mut s.buf,
        ExporterConfig::new(7),
    )
    .unwrap();
    let mut spy = Spy {
        max: 512,
        ..Spy::default()
    };
    while ex.poll(u64::MAX / 2, &mut spy, &s.registry).is_some() {}
    assert!(spy.sent.iter().all(|d| d.len() <= 512));
    assert_eq!(spy.delivered().len(), 60);
    assert_eq!(ex.telemetry().send_errors, 0);
    conserved(60, &s.lanes, &mut ex);
}

#[test]
fn adaptive_batching_flushes_small_batches_when_lanes_are_quiet() {
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    let config = ExporterConfig::new(7).with_adaptive(AdaptiveConfig::DEFAULT);
    let mut ex: Exporter<'_, _, 2> =
        Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
    let mut spy = Spy::default();
    for i in 0..10 {
        p.push(event(i, i)).unwrap();
    }
    // 10 of 192 slots used: low utilization, batches of 10 go at once
    // (a fixed batch of 50 would wait for the age limit).
    assert_eq!(ex.poll(20, &mut spy, &s.registry), None);
    assert_eq!((ex.batch_size(), spy.delivered().len()), (10, 10));
    // Lanes more than 80% full (160 of 192 slots): batches of 100.
    for i in 0..100 {
        let _ = p.push(event(i, 30));
        let _ = s.lanes.push(event(i, 30));
    }
    assert_eq!(s.lanes.len_total(), 160);
    assert_eq!(ex.poll(40, &mut spy, &s.registry), None);
    // It went up to 100 for the full lanes and back down once they drained.
    let adaptive = ex.adaptive().unwrap();
    assert_eq!((adaptive.changes(), ex.batch_size()), (3, 10));
    assert_eq!(spy.delivered().len(), 170);
    conserved(210, &s.lanes, &mut ex);
}

#[test]
fn configuration_errors_are_typed() {
    let mut s = setup();
    let c = s.lanes.consumer().unwrap();
    let bad = ExporterConfig::new(7).with_batch_size(129);
    assert_eq!(
        Exporter::<_, 2>::new(c, &mut s.buf, bad).err(),
        Some(ExporterError::BatchSize { got: 129, max: 128 })
    );
    let c = s.lanes.consumer().unwrap();
    let adaptive = AdaptiveConfig {
        high: 200,
        ..AdaptiveConfig::DEFAULT
    };
    assert_eq!(
        Exporter::<_, 2>::new(
            c,
            &mut s.buf,
            ExporterConfig::new(7).with_adaptive(adaptive)
        )
        .err(),
        Some(ExporterError::BatchSize { got: 200, max: 128 })
    );
    let mut small = [0u8; 100];
    let c = s.lanes.consumer().unwrap();
    assert!(matches!(
        Exporter::<_, 2>::new(c, &mut small, ExporterConfig::new(7)).err(),
        Some(ExporterError::Encoder(EncodeError::BufferTooSmall { .. }))
    ));
}

#[test]
fn several_datagrams_go_per_call_and_a_mid_batch_failure_loses_one() {
    let s = setup();
    let mut p = s.lanes.producer().unwrap();
    // Room for four 512-byte datagrams in the buffer.
    let mut buf = vec![0u8; 4 * 512];
    let config = ExporterConfig {
        encoder: EncoderConfig::new(7).with_max_datagram(512),
        ..ExporterConfig::new(7).with_batch_size(80)
    };
    let mut ex: Exporter<'_, _, 2> =
        Exporter::new(s.lanes.consumer().unwrap(), &mut buf, config).unwrap();
    let mut spy = Spy::default();
    for i in 0..80 {
        p.push(wide_event(i, 0)).unwrap();
    }
    assert_eq!(ex.poll(0, &mut spy, &s.registry), None);
    // 80 events need two 512-byte datagrams: one call carries both.
    assert_eq!(spy.calls, [2]);
    assert_eq!(spy.delivered().len(), 80);
    // Now the first datagram of a call fails: only its events are lost,
    // and the second goes in another call.
    spy.calls.clear();
    spy.fail_every = spy.attempts + 1;
    for i in 0..80 {
        p.push(wide_event(i, 1)).unwrap();
    }
    assert_eq!(ex.poll(1, &mut spy, &s.registry), None);
    assert_eq!(spy.calls, [2, 1]);
    let t = *ex.telemetry();
    assert_eq!((t.send_errors, t.datagrams_sent, t.send_calls), (1, 3, 3));
    assert!(spy.refused_bytes > 0);
    assert_eq!(t.bytes_send_failed, spy.refused_bytes);
    assert!(t.events_send_failed > 0 && t.events_send_failed < 80);
    assert_eq!(t.events_sent + t.events_send_failed, 160);
    assert_eq!(spy.delivered().len() as u64, t.events_sent);
    conserved(160, &s.lanes, &mut ex);
}

#[test]
fn refusals_on_every_other_send_open_the_breaker() {
    // A remote collector that is gone: its ICMP refusals fail every
    // second send.
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    let mut ex = batches_of_one(&s.lanes, &mut s.buf);
    let mut spy = Spy {
        fail_every: 2,
        ..Spy::default()
    };
    for i in 0..10 {
        assert_eq!(ex.breaker().state(), crate::BreakerState::Closed);
        p.push(event(i, i)).unwrap();
        ex.poll(10 + i, &mut spy, &s.registry);
    }
    // The fifth failure in ten sends brings the score to 6.
    assert_eq!(spy.attempts, 10);
    assert_eq!(ex.telemetry().events_send_failed, 5);
    assert!(matches!(
        ex.breaker().state(),
        crate::BreakerState::Open { .. }
    ));
    conserved(10, &s.lanes, &mut ex);
}

#[test]
fn a_transport_that_would_block_keeps_its_datagrams_and_the_breaker_shut() {
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    let config = ExporterConfig::new(7)
        .with_batch_size(10)
        .with_breaker(BreakerConfig::new(1, 1_000));
    let mut ex: Exporter<'_, _, 2> =
        Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
    let mut spy = Spy {
        busy: true,
        ..Spy::default()
    };
    for i in 0..30 {
        p.push(event(i, 0)).unwrap();
    }
    // Busy: nothing lost, nothing counted against the breaker, and poll
    // asks to run again at once.
    for now in 0..5 {
        assert_eq!(ex.poll(now, &mut spy, &s.registry), Some(now));
    }
    let t = *ex.telemetry();
    assert_eq!((t.events_send_failed, t.send_errors), (0, 0));
    assert!(t.send_would_block >= 5);
    assert_eq!(ex.breaker().state(), crate::BreakerState::Closed);
    conserved(30, &s.lanes, &mut ex);
    // Ready again: everything goes, in order.
    spy.busy = false;
    assert_eq!(ex.poll(10, &mut spy, &s.registry), None);
    let got = spy.delivered();
    assert!(got.iter().map(|e| e.1 as u64).eq(0..30));
    conserved(30, &s.lanes, &mut ex);
}

#[test]
fn datagrams_encoded_when_the_breaker_opens_wait_for_it() {
    let s = setup();
    let mut p = s.lanes.producer().unwrap();
    let mut buf = vec![0u8; 4 * 512];
    let config = ExporterConfig {
        encoder: EncoderConfig::new(7).with_max_datagram(512),
        ..ExporterConfig::new(7)
            .with_batch_size(80)
            .with_breaker(BreakerConfig::new(1, 1_000))
    };
    let mut ex: Exporter<'_, _, 2> =
        Exporter::new(s.lanes.consumer().unwrap(), &mut buf, config).unwrap();
    let mut spy = Spy {
        down: true,
        ..Spy::default()
    };
    for i in 0..80 {
        p.push(wide_event(i, 0)).unwrap();
    }
    // Several datagrams encoded; the first fails and opens the breaker.
    assert_eq!(ex.poll(0, &mut spy, &s.registry), Some(1_000));
    assert_eq!(spy.calls, [2]);
    let lost = ex.telemetry().events_send_failed;
    assert!(lost > 0 && lost < 80, "{lost}");
    assert_eq!(ex.staged() as u64, 80 - lost);
    conserved(80, &s.lanes, &mut ex);
    // After the open period the waiting datagrams go first, intact.
    spy.down = false;
    assert_eq!(ex.poll(1_000, &mut spy, &s.registry), None);
    assert_eq!(ex.staged(), 0);
    let got = spy.delivered();
    assert_eq!(got.len() as u64, 80 - lost);
    assert!(got.iter().map(|e| (e.1 / 1.1).round() as u64).eq(lost..80));
    conserved(80, &s.lanes, &mut ex);
}

#[test]
fn send_latency_comes_from_the_transport_clock() {
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    let mut ex: Exporter<'_, _, 2> = Exporter::new(
        s.lanes.consumer().unwrap(),
        &mut s.buf,
        ExporterConfig::new(7).with_batch_size(10),
    )
    .unwrap();
    let mut spy = Spy::default();
    for i in 0..10 {
        p.push(event(i, 0)).unwrap();
    }
    ex.poll(0, &mut spy, &s.registry);
    // No clock: nothing recorded.
    assert_eq!(ex.send_latency().snapshot().count(), 0);
    spy.send_cost = 250_000;
    for round in 1..=4 {
        for i in 0..10 {
            p.push(event(i, round)).unwrap();
        }
        ex.poll(round, &mut spy, &s.registry);
    }
    let q = conserved(50, &s.lanes, &mut ex).send_latency.unwrap();
    assert_eq!(q.count, 4);
    assert!((q.p50 as f64 - 250e3).abs() / 250e3 < 0.02, "{q:?}");
}

#[test]
fn snapshot_reports_drops_lanes_batches_and_health() {
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    let config = ExporterConfig::new(7).with_breaker(BreakerConfig::new(1, 1_000 * MS));
    let mut ex: Exporter<'_, _, 2> =
        Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
    let mut spy = Spy::default();
    let quiet = ex.snapshot();
    assert_eq!(
        quiet.health(None, &HealthThresholds::DEFAULT).status,
        Status::Healthy
    );
    // 100 medium events into a 64-slot medium lane (owned set) that may
    // overflow into the 16-slot low lane: 80 fit, 20 are refused.
    let mut recorded = 0;
    for i in 0..100 {
        let _ = p.push(event(i, 0));
        recorded += 1;
    }
    let snap = conserved(recorded, &s.lanes, &mut ex);
    assert_eq!(snap.drops.get(DropReason::LaneFull, Priority::Medium), 20);
    assert_eq!(snap.drops.by_priority(Priority::Medium), 20);
    assert_eq!(snap.lanes[Priority::Medium.index()].len, 64);
    assert_eq!(snap.lanes[Priority::Low.index()].len, 16);
    assert_eq!(snap.lanes[Priority::Medium.index()].capacity, 128);
    // 20% dropped: unhealthy on the drop-rate check alone.
    let h = snap.health(Some(&quiet), &HealthThresholds::DEFAULT);
    assert_eq!(h.status, Status::Unhealthy);
    assert_eq!(h.checks[1].status, Status::Unhealthy);
    // Drained and sent: lanes empty, peaks kept, batch sizes recorded.
    assert_eq!(ex.poll(0, &mut spy, &s.registry), None);
    let after = conserved(recorded, &s.lanes, &mut ex);
    assert_eq!(after.lanes[Priority::Medium.index()].len, 0);
    assert_eq!(after.lanes[Priority::Medium.index()].peak, 64);
    assert_eq!(after.counters.events_sent, 80);
    let batches = after.batch_size.unwrap();
    assert_eq!(batches.count, 1);
    assert!((47..=53).contains(&batches.max), "{batches:?}");
    // A window with no drops and no errors is healthy again.
    let h = after.health(Some(&snap), &HealthThresholds::DEFAULT);
    assert_eq!(h.status, Status::Healthy, "{h:?}");
    // A failed send opens the breaker (threshold 1): unhealthy, and said.
    spy.down = true;
    p.push(event(0, 0)).unwrap();
    recorded += 1;
    ex.poll(200 * MS, &mut spy, &s.registry);
    let down = conserved(recorded, &s.lanes, &mut ex);
    assert!(matches!(down.breaker, crate::BreakerState::Open { .. }));
    assert_eq!(down.breaker_transitions.opened, 1);
    let h = down.health(Some(&after), &HealthThresholds::DEFAULT);
    assert_eq!(h.status, Status::Unhealthy);
    assert_eq!(h.checks[4].status, Status::Unhealthy);
    assert_eq!(h.checks[2].value, 1.0);
}

#[test]
fn memory_over_the_budget_is_a_configuration_error() {
    let mut s = setup();
    let c = s.lanes.consumer().unwrap();
    let ex: Exporter<'_, _, 2> = Exporter::new(c, &mut s.buf, ExporterConfig::new(7)).unwrap();
    let needed = ex.memory_bytes();
    // 192 slots of 32 bytes, the 1,472-byte buffer, four histograms.
    assert!(needed > 192 * 32 + 1472 + 3 * 4096, "{needed}");
    assert!(needed < 10 << 20);
    drop(ex);
    let c = s.lanes.consumer().unwrap();
    let tight = ExporterConfig::new(7).with_max_memory_bytes(needed - 1);
    assert_eq!(
        Exporter::<_, 2>::new(c, &mut s.buf, tight).err(),
        Some(ExporterError::MemoryBudget {
            needed,
            max: needed - 1
        })
    );
}

#[test]
fn pressure_callback_hears_each_level_change_once() {
    let mut s = setup();
    let mut p = s.lanes.producer().unwrap();
    let mut heard: Vec<(Level, u8)> = Vec::new();
    let mut callback = |pressure: Pressure| {
        heard.push((pressure.level, pressure.utilization_percent));
    };
    let mut spy = Spy {
        down: true,
        ..Spy::default()
    };
    let pressure = PressureConfig {
        medium_percent: 40,
        high_percent: 70,
        hysteresis_percent: 5,
    };
    let config = ExporterConfig::new(7)
        .with_batch_size(1)
        .with_breaker(BreakerConfig::new(1, 1_000 * MS))
        .with_pressure(pressure);
    {
        let mut ex: Exporter<'_, _, 2> =
            Exporter::new(s.lanes.consumer().unwrap(), &mut s.buf, config).unwrap();
        ex.on_pressure(&mut callback);
        // Open the breaker so polls do not drain.
        p.push(event(0, 0)).unwrap();
        ex.poll(0, &mut spy, &s.registry);
        // 192 slots; medium from 45% (87), high from 75% (144): 81, then
        // 101, then 150 events waiting.
        for i in 0..80 {
            s.lanes.push(event(i, 1)).unwrap();
        }
        ex.poll(1, &mut spy, &s.registry);
        assert_eq!(ex.pressure(), Level::Low);
        for (pushes, level) in [(20, Level::Medium), (49, Level::High)] {
            for i in 0..pushes {
                p.push(event(i, 1)).unwrap();
            }
            ex.poll(1, &mut spy, &s.registry);
            ex.poll(2, &mut spy, &s.registry);
            assert_eq!(ex.pressure(), level);
        }
        // The destination is back: the lanes drain and pressure falls.
        spy.down = false;
        let mut now = 1_000 * MS;
        while ex.poll(now, &mut spy, &s.registry).is_some() {
            now += 1;
        }
        ex.poll(now, &mut spy, &s.registry);
        assert_eq!(ex.pressure(), Level::Low);
    }
    let levels: Vec<Level> = heard.iter().map(|h| h.0).collect();
    assert_eq!(
        levels,
        [Level::Medium, Level::High, Level::Low],
        "{heard:?}"
    );
}
