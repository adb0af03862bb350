//! How far two raters of the same items agree: a judge under test and a
//! reference judge. Pure functions over paired `(judge, reference)` values,
//! each written so that it can be recomputed by hand or with any statistics
//! package; the tests below do so on small cases.
//!
//! - [`spearman`]: Spearman's ρ, the Pearson correlation of the two raters'
//!   ranks, tied values sharing their average rank (as `scipy.stats.spearmanr`).
//! - [`kendall_tau_b`]: Kendall's τ-b, `(C − D) / √((n₀ − n₁)(n₀ − n₂))` with
//!   `C`, `D` the concordant and discordant pairs, `n₀ = n(n − 1)/2` and
//!   `n₁`, `n₂` the pairs tied in the judge's and in the reference's values
//!   (as `scipy.stats.kendalltau`).
//! - [`quadratic_weighted_kappa`]: Cohen's κ with quadratic weights on scores
//!   rounded to whole numbers, categories being every whole number of the
//!   scale (so the weight of a disagreement is its squared distance in
//!   points, not in observed labels, which is where `sklearn`'s
//!   `cohen_kappa_score` differs when a label is never used). Categories that
//!   no rater used add nothing, so κ does not depend on the scale's ends.
//! - [`mean_absolute_error`], [`mean_shift`] (judge mean − reference mean:
//!   the judge's bias), [`exact_agreement`] and [`within_one`] (rounded
//!   scores equal, or at most one point apart).
//!
//! Rounding is [`round_score`]: to the nearest whole number, halves away from
//! zero. A statistic that is undefined (no pairs; a correlation or κ when one
//! rater gave every item the same score) is `None`, never a number.
//!
//! [`agreement`] computes them all with a 95% percentile-bootstrap interval
//! each, by the procedure of [`crate::stats`] (the same generator, index
//! draws and quantiles): each resample draws `n` item indices with
//! replacement, and every statistic is computed on the same resampled items.
//! A resample on which a statistic is undefined is left out of that
//! statistic's interval, and an interval needs at least one defined
//! resample. The bias interval is therefore exactly
//! [`crate::stats::bootstrap_ci`] of the differences.

use crate::stats::{self, SplitMix64};
use std::cmp::Ordering;

/// A score rounded to the nearest whole number (halves away from zero).
pub fn round_score(x: f64) -> i64 {
    x.round() as i64
}

