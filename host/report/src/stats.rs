//! Means, percentile-bootstrap confidence intervals and the paired tests:
//! exact McNemar ([`mcnemar_exact`]), the sign-flip permutation test
//! ([`sign_flip`]), Holm's adjustment ([`holm`]), two one-sided tests of
//! equivalence ([`tost`]) and the smallest detectable difference
//! ([`minimum_detectable`]). Each is written so that it can be recomputed by
//! hand or with any statistics package; the tests below do so on small cases.
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

/// The sample standard deviation (divisor `n − 1`); `None` below two values.
pub fn sd(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let m = mean(values)?;
    let ss: f64 = values.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (n - 1) as f64).sqrt())
}

/// Which way a test looks for a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// The mean differs from 0, either way.
    TwoSided,
    /// The mean is above 0.
    Greater,
    /// The mean is below 0.
    Less,
}

/// Exact McNemar test of a paired 0/1 metric: `up` items went 0 → 1,
/// `down` went 1 → 0 (ties carry no information). Under the null each
/// discordant item is up or down with probability ½, so the two-sided p is
/// `min(1, 2 · P(X ≤ min(up, down)))` with `X ~ Binomial(up + down, ½)`;
/// 1 when there is no discordant item. Terms are summed in log space, so
/// thousands of items do not underflow.
pub fn mcnemar_exact(up: usize, down: usize) -> f64 {
    let n = up + down;
    if n == 0 {
        return 1.0;
    }
    let k_max = up.min(down);
    let mut ln_term = -(n as f64) * std::f64::consts::LN_2; // ln C(n,0)/2^n
    let mut tail = ln_term.exp();
    for k in 1..=k_max {
        ln_term += ((n - k + 1) as f64).ln() - (k as f64).ln();
        tail += ln_term.exp();
    }
    (2.0 * tail).min(1.0)
}

/// Up to this many non-zero differences the sign-flip test enumerates every
/// sign pattern (2^20 ≈ 10^6); above it, it draws [`DEFAULT_PERMUTATIONS`].
pub const EXACT_MAX: usize = 20;

/// Random sign patterns of the Monte Carlo sign-flip test unless the
/// report's options say otherwise.
pub const DEFAULT_PERMUTATIONS: usize = 10_000;

/// How a sign-flip p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignFlip {
    /// The p-value.
    pub p: f64,
    /// Every sign pattern was enumerated (else: Monte Carlo).
    pub exact: bool,
}

/// The paired permutation (sign-flip) test of the mean of differences `d`.
///
/// Under the null hypothesis each difference is as likely to have had the
/// other sign, so the statistic `S = Σ d` is compared with `Σ ±d` over sign
/// patterns. Zeros do not change any sum and are left out. With `m ≤`
/// [`EXACT_MAX`] non-zero differences every one of the `2^m` patterns is
/// enumerated (in Gray-code order, one sign changing per step) and
/// `p = #{patterns at least as extreme} / 2^m`. Otherwise `permutations`
/// patterns are drawn from a [`SplitMix64`] started from `seed` (pattern
/// bit `j` is bit `j mod 64` of a fresh `next_u64()` per 64 differences; a
/// set bit flips the sign) and `p = (1 + #{at least as extreme}) /
/// (1 + permutations)`, which never reports 0. "At least as extreme":
/// `|S*| ≥ |S|` (two-sided), `S* ≥ S` (greater), `S* ≤ S` (less), with a
/// tolerance of 10⁻⁹ · Σ|d| for rounding. No non-zero difference: p = 1.
pub fn sign_flip(d: &[f64], alternative: Alternative, permutations: usize, seed: u64) -> SignFlip {
    sign_flip_with(d, alternative, permutations, seed, EXACT_MAX)
}

