//! Shared pieces of the QEMU firmware: reporting through semihosting and
//! exiting with a status QEMU passes on.

#![no_std]

use cortex_m_semihosting::{debug, hprintln};

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
