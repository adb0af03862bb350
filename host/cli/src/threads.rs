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

/// The cores not already busy: all cores minus those other processes keep
/// busy now, measured over a tenth of a second from `/proc/stat` (the load
/// average would lag by a minute: right after a build it still counts the
/// build's cores as busy).
///
/// candle's CPU thread pool waits at its barriers by spinning. When another
/// process holds one of the cores, a spinning thread burns its time slice
/// waiting for a peer that is not running, and 2 threads decode at a third of
/// the speed of 1. Using only the idle cores avoids that.
pub fn idle_cores() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // (busy, total) jiffies of all CPUs.
    let sample = || -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let total: u64 = fields.iter().sum();
        // idle and iowait are not busy.
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        Some((total - idle, total))
    };
    let Some((busy0, total0)) = sample() else {
        return cores;
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let Some((busy1, total1)) = sample() else {
        return cores;
    };
    let total = total1.saturating_sub(total0).max(1) as f64;
    let busy = busy1.saturating_sub(busy0) as f64 / total * cores as f64;
    (cores as f64 - busy).round().clamp(1.0, cores as f64) as usize
}
