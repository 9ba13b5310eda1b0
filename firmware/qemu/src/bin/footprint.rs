//! A minimal firmware for measuring the pipeline's footprint: one
//! embassy-net stack (static IPv4, UDP), the stats adapter with one UDP
//! socket, the executor, and a channel device standing in for the MAC
//! (frames are dropped; one frame buffer each way). Built with `--features
//! with-stats` it records events and sends them through the event pipeline;
//! with `--features with-aggregation` it records into aggregation tables
//! and sends their totals; with neither, it sends a fixed datagram through
//! a plain UDP socket, so the difference is the pipeline's cost.

#![no_std]
#![no_main]

// The critical-section implementation (single core).
use cortex_m as _;
use cortex_m_rt::entry;
use embassy_executor::Spawner;
use embassy_net::{IpEndpoint, Ipv4Address, StackResources};
use embassy_net_driver_channel as ch;
use embassy_time::{Duration, Timer};
use static_cell::StaticCell;
use stats_firmware_qemu::{channel_link, run_executor};

const MTU: usize = 1514;
const COLLECTOR: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, ch::Device<'static, MTU>>) -> ! {
    runner.run().await
}

/// The MAC: frames go nowhere.
#[embassy_executor::task]
async fn mac_task(mut tx: ch::TxRunner<'static, MTU>) {
    loop {
        tx.tx_buf().await;
        tx.tx_done();
    }
}

#[cfg(feature = "with-stats")]
mod app {
    use super::*;
    use stats_core::{
        DropPolicy, Event, Kind, LaneCapacities, Priority, Registry, Slot, StaticLanes,
    };
    use stats_embedded::{Config, Recorder, Resources, Runner};

    const CAPS: LaneCapacities = LaneCapacities {
        high: 8,
        medium: 32,
        low: 8,
    };
    type Lanes = StaticLanes<{ CAPS.total() }, 1>;
    // Made at run time in zeroed RAM: a `static` made at compile time would
    // also store its initial image (all its slots) in flash.
    static LANES: StaticCell<Lanes> = StaticCell::new();
    type StatsRunner = Runner<'static, [Slot<Event>; CAPS.total()], Registry<4, 64>, 1, 16>;

    #[embassy_executor::task]
    async fn stats_task(runner: &'static mut StatsRunner) -> ! {
        runner.run().await
    }

