//! Means and percentile-bootstrap confidence intervals.
//!
//! The interval of a cell (one model, one metric) is computed exactly so,
//! so that anyone can recompute it:
//!
//! 1. The values `x[0..n]` are the cell's scored items in input order
//!    (failures excluded). With `n = 0` there is no mean and no interval.
//! 2. A [`SplitMix64`] generator is started from the report's seed
//!    ([`DEFAULT_SEED`] unless set); every cell starts afresh from the same
//!    seed, so a cell's interval does not depend on which other cells exist.
//! 3. For each of `B` resamples ([`DEFAULT_RESAMPLES`] = 2000 unless set),
//!    `n` indices are drawn one after another, each as
//!    `(next_u64() as u128 * n as u128) >> 64`, and the resample mean is the
//!    sum of `x[index]` in draw order divided by `n`.
//! 4. The `B` resample means are sorted ascending and the bounds are their
//!    quantiles at `p = 0.025` and `p = 0.975`, by linear interpolation
//!    between order statistics (Hyndman and Fan type 7, the default of R and
//!    NumPy): with `h = (B - 1) * p`, the quantile is
//!    `m[floor h] + (h - floor h) * (m[floor h + 1] - m[floor h])`.

/// Resamples per interval unless the report's options say otherwise.
pub const DEFAULT_RESAMPLES: usize = 2000;

/// The generator's seed unless the report's options say otherwise
/// (the bytes of `"lem-boot"`).
pub const DEFAULT_SEED: u64 = 0x6c65_6d2d_626f_6f74;

/// Lower quantile of a 95% interval.
pub const LOWER: f64 = 0.025;
/// Upper quantile of a 95% interval.
pub const UPPER: f64 = 0.975;

/// Sebastiano Vigna's splitmix64: a tiny, well-known generator whose whole
/// state is one `u64`, enough for resampling and easy to reimplement.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An index in `0..n` (`n > 0`) by Lemire's multiply-shift.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The arithmetic mean, summed in order; `None` for no values.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// The quantile `p` of ascending `sorted` values (type 7); `None` when empty.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * p.clamp(0.0, 1.0);
    let lo = (h.floor() as usize).min(last);
    let hi = (lo + 1).min(last);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// The 95% percentile-bootstrap interval of the mean of `values`, by the
/// procedure in this module's documentation; `None` for no values or no
/// resamples.
pub fn bootstrap_ci(values: &[f64], resamples: usize, seed: u64) -> Option<(f64, f64)> {
    let n = values.len();
    if n == 0 || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    Some((
        quantile_sorted(&means, LOWER)?,
        quantile_sorted(&means, UPPER)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The published splitmix64 sequence for seed 1234567 (Rosetta Code,
        // "Pseudo-random numbers/Splitmix64").
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
        assert_eq!(rng.next_u64(), 9817491932198370423);
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix64::new(7);
        for n in 1..50 {
            for _ in 0..100 {
                assert!(rng.below(n) < n);
            }
        }
    }

    #[test]
    fn quantiles_interpolate_linearly() {
        let m = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&m, 0.0), Some(0.0));
        assert_eq!(quantile_sorted(&m, 1.0), Some(4.0));
        assert_eq!(quantile_sorted(&m, 0.5), Some(2.0));
        assert!((quantile_sorted(&m, 0.3).unwrap() - 1.2).abs() < 1e-12);
        assert_eq!(quantile_sorted(&[5.0], 0.975), Some(5.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }

    #[test]
    fn equal_values_give_a_point_interval() {
        let v = [0.7; 9];
        let m = mean(&v).unwrap();
        assert_eq!(bootstrap_ci(&v, 500, 1), Some((m, m)));
    }

    #[test]
    fn interval_brackets_the_mean_and_is_deterministic() {
        let v: Vec<f64> = (0..40).map(|i| ((i * 37) % 11) as f64).collect();
        let m = mean(&v).unwrap();
        let (lo, hi) = bootstrap_ci(&v, DEFAULT_RESAMPLES, DEFAULT_SEED).unwrap();
        assert!(lo < m && m < hi, "{lo} {m} {hi}");
        assert_eq!(
            bootstrap_ci(&v, DEFAULT_RESAMPLES, DEFAULT_SEED),
            Some((lo, hi))
        );
        assert_ne!(bootstrap_ci(&v, DEFAULT_RESAMPLES, 99), Some((lo, hi)));
    }

    #[test]
    fn no_values_no_interval() {
        assert_eq!(mean(&[]), None);
        assert_eq!(bootstrap_ci(&[], 10, 1), None);
        assert_eq!(bootstrap_ci(&[1.0], 0, 1), None);
    }
}
