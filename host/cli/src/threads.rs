//! The CPU thread count of local models, chosen once in `main` before any
//! other thread exists.
//!
//! candle sizes its CPU work by `RAYON_NUM_THREADS`, and the environment may
//! only be written while the process has one thread; so `main` calls [`set`]
//! first, with the command's `--threads`, and everything after only reads
//! [`count`].

use std::sync::OnceLock;

static COUNT: OnceLock<usize> = OnceLock::new();

/// Fixes the thread count: `flag`, else `RAYON_NUM_THREADS` if set, else
/// [`idle_cores`].
///
/// # Safety
///
/// No other thread may exist yet (it could be reading the environment).
pub unsafe fn set(flag: Option<usize>) {
    let from_env = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0);
    let n = flag.or(from_env).unwrap_or_else(idle_cores).max(1);
    if from_env != Some(n) {
        // SAFETY: the caller promises this is the only thread.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    let _ = COUNT.set(n);
}

/// The thread count `main` fixed ([`idle_cores`] if it fixed none).
pub fn count() -> usize {
    *COUNT.get_or_init(idle_cores)
}

/// The cores not already busy: all cores minus the 1-minute load average.
///
/// candle's CPU thread pool waits at its barriers by spinning. When another
/// process holds one of the cores, a spinning thread burns its time slice
/// waiting for a peer that is not running, and 2 threads decode at a third of
/// the speed of 1. Using only the idle cores avoids that.
pub fn idle_cores() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .next()
                .and_then(|l| l.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    (cores as f64 - load).round().clamp(1.0, cores as f64) as usize
}