/// [`sign_flip`], enumerating only up to `exact_max` non-zero differences
/// (tests compare the Monte Carlo branch with the exact one).
fn sign_flip_with(
    d: &[f64],
    alternative: Alternative,
    permutations: usize,
    seed: u64,
    exact_max: usize,
) -> SignFlip {
    let nz: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
    let m = nz.len();
    if m == 0 {
        return SignFlip {
            p: 1.0,
            exact: true,
        };
    }
    let observed: f64 = nz.iter().sum();
    let tol = 1e-9 * nz.iter().map(|x| x.abs()).sum::<f64>();
    let extreme = |s: f64| match alternative {
        Alternative::TwoSided => s.abs() >= observed.abs() - tol,
        Alternative::Greater => s >= observed - tol,
        Alternative::Less => s <= observed + tol,
    };
    if m <= exact_max {
        // Gray code: pattern g = i ^ (i >> 1); step i flips bit trailing_zeros(i).
        let mut signs = vec![1.0f64; m];
        let mut s = observed;
        let mut count = u64::from(extreme(s));
        for i in 1u64..(1u64 << m) {
            let j = i.trailing_zeros() as usize;
            s -= 2.0 * signs[j] * nz[j];
            signs[j] = -signs[j];
            count += u64::from(extreme(s));
        }
        return SignFlip {
            p: count as f64 / (1u64 << m) as f64,
            exact: true,
        };
    }
    let mut rng = SplitMix64::new(seed);
    let mut count = 0usize;
    for _ in 0..permutations {
        let mut s = 0.0;
        let mut bits = 0u64;
        for (j, x) in nz.iter().enumerate() {
            if j % 64 == 0 {
                bits = rng.next_u64();
            }
            s += if bits >> (j % 64) & 1 == 1 { -x } else { *x };
        }
        count += usize::from(extreme(s));
    }
    SignFlip {
        p: (1 + count) as f64 / (1 + permutations) as f64,
        exact: false,
    }
}

/// Holm's step-down adjustment of a family of p-values, in the input's
/// order: with the p-values sorted ascending as `p(1) ≤ … ≤ p(m)`, the
/// adjusted `p(i)` is `max over j ≤ i of min(1, (m − j + 1) · p(j))`.
/// It controls the chance of any false "difference" across the whole
/// family at α, under any dependence between the tests.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Two one-sided tests (TOST) of equivalence within `±margin` for paired
/// differences `d`: `p = max(p₁, p₂)` where `p₁` tests `mean > −margin`
/// (the sign-flip test, greater, of `d + margin`) and `p₂` tests
/// `mean < +margin` (less, of `d − margin`). Equivalence is shown at α when
/// `p < α`. Same generator and enumeration rule as [`sign_flip`].
pub fn tost(d: &[f64], margin: f64, permutations: usize, seed: u64) -> f64 {
    let up: Vec<f64> = d.iter().map(|x| x + margin).collect();
    let down: Vec<f64> = d.iter().map(|x| x - margin).collect();
    let p1 = sign_flip(&up, Alternative::Greater, permutations, seed).p;
    let p2 = sign_flip(&down, Alternative::Less, permutations, seed).p;
    p1.max(p2)
}

/// The standard normal quantile at 0.975 (two-sided α = 0.05).
pub const Z_975: f64 = 1.959_963_984_540_054;
/// The standard normal quantile at 0.80 (power 80%).
pub const Z_80: f64 = 0.841_621_233_572_914_3;

