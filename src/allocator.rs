//! Tuning of mimalloc, the global allocator, for a long-running proxy's memory. The only module
//! that may use `unsafe` (the workspace denies it): mimalloc's option setter is a C function.
#![allow(unsafe_code)]

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (libmimalloc-sys names only some of
/// its options); checked against the option's known default by the test below.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Milliseconds mimalloc waits before handing freed pages back to the kernel: none. With
/// mimalloc 3's default (1000 ms), or 10 ms, pages freed under a steady load of short requests
/// were rarely returned, and the router's RSS at c=64 rose 53 → 71 MiB in 5 minutes (10 ms:
/// 51 → 67 MiB in 3); with 0 it went 44 → 56 MiB. The README's performance section has the
/// figures and the throughput measured side by side.
const PURGE_DELAY_MS: std::ffi::c_long = 0;

/// Sets the purge delay unless `MIMALLOC_PURGE_DELAY` is set (mimalloc reads that itself, and a
/// user's own choice wins). Called first thing in `main`, before any thread starts.
pub fn return_freed_memory_sooner() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set takes an option index and a value and only stores the value; the
    // index is a valid option (see the test), and no other thread exists yet.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_index_is_mimallocs_purge_delay() {
        // SAFETY: reads and writes one option of this test process's allocator.
        let (default, set) = unsafe {
            let default = libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY);
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
            (
                default,
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
            )
        };
        // 1000 ms is mimalloc 3's documented default for purge_delay and no neighbouring option's.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(
                default, 1000,
                "the index names another option: check mimalloc.h"
            );
        }
        assert_eq!(set, PURGE_DELAY_MS);
    }
}
