//! How far ahead the kernels should prefetch the weight on this CPU,
//! measured here rather than taken from the one machine the default was
//! chosen on.
//!
//! Decoding reads every weight once per token, so a decoded token takes as
//! long as the cores take to pull the weights from memory. Asking for the
//! weight bytes some distance ahead of the block being read lifts that rate
//! above what the hardware prefetchers fetch alone; how far ahead is best,
//! and whether it helps at all, is a property of the CPU's memory system,
//! so it differs by vendor and generation (see
//! [`DEFAULT_PREFETCH_BYTES`](crate::q8_0::DEFAULT_PREFETCH_BYTES)).
//!
//! [`calibrate`] times the decode case itself, the Q8_0 product of one
//! input row, over a weight larger than the caches, at every distance in
//! [`CANDIDATES`]. The distances take turns, round after round, so a drift
//! in the machine's speed while it runs falls on all of them alike, and
//! each distance's rate is the median of its rounds. [`choose`] keeps the
//! default unless another distance is clearly faster. The caller caches the
//! choice (the engine keeps it in `LEM_HOME`, keyed by CPU model): a
//! calibration takes about a second.

use crate::q8_0::{self, DEFAULT_PREFETCH_BYTES, Kernel};
use std::time::{Duration, Instant};

/// The prefetch distances [`calibrate`] tries, in bytes; 0 is none.
pub const CANDIDATES: [usize; 8] = [0, 1024, 2048, 3072, 4096, 6144, 8192, 16384];

/// A distance wins over the default only if it is this much faster (the
/// rounds' medians still carry a few percent of noise).
pub const MARGIN: f64 = 0.03;

/// How a calibration measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Bytes of the synthetic weight streamed per round and distance: more
    /// than the last-level cache, so it streams from memory as a model's
    /// weights do.
    pub weight_bytes: usize,
    /// Rounds; each distance's rate is its rounds' median.
    pub rounds: usize,
    /// Threads sharing the weight's rows, as decoding shares them.
    pub threads: usize,
}

impl Plan {
    /// A weight of 1.5× the last-level cache this system reports (at least
    /// 256 MB, at most 1 GB), three rounds, `threads` threads.
    pub fn for_this_machine(threads: usize) -> Plan {
        let cache = last_level_cache_bytes().unwrap_or(0);
        Plan {
            weight_bytes: (cache + cache / 2).clamp(256 << 20, 1 << 30),
            rounds: 3,
            threads: threads.max(1),
        }
    }
}

/// One distance's measured rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Bytes ahead of the block being read; 0: no prefetching.
    pub prefetch_bytes: usize,
    /// Weight bytes per second through the decode product, in GB/s (the
    /// median round).
    pub gb_s: f64,
}

/// The weight's width: a Gemma 3 270M-sized row is 640, a Qwen2.5 1.5B's
/// 1536; the rate hardly depends on it once a row is a few blocks.
const WIDTH: usize = 1024;

/// The rate of `kernel`'s Q8_0 decode product at each of [`CANDIDATES`],
/// in that order.
pub fn calibrate(kernel: Kernel, plan: &Plan) -> Vec<Rate> {
    let row_bytes = WIDTH / q8_0::BLOCK * q8_0::BLOCK_BYTES;
    let n = (plan.weight_bytes / row_bytes).max(4);
    // Every byte 0x11: scales are a small f16, values 17. Filling it also
    // maps every page before the clock starts.
    let weight = vec![0x11u8; n * row_bytes];
    let input = q8_0::Input::new(&[0.5f32; WIDTH], WIDTH);
    let mut times = vec![Vec::with_capacity(plan.rounds); CANDIDATES.len()];
    // One round unrecorded, so the first distance does not pay for a cold
    // start the others do not.
    stream(kernel, &weight, n, &input, plan.threads);
    for _ in 0..plan.rounds.max(1) {
        for (times, &ahead) in times.iter_mut().zip(&CANDIDATES) {
            let kernel = kernel.with_prefetch(ahead);
            times.push(stream(kernel, &weight, n, &input, plan.threads));
        }
    }
    CANDIDATES
        .iter()
        .zip(times)
        .map(|(&prefetch_bytes, mut times)| {
            times.sort();
            let median = times[times.len() / 2].as_secs_f64().max(1e-9);
            Rate {
                prefetch_bytes,
                gb_s: weight.len() as f64 / median / 1e9,
            }
        })
        .collect()
}

