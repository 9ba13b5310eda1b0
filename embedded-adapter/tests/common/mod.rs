//! Two embassy-net stacks, the adapter's and a collector's, joined by an
//! in-memory Ethernet cable (`embassy-net-driver-channel`) that a test can
//! pull out and plug back in.

use core::cell::Cell;
use embassy_futures::block_on;
use embassy_futures::join::{join, join3};
use embassy_futures::select::{Either, select};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpEndpoint, Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_driver_channel as ch;
use embassy_net_driver_channel::driver::{HardwareAddress, LinkState};
use embassy_time::{Duration, Timer, with_timeout};

pub const MTU: usize = 1514;
pub const DEVICE: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const COLLECTOR: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
/// The collector's UDP port.
const COLLECTOR_PORT: u16 = 8125;

/// Where the device sends: the collector's address and port.
pub fn collector_endpoint() -> IpEndpoint {
    IpEndpoint::new(COLLECTOR.into(), COLLECTOR_PORT)
}

/// The collector: receives on its stack's port for ever, handing each
/// datagram to `on_datagram`.
pub async fn collect(stack: Stack<'_>, mut on_datagram: impl FnMut(&[u8])) {
    let mut meta = [PacketMetadata::EMPTY; 8];
    let mut rx = [0u8; 8192];
    let mut tmeta = [PacketMetadata::EMPTY; 1];
    let mut tx = [0u8; 64];
    let mut socket = UdpSocket::new(stack, &mut meta, &mut rx, &mut tmeta, &mut tx);
    socket.bind(COLLECTOR_PORT).unwrap();
    let mut buf = [0u8; 2048];
    loop {
        let (n, _) = socket.recv_from(&mut buf).await.unwrap();
        on_datagram(&buf[..n]);
    }
}

fn net_config(address: Ipv4Address) -> embassy_net::Config {
    embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(address, 24),
        gateway: None,
        dns_servers: Default::default(),
    })
}

/// The cable between the two stacks: whether it is plugged in, the
/// device side's link state, and the device's stack (which sees that state
/// when its runner next polls the driver).
pub struct Cable<'a> {
    plugged: Cell<bool>,
    link: ch::StateRunner<'a>,
    device: Stack<'a>,
}

impl Cable<'_> {
    /// Plugs the cable in or pulls it out, and waits until the device's
    /// stack sees it: until then the stack would still send into a cable
    /// that is gone, and those datagrams would count as sent.
    pub async fn plug(&self, plugged: bool) {
        self.set(plugged);
        while self.device.is_link_up() != plugged {
            Timer::after(Duration::from_millis(1)).await;
        }
    }

    fn set(&self, plugged: bool) {
        self.plugged.set(plugged);
        self.link.set_link_state(if plugged {
            LinkState::Up
        } else {
            LinkState::Down
        });
    }
}

/// Runs `body` with the device's stack (10.0.0.2) and the collector's
/// (10.0.0.1), both running, joined by a plugged-in [`Cable`]. Fails the
/// test if `body` takes more than 20 s.
pub fn with_cable(body: impl AsyncFnOnce(Stack<'_>, Stack<'_>, &Cable<'_>)) {
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
        device: stack_a,
    };
    cable.set(true);
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
    let background = join3(net_a.run(), net_b.run(), wire);
    let test = with_timeout(Duration::from_secs(20), body(stack_a, stack_b, &cable));
    match block_on(select(test, background)) {
        Either::First(result) => assert!(result.is_ok(), "the test timed out"),
        Either::Second(_) => unreachable!("the network never stops"),
    }
}
