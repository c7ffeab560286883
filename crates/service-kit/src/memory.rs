//! How a Kurz process takes memory from the kernel.

/// Turns transparent huge pages off for this process, as Redis does for itself.
///
/// mimalloc asks for huge pages on its arenas wherever the kernel allows it (`madvise` mode, the
/// default of most distributions), so each first touch of fresh memory faults in and zeroes 2 MiB.
/// A projector's batches are exactly such memory: on a 10^6-event rebuild the process zeroed
/// several times its peak memory and spent more CPU time in the kernel than folding the events
/// (BENCHMARKS.md, "The projector's CPU: huge pages off"). Small pages fault in only what is
/// touched.
pub fn prefer_small_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(%error, "transparent huge pages stay as the kernel has them");
    }
}