    pub async fn run(spawner: Spawner, stack: embassy_net::Stack<'static>) {
        static KEYS: StaticCell<Registry<4, 64>> = StaticCell::new();
        static BUFFERS: StaticCell<Resources<512, 512>> = StaticCell::new();
        static RUNNER: StaticCell<StatsRunner> = StaticCell::new();
        let lanes: &'static Lanes = LANES.init_with(|| {
            Lanes::new(CAPS, DropPolicy::DropByPriority).unwrap_or_else(|_| panic!())
        });
        let keys = KEYS.init(Registry::new());
        let sensor = keys
            .register("sensor", &[("unit", "C")])
            .unwrap_or_else(|_| panic!());
        let buffers = BUFFERS.init(Resources::new());
        let config = Config::new(IpEndpoint::new(COLLECTOR.into(), 8125), 1)
            .with_exporter(stats_core::ExporterConfig::new(1).with_batch_size(16));
        let runner = RUNNER.init_with(|| {
            Runner::new(stack, lanes, keys, buffers, config).unwrap_or_else(|_| panic!())
        });
        spawner.spawn(stats_task(runner).unwrap());
        let recorder = Recorder::new(lanes);
        let mut i = 0u32;
        loop {
            let _ = recorder.record(sensor, Kind::Gauge, f64::from(i), Priority::Medium);
            i = i.wrapping_add(1);
            Timer::after(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(feature = "with-aggregation")]
mod app {
    use super::*;
    use stats_core::{AggregateExporterConfig, Aggregates, AggregatesConfig, Kind, Registry, Word};
    use stats_embedded::{AggregateRunner, Config, Resources};

    /// Four series, no task shard (recording from anywhere, as interrupt
    /// handlers do), small bucket tables.
    const TABLES: AggregatesConfig = AggregatesConfig::new(4, 0).with_buckets(8, 32);
    type Words = [Word; TABLES.fixed_words() + 128];
    type StatsRunner = AggregateRunner<'static, Words, Registry<4, 64>>;

    #[embassy_executor::task]
    async fn stats_task(runner: &'static mut StatsRunner) -> ! {
        runner.run().await
    }

    pub async fn run(spawner: Spawner, stack: embassy_net::Stack<'static>) {
        static KEYS: StaticCell<Registry<4, 64>> = StaticCell::new();
        static TABLES_CELL: StaticCell<Aggregates<Words>> = StaticCell::new();
        static BUFFERS: StaticCell<Resources<512, 512>> = StaticCell::new();
        static RUNNER: StaticCell<StatsRunner> = StaticCell::new();
        let keys = KEYS.init(Registry::new());
        let sensor = keys
            .register("sensor", &[("unit", "C")])
            .unwrap_or_else(|_| panic!());
        let tables: &'static Aggregates<Words> = TABLES_CELL.init_with(|| {
            Aggregates::with_storage([const { Word::new() }; TABLES.fixed_words() + 128], TABLES)
                .unwrap_or_else(|_| panic!())
        });
        let wakes = keys.register("wakes", &[]).unwrap_or_else(|_| panic!());
        let work = keys.register("work.time", &[]).unwrap_or_else(|_| panic!());
        // A gauge, a counter and a distribution: each kind's recording code.
        let (Ok(series), Ok(wakes), Ok(work)) = (
            tables.insert(sensor, Kind::Gauge),
            tables.insert(wakes, Kind::Counter),
            tables.insert(work, Kind::Timer),
        ) else {
            panic!()
        };
        let buffers = BUFFERS.init(Resources::new());
        let config = Config::aggregated(IpEndpoint::new(COLLECTOR.into(), 8125), 1)
            .with_exporter(AggregateExporterConfig::new(1, 0));
        let runner = RUNNER.init_with(|| {
            AggregateRunner::new(stack, tables, keys, buffers, config).unwrap_or_else(|_| panic!())
        });
        spawner.spawn(stats_task(runner).unwrap());
        let mut i = 0u32;
        loop {
            tables.set(series, f64::from(i));
            tables.add(wakes, 1);
            let _ = tables.record(work, f64::from(i % 1000));
            i = i.wrapping_add(1);
            Timer::after(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(not(any(feature = "with-stats", feature = "with-aggregation")))]
mod app {
    use super::*;
    use embassy_net::udp::{PacketMetadata, UdpSocket};

    pub async fn run(_spawner: Spawner, stack: embassy_net::Stack<'static>) {
        static META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
        static TX: StaticCell<[u8; 512]> = StaticCell::new();
        static RMETA: StaticCell<[PacketMetadata; 1]> = StaticCell::new();
        static RX: StaticCell<[u8; 1]> = StaticCell::new();
        let mut socket = UdpSocket::new(
            stack,
            RMETA.init([PacketMetadata::EMPTY; 1]),
            RX.init([0; 1]),
            META.init([PacketMetadata::EMPTY; 4]),
            TX.init([0; 512]),
        );
        let _ = socket.bind(0);
        loop {
            let _ = socket
                .send_to(b"sensor:1|g", IpEndpoint::new(COLLECTOR.into(), 8125))
                .await;
            Timer::after(Duration::from_millis(10)).await;
        }
    }
}

#[embassy_executor::task]
async fn main_task(spawner: Spawner) {
    // The stand-in MAC's frame buffers: one each way (a real driver brings
    // its own).
    static STATE: StaticCell<ch::State<MTU, 1, 1>> = StaticCell::new();
    static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
    let link = channel_link(
        STATE.init(ch::State::new()),
        RESOURCES.init(StackResources::new()),
    );
    spawner.spawn(net_task(link.net).unwrap());
    spawner.spawn(mac_task(link.tx).unwrap());
    app::run(spawner, link.stack).await
}

/// A minimal firmware stops on a panic; reporting one (over semihosting or
/// a probe) would measure the reporting, not the pipeline.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    #[allow(clippy::empty_loop)]
    loop {}
}

#[entry]
fn main() -> ! {
    run_executor(|spawner| spawner.spawn(main_task(spawner).unwrap()))
}