/// The ranks of `values` (1 for the smallest), tied values sharing the mean
/// of the ranks they span.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1 ..= end: their mean.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Pearson's correlation of the pairs; `None` below two pairs or when
/// either side has no variance.
pub fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len();
    if n < 2 {
        return None;
    }
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        let (dx, dy) = (x - mx, y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Spearman's ρ: [`pearson`] of the [`average_ranks`] of each side.
pub fn spearman(pairs: &[(f64, f64)]) -> Option<f64> {
    let x: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let y: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let ranked: Vec<(f64, f64)> = average_ranks(&x)
        .into_iter()
        .zip(average_ranks(&y))
        .collect();
    pearson(&ranked)
}

/// Kendall's τ-b (see the module documentation); `None` below two pairs or
/// when either side has every value tied.
///
/// Identical pairs are counted together first, so scores on a short scale
/// (1-10: at most 100 distinct pairs) cost `O(n log n)` however many items
/// there are; distinct real values cost `O(n²)`.
pub fn kendall_tau_b(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as i128;
    if n < 2 {
        return None;
    }
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    // Distinct pairs with their counts, and the tie groups of each side.
    let mut groups: Vec<((f64, f64), i128)> = Vec::new();
    for p in sorted {
        match groups.last_mut() {
            Some((q, count)) if *q == p => *count += 1,
            _ => groups.push((p, 1)),
        }
    }
    let tied_pairs = |key: &dyn Fn(&(f64, f64)) -> f64| -> i128 {
        let mut values: Vec<f64> = pairs.iter().map(key).collect();
        values.sort_by(f64::total_cmp);
        let mut total = 0;
        let mut start = 0;
        while start < values.len() {
            let end = start + values[start..].partition_point(|v| *v == values[start]);
            let t = (end - start) as i128;
            total += t * (t - 1) / 2;
            start = end;
        }
        total
    };
    let n0 = n * (n - 1) / 2;
    let n1 = tied_pairs(&|p| p.0);
    let n2 = tied_pairs(&|p| p.1);
    if n0 == n1 || n0 == n2 {
        return None;
    }
    let sign = |a: f64, b: f64| match a.total_cmp(&b) {
        Ordering::Less => -1i128,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    };
    let mut s: i128 = 0;
    for (i, ((xa, ya), ca)) in groups.iter().enumerate() {
        for ((xb, yb), cb) in &groups[i + 1..] {
            s += sign(*xa, *xb) * sign(*ya, *yb) * ca * cb;
        }
    }
    let denominator = ((n0 - n1) as f64 * (n0 - n2) as f64).sqrt();
    Some((s as f64 / denominator).clamp(-1.0, 1.0))
}

/// Cohen's κ with quadratic weights of whole-number scores
/// `(judge, reference)`: `1 − Σᵢⱼ wᵢⱼ Oᵢⱼ / Σᵢⱼ wᵢⱼ Eᵢⱼ`, with `O` the
/// confusion matrix, `E` the matrix the two raters' marginals would give by
/// chance and `wᵢⱼ = (i − j)²` over the scale's points. Computed in closed
/// form: `Σ wO = Σ (a − b)²` and `Σ wE = Σa² + Σb² − 2 Σa Σb / n`. `None`
/// with no pairs, or when chance disagreement is 0 (both raters gave every
/// item the same score).
pub fn quadratic_weighted_kappa(pairs: &[(i64, i64)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    // In whole numbers, exactly: n·Σ wE = n(Σa² + Σb²) − 2 Σa Σb.
    let n = pairs.len() as i128;
    let (mut sa, mut sb, mut saa, mut sbb, mut observed) = (0i128, 0i128, 0i128, 0i128, 0i128);
    for &(a, b) in pairs {
        let (a, b) = (i128::from(a), i128::from(b));
        sa += a;
        sb += b;
        saa += a * a;
        sbb += b * b;
        observed += (a - b) * (a - b);
    }
    let expected = n * (saa + sbb) - 2 * sa * sb;
    if expected <= 0 {
        return None;
    }
    Some(1.0 - (n * observed) as f64 / expected as f64)
}

/// The mean of `|judge − reference|`; `None` with no pairs.
pub fn mean_absolute_error(pairs: &[(f64, f64)]) -> Option<f64> {
    let d: Vec<f64> = pairs.iter().map(|(j, r)| (j - r).abs()).collect();
    stats::mean(&d)
}

/// The mean of `judge − reference`, which is the judge's mean less the
/// reference's: positive when the judge scores higher. `None` with no pairs.
pub fn mean_shift(pairs: &[(f64, f64)]) -> Option<f64> {
    let d: Vec<f64> = pairs.iter().map(|(j, r)| j - r).collect();
    stats::mean(&d)
}

/// The share of pairs whose rounded scores are equal; `None` with no pairs.
pub fn exact_agreement(pairs: &[(i64, i64)]) -> Option<f64> {
    share(pairs, |a, b| a == b)
}

/// The share of pairs whose rounded scores are at most one point apart;
/// `None` with no pairs.
pub fn within_one(pairs: &[(i64, i64)]) -> Option<f64> {
    share(pairs, |a, b| a.abs_diff(b) <= 1)
}

fn share(pairs: &[(i64, i64)], hit: impl Fn(i64, i64) -> bool) -> Option<f64> {
    let hits: Vec<f64> = pairs
        .iter()
        .map(|&(a, b)| f64::from(u8::from(hit(a, b))))
        .collect();
    stats::mean(&hits)
}

/// A statistic and its 95% bootstrap interval; either may be undefined.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    /// On all pairs.
    pub value: Option<f64>,
    /// The 2.5% and 97.5% quantiles over the resamples where it is defined.
    pub ci95: Option<(f64, f64)>,
}

/// Every statistic of one pair of raters over the same items.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// Pairs (items both raters scored).
    pub n: usize,
    /// The judge's mean score.
    pub judge_mean: Option<f64>,
    /// The reference's mean score.
    pub reference_mean: Option<f64>,
    /// Spearman's ρ.
    pub spearman: Estimate,
    /// Kendall's τ-b.
    pub kendall_tau_b: Estimate,
    /// Quadratic-weighted Cohen's κ of the rounded scores.
    pub qwk: Estimate,
    /// Mean absolute error.
    pub mae: Estimate,
    /// Share of rounded scores equal.
    pub exact: Estimate,
    /// Share of rounded scores at most one point apart.
    pub within_one: Estimate,
    /// Judge mean − reference mean.
    pub bias: Estimate,
}

