//! Where a ring's slots live ([`Storage`], sealed) and the length they
//! must have ([`CapacityError`]).

use super::slot::Slot;
use core::fmt;

mod sealed {
    pub trait Sealed {}
}

/// Memory a ring keeps its slots in: an array (for a `static` or a local), a
/// caller-owned `&mut [Slot<T>]` (for instance from a `StaticCell`), or, with
/// the `alloc` feature, a `Box<[Slot<T>]>` sized at run time.
///
/// Sealed: the ring relies on the slice never changing length.
pub trait Storage<T>: sealed::Sealed {
    /// The slots.
    fn slots(&self) -> &[Slot<T>];
}

impl<T, const N: usize> sealed::Sealed for [Slot<T>; N] {}
impl<T, const N: usize> Storage<T> for [Slot<T>; N] {
    fn slots(&self) -> &[Slot<T>] {
        self
    }
}

impl<T> sealed::Sealed for &mut [Slot<T>] {}
impl<T> Storage<T> for &mut [Slot<T>] {
    fn slots(&self) -> &[Slot<T>] {
        self
    }
}

#[cfg(feature = "alloc")]
impl<T> sealed::Sealed for alloc::boxed::Box<[Slot<T>]> {}
#[cfg(feature = "alloc")]
impl<T> Storage<T> for alloc::boxed::Box<[Slot<T>]> {
    fn slots(&self) -> &[Slot<T>] {
        self
    }
}

/// The storage given to [`Ring::with_storage`] has an unusable length.
///
/// [`Ring::with_storage`]: super::Ring::with_storage
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CapacityError {
    /// The length that was given.
    pub len: usize,
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ring capacity must be a power of two and at least 2, got {}",
            self.len
        )
    }
}

impl core::error::Error for CapacityError {}
