//! The aggregate runner over the in-memory cable: counters, gauges and
//! distributions recorded from a task (through a shard) and from "interrupt
//! handlers" (the tables' shared state) arrive as cumulative totals that a
//! collector keeps per series, exact; a cable pulled out mid-run loses
//! nothing once it is back.

mod common;

use common::with_cable;
use core::cell::RefCell;
use embassy_futures::join::join;
use embassy_futures::select::select;
use embassy_time::{Duration, Timer};
use stats_embedded::core::wire::{DecodedTotals, decode};
use stats_embedded::core::{
    AggregateExporterConfig, AggregateTelemetry, Aggregates, AggregatesConfig, BreakerConfig, Kind,
    Registry, Shard, Word,
};
use stats_embedded::{AggregateRunner, Config, Resources};
use std::collections::HashMap;

/// 16 series, one task shard.
const TABLES: AggregatesConfig = AggregatesConfig::new(16, 1);
type Tables = Aggregates<[Word; TABLES.fixed_words() + 2048]>;

/// The collector's latest totals per (name, kind), by sequence: (sequence,
/// counter sum or gauge value or distribution count).
type Latest = RefCell<HashMap<(String, Kind), (u64, f64)>>;

/// Runs the aggregate runner over `tables` against a collector, with
/// `body` recording; returns the runner's telemetry.
fn with_runner(
    tables: &Tables,
    registry: &Registry<8, 256>,
    latest: &Latest,
    body: impl AsyncFnOnce(&common::Cable<'_>),
) -> AggregateTelemetry {
    let mut telemetry = None;
    with_cable(async |device, collector_stack, cable| {
        let mut resources = Resources::<512, 1024>::new();
        // Every 20 ms, all series every 100 ms; the breaker opens after
        // three failures and probes again after 50 ms.
        let exporter = AggregateExporterConfig::new(0xA66, 0)
            .with_interval(20_000_000, 100_000_000)
            .with_breaker(BreakerConfig::new(3, 50_000_000));
        let config =
            Config::aggregated(common::collector_endpoint(), 0xA66).with_exporter(exporter);
        let mut runner =
            AggregateRunner::new(device, tables, registry, &mut resources, config).unwrap();
        let collect = common::collect(collector_stack, |bytes| {
            let datagram = decode(bytes).expect("a valid datagram");
            datagram.check().expect("every record reads");
            let sequence = datagram.header.sequence;
            for s in datagram.series().flatten() {
                let value = match s.totals {
                    DecodedTotals::Counter { sum, .. } => sum as f64,
                    DecodedTotals::Gauge { value, .. } => value,
                    DecodedTotals::Distribution(d) => d.count as f64,
                };
                let mut latest = latest.borrow_mut();
                let entry = latest
                    .entry((s.name.to_string(), s.kind))
                    .or_insert((sequence, value));
                if sequence >= entry.0 {
                    *entry = (sequence, value);
                }
            }
        });
        select(body(cable), join(runner.run(), collect)).await;
        telemetry = Some(runner.telemetry());
    });
    telemetry.expect("the test ran")
}

/// Waits until the collector's latest value of (`name`, `kind`) is `want`.
async fn until(latest: &Latest, name: &str, kind: Kind, want: f64) {
    while latest.borrow().get(&(name.to_string(), kind)).map(|v| v.1) != Some(want) {
        Timer::after(Duration::from_millis(5)).await;
    }
}

#[test]
fn totals_from_a_task_and_an_interrupt_handler_arrive_exact() {
    let tables: Box<Tables> =
        Box::new(Aggregates::with_storage(core::array::from_fn(|_| Word::new()), TABLES).unwrap());
    let mut registry = Registry::new();
    let presses = registry.register("button.presses", &[]).unwrap();
    let temperature = registry.register("sensor.temperature", &[]).unwrap();
    let latency = registry.register("radio.latency", &[]).unwrap();
    let c = tables.insert(presses, Kind::Counter).unwrap();
    let g = tables.insert(temperature, Kind::Gauge).unwrap();
    let d = tables.insert(latency, Kind::Timer).unwrap();
    let latest = Latest::default();
    let telemetry = with_runner(&tables, &registry, &latest, async |_| {
        let mut task = Shard::claim(&*tables).unwrap();
        for i in 0..500u32 {
            // A task's shard, and the shared state an interrupt handler uses.
            task.add(c, 1);
            tables.add(c, 2);
            task.set(g, 20.0 + f64::from(i % 7));
            tables.change(g, 0.5);
            task.record(d, f64::from(i * 1_000)).unwrap();
            tables.record(d, 250.0).unwrap();
            if i % 100 == 0 {
                Timer::after(Duration::from_millis(3)).await;
            }
        }
        until(&latest, "button.presses", Kind::Counter, 1_500.0).await;
        until(&latest, "radio.latency", Kind::Timer, 1_000.0).await;
        // The last set was 20 + 499 % 7 = 22, then one more +0.5.
        until(&latest, "sensor.temperature", Kind::Gauge, 22.5).await;
    });
    assert!(telemetry.datagrams_sent > 0);
    assert_eq!((telemetry.send_errors, telemetry.series_refused), (0, 0));
}

#[test]
fn a_pulled_cable_loses_no_total() {
    let tables: Box<Tables> =
        Box::new(Aggregates::with_storage(core::array::from_fn(|_| Word::new()), TABLES).unwrap());
    let mut registry = Registry::new();
    let samples = registry.register("samples", &[]).unwrap();
    let c = tables.insert(samples, Kind::Counter).unwrap();
    let latest = Latest::default();
    let telemetry = with_runner(&tables, &registry, &latest, async |cable| {
        tables.add(c, 10);
        until(&latest, "samples", Kind::Counter, 10.0).await;
        // Out for a few intervals, recording all along: the datagrams sent
        // meanwhile are lost.
        cable.plug(false).await;
        for _ in 0..20 {
            tables.add(c, 1);
            Timer::after(Duration::from_millis(10)).await;
        }
        cable.plug(true).await;
        until(&latest, "samples", Kind::Counter, 30.0).await;
    });
    assert!(telemetry.send_errors > 0, "{telemetry:?}");
}
