//! CRC-32/ISO-HDLC (the zlib and Ethernet CRC: polynomial 0x04C11DB7,
//! reflected, initial value and final XOR 0xFFFFFFFF; check value
//! 0xCBF43926 for "123456789").
//!
//! With the `std` feature this is `crc32fast` (PCLMULQDQ / ARMv8 CRC
//! instructions picked at run time, about 12.8 GB/s on a 1400-byte datagram);
//! without it, the `crc` crate's byte-at-a-time table: 1 KiB of flash (a
//! 16-way slicing table would be 16 KiB, twice the whole pipeline's flash
//! budget on a microcontroller, for speed a 512-byte datagram there does not
//! need). Both give the same value, and a test holds them to it.

/// The table-driven implementation (used without `std`; tests compare it
/// with `crc32fast`).
#[cfg(any(not(feature = "std"), test))]
const TABLE: crc::Crc<u32, crc::Table<1>> =
    crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32/ISO-HDLC of `bytes`.
#[inline]
pub fn crc32(bytes: &[u8]) -> u32 {
    #[cfg(feature = "std")]
    {
        crc32fast::hash(bytes)
    }
    #[cfg(not(feature = "std"))]
    {
        TABLE.checksum(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(TABLE.checksum(b"123456789"), 0xCBF4_3926);
    }

    #[cfg(feature = "std")]
    #[test]
    fn crc32fast_and_the_table_agree() {
        let mut data = [0u8; 2048];
        let mut x = 0x1234_5678u32;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        for len in [0, 1, 7, 64, 1400, 2048] {
            assert_eq!(
                crc32fast::hash(&data[..len]),
                TABLE.checksum(&data[..len]),
                "len {len}"
            );
        }
    }
}
