//! Shared pieces of the QEMU firmware: reporting through semihosting,
//! exiting with a status QEMU passes on, and the network stack on an
//! in-memory Ethernet link.

#![no_std]

use cortex_m_semihosting::{debug, hprintln};
use embassy_net::{Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_driver_channel as ch;
use embassy_net_driver_channel::driver::{HardwareAddress, LinkState};

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
