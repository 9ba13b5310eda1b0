//! The atomics and cells the rings are built on.
//!
//! Normal builds use `portable-atomic` (native instructions where the target
//! has them, the `critical-section` crate where it lacks compare-and-swap).
//! Under `--cfg loom` the same names come from loom, so the model tests in
//! `tests/loom.rs` explore every interleaving of the real ring code.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(all(not(loom), target_has_atomic = "64"))]
pub(crate) use portable_atomic::AtomicU64;
#[cfg(not(loom))]
pub(crate) use portable_atomic::{AtomicBool, AtomicU32, AtomicUsize};

pub(crate) use core::sync::atomic::Ordering;
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::fence;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` with loom's closure-based access API, so the ring
/// code is identical under loom and in normal builds.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Pads and aligns a value to the length of a cache line, so that the
/// producer and consumer indices never share one (false sharing).
///
/// 128 bytes on x86_64 and aarch64: since Sandy Bridge the spatial prefetcher
/// pulls 64-byte lines in pairs, and Apple/Neoverse cores have 128-byte lines.
/// 32 bytes on 32-bit ARM and MIPS, 64 elsewhere (the values crossbeam uses).
/// No padding on bare metal (`target_os = "none"`): microcontrollers have one
/// core or no data cache, and every byte of RAM counts.
#[cfg_attr(
    all(
        not(target_os = "none"),
        any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "powerpc64"
        )
    ),
    repr(align(128))
)]
#[cfg_attr(
    all(
        not(target_os = "none"),
        any(target_arch = "arm", target_arch = "mips", target_arch = "mips64")
    ),
    repr(align(32))
)]
#[cfg_attr(
    all(
        not(target_os = "none"),
        not(any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "powerpc64",
            target_arch = "arm",
            target_arch = "mips",
            target_arch = "mips64"
        ))
    ),
    repr(align(64))
)]
#[derive(Debug, Default)]
pub struct CachePadded<T>(pub T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
