//! The adapter's embassy-net stack and a collector's embassy-net stack,
//! joined by an in-memory Ethernet cable (`embassy-net-driver-channel`),
//! in ordinary tests: events arrive and decode with the core decoder; a
//! cable pulled out trips the breaker, and plugging it back resumes
//! delivery; every event is accounted for.

mod common;

use common::{Cable, with_cable};
use core::cell::{Cell, RefCell};
use embassy_futures::join::join;
use embassy_futures::select::select;
use embassy_time::{Duration, Timer};
use stats_embedded::core::wire::decode;
use stats_embedded::core::{
    BreakerConfig, DropPolicy, ExporterConfig, Kind, LaneCapacities, Priority, Registry,
    StaticLanes, TelemetrySnapshot,
};
use stats_embedded::{Config, Recorder, Resources, Runner};

const CAPS: LaneCapacities = LaneCapacities {
    high: 16,
    medium: 64,
    low: 16,
};
/// The shared set (interrupt handlers) plus one task's set.
type Lanes = StaticLanes<{ 2 * CAPS.total() }, 2>;

/// What the collector decoded: (name, value).
type Got = RefCell<Vec<(String, f64)>>;

/// Runs `body` against a device stack running the adapter and a collector
/// stack joined by a [`Cable`]; returns the adapter's telemetry after.
fn with_network(
    lanes: &Lanes,
    registry: &Registry<8, 256>,
    exporter: ExporterConfig,
    got: &Got,
    body: impl AsyncFnOnce(&Cable<'_>),
) -> TelemetrySnapshot {
    let mut snapshot = None;
    with_cable(async |device, collector_stack, cable| {
        let mut resources = Resources::<512, 1024>::new();
        let config = Config::new(common::collector_endpoint(), 0x5EED).with_exporter(exporter);
        let mut runner =
            Runner::<_, _, 2>::new(device, lanes, registry, &mut resources, config).unwrap();
        let collect = common::collect(collector_stack, |bytes| {
            let datagram = decode(bytes).expect("a valid datagram");
            for e in datagram.events() {
                let e = e.unwrap();
                got.borrow_mut().push((e.name.to_string(), e.value));
            }
        });
        select(body(cable), join(runner.run(), collect)).await;
        snapshot = Some(runner.snapshot());
    });
    snapshot.expect("the test ran")
}

/// Waits until the collector has `n` events.
async fn until_received(got: &Got, n: usize) {
    while got.borrow().len() < n {
        Timer::after(Duration::from_millis(5)).await;
    }
}

#[test]
fn recorded_events_arrive_and_decode() {
    let lanes: Box<Lanes> = Box::new(Lanes::new(CAPS, DropPolicy::DropByPriority).unwrap());
    let mut registry = Registry::new();
    let temperature = registry
        .register("sensor.temperature", &[("room", "lab")])
        .unwrap();
    let button = registry.register("button.presses", &[]).unwrap();
    let got = Got::default();
    let recorder = Recorder::new(&*lanes);
    let snapshot = with_network(
        &lanes,
        &registry,
        ExporterConfig::new(1).with_batch_size(32),
        &got,
        async |_| {
            // From "an interrupt handler" (the shared set) and from a task.
            let mut task = recorder.claim_set().unwrap();
            for i in 0..50 {
                recorder
                    .record(button, Kind::Counter, 1.0, Priority::High)
                    .unwrap();
                task.record(
                    temperature,
                    Kind::Gauge,
                    20.0 + f64::from(i),
                    Priority::Medium,
                )
                .unwrap();
            }
            until_received(&got, 100).await;
        },
    );
    let got = got.into_inner();
    assert_eq!(got.iter().filter(|e| e.0 == "button.presses").count(), 50);
    let temps: Vec<f64> = got
        .iter()
        .filter(|e| e.0 == "sensor.temperature")
        .map(|e| e.1)
        .collect();
    assert_eq!(
        temps,
        (0..50).map(|i| 20.0 + f64::from(i)).collect::<Vec<_>>()
    );
    assert_eq!(snapshot.events_received, 100);
    assert_eq!(snapshot.counters.events_sent, 100);
    assert!(snapshot.is_conserved());
}

#[test]
fn a_pulled_cable_trips_the_breaker_and_delivery_resumes() {
    let lanes: Box<Lanes> = Box::new(Lanes::new(CAPS, DropPolicy::DropByPriority).unwrap());
    let mut registry = Registry::new();
    let key = registry.register("samples", &[]).unwrap();
    let last = registry.register("samples.last", &[]).unwrap();
    let got = Got::default();
    let recorder = Recorder::new(&*lanes);
    // Batches of one, and a breaker that opens after 3 failures for 1 s
    // (longer than the 200 ms the cable stays out, even on a slow machine).
    let exporter = ExporterConfig::new(1)
        .with_batch_size(1)
        .with_breaker(BreakerConfig::new(3, 1_000_000_000));
    let recorded = Cell::new(0u64);
    let record = |key, n: u64| {
        for _ in 0..n {
            let _ = recorder.record(key, Kind::Counter, 1.0, Priority::Medium);
            recorded.set(recorded.get() + 1);
        }
    };
    let snapshot = with_network(&lanes, &registry, exporter, &got, async |cable| {
        record(key, 10);
        until_received(&got, 10).await;
        // The collector vanishes: the cable is pulled, the link goes down.
        cable.plug(false).await;
        for _ in 0..20 {
            record(key, 1);
            Timer::after(Duration::from_millis(10)).await;
        }
        // Three sends failed and the breaker opened; the rest wait.
        let waiting = lanes.len_total();
        assert!(waiting >= 10, "events wait in the lanes: {waiting}");
        // Plugged back in: after the open period a probe goes through and
        // the waiting events follow.
        cable.plug(true).await;
        while lanes.len_total() > 0 {
            Timer::after(Duration::from_millis(5)).await;
        }
        // Events recorded now are sent after the waiting ones: when they
        // have arrived, so have those.
        record(last, 5);
        let last_arrived = || {
            got.borrow()
                .iter()
                .filter(|e| e.0 == "samples.last")
                .count()
        };
        while last_arrived() < 5 {
            Timer::after(Duration::from_millis(5)).await;
        }
        let resumed = got.borrow().len() - 5;
        assert!(resumed > 10, "delivery resumed: {resumed}");
    });
    let c = snapshot.counters;
    // Three datagrams failed (one event each, or more when the exporter
    // topped a datagram up from the lanes); their events are counted.
    assert_eq!(c.send_errors, 3, "{snapshot:?}");
    assert!(c.events_send_failed >= 3, "{snapshot:?}");
    assert_eq!(c.events_sent + c.events_send_failed, recorded.get());
    assert_eq!(snapshot.breaker_transitions.opened, 1);
    assert_eq!(snapshot.breaker_transitions.closed, 1);
    assert_eq!(snapshot.events_received, recorded.get());
    assert_eq!(got.borrow().len() as u64, c.events_sent);
    assert!(snapshot.is_conserved(), "{snapshot:?}");
}
