//! Exporter throughput on one thread: events already in the lanes, drained,
//! batched (50 per batch), encoded into 1,472-byte datagrams with CRC and
//! handed, up to 16 per call as the adapters do, to a transport that
//! accepts everything (no system call), per event.
//! The reference workload's ten series are spread over the three priorities.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stats_core::{
    DropPolicy, Exporter, ExporterConfig, LaneCapacities, MAX_DATAGRAMS_PER_SEND, SendError,
    StaticLanes, Transport,
};
use stats_pipeline::workload;
use std::hint::black_box;
use std::time::{Duration, Instant};

const CAPS: LaneCapacities = LaneCapacities {
    high: 4096,
    medium: 4096,
    low: 4096,
};
type Lanes = StaticLanes<{ 2 * 12_288 }, 2>;

/// Takes every datagram and only counts its bytes.
struct Null(u64);

impl Transport for Null {
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        self.0 += datagram.len() as u64;
        Ok(())
    }
    fn max_datagram(&self) -> usize {
        1472
    }
}

fn throughput(c: &mut Criterion) {
    let (registry, ids) = workload::registry();
    let events = workload::events(&ids, 12_000, 1_000);
    let lanes: Box<Lanes> = Box::new(StaticLanes::new(CAPS, DropPolicy::DropByPriority).unwrap());
    let mut producer = lanes.producer().unwrap();
    let mut buf = vec![0u8; MAX_DATAGRAMS_PER_SEND * 1472];
    let mut exporter: Exporter<'_, _, 2> =
        Exporter::new(lanes.consumer().unwrap(), &mut buf, ExporterConfig::new(1)).unwrap();
    let mut g = c.benchmark_group("exporter");
    g.throughput(Throughput::Elements(1));
    g.bench_function("lanes_to_datagrams", |b| {
        b.iter_custom(|iters| {
            let mut transport = Null(0);
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                for e in &events {
                    producer.push(*e).unwrap();
                }
                let start = Instant::now();
                while exporter
                    .poll(u64::MAX / 2, &mut transport, &registry)
                    .is_some()
                {}
                total += start.elapsed();
                done += events.len() as u64;
            }
            black_box(transport.0);
            total.mul_f64(iters as f64 / done as f64)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config(3);
    targets = throughput
}
criterion_main!(benches);