/// The distance to use: the fastest measured, unless the default is within
/// [`MARGIN`] of it (or was not measured at all and nothing is faster).
pub fn choose(rates: &[Rate]) -> usize {
    let Some(best) = rates
        .iter()
        .filter(|r| r.gb_s.is_finite())
        .max_by(|a, b| a.gb_s.total_cmp(&b.gb_s))
    else {
        return DEFAULT_PREFETCH_BYTES;
    };
    match rates
        .iter()
        .find(|r| r.prefetch_bytes == DEFAULT_PREFETCH_BYTES)
    {
        Some(default) if default.gb_s >= best.gb_s * (1.0 - MARGIN) => DEFAULT_PREFETCH_BYTES,
        _ => best.prefetch_bytes,
    }
}

/// One pass of the decode product over every row of `weight`, its quads
/// shared out in contiguous runs over `threads` threads; how long it took.
fn stream(kernel: Kernel, weight: &[u8], n: usize, x: &q8_0::Input, threads: usize) -> Duration {
    let quads = q8_0::quads(n);
    let per_thread = quads.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let range = (t * per_thread).min(quads)..((t + 1) * per_thread).min(quads);
            s.spawn(move || {
                let mut sum = 0f32;
                for q in range {
                    q8_0::quad(kernel, weight, n, q, x, |_, _, v| sum += v);
                }
                std::hint::black_box(sum);
            });
        }
    });
    start.elapsed()
}

/// The size of the largest cache Linux reports for CPU 0, if it does.
fn last_level_cache_bytes() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("size")).ok())
        .filter_map(|size| parse_cache_size(size.trim()))
        .max()
}

/// `"260M"`, `"48K"` or `"1024"` (bytes) as bytes.
fn parse_cache_size(s: &str) -> Option<usize> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let n: usize = digits.parse().ok()?;
    match unit {
        "" => Some(n),
        "K" => Some(n << 10),
        "M" => Some(n << 20),
        "G" => Some(n << 30),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_every_candidate() {
        let plan = Plan {
            weight_bytes: 1 << 20,
            rounds: 3,
            threads: 2,
        };
        let rates = calibrate(Kernel::best(), &plan);
        let distances: Vec<_> = rates.iter().map(|r| r.prefetch_bytes).collect();
        assert_eq!(distances, CANDIDATES);
        for r in &rates {
            assert!(r.gb_s.is_finite() && r.gb_s > 0.0, "{r:?}");
        }
        assert!(CANDIDATES.contains(&choose(&rates)));
    }

    fn rates(gb_s: [f64; 8]) -> Vec<Rate> {
        CANDIDATES
            .iter()
            .zip(gb_s)
            .map(|(&prefetch_bytes, gb_s)| Rate {
                prefetch_bytes,
                gb_s,
            })
            .collect()
    }

    #[test]
    fn keeps_the_default_unless_another_distance_is_clearly_faster() {
        // The default (3 KB, fourth) within 3% of the fastest: kept.
        let near = [10.0, 10.0, 10.0, 10.0, 10.2, 9.0, 9.0, 9.0];
        assert_eq!(choose(&rates(near)), 3072);
        // No prefetching 20% faster (as a CPU whose own prefetchers do
        // better would measure): chosen.
        let none = [12.0, 10.0, 10.0, 10.0, 10.0, 9.0, 9.0, 9.0];
        assert_eq!(choose(&rates(none)), 0);
        // Farther ahead clearly faster (as this project's Sapphire Rapids
        // Xeon measures, streaming from memory): the fastest is chosen.
        let farther = [5.2, 5.1, 5.6, 7.6, 9.9, 10.4, 9.8, 9.7];
        assert_eq!(choose(&rates(farther)), 6144);
        // Nothing measured: the default.
        assert_eq!(choose(&[]), DEFAULT_PREFETCH_BYTES);
        assert_eq!(
            choose(&rates([f64::NAN; 8])),
            DEFAULT_PREFETCH_BYTES,
            "no finite rate"
        );
    }

    #[test]
    fn sizes_the_weight_past_the_last_level_cache() {
        assert_eq!(parse_cache_size("260M"), Some(260 << 20));
        assert_eq!(parse_cache_size("48K"), Some(48 << 10));
        assert_eq!(parse_cache_size("1024"), Some(1024));
        assert_eq!(parse_cache_size("1.5M"), None);
        let plan = Plan::for_this_machine(0);
        assert_eq!(plan.threads, 1);
        assert!((256 << 20..=1 << 30).contains(&plan.weight_bytes));
    }
}
