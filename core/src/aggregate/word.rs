//! Aggregation storage: the 64-bit [`Word`] (a native atomic, or a value
//! behind a critical section where the target has none) and the storage
//! types that hold them ([`Words`]).

#[cfg(any(loom, target_has_atomic = "64"))]
use crate::sync::{AtomicU64, Ordering};
use core::fmt;

/// One 64-bit cell of aggregation storage: a native 64-bit atomic where
/// the target has one, otherwise a value behind a critical section (the
/// `critical-section` crate; the firmware provides the implementation,
/// which on a single core just masks interrupts for the two 32-bit
/// accesses).
pub struct Word(Cell64);

impl Default for Word {
    fn default() -> Self {
        Word::new()
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Word({:#x})", self.load())
    }
}

#[cfg(any(loom, target_has_atomic = "64"))]
pub(super) type Cell64 = AtomicU64;
#[cfg(not(any(loom, target_has_atomic = "64")))]
pub(super) type Cell64 = critical_section::Mutex<core::cell::Cell<u64>>;

impl Word {
    /// A zeroed word (usable in a `static` array).
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        #[cfg(target_has_atomic = "64")]
        return Word(AtomicU64::new(0));
        #[cfg(not(target_has_atomic = "64"))]
        return Word(critical_section::Mutex::new(core::cell::Cell::new(0)));
    }

    /// A zeroed word.
    #[cfg(loom)]
    pub fn new() -> Self {
        Word(AtomicU64::new(0))
    }
}

#[cfg(all(any(feature = "alloc", test), target_has_atomic = "64", not(loom)))]
impl Word {
    /// `n` zeroed words on the heap, from zeroed memory: a large table
    /// costs resident memory only as its words are used (the allocator
    /// maps fresh zero pages for big requests), not when it is made.
    /// `None` when `n` words cannot be addressed.
    pub fn zeroed(n: usize) -> Option<alloc::boxed::Box<[Word]>> {
        if n == 0 {
            return Some(alloc::boxed::Box::new([]));
        }
        let layout = core::alloc::Layout::array::<Word>(n).ok()?;
        // SAFETY: `layout` has a non-zero size (n > 0 words of 8 bytes).
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) }.cast::<Word>();
        if ptr.is_null() {
            alloc::alloc::handle_alloc_error(layout);
        }
        let slice = core::ptr::slice_from_raw_parts_mut(ptr, n);
        // SAFETY: `ptr` is a live allocation of `layout`, which is the
        // layout of `[Word; n]`, made by the global allocator as `Box`
        // expects; its bytes are zero, and a `Word` here is a
        // `portable_atomic::AtomicU64` with the native 64-bit atomic inside,
        // whose representation is a `u64`'s: all-zero bytes are the valid
        // value 0.
        Some(unsafe { alloc::boxed::Box::from_raw(slice) })
    }
}

#[cfg(any(loom, target_has_atomic = "64"))]
impl Word {
    #[inline]
    pub(super) fn load(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn store(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn load_acquire(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    #[inline]
    pub(super) fn store_release(&self, v: u64) {
        self.0.store(v, Ordering::Release)
    }

    #[inline]
    pub(super) fn fetch_add(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }

    #[inline]
    pub(super) fn swap_release(&self, v: u64) {
        self.0.swap(v, Ordering::Release);
    }

    /// Replaces `current` with `new`; `Err` with the value found instead.
    /// Acquire and Release, so a pointer published this way is seen
    /// with what it points to.
    #[inline]
    pub(super) fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        self.0
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
    }

    /// Applies `f` until it returns `None` or the swap succeeds.
    #[inline]
    pub(super) fn update(&self, f: impl FnMut(u64) -> Option<u64>) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, f);
    }
}

#[cfg(not(any(loom, target_has_atomic = "64")))]
impl Word {
    // A critical section orders everything around it, so the orderings
    // asked for are all met.
    #[inline]
    pub(super) fn load(&self) -> u64 {
        critical_section::with(|cs| self.0.borrow(cs).get())
    }

    #[inline]
    pub(super) fn store(&self, v: u64) {
        critical_section::with(|cs| self.0.borrow(cs).set(v))
    }

    #[inline]
    pub(super) fn load_acquire(&self) -> u64 {
        self.load()
    }

    #[inline]
    pub(super) fn store_release(&self, v: u64) {
        self.store(v)
    }

    #[inline]
    pub(super) fn fetch_add(&self, v: u64) {
        critical_section::with(|cs| {
            let cell = self.0.borrow(cs);
            cell.set(cell.get().wrapping_add(v));
        })
    }

    #[inline]
    pub(super) fn swap_release(&self, v: u64) {
        self.store(v)
    }

    #[inline]
    pub(super) fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        critical_section::with(|cs| {
            let cell = self.0.borrow(cs);
            let found = cell.get();
            if found == current {
                cell.set(new);
                Ok(found)
            } else {
                Err(found)
            }
        })
    }

    #[inline]
    pub(super) fn update(&self, mut f: impl FnMut(u64) -> Option<u64>) {
        critical_section::with(|cs| {
            let cell = self.0.borrow(cs);
            if let Some(new) = f(cell.get()) {
                cell.set(new);
            }
        })
    }
}

pub(super) mod sealed {
    pub trait Sealed {}
}

/// Storage for [`Aggregates`](super::Aggregates): an array, a `&mut` slice or (with `alloc`)
/// a boxed slice of [`Word`]s.
pub trait Words: sealed::Sealed {
    /// The words.
    fn words(&self) -> &[Word];
}

impl<const N: usize> sealed::Sealed for [Word; N] {}
impl<const N: usize> Words for [Word; N] {
    fn words(&self) -> &[Word] {
        self
    }
}

impl sealed::Sealed for &mut [Word] {}
impl Words for &mut [Word] {
    fn words(&self) -> &[Word] {
        self
    }
}

#[cfg(any(feature = "alloc", test))]
impl sealed::Sealed for alloc::boxed::Box<[Word]> {}
#[cfg(any(feature = "alloc", test))]
impl Words for alloc::boxed::Box<[Word]> {
    fn words(&self) -> &[Word] {
        self
    }
}
