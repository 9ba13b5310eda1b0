//! The embedded adapter on the target: its embassy-net stack sends over an
//! in-memory Ethernet link (`embassy-net-driver-channel`) to a collector at
//! the far end of the wire, which answers ARP and decodes every UDP datagram
//! with the core decoder (frame by frame: a second IP stack would not fit
//! the micro:bit's 16 KiB of RAM next to the first). Half the events are
//! recorded by a task, half by an interrupt handler; all must arrive, and
//! the lanes account for each.
//!
//! Time is embassy-time's mock driver, advanced 1 ms by a task each time
//! the executor runs it (no timer interrupt: the micro:bit's nRF51 has no
//! SysTick, and the emulated time only has to move).

#![no_std]
#![no_main]

use cortex_m::peripheral::SCB;
use cortex_m_rt::{entry, exception};
use embassy_executor::Spawner;
use embassy_net::{IpEndpoint, StackResources};
use embassy_net_driver_channel as ch;
use embassy_time::{Duration, Timer, with_timeout};
use panic_semihosting as _;
use portable_atomic::{AtomicU32, Ordering};
use static_cell::StaticCell;
use stats_core::wire::decode;
use stats_core::{DropPolicy, KeyId, Kind, LaneCapacities, Priority, Registry, StaticLanes};
use stats_embedded::{Config, Recorder, Resources, Runner};
use stats_firmware_qemu::{COLLECTOR_IP, Link, channel_link, fail, far_end, pass, run_executor};

/// Small frames: the micro:bit has 16 KiB of RAM.
const MTU: usize = 614;
const CAPS: LaneCapacities = LaneCapacities {
    high: 4,
    medium: 16,
    low: 4,
};
/// The shared set only: the recorder below uses it (as interrupt handlers
/// would), and RAM is scarce.
type Lanes = StaticLanes<{ CAPS.total() }, 1>;
type Keys = Registry<4, 64>;
type StatsRunner =
    Runner<'static, [stats_core::Slot<stats_core::Event>; CAPS.total()], Keys, 1, 16>;
const EVENTS: u32 = 60;

static LANES: Lanes = match Lanes::new(CAPS, DropPolicy::DropByPriority) {
    Ok(l) => l,
    Err(_) => panic!(),
};
static RECEIVED: AtomicU32 = AtomicU32::new(0);

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, ch::Device<'static, MTU>>) -> ! {
    runner.run().await
}

/// Every datagram the far end of the wire gets: decoded, its events
/// counted.
fn on_datagram(payload: &[u8]) {
    let Ok(datagram) = decode(payload) else {
        fail("decode");
    };
    for e in datagram.events() {
        let Ok(e) = e else { fail("event") };
        if e.name != "sensor" || e.kind != Kind::Gauge {
            fail("name or kind");
        }
        RECEIVED.fetch_add(1, Ordering::Relaxed);
    }
}

/// The far end of the wire: takes the device's frames and answers ARP.
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

#[embassy_executor::task]
async fn main_task(spawner: Spawner) {
    static STATE: StaticCell<ch::State<MTU, 1, 1>> = StaticCell::new();
    static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
    static KEYS: StaticCell<Keys> = StaticCell::new();
    static BUFFERS: StaticCell<Resources<512, 512>> = StaticCell::new();
    static RUNNER: StaticCell<StatsRunner> = StaticCell::new();

    let Link { stack, net, rx, tx } = channel_link(
        STATE.init(ch::State::new()),
        RESOURCES.init(StackResources::new()),
    );

    let keys = KEYS.init(Registry::new());
    let Ok(sensor) = keys.register("sensor", &[("unit", "C")]) else {
        fail("register");
    };
    let destination = IpEndpoint::new(COLLECTOR_IP.into(), 8125);
    let config = Config::new(destination, 3)
        .with_exporter(stats_core::ExporterConfig::new(3).with_batch_size(16));
    let buffers = BUFFERS.init(Resources::new());
    // Built in place: a 5 KiB runner on the stack would not fit the
    // micro:bit's.
    let runner = RUNNER.init_with(|| {
        Runner::new(stack, &LANES, keys, buffers, config).unwrap_or_else(|_| fail("runner"))
    });
    spawner.spawn(net_task(net).unwrap());
    spawner.spawn(collector_task(tx, rx).unwrap());
    spawner.spawn(stats_task(runner).unwrap());

    let recorder = Recorder::new(&LANES);
    SENSOR.store(sensor.get(), Ordering::Relaxed);
    for i in 0..EVENTS {
        if i % 2 == 0 {
            if recorder
                .record(sensor, Kind::Gauge, f64::from(i), Priority::Medium)
                .is_err()
            {
                fail("record");
            }
        } else {
            // The other half from an interrupt handler.
            SCB::set_pendsv();
        }
        Timer::after(Duration::from_millis(2)).await;
    }
    if FROM_INTERRUPT.load(Ordering::Relaxed) != EVENTS / 2 {
        fail("recording from the interrupt handler");
    }
    let arrived = with_timeout(Duration::from_secs(10), async {
        while RECEIVED.load(Ordering::Relaxed) < EVENTS {
            Timer::after(Duration::from_millis(10)).await;
        }
    })
    .await;
    if arrived.is_err() {
        fail("events did not arrive");
    }
    let drops = LANES.drops().total();
    if drops != 0 || LANES.len_total() != 0 {
        fail("not conserved");
    }
    cortex_m_semihosting::hprintln!("{} events sent and decoded", EVENTS);
    pass()
}

/// The key the interrupt handler records under.
static SENSOR: AtomicU32 = AtomicU32::new(0);
/// Events the interrupt handler recorded.
static FROM_INTERRUPT: AtomicU32 = AtomicU32::new(0);

/// Records one event from interrupt context (PendSV, which every Cortex-M
/// has), through the shared lane set.
#[exception]
fn PendSV() {
    let n = FROM_INTERRUPT.load(Ordering::Relaxed);
    let key = KeyId::from_raw(SENSOR.load(Ordering::Relaxed));
    if Recorder::new(&LANES)
        .record(key, Kind::Gauge, f64::from(1_000 + n), Priority::High)
        .is_ok()
    {
        FROM_INTERRUPT.store(n + 1, Ordering::Relaxed);
    }
}

#[entry]
fn main() -> ! {
    run_executor(|spawner| spawner.spawn(main_task(spawner).unwrap()))
}
