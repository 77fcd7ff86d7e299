//! Cache prefetch hints for the per-packet path, where it waits on memory: the capture bytes a
//! little ahead of the parser (mapped file pages are read from memory, not from a cache) and
//! the record of the stream the next RTP packet is predicted to belong to.
//!
//! Here (not where they are used) because `capture` is the crate's only module allowed to use
//! `unsafe`. A hint must stay a hint: a prefetch never faults (not even for an address that is
//! not mapped) and reads nothing into the program; no result may depend on whether it was
//! taken. (Huge pages for the stream table were tried too: slower, the faults of 2 MiB pages
//! cost more than the TLB misses they saved.)

/// Bytes of one cache line (x86_64).
pub const LINE: usize = 64;

/// Asks the CPU to load `lines` cache lines from the one holding `start` into its caches.
/// `lines` is meant to be a constant after inlining (the loop then unrolls) or small.
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch_lines(start: *const u8, lines: usize) {
    #[cfg(target_arch = "x86_64")]
    for i in 0..lines {
        // SAFETY: a prefetch is not a memory access: it cannot fault and reads nothing into
        // the program, whatever the address; `sse` is part of the x86_64 baseline.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                start.wrapping_add(i * LINE).cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, lines);
}
