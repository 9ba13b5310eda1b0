//! Aggregation at the source on the target: counters, a gauge and
//! distributions recorded into the core's tables by a task (through its
//! shard) and by an interrupt handler (the tables' shared state), sent as
//! cumulative series totals by the embedded adapter's aggregate runner
//! over an in-memory Ethernet link to a collector at the far end of the
//! wire. The collector keeps each series' latest total (by sequence); the
//! run passes when every one equals what was recorded.
//!
//! Time is embassy-time's mock driver, as in `net_loopback`.

#![no_std]
#![no_main]

use core::cell::Cell;
use cortex_m::interrupt::{self, Mutex};
use cortex_m::peripheral::SCB;
use cortex_m_rt::{entry, exception};
use embassy_executor::Spawner;
use embassy_net::{IpEndpoint, StackResources};
use embassy_net_driver_channel as ch;
use embassy_time::{Duration, Timer, with_timeout};
use panic_semihosting as _;
use portable_atomic::{AtomicU64, Ordering};
use static_cell::StaticCell;
use stats_core::wire::{DecodedTotals, decode};
use stats_core::{
    AggregateExporterConfig, Aggregates, AggregatesConfig, Kind, Registry, SeriesId, Shard, Word,
};
use stats_embedded::{AggregateRunner, Config, Resources};
use stats_firmware_qemu::{COLLECTOR_IP, Link, channel_link, fail, far_end, pass, run_executor};

/// Small frames: the micro:bit has 16 KiB of RAM.
const MTU: usize = 614;
/// Four series, one task's shard; a pool for their cells and two small
/// bucket tables each.
const TABLES: AggregatesConfig = AggregatesConfig::new(4, 1).with_buckets(32, 32);
type Tables = Aggregates<[Word; TABLES.fixed_words() + 512]>;
type Keys = Registry<4, 96>;
type StatsRunner = AggregateRunner<'static, [Word; TABLES.fixed_words() + 512], Keys>;
/// Rounds of recording; every other one also records from the interrupt
/// handler.
const ROUNDS: u32 = 200;

/// The series, in the order they are inserted.
const NAMES: [(&str, Kind); 4] = [
    ("requests", Kind::Counter),
    ("queue.depth", Kind::Gauge),
    ("handler.time", Kind::Timer),
    ("payload", Kind::Histogram),
];

/// What the collector last took for each series of [`NAMES`]: the
/// datagram's sequence + 1 (0: nothing yet) and the total's bits (counter
/// sum, gauge value, distribution count, as `f64`).
static LATEST: [(AtomicU64, AtomicU64); 4] = [const { (AtomicU64::new(0), AtomicU64::new(0)) }; 4];

/// What the interrupt handler records into: the tables, and its two
/// series (requests, payload).
type FromInterrupt = (&'static Tables, SeriesId, SeriesId);

/// The tables, for the interrupt handler.
static SHARED: Mutex<Cell<Option<FromInterrupt>>> = Mutex::new(Cell::new(None));

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, ch::Device<'static, MTU>>) -> ! {
    runner.run().await
}

/// Every datagram the far end of the wire gets: each series record taken
/// if it is newer than the one held.
fn on_datagram(payload: &[u8]) {
    let Ok(datagram) = decode(payload) else {
        fail("decode");
    };
    if datagram.check().is_err() || !datagram.is_series() {
        fail("a series datagram");
    }
    let sequence = datagram.header.sequence + 1;
    for s in datagram.series().flatten() {
        let Some(at) = NAMES.iter().position(|&(n, k)| n == s.name && k == s.kind) else {
            fail("an unknown series");
        };
        let value = match s.totals {
            DecodedTotals::Counter { sum, .. } => sum as f64,
            DecodedTotals::Gauge { value, .. } => value,
            DecodedTotals::Distribution(d) => d.count as f64,
        };
        let (seq, bits) = &LATEST[at];
        if sequence > seq.load(Ordering::Relaxed) {
            seq.store(sequence, Ordering::Relaxed);
            bits.store(value.to_bits(), Ordering::Relaxed);
        }
    }
}

#[embassy_executor::task]
async fn collector_task(tx: ch::TxRunner<'static, MTU>, rx: ch::RxRunner<'static, MTU>) {
    far_end(tx, rx, on_datagram).await
}

/// Takes the runner by reference: a task future holding it by value would
/// keep two copies of it.
#[embassy_executor::task]
async fn stats_task(runner: &'static mut StatsRunner) -> ! {
    runner.run().await
}

