//! The adapter's embassy-net stack and a collector's embassy-net stack,
//! joined by an in-memory Ethernet cable (`embassy-net-driver-channel`),
//! in ordinary tests: events arrive and decode with the core decoder; a
//! cable pulled out trips the breaker, and plugging it back resumes
//! delivery; every event is accounted for.

use core::cell::{Cell, RefCell};
use embassy_futures::block_on;
use embassy_futures::join::{join, join4};
use embassy_futures::select::{Either, select};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpEndpoint, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_driver_channel as ch;
use embassy_net_driver_channel::driver::{HardwareAddress, LinkState};
use embassy_time::{Duration, Timer, with_timeout};
use stats_embedded::core::wire::decode;
use stats_embedded::core::{
    BreakerConfig, DropPolicy, ExporterConfig, Kind, LaneCapacities, Priority, Registry,
    StaticLanes, TelemetrySnapshot,
};
use stats_embedded::{Config, Recorder, Resources, Runner};

const MTU: usize = 1514;
const CAPS: LaneCapacities = LaneCapacities {
    high: 16,
    medium: 64,
    low: 16,
};
/// The shared set (interrupt handlers) plus one task's set.
type Lanes = StaticLanes<{ 2 * CAPS.total() }, 2>;

const DEVICE: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const COLLECTOR: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

fn net_config(address: Ipv4Address) -> embassy_net::Config {
    embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(address, 24),
        gateway: None,
        dns_servers: Default::default(),
    })
}

/// What the collector decoded: (name, value).
type Got = RefCell<Vec<(String, f64)>>;

/// The cable between the two stacks: whether it is plugged in, and the
/// device side's link state.
struct Cable<'a> {
    plugged: Cell<bool>,
    link: ch::StateRunner<'a>,
}

impl Cable<'_> {
    fn plug(&self, plugged: bool) {
        self.plugged.set(plugged);
        self.link.set_link_state(if plugged {
            LinkState::Up
        } else {
            LinkState::Down
        });
    }
}

/// Runs `body` against a device stack running the adapter and a collector
/// stack joined by a [`Cable`]; returns the adapter's telemetry after.
fn with_network(
    lanes: &Lanes,
    registry: &Registry<8, 256>,
    exporter: ExporterConfig,
    got: &Got,
    body: impl AsyncFnOnce(&Cable<'_>),
) -> TelemetrySnapshot {
    let mut state_a = ch::State::<MTU, 4, 4>::new();
    let mut state_b = ch::State::<MTU, 4, 4>::new();
    let (run_a, dev_a) = ch::new(&mut state_a, HardwareAddress::Ethernet([2, 0, 0, 0, 0, 2]));
    let (run_b, dev_b) = ch::new(&mut state_b, HardwareAddress::Ethernet([2, 0, 0, 0, 0, 1]));
    let mut res_a = StackResources::<2>::new();
    let mut res_b = StackResources::<2>::new();
    let (stack_a, mut net_a) = embassy_net::new(dev_a, net_config(DEVICE), &mut res_a, 1);
    let (stack_b, mut net_b) = embassy_net::new(dev_b, net_config(COLLECTOR), &mut res_b, 2);
    let (link_a, mut rx_a, mut tx_a) = run_a.split();
    let (link_b, mut rx_b, mut tx_b) = run_b.split();
    link_b.set_link_state(LinkState::Up);
    let cable = Cable {
        plugged: Cell::new(true),
        link: link_a,
    };
    cable.plug(true);

    let mut resources = Resources::<512, 1024>::new();
    let config =
        Config::new(IpEndpoint::new(COLLECTOR.into(), 8125), 0x5EED).with_exporter(exporter);
    let mut runner =
        Runner::<_, _, 2>::new(stack_a, lanes, registry, &mut resources, config).unwrap();

    let mut meta = [PacketMetadata::EMPTY; 8];
    let mut rx = [0u8; 8192];
    let mut tmeta = [PacketMetadata::EMPTY; 1];
    let mut tx = [0u8; 64];
    let mut collector = UdpSocket::new(stack_b, &mut meta, &mut rx, &mut tmeta, &mut tx);
    collector.bind(8125).unwrap();

    // Frames cross while the cable is plugged in, and vanish otherwise.
    let wire = async {
        let a_to_b = async {
            loop {
                let frame = tx_a.tx_buf().await;
                if cable.plugged.get() {
                    let n = frame.len();
                    let into = rx_b.rx_buf().await;
                    into[..n].copy_from_slice(frame);
                    rx_b.rx_done(n);
                }
                tx_a.tx_done();
            }
        };
        let b_to_a = async {
            loop {
                let frame = tx_b.tx_buf().await;
                if cable.plugged.get() {
                    let n = frame.len();
                    let into = rx_a.rx_buf().await;
                    into[..n].copy_from_slice(frame);
                    rx_a.rx_done(n);
                }
                tx_b.tx_done();
            }
        };
        join(a_to_b, b_to_a).await
    };
    let collect = async {
        let mut buf = [0u8; 2048];
        loop {
            let (n, _) = collector.recv_from(&mut buf).await.unwrap();
            let datagram = decode(&buf[..n]).expect("a valid datagram");
            for e in datagram.events() {
                let e = e.unwrap();
                got.borrow_mut().push((e.name.to_string(), e.value));
            }
        }
    };
    let background = join4(runner.run(), net_a.run(), net_b.run(), join(wire, collect));
    let test = with_timeout(Duration::from_secs(20), body(&cable));
    let finished = match block_on(select(test, background)) {
        Either::First(result) => result.is_ok(),
        Either::Second(_) => unreachable!("the network never stops"),
    };
    let snapshot = runner.snapshot();
    assert!(finished, "the test timed out: {snapshot:?}");
    snapshot
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
        cable.plug(false);
        for _ in 0..20 {
            record(key, 1);
            Timer::after(Duration::from_millis(10)).await;
        }
        // Three sends failed and the breaker opened; the rest wait.
        let waiting = lanes.len_total();
        assert!(waiting >= 10, "events wait in the lanes: {waiting}");
        // Plugged back in: after the open period a probe goes through and
        // the waiting events follow.
        cable.plug(true);
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
