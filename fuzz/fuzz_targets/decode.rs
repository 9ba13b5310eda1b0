//! The decoder is total: any bytes give events or an error, never a panic,
//! and never more events than the header announced.
//!
//! `cargo +nightly fuzz run decode` (from `fuzz/`). Each input is decoded as
//! it is, and again with its last four bytes replaced by a valid CRC, so the
//! fuzzer reaches the parser behind the checksum.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stats_core::wire::{CRC_LEN, crc32, decode};

fn check(bytes: &[u8]) {
    if let Ok(datagram) = decode(bytes) {
        let announced = usize::from(datagram.header.event_count);
        let mut seen = 0;
        for event in datagram.events() {
            seen += 1;
            if let Ok(event) = event {
                for (k, v) in event.tags() {
                    assert!(k.len() <= 255 && v.len() <= 255);
                }
            }
        }
        // Every announced event, plus at most one trailing error.
        assert!(seen <= announced + 1);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= CRC_LEN {
        let mut fixed = data.to_vec();
        let body = fixed.len() - CRC_LEN;
        let crc = crc32(&fixed[..body]);
        fixed[body..].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});
