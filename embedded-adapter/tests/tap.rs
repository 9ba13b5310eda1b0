//! The adapter against the Linux kernel's network stack: embassy-net on a
//! TAP device, a std UDP socket on the kernel side decoding every datagram.
//!
//! Needs a TAP device, so it is ignored by `cargo test`; `.ci/tap.sh`
//! creates one inside a throwaway network namespace (192.168.69.1/24 on the
//! kernel side) and runs it with `STATS_TAP` naming the device.

use embassy_futures::block_on;
use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embassy_net::{IpEndpoint, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{Duration, Timer, with_timeout};
use stats_embedded::core::wire::decode;
use stats_embedded::core::{DropPolicy, Kind, LaneCapacities, Priority, Registry, StaticLanes};
use stats_embedded::{Config, Recorder, Resources, Runner};
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const CAPS: LaneCapacities = LaneCapacities {
    high: 16,
    medium: 256,
    low: 16,
};
type Lanes = StaticLanes<{ 2 * CAPS.total() }, 2>;
const EVENTS: u64 = 1_000;

#[test]
#[ignore = "needs a TAP device: .ci/tap.sh runs it"]
fn events_reach_a_kernel_socket_through_a_tap_device() {
    let tap = std::env::var("STATS_TAP").expect("STATS_TAP names the TAP device");
    // The kernel side: 192.168.69.1, set up by the script.
    let socket = UdpSocket::bind("192.168.69.1:8125").expect("the kernel side of the TAP");
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counted = received.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut quiet = 0;
        while quiet < 25 {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    quiet = 0;
                    let datagram = decode(&buf[..n]).expect("a valid datagram");
                    for e in datagram.events() {
                        let e = e.unwrap();
                        assert_eq!(e.name, "tap.samples");
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => quiet += 1,
            }
        }
    });

    let device = TunTapDevice::new(&tap).expect("open the TAP device");
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 2), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let mut resources = StackResources::<2>::new();
    let (stack, mut net) = embassy_net::new(device, config, &mut resources, 7);
    let lanes: Box<Lanes> = Box::new(Lanes::new(CAPS, DropPolicy::DropByPriority).unwrap());
    let mut registry: Registry<4, 64> = Registry::new();
    let key = registry.register("tap.samples", &[]).unwrap();
    let mut buffers = Resources::<512, 4096>::new();
    let destination = IpEndpoint::new(Ipv4Address::new(192, 168, 69, 1).into(), 8125);
    let mut runner = Runner::<_, _, 2>::new(
        stack,
        &lanes,
        &registry,
        &mut buffers,
        Config::new(destination, 9),
    )
    .unwrap();
    let recorder = Recorder::new(&*lanes);

    let test = with_timeout(Duration::from_secs(20), async {
        for i in 0..EVENTS {
            while recorder
                .record(key, Kind::Histogram, i as f64, Priority::Medium)
                .is_err()
            {
                Timer::after(Duration::from_millis(1)).await;
            }
        }
        while received.load(Ordering::Relaxed) < EVENTS {
            Timer::after(Duration::from_millis(10)).await;
        }
    });
    let outcome = block_on(select(test, join(runner.run(), net.run())));
    let snapshot = runner.snapshot();
    reader.join().unwrap();
    assert!(
        matches!(outcome, Either::First(Ok(()))),
        "timed out: {snapshot:?}"
    );
    assert_eq!(received.load(Ordering::Relaxed), EVENTS);
    // Events dropped at a full lane were retried above, so each recorded
    // event is one accepted; the drops are counted too.
    assert_eq!(snapshot.counters.events_sent, EVENTS);
    assert!(snapshot.is_conserved(), "{snapshot:?}");
}