/// The smallest true mean difference a paired test of `n` items would
/// detect with 80% power at two-sided α = 0.05, given the paired
/// differences' standard deviation `sd`: `(z₀.₉₇₅ + z₀.₈₀) · sd / √n`
/// (the normal approximation; `None` with fewer than two items).
pub fn minimum_detectable(sd: f64, n: usize) -> Option<f64> {
    (n >= 2).then(|| (Z_975 + Z_80) * sd / (n as f64).sqrt())
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

    #[test]
    fn mcnemar_matches_the_binomial_by_hand() {
        // 1 up, 6 down: 2 · (C(7,0) + C(7,1)) / 2^7 = 2 · 8 / 128 = 0.125.
        assert!((mcnemar_exact(1, 6) - 0.125).abs() < 1e-15);
        assert!((mcnemar_exact(6, 1) - 0.125).abs() < 1e-15);
        // 0 up, 5 down: 2 / 32 = 0.0625.
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-15);
        // 2 and 8: 2 · (1 + 10 + 45) / 1024 = 112 / 1024.
        assert!((mcnemar_exact(2, 8) - 112.0 / 1024.0).abs() < 1e-15);
        assert_eq!(mcnemar_exact(3, 3), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Large tables do not underflow to 0 or overflow.
        let p = mcnemar_exact(500, 700);
        assert!(p > 0.0 && p < 1e-6, "{p}");
    }

    /// Every sign pattern, written out as plainly as possible.
    fn brute_sign_flip(d: &[f64], alternative: Alternative) -> f64 {
        let m = d.len();
        let s: f64 = d.iter().sum();
        let mut count = 0;
        for mask in 0..(1u32 << m) {
            let t: f64 = (0..m)
                .map(|j| if mask >> j & 1 == 1 { -d[j] } else { d[j] })
                .sum();
            let hit = match alternative {
                Alternative::TwoSided => t.abs() >= s.abs() - 1e-12,
                Alternative::Greater => t >= s - 1e-12,
                Alternative::Less => t <= s + 1e-12,
            };
            count += usize::from(hit);
        }
        count as f64 / (1u64 << m) as f64
    }

    #[test]
    fn sign_flip_enumerates_a_tiny_sample_exactly() {
        // d = [1, 2, 3]: sums over the 8 patterns are ±1±2±3 =
        // 6, 4, 2, 0, 0, −2, −4, −6; |S*| ≥ 6 for 2 of 8 → p = 0.25.
        let d = [1.0, 2.0, 3.0];
        let t = sign_flip(&d, Alternative::TwoSided, 0, 1);
        assert_eq!(
            t,
            SignFlip {
                p: 0.25,
                exact: true
            }
        );
        assert_eq!(sign_flip(&d, Alternative::Greater, 0, 1).p, 0.125);
        assert_eq!(sign_flip(&d, Alternative::Less, 0, 1).p, 1.0);
        // Zeros are left out: same as above.
        assert_eq!(
            sign_flip(&[0.0, 1.0, 0.0, 2.0, 3.0], Alternative::TwoSided, 0, 1).p,
            0.25
        );
        // Larger samples against the enumeration written out above.
        for d in [
            vec![2.0, -1.0, 1.0, 1.0],
            vec![0.5, 1.5, -0.25, 3.0, 2.0, -1.0],
            vec![-3.0, -1.0, -2.0, 0.5],
        ] {
            for alt in [
                Alternative::TwoSided,
                Alternative::Greater,
                Alternative::Less,
            ] {
                let got = sign_flip(&d, alt, 0, 1);
                assert!(got.exact);
                assert!(
                    (got.p - brute_sign_flip(&d, alt)).abs() < 1e-15,
                    "{d:?} {alt:?}"
                );
            }
        }
        assert_eq!(sign_flip(&[0.0, 0.0], Alternative::TwoSided, 0, 1).p, 1.0);
    }

    #[test]
    fn sign_flip_on_0_1_differences_is_mcnemar() {
        // 2 items 0→1, 8 items 1→0, 5 ties.
        let mut d = vec![1.0, 1.0];
        d.extend([-1.0; 8]);
        d.extend([0.0; 5]);
        let p = sign_flip(&d, Alternative::TwoSided, 0, 1).p;
        assert!((p - mcnemar_exact(2, 8)).abs() < 1e-15);
    }

    #[test]
    fn sign_flip_monte_carlo_above_the_exact_limit() {
        // 30 differences of +1: exact p would be 2 / 2^30; the Monte Carlo
        // estimate with 999 draws is (1 + hits) / 1000, almost surely 0.001.
        let d = [1.0; 30];
        let t = sign_flip(&d, Alternative::TwoSided, 999, DEFAULT_SEED);
        assert!(!t.exact);
        assert_eq!(t.p, 0.001);
        // Symmetric noise: a large p, reproducible from the seed.
        let d: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let a = sign_flip(&d, Alternative::TwoSided, 2000, 7);
        assert!(a.p > 0.5, "{a:?}");
        assert_eq!(a, sign_flip(&d, Alternative::TwoSided, 2000, 7));
    }

    #[test]
    fn monte_carlo_agrees_with_the_enumeration() {
        // 14 differences: the exact p against 10,000 random patterns; the
        // Monte Carlo standard error is at most 0.005.
        let d = [
            0.5, 1.0, -0.25, 2.0, 1.5, -1.0, 0.75, 0.5, -0.5, 1.25, 0.25, -2.0, 1.0, 0.5,
        ];
        for alt in [
            Alternative::TwoSided,
            Alternative::Greater,
            Alternative::Less,
        ] {
            let exact = sign_flip(&d, alt, 0, 1);
            let mc = sign_flip_with(&d, alt, DEFAULT_PERMUTATIONS, DEFAULT_SEED, 0);
            assert!(exact.exact && !mc.exact);
            assert!((exact.p - mc.p).abs() < 0.02, "{alt:?}: {exact:?} {mc:?}");
        }
    }

    #[test]
    fn holm_by_hand() {
        // Sorted: 0.01 (×4 = 0.04), 0.02 (×3 = 0.06), 0.03 (×2 = 0.06),
        // 0.5 (×1 = 0.5); returned in input order.
        let adj = holm(&[0.03, 0.5, 0.01, 0.02]);
        let want = [0.06, 0.5, 0.04, 0.06];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
        // Monotone: a later p cannot be adjusted below an earlier one, and
        // nothing exceeds 1.
        let adj = holm(&[0.04, 0.001, 0.9]);
        assert!((adj[1] - 0.003).abs() < 1e-12);
        assert!((adj[0] - 0.08).abs() < 1e-12);
        assert_eq!(adj[2], 0.9f64.max(0.08));
        assert_eq!(holm(&[0.6, 0.7]), vec![1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn tost_on_a_constructed_case() {
        // d = [1, 2, 3, 2, 2], margin 5: d + 5 = [6, 7, 8, 7, 7] are all
        // positive, so only the all-plus pattern reaches S = 35: p₁ = 1/32;
        // likewise d − 5 all negative: p₂ = 1/32. Equivalent at 0.05.
        let d = [1.0, 2.0, 3.0, 2.0, 2.0];
        assert_eq!(tost(&d, 5.0, 0, 1), 1.0 / 32.0);
        // Margin 2.5: d − 2.5 = [−1.5, −0.5, 0.5, −0.5, −0.5], S = −2.5;
        // patterns with S* ≤ −2.5, by brute force.
        let down: Vec<f64> = d.iter().map(|x| x - 2.5).collect();
        let want = brute_sign_flip(&down, Alternative::Less).max(1.0 / 32.0);
        assert_eq!(tost(&d, 2.5, 0, 1), want);
        assert!(want > 0.05);
        // Three items can never show equivalence at 0.05: the smallest p is 1/8.
        assert_eq!(tost(&[0.0, 0.0, 0.0], 1.0, 0, 1), 0.125);
    }

    #[test]
    fn minimum_detectable_difference_by_hand() {
        // sd 1, n 49: 2.8015852 / 7 = 0.4002265.
        let m = minimum_detectable(1.0, 49).unwrap();
        assert!((m - 0.400_226_460).abs() < 1e-8, "{m}");
        // sd 0.5, n 100: 2.8015852 · 0.05 = 0.1400793.
        assert!((minimum_detectable(0.5, 100).unwrap() - 0.140_079_261).abs() < 1e-8);
        assert_eq!(minimum_detectable(1.0, 1), None);
        assert!((Z_975 + Z_80 - 2.801_585_218).abs() < 1e-9);
        assert_eq!(sd(&[1.0]), None);
        // [2, 4, 4, 4, 5, 5, 7, 9]: mean 5, sum of squares 32, sd = √(32/7).
        let s = sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert!((s - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }
}
