//! Shared pieces of the QEMU firmware: reporting through semihosting,
//! exiting with a status QEMU passes on, the executor on embassy-time's
//! mock clock, and the network stack on an in-memory Ethernet link.

#![no_std]

use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_driver_channel as ch;
use embassy_net_driver_channel::driver::{HardwareAddress, LinkState};
use embassy_time::{Duration, MockDriver};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpProtocol, Ipv4Packet, UdpPacket,
};
use static_cell::StaticCell;

/// The mock clock: a millisecond each time the executor comes round to it.
#[embassy_executor::task]
async fn clock_task() {
    loop {
        MockDriver::get().advance(Duration::from_millis(1));
        embassy_futures::yield_now().await;
    }
}

/// Runs the executor with the mock clock ticking and `init` spawning the
/// firmware's own tasks. Never returns.
pub fn run_executor(init: impl FnOnce(Spawner)) -> ! {
    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    let executor = EXECUTOR.init(Executor::new());
    executor.run(|spawner| {
        spawner.spawn(clock_task().unwrap());
        init(spawner);
    })
}

/// The collector's address at the far end of the wire.
pub const COLLECTOR_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const COLLECTOR_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

/// The firmware's end of an in-memory Ethernet link (a channel device
/// standing in for the MAC), with the stack on it.
pub struct Link<const MTU: usize> {
    /// The stack, at 10.0.0.2/24.
    pub stack: Stack<'static>,
    /// The stack's task body: spawn a task that runs it.
    pub net: embassy_net::Runner<'static, ch::Device<'static, MTU>>,
    /// Frames to the device (the far end of the wire writes here).
    pub rx: ch::RxRunner<'static, MTU>,
    /// Frames from the device (the far end of the wire reads here).
    pub tx: ch::TxRunner<'static, MTU>,
}

/// An embassy-net stack with static IPv4 10.0.0.2/24 on a channel device
/// (MAC 02:00:00:00:00:02, one frame buffer each way) whose link is up.
pub fn channel_link<const MTU: usize>(
    state: &'static mut ch::State<MTU, 1, 1>,
    resources: &'static mut StackResources<2>,
) -> Link<MTU> {
    let (run, device) = ch::new(state, HardwareAddress::Ethernet([2, 0, 0, 0, 0, 2]));
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 2), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let (stack, net) = embassy_net::new(device, config, resources, 1);
    let (link, rx, tx) = run.split();
    link.set_link_state(LinkState::Up);
    Link { stack, net, rx, tx }
}

/// Runs one named check; a failed assertion panics, and the panic handler
/// exits QEMU with status 1.
pub fn check(name: &str, f: impl FnOnce()) {
    hprintln!("{} ...", name);
    f();
    hprintln!("{} ok", name);
}

/// Ends the run with success.
pub fn pass() -> ! {
    hprintln!("all checks passed");
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Ends the run with failure.
pub fn fail(why: &str) -> ! {
    hprintln!("FAILED: {}", why);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Answers `frame` if it is an ARP request for the collector (the reply is
/// written into `reply`; returns its length), or hands its payload to
/// `on_datagram` if it is a UDP datagram to the collector's port.
fn answer(frame: &[u8], reply: &mut [u8], on_datagram: &mut impl FnMut(&[u8])) -> Option<usize> {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        fail("ethernet frame");
    };
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            let Ok(packet) = ArpPacket::new_checked(eth.payload()) else {
                fail("arp packet");
            };
            let Ok(ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_hardware_addr,
                source_protocol_addr,
                target_protocol_addr,
                ..
            }) = ArpRepr::parse(&packet)
            else {
                return None;
            };
            if target_protocol_addr != COLLECTOR_IP {
                return None;
            }
            let arp = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: COLLECTOR_MAC,
                source_protocol_addr: COLLECTOR_IP,
                target_hardware_addr: source_hardware_addr,
                target_protocol_addr: source_protocol_addr,
            };
            let header = EthernetRepr {
                src_addr: COLLECTOR_MAC,
                dst_addr: source_hardware_addr,
                ethertype: EthernetProtocol::Arp,
            };
            let len = header.buffer_len() + arp.buffer_len();
            let mut out = EthernetFrame::new_unchecked(&mut reply[..len]);
            header.emit(&mut out);
            arp.emit(&mut ArpPacket::new_unchecked(out.payload_mut()));
            Some(len)
        }
        EthernetProtocol::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                fail("ipv4 packet");
            };
            if ip.dst_addr() != COLLECTOR_IP || ip.next_header() != IpProtocol::Udp {
                return None;
            }
            let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
                fail("udp packet");
            };
            if udp.dst_port() != 8125 {
                return None;
            }
            on_datagram(udp.payload());
            None
        }
        _ => None,
    }
}

/// The far end of the wire, at [`COLLECTOR_IP`]: takes the device's frames,
/// answers ARP, and hands each UDP datagram to port 8125 to `on_datagram`.
/// Frame by frame: a second IP stack would not fit the micro:bit's 16 KiB
/// of RAM next to the first.
pub async fn far_end<const MTU: usize>(
    mut tx: ch::TxRunner<'static, MTU>,
    mut rx: ch::RxRunner<'static, MTU>,
    mut on_datagram: impl FnMut(&[u8]),
) -> ! {
    let mut reply = [0u8; 64];
    loop {
        let frame = tx.tx_buf().await;
        let answer = answer(frame, &mut reply, &mut on_datagram);
        tx.tx_done();
        if let Some(len) = answer {
            let into = rx.rx_buf().await;
            into[..len].copy_from_slice(&reply[..len]);
            rx.rx_done(len);
        }
    }
}