/// Whether the collector holds `want` for each series.
fn arrived(want: &[f64; 4]) -> bool {
    LATEST.iter().zip(want).all(|((seq, bits), &w)| {
        seq.load(Ordering::Relaxed) > 0 && f64::from_bits(bits.load(Ordering::Relaxed)) == w
    })
}

#[embassy_executor::task]
async fn main_task(spawner: Spawner) {
    static STATE: StaticCell<ch::State<MTU, 1, 1>> = StaticCell::new();
    static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
    static KEYS: StaticCell<Keys> = StaticCell::new();
    static TABLES_CELL: StaticCell<Tables> = StaticCell::new();
    static BUFFERS: StaticCell<Resources<512, 512>> = StaticCell::new();
    static RUNNER: StaticCell<StatsRunner> = StaticCell::new();

    let Link { stack, net, rx, tx } = channel_link(
        STATE.init(ch::State::new()),
        RESOURCES.init(StackResources::new()),
    );
    let keys = KEYS.init(Registry::new());
    let tables: &'static Tables = TABLES_CELL.init_with(|| {
        Aggregates::with_storage([const { Word::new() }; TABLES.fixed_words() + 512], TABLES)
            .unwrap_or_else(|_| fail("tables"))
    });
    let mut series = [None; 4];
    for (slot, &(name, kind)) in series.iter_mut().zip(&NAMES) {
        let Ok(key) = keys.register(name, &[]) else {
            fail("register");
        };
        *slot = tables.insert(key, kind).ok();
    }
    let [Some(requests), Some(depth), Some(time), Some(payload)] = series else {
        fail("insert");
    };
    interrupt::free(|cs| SHARED.borrow(cs).set(Some((tables, requests, payload))));

    let destination = IpEndpoint::new(COLLECTOR_IP.into(), 8125);
    // Every 20 ms, every series every 100 ms.
    let exporter = AggregateExporterConfig::new(5, 0).with_interval(20_000_000, 100_000_000);
    let config = Config::aggregated(destination, 5).with_exporter(exporter);
    let buffers = BUFFERS.init(Resources::new());
    let runner = RUNNER.init_with(|| {
        AggregateRunner::new(stack, tables, keys, buffers, config)
            .unwrap_or_else(|_| fail("runner"))
    });
    spawner.spawn(net_task(net).unwrap());
    spawner.spawn(collector_task(tx, rx).unwrap());
    spawner.spawn(stats_task(runner).unwrap());

    let Some(mut shard) = Shard::claim(tables) else {
        fail("a shard");
    };
    for i in 0..ROUNDS {
        shard.add(requests, 1);
        shard.set(depth, f64::from(i % 10));
        if shard.record(time, f64::from(i * 1_000)).is_err() {
            fail("record");
        }
        if i % 2 == 1 {
            // From an interrupt handler: 2 requests, a payload of 64.
            SCB::set_pendsv();
        }
        if i % 20 == 0 {
            Timer::after(Duration::from_millis(3)).await;
        }
    }
    if FROM_INTERRUPT.load(Ordering::Relaxed) != u64::from(ROUNDS / 2) {
        fail("recording from the interrupt handler");
    }
    let want = [
        f64::from(ROUNDS + ROUNDS),   // 1 a round, 2 every other round
        f64::from((ROUNDS - 1) % 10), // the last set
        f64::from(ROUNDS),            // one a round
        f64::from(ROUNDS / 2),        // every other round
    ];
    let done = with_timeout(Duration::from_secs(10), async {
        while !arrived(&want) {
            Timer::after(Duration::from_millis(10)).await;
        }
    })
    .await;
    if done.is_err() {
        fail("the totals did not arrive");
    }
    cortex_m_semihosting::hprintln!(
        "{} values recorded, every total arrived exact",
        ROUNDS * 3 + ROUNDS
    );
    pass()
}

/// Rounds the interrupt handler recorded.
static FROM_INTERRUPT: AtomicU64 = AtomicU64::new(0);

/// Records from interrupt context (PendSV, which every Cortex-M has)
/// through the tables' shared state.
#[exception]
fn PendSV() {
    let Some((tables, requests, payload)) = interrupt::free(|cs| SHARED.borrow(cs).get()) else {
        return;
    };
    tables.add(requests, 2);
    if tables.record(payload, 64.0).is_ok() {
        FROM_INTERRUPT.fetch_add(1, Ordering::Relaxed);
    }
}

#[entry]
fn main() -> ! {
    run_executor(|spawner| spawner.spawn(main_task(spawner).unwrap()))
}
