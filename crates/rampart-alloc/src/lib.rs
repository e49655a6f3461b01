//! The process's allocator, [`MiMalloc`], and [`release_free_memory`].
//!
//! mimalloc keeps the pages it has freed for a while (a second, by default) before it returns
//! them to the operating system, and it does so only when the thread that freed them calls
//! into the allocator again. Start-up frees a few megabytes (the OpenAPI document is built and
//! rendered, the configuration parsed, migrations read) on the thread that then only waits for
//! a shutdown signal, so without a nudge they stay resident for the process's life.

pub use mimalloc::MiMalloc;

/// Returns to the operating system the memory this thread's heap has freed (and any the
/// exited threads left behind). Cheap (a walk of the heap's pages); call it on the thread that
/// did a burst of work and now goes quiet, such as the main thread after start-up.
#[allow(unsafe_code)]
pub fn release_free_memory() {
    // SAFETY: `mi_collect` has no preconditions: it may be called from any thread at any time;
    // it only frees memory the allocator itself has marked as free.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn releasing_is_safe_to_call_at_any_time() {
        let garbage: Vec<Vec<u8>> = (0..1000).map(|i| vec![0u8; 1024 + i]).collect();
        drop(garbage);
        super::release_free_memory();
        super::release_free_memory();
        let still_works = vec![1u8; 4096];
        assert_eq!(still_works.iter().map(|&b| usize::from(b)).sum::<usize>(), 4096);
    }
}
