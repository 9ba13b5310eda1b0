//! Writes `memory.x` for the emulated board of the target: the micro:bit
//! (Cortex-M0) has 16 KiB of RAM, the others 64 KiB are used.
//! `FIRMWARE_RAM` (for example `64K`) overrides it for builds that are
//! measured rather than run.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target = env::var("TARGET").unwrap_or_default();
    let ram = env::var("FIRMWARE_RAM").unwrap_or_else(|_| {
        if target.starts_with("thumbv6m") {
            "16K"
        } else {
            "64K"
        }
        .to_string()
    });
    let memory = format!(
        "MEMORY\n{{\n  FLASH : ORIGIN = 0x00000000, LENGTH = 256K\n  RAM : ORIGIN = 0x20000000, LENGTH = {ram}\n}}\n"
    );
    fs::write(out.join("memory.x"), memory).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FIRMWARE_RAM");
}