/// The statistics in one fixed order, for the bootstrap.
const STATISTICS: usize = 7;

fn all_statistics(pairs: &[(f64, f64)]) -> [Option<f64>; STATISTICS] {
    let rounded: Vec<(i64, i64)> = pairs
        .iter()
        .map(|&(j, r)| (round_score(j), round_score(r)))
        .collect();
    [
        spearman(pairs),
        kendall_tau_b(pairs),
        quadratic_weighted_kappa(&rounded),
        mean_absolute_error(pairs),
        exact_agreement(&rounded),
        within_one(&rounded),
        mean_shift(pairs),
    ]
}

/// Every statistic of `pairs` (`(judge, reference)`, one per item) with its
/// interval from `resamples` bootstrap resamples drawn from a
/// [`SplitMix64`] started at `seed` (see the module documentation). With no
/// resamples every interval is `None`.
pub fn agreement(pairs: &[(f64, f64)], resamples: usize, seed: u64) -> Agreement {
    let n = pairs.len();
    let values = all_statistics(pairs);
    let mut draws: Vec<Vec<f64>> = (0..STATISTICS)
        .map(|_| Vec::with_capacity(resamples))
        .collect();
    if n > 0 {
        let mut rng = SplitMix64::new(seed);
        let mut resample = Vec::with_capacity(n);
        for _ in 0..resamples {
            resample.clear();
            resample.extend((0..n).map(|_| pairs[rng.below(n)]));
            for (kept, value) in draws.iter_mut().zip(all_statistics(&resample)) {
                kept.extend(value);
            }
        }
    }
    let mut estimates = values.into_iter().zip(draws).map(|(value, mut kept)| {
        kept.sort_by(f64::total_cmp);
        let ci95 = stats::quantile_sorted(&kept, stats::LOWER)
            .zip(stats::quantile_sorted(&kept, stats::UPPER));
        Estimate { value, ci95 }
    });
    let mut next = || estimates.next().unwrap_or_default();
    let judge: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let reference: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    Agreement {
        n,
        judge_mean: stats::mean(&judge),
        reference_mean: stats::mean(&reference),
        spearman: next(),
        kendall_tau_b: next(),
        qwk: next(),
        mae: next(),
        exact: next(),
        within_one: next(),
        bias: next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.unwrap_or_else(|| panic!("undefined, expected {b}"));
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    fn pairs(x: &[f64], y: &[f64]) -> Vec<(f64, f64)> {
        x.iter().copied().zip(y.iter().copied()).collect()
    }

    fn whole(p: &[(f64, f64)]) -> Vec<(i64, i64)> {
        p.iter()
            .map(|&(a, b)| (round_score(a), round_score(b)))
            .collect()
    }

    #[test]
    fn ranks_share_their_mean_when_tied() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 20.0, 5.0, 20.0]),
            vec![2.0, 4.0, 4.0, 1.0, 4.0]
        );
        assert_eq!(average_ranks(&[3.0, 3.0]), vec![1.5, 1.5]);
        assert!(average_ranks(&[]).is_empty());
    }

    #[test]
    fn ties_by_hand() {
        // x = [1, 2, 2, 3], y = [1, 3, 2, 2].
        // Ranks: x → [1, 2.5, 2.5, 4], y → [1, 4, 2.5, 2.5]; both means 2.5,
        // deviations [−1.5, 0, 0, 1.5] and [−1.5, 1.5, 0, 0]:
        // ρ = 2.25 / √(4.5 · 4.5) = 0.5.
        // Pairs: (1,2) (1,3) (1,4) concordant, (2,4) discordant, (2,3) tied
        // in x, (3,4) tied in y: S = 3 − 1 = 2, n₀ = 6, n₁ = n₂ = 1:
        // τ-b = 2 / √(5 · 5) = 0.4 (scipy.stats.kendalltau agrees).
        let p = pairs(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 2.0]);
        close(spearman(&p), 0.5);
        close(kendall_tau_b(&p), 0.4);
        // A tie on both sides at once counts in n₁ and n₂ and in neither C
        // nor D: x = [1, 1, 2], y = [1, 1, 2]: S = 2, n₀ = 3, n₁ = n₂ = 1,
        // τ-b = 2 / 2 = 1; ρ on ranks [1.5, 1.5, 3] twice = 1.
        let p = pairs(&[1.0, 1.0, 2.0], &[1.0, 1.0, 2.0]);
        close(kendall_tau_b(&p), 1.0);
        close(spearman(&p), 1.0);
        // x = [1, 2, 3, 3], y = [2, 1, 3, 4]: pairs C: (1,3) (1,4) (2,3)
        // (2,4); D: (1,2); (3,4) tied in x. S = 3, n₀ = 6, n₁ = 1, n₂ = 0:
        // τ-b = 3 / √30.
        let p = pairs(&[1.0, 2.0, 3.0, 3.0], &[2.0, 1.0, 3.0, 4.0]);
        close(kendall_tau_b(&p), 3.0 / 30f64.sqrt());
        // Ranks x [1, 2, 3.5, 3.5], y [2, 1, 3, 4]: deviations from 2.5
        // [−1.5, −0.5, 1, 1] and [−0.5, −1.5, 0.5, 1.5]: Σ = 0.75 + 0.75 +
        // 0.5 + 1.5 = 3.5; Σdx² = 4.5, Σdy² = 5: ρ = 3.5 / √22.5.
        close(spearman(&p), 3.5 / 22.5f64.sqrt());
    }

    #[test]
    fn perfect_agreement() {
        let x = [1.0, 4.0, 2.0, 8.0, 10.0, 4.0];
        let p = pairs(&x, &x);
        close(spearman(&p), 1.0);
        close(kendall_tau_b(&p), 1.0);
        close(quadratic_weighted_kappa(&whole(&p)), 1.0);
        close(mean_absolute_error(&p), 0.0);
        close(exact_agreement(&whole(&p)), 1.0);
        close(within_one(&whole(&p)), 1.0);
        close(mean_shift(&p), 0.0);
        let a = agreement(&p, 200, 1);
        assert_eq!(a.n, 6);
        assert_eq!(a.spearman.value, Some(1.0));
        assert_eq!(a.exact.ci95, Some((1.0, 1.0)));
        assert_eq!(a.mae.ci95, Some((0.0, 0.0)));
        assert_eq!(a.judge_mean, a.reference_mean);
    }

    #[test]
    fn anti_correlated() {
        // y = 6 − x: every pair discordant. κ: Σ(a − b)² = 16 + 4 + 0 + 4 +
        // 16 = 40; Σa² = Σb² = 55, ΣaΣb/n = 225/5 = 45: Σ wE = 20, κ = −1.
        let p = pairs(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 4.0, 3.0, 2.0, 1.0]);
        close(spearman(&p), -1.0);
        close(kendall_tau_b(&p), -1.0);
        close(quadratic_weighted_kappa(&whole(&p)), -1.0);
        close(mean_absolute_error(&p), 12.0 / 5.0);
        // Only (3, 3) agrees, exactly or within one point.
        close(exact_agreement(&whole(&p)), 0.2);
        close(within_one(&whole(&p)), 0.2);
        close(mean_shift(&p), 0.0);
    }

    #[test]
    fn kappa_on_a_small_confusion_matrix() {
        // Judge (rows) against reference (columns) on a 1-3 scale:
        //         ref 1  ref 2  ref 3
        //   j 1     2      1      0
        //   j 2     0      2      0
        //   j 3     0      1      2
        // n = 8; marginals: judge [3, 2, 3], reference [2, 4, 2].
        // Σ wO = 1·1 (j1,r2) + 1·1 (j3,r2) = 2.
        // Σ wE = Σ (i − j)² rᵢ cⱼ / 8 = (3·4 + 4·3·2 + 2·2 + 2·2 + 4·3·2
        //        + 3·4) / 8 = 80 / 8 = 10. κ = 1 − 2/10 = 0.8.
        let cells = [
            ((1, 1), 2),
            ((1, 2), 1),
            ((2, 2), 2),
            ((3, 2), 1),
            ((3, 3), 2),
        ];
        let p: Vec<(i64, i64)> = cells
            .iter()
            .flat_map(|&(pair, count)| std::iter::repeat_n(pair, count))
            .collect();
        close(quadratic_weighted_kappa(&p), 0.8);
        close(exact_agreement(&p), 6.0 / 8.0);
        close(within_one(&p), 1.0);
        // Unweighted this table would give κ = (0.75 − 0.3125) / 0.6875 ≈
        // 0.64: the weights make the near misses count less.
    }

    /// The matrix form written out: categories lo..=hi, weights (i − j)².
    fn kappa_by_matrix(p: &[(i64, i64)], lo: i64, hi: i64) -> Option<f64> {
        let k = (hi - lo + 1) as usize;
        let mut o = vec![vec![0.0; k]; k];
        for &(a, b) in p {
            o[(a - lo) as usize][(b - lo) as usize] += 1.0;
        }
        let n = p.len() as f64;
        let rows: Vec<f64> = o.iter().map(|r| r.iter().sum()).collect();
        let cols: Vec<f64> = (0..k).map(|j| o.iter().map(|r| r[j]).sum()).collect();
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..k {
            for j in 0..k {
                let w = ((i as f64) - (j as f64)).powi(2) / ((k - 1) as f64).powi(2);
                num += w * o[i][j];
                den += w * rows[i] * cols[j] / n;
            }
        }
        (den > 0.0).then(|| 1.0 - num / den)
    }

    #[test]
    fn kappa_closed_form_is_the_matrix_form_and_ignores_unused_points() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..50 {
            let n = 2 + rng.below(30);
            let p: Vec<(i64, i64)> = (0..n)
                .map(|_| (1 + rng.below(10) as i64, 1 + rng.below(10) as i64))
                .collect();
            let closed = quadratic_weighted_kappa(&p);
            // The 1-10 scale, or a wider one with points nobody used.
            for (lo, hi) in [(1, 10), (-3, 14)] {
                let matrix = kappa_by_matrix(&p, lo, hi);
                match (closed, matrix) {
                    (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "{p:?}"),
                    (a, b) => assert_eq!(a, b, "{p:?}"),
                }
            }
        }
    }

    #[test]
    fn undefined_statistics_are_none() {
        assert_eq!(spearman(&[]), None);
        assert_eq!(kendall_tau_b(&[(1.0, 2.0)]), None);
        assert_eq!(quadratic_weighted_kappa(&[]), None);
        assert_eq!(mean_absolute_error(&[]), None);
        assert_eq!(exact_agreement(&[]), None);
        // A constant rater: no correlation; κ has chance disagreement still.
        let p = pairs(&[5.0, 5.0, 5.0], &[1.0, 2.0, 3.0]);
        assert_eq!(spearman(&p), None);
        assert_eq!(kendall_tau_b(&p), None);
        // Σa² + Σb² − 2ΣaΣb/n = 75 + 14 − 2·15·6/3 = 29; Σ(a−b)² = 16+9+4.
        close(quadratic_weighted_kappa(&whole(&p)), 0.0);
        // Both constant and equal: no chance disagreement, κ undefined.
        let p = pairs(&[7.0, 7.0], &[7.0, 7.0]);
        assert_eq!(quadratic_weighted_kappa(&whole(&p)), None);
        close(exact_agreement(&whole(&p)), 1.0);
        let a = agreement(&[], 100, 1);
        assert_eq!(
            (a.n, a.spearman, a.judge_mean),
            (0, Estimate::default(), None)
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(
            [7.5, 7.49, 6.5, -0.5, 3.0].map(round_score),
            [8, 7, 7, -1, 3]
        );
        // Judge 7.6 vs reference 7: MAE 0.6 on raw scores, but rounded 8 vs 7.
        let p = [(7.6, 7.0)];
        close(mean_absolute_error(&p), 0.6);
        close(exact_agreement(&whole(&p)), 0.0);
        close(within_one(&whole(&p)), 1.0);
    }

    #[test]
    fn intervals_are_deterministic_bracket_the_value_and_share_resamples() {
        let mut rng = SplitMix64::new(11);
        let p: Vec<(f64, f64)> = (0..60)
            .map(|_| {
                let r = 1 + rng.below(10) as i64;
                let noise = rng.below(3) as i64 - 1;
                ((r + noise).clamp(1, 10) as f64, r as f64)
            })
            .collect();
        let a = agreement(&p, stats::DEFAULT_RESAMPLES, stats::DEFAULT_SEED);
        assert_eq!(
            a,
            agreement(&p, stats::DEFAULT_RESAMPLES, stats::DEFAULT_SEED)
        );
        for e in [
            a.spearman,
            a.kendall_tau_b,
            a.qwk,
            a.mae,
            a.exact,
            a.within_one,
            a.bias,
        ] {
            let (v, (lo, hi)) = (e.value.unwrap(), e.ci95.unwrap());
            assert!(lo <= v && v <= hi, "{e:?}");
        }
        // Noise of at most one point: every pair within ±1, in every resample.
        assert_eq!(a.within_one.ci95, Some((1.0, 1.0)));
        for e in [a.spearman, a.kendall_tau_b, a.qwk, a.mae, a.exact, a.bias] {
            let (lo, hi) = e.ci95.unwrap();
            assert!(lo < hi, "{e:?}");
        }
        assert!(a.spearman.value.unwrap() > 0.8, "{a:?}");
        // The bias interval is the bootstrap of the differences, draw for draw.
        let d: Vec<f64> = p.iter().map(|(j, r)| j - r).collect();
        assert_eq!(
            a.bias.ci95,
            stats::bootstrap_ci(&d, stats::DEFAULT_RESAMPLES, stats::DEFAULT_SEED)
        );
        close(
            a.bias.value,
            a.judge_mean.unwrap() - a.reference_mean.unwrap(),
        );
        // No resamples: values, no intervals.
        let none = agreement(&p, 0, 1);
        assert_eq!(none.spearman.value, a.spearman.value);
        assert_eq!(none.spearman.ci95, None);
    }

    #[test]
    fn kendall_grouping_matches_the_pair_by_pair_count() {
        let brute = |p: &[(f64, f64)]| {
            let n = p.len();
            let (mut s, mut tx, mut ty) = (0.0, 0.0, 0.0);
            for i in 0..n {
                for j in i + 1..n {
                    let dx = (p[i].0 - p[j].0).signum() * f64::from(p[i].0 != p[j].0);
                    let dy = (p[i].1 - p[j].1).signum() * f64::from(p[i].1 != p[j].1);
                    s += dx * dy;
                    tx += f64::from(dx == 0.0);
                    ty += f64::from(dy == 0.0);
                }
            }
            let n0 = (n * (n - 1) / 2) as f64;
            s / ((n0 - tx) * (n0 - ty)).sqrt()
        };
        let mut rng = SplitMix64::new(5);
        for _ in 0..30 {
            let n = 2 + rng.below(40);
            let p: Vec<(f64, f64)> = (0..n)
                .map(|_| (rng.below(5) as f64, rng.below(7) as f64 * 0.5))
                .collect();
            match kendall_tau_b(&p) {
                Some(t) => assert!((t - brute(&p)).abs() < 1e-12, "{p:?}"),
                None => assert!(!brute(&p).is_finite(), "{p:?}"),
            }
        }
    }
}
