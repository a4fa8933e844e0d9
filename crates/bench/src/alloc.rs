//! A counting global allocator: `System`, plus the number of live heap bytes.
//!
//! The counters are relaxed atomics: one `fetch_add`/`fetch_sub` per allocation, and a
//! `fetch_max` only when a new peak is reached. They cost the same for every implementation a
//! benchmark compares, so they do not bias a ratio. Figures are exact at a quiescent point
//! (no other thread allocating), which is how the scenarios read them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Bytes currently allocated through the global allocator.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Highest value `LIVE` has reached since the last [`reset_peak`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Wraps [`System`] and keeps [`LIVE`] and [`PEAK`] up to date.
pub(crate) struct Counting;

impl Counting {
    fn added(size: usize) {
        let now = LIVE.fetch_add(size, Relaxed) + size;
        if now > PEAK.load(Relaxed) {
            PEAK.fetch_max(now, Relaxed);
        }
    }

    fn removed(size: usize) {
        LIVE.fetch_sub(size, Relaxed);
    }
}

// A global allocator cannot be written without `unsafe`: the trait is unsafe. Every method
// forwards to `System` with the caller's arguments unchanged and only counts the sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Self::added(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Self::added(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        Self::removed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // On failure the old block stays allocated, so nothing changes.
            Self::removed(layout.size());
            Self::added(new_size);
        }
        new
    }
}

/// Bytes currently allocated on the heap by this process.
pub(crate) fn live_heap_bytes() -> usize {
    LIVE.load(Relaxed)
}

/// The highest [`live_heap_bytes`] seen since the last [`reset_peak`].
pub(crate) fn peak_heap_bytes() -> usize {
    PEAK.load(Relaxed)
}

/// Starts a new peak window at the current live size.
pub(crate) fn reset_peak() {
    PEAK.store(LIVE.load(Relaxed), Relaxed);
}
