//! The report itself: every number the renderers show, computed once.
//!
//! A report has one [`Cell`] per model and metric (`BENCHMARK/METRIC`), with
//! the mean over scored items, its 95% bootstrap interval (see
//! [`crate::stats`]), the number of scored items and the failures; the
//! [`Delta`] of every other model against the baseline; the [`Paired`]
//! comparison with the baseline on the items both scored (interval, test,
//! Holm-adjusted verdict, flips, failure bounds, smallest detectable
//! difference); for observations that have a domain, the same cells per
//! model and domain; and every item with what each model was asked and
//! answered, for the item browser.
//!
//! The baseline is the model named in [`ReportOptions::baseline`]; failing
//! that a model named `base`, failing that one named `baseline`, failing
//! that the first model in input order.
//!
//! Metrics are ordered by [`ReportOptions::order`] first, then by their
//! benchmark's first appearance in the input, then by name. How a metric is
//! shown (its range, direction, unit and label) comes from its
//! [`MetricDescriptor`]: the one given in [`ReportOptions::descriptors`],
//! else one derived from the values by [`MetricDescriptor::derived`]. This
//! crate knows no benchmark by name.

use crate::ReportError;
use crate::input::{Detail, Observation};
use crate::stats;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

/// The significance level of every test and verdict.
pub const ALPHA: f64 = 0.05;

/// One metric of one benchmark: a column of the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricKey {
    /// The benchmark.
    pub benchmark: String,
    /// The metric.
    pub metric: String,
}

impl MetricKey {
    /// The key of `metric` of `benchmark`.
    pub fn new(benchmark: impl Into<String>, metric: impl Into<String>) -> Self {
        MetricKey {
            benchmark: benchmark.into(),
            metric: metric.into(),
        }
    }

    /// `BENCHMARK/METRIC`, as the JSON output and the options name it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.benchmark, self.metric)
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.benchmark, self.metric)
    }
}

/// How a metric's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A fraction in [0, 1], written × 100 (differences in points).
    Percent,
    /// A plain number, written with three decimals.
    Number,
}

impl Unit {
    /// The unit's name in JSON and manifests: `percent` or `number`.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Percent => "percent",
            Unit::Number => "number",
        }
    }

    /// The unit [`name`](Self::name)d so, if any.
    pub fn from_name(name: &str) -> Option<Unit> {
        [Unit::Percent, Unit::Number]
            .into_iter()
            .find(|u| u.name() == name)
    }
}

/// A manifest's or a plugin's unit, as the report writes it.
impl From<lem_core::MetricUnit> for Unit {
    fn from(unit: lem_core::MetricUnit) -> Self {
        match unit {
            lem_core::MetricUnit::Percent => Unit::Percent,
            lem_core::MetricUnit::Number => Unit::Number,
        }
    }
}

/// What a report needs to know about a metric to present it honestly.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDescriptor {
    /// The values the metric can take, `(lowest, highest)`; `None` when
    /// unknown. Failure bounds put failed items at these ends; a percent
    /// change is shown only when the lowest value is not negative.
    pub range: Option<(f64, f64)>,
    /// Whether a higher value is better (a verdict's direction).
    pub higher_is_better: bool,
    /// How values are written.
    pub unit: Unit,
    /// The column heading; `None` for `BENCHMARK/METRIC` (with ` %` for
    /// percent metrics).
    pub label: Option<String>,
    /// Whether this descriptor was declared (given in the options) rather
    /// than derived from the values.
    pub declared: bool,
}

impl MetricDescriptor {
    /// The rule for a metric nobody declared, from every value observed for
    /// it (all models): values that are all 0 or 1 make a 0/1 metric (range
    /// [0, 1], shown as a percent); anything else is a number whose range is
    /// taken as `[smallest, largest]` observed, so "cannot be negative"
    /// means "no negative value was seen" and failure bounds may be narrower
    /// than with a declared range. Higher is better either way (true of
    /// every metric lem ships).
    pub fn derived(values: &[f64]) -> MetricDescriptor {
        let binary = !values.is_empty() && values.iter().all(|v| *v == 0.0 || *v == 1.0);
        let range = if binary {
            Some((0.0, 1.0))
        } else {
            values
                .iter()
                .fold(None, |acc: Option<(f64, f64)>, &v| match acc {
                    None => Some((v, v)),
                    Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
                })
        };
        MetricDescriptor {
            range,
            higher_is_better: true,
            unit: if binary { Unit::Percent } else { Unit::Number },
            label: None,
            declared: false,
        }
    }

    /// Whether the metric can take a negative value (unknown range: yes).
    pub fn can_be_negative(&self) -> bool {
        self.range.is_none_or(|(lo, _)| lo < 0.0)
    }

    /// The smallest change of one item that counts as a flip: any change of
    /// a 0/1 metric, 2 points of a rubric score; in general the smaller of 2
    /// and a quarter of the range (2 with no range).
    pub fn flip_threshold(&self) -> f64 {
        match self.range {
            Some((lo, hi)) if hi > lo => (0.25 * (hi - lo)).min(2.0),
            _ => 2.0,
        }
    }
}

/// One model's result on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Mean over scored items; `None` when none was scored.
    pub mean: Option<f64>,
    /// 95% percentile-bootstrap interval of the mean; `None` with the mean.
    pub ci95: Option<(f64, f64)>,
    /// Items scored.
    pub n: usize,
    /// Items that could not be scored (not in the mean).
    pub failures: usize,
    /// With failures and a known range: the mean over all items with every
    /// failure counted at the worse end of the range, and at the better end,
    /// as `(lower, upper)`. A failure rate cannot hide a conclusion outside
    /// these.
    pub bounds: Option<(f64, f64)>,
}

impl Cell {
    fn of(values: &[f64], failures: usize, d: &MetricDescriptor, options: &ReportOptions) -> Cell {
        let bounds = match d.range {
            Some((lo, hi)) if failures > 0 => {
                let sum: f64 = values.iter().sum();
                let all = (values.len() + failures) as f64;
                Some((
                    (sum + lo * failures as f64) / all,
                    (sum + hi * failures as f64) / all,
                ))
            }
            _ => None,
        };
        Cell {
            mean: stats::mean(values),
            ci95: stats::bootstrap_ci(values, options.resamples, options.seed),
            n: values.len(),
            failures,
            bounds,
        }
    }
}

/// A model against the baseline on one metric, mean against mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delta {
    /// `model − baseline`; `None` when either mean is missing.
    pub delta: Option<f64>,
    /// `100 · (model − baseline) / baseline`, only on a ratio scale: `None`
    /// unless the baseline's mean is above 0 and the metric cannot be
    /// negative (a percent of a signed or zero baseline means nothing).
    pub percent: Option<f64>,
}

impl Delta {
    /// The delta of mean `model` against mean `baseline`; `signed` says the
    /// metric can be negative.
    pub fn between(model: Option<f64>, baseline: Option<f64>, signed: bool) -> Delta {
        match (model, baseline) {
            (Some(m), Some(b)) => Delta {
                delta: Some(m - b),
                percent: (b > 0.0 && !signed).then(|| 100.0 * (m - b) / b),
            },
            _ => Delta {
                delta: None,
                percent: None,
            },
        }
    }
}

/// Which paired test gave a p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// Exact McNemar ([`stats::mcnemar_exact`]): every paired value is 0 or 1.
    McNemar,
    /// Sign-flip test, every sign pattern enumerated ([`stats::sign_flip`]).
    SignFlipExact,
    /// Sign-flip test, seeded Monte Carlo ([`stats::sign_flip`]).
    SignFlipMonteCarlo,
}

impl Test {
    /// A short name, as JSON writes it.
    pub fn name(self) -> &'static str {
        match self {
            Test::McNemar => "mcnemar-exact",
            Test::SignFlipExact => "sign-flip-exact",
            Test::SignFlipMonteCarlo => "sign-flip-monte-carlo",
        }
    }
}

/// What a paired comparison concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Holm-adjusted p < [`ALPHA`], difference in the better direction.
    Better,
    /// Holm-adjusted p < [`ALPHA`], difference in the worse direction.
    Worse,
    /// Holm-adjusted p ≥ [`ALPHA`]: not told from no difference (which is
    /// not the same as shown equal; see [`Equivalence`]).
    NoDifference,
    /// No item scored by both.
    NotCompared,
}

impl Verdict {
    /// How the verdict reads.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::NoDifference => "no detectable difference",
            Verdict::NotCompared => "not compared",
        }
    }
}

/// An equivalence test against a configured margin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Equivalence {
    /// The margin, in the metric's own values (0.02 is 2 points of a percent metric).
    pub margin: f64,
    /// The TOST p-value ([`stats::tost`]), not adjusted.
    pub p: f64,
    /// `p <` [`ALPHA`]: the difference lies within `±margin`.
    pub equivalent: bool,
}

/// Items whose score moved by at least the metric's flip threshold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flips {
    /// The threshold ([`MetricDescriptor::flip_threshold`]).
    pub threshold: f64,
    /// Items that went up (0 → 1 for a 0/1 metric), in input order.
    pub up: Vec<String>,
    /// Items that went down (1 → 0).
    pub down: Vec<String>,
}

/// The paired difference's range when failures are counted at the ends of
/// the metric's range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureBounds {
    /// Items in the bounds: attempted by both, scored or failed.
    pub n: usize,
    /// The mean difference with every failure at the end worst for the model.
    pub worst: f64,
    /// ... and at the end best for it.
    pub best: f64,
    /// The verdict would differ at one of the two ends (same test, same Holm
    /// multiplier as the cell).
    pub verdict_could_change: bool,
}

/// A model against the baseline on the items both scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// Items scored by both.
    pub n: usize,
    /// Mean of `model − baseline` over those items.
    pub mean: Option<f64>,
    /// 95% paired bootstrap interval (items resampled; [`stats::bootstrap_ci`]).
    pub ci95: Option<(f64, f64)>,
    /// The test that gave `p`.
    pub test: Option<Test>,
    /// Two-sided p-value of "no difference".
    pub p: Option<f64>,
    /// `p` after Holm's adjustment across every cell of the report.
    pub p_holm: Option<f64>,
    /// The conclusion.
    pub verdict: Verdict,
    /// Against the configured margin, where there is one.
    pub equivalence: Option<Equivalence>,
    /// Items that flipped.
    pub flips: Flips,
    /// The smallest difference this many items could have detected (80%
    /// power, α 0.05, from the differences' SD; [`stats::minimum_detectable`]);
    /// `None` below [`MIN_PAIRS`] pairs or when every difference is equal.
    pub mdd: Option<f64>,
    /// With failures on either side and a known range.
    pub bounds: Option<FailureBounds>,
}

/// A scorer of a benchmark that scored no item of a model: its failures,
/// which belong to no metric column.
#[derive(Debug, Clone, PartialEq)]
pub struct Unscored {
    /// The benchmark.
    pub benchmark: String,
    /// The scorer, where known.
    pub scorer: Option<String>,
    /// The model.
    pub model: String,
    /// Its failed items.
    pub failures: usize,
}

/// One scorer's result on one item of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemScore {
    /// The scorer, where known.
    pub scorer: Option<String>,
    /// Metric → value; empty for a failure.
    pub metrics: BTreeMap<String, f64>,
    /// The item failed.
    pub failed: bool,
    /// Error kind, judge answers ...
    pub detail: Detail,
}

/// One model on one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRow {
    /// The model.
    pub model: String,
    /// The prompt as sent, where known.
    pub prompt: Option<String>,
    /// The response, where known.
    pub response: Option<String>,
    /// Each scorer's result.
    pub scores: Vec<ItemScore>,
}

/// One item of one benchmark, as every model met it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The benchmark.
    pub benchmark: String,
    /// The item's id.
    pub id: String,
    /// The item's domain, where it has one.
    pub domain: Option<String>,
    /// One row per model that has the item, in model order.
    pub rows: Vec<ItemRow>,
}

/// How to build a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// The model others are compared with; `None` for the default rule
    /// (`base`, else `baseline`, else the first model in input order).
    pub baseline: Option<String>,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
    /// The seed of the bootstrap and of Monte Carlo sign-flip tests.
    pub seed: u64,
    /// Random sign patterns of a Monte Carlo sign-flip test.
    pub permutations: usize,
    /// Metric ids (`BENCHMARK/METRIC`) to put first, in this order (e.g.
    /// the paper's table).
    pub order: Vec<String>,
    /// Declared descriptors by metric id; others are derived.
    pub descriptors: BTreeMap<String, MetricDescriptor>,
    /// Equivalence margins by metric id, in the metric's own values.
    pub margins: BTreeMap<String, f64>,
    /// How far the run's judge agrees with a reference judge, per benchmark
    /// calibrated (`lem judge calibrate`): shown after the tables.
    pub judge_agreement: Vec<crate::Calibration>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            baseline: None,
            resamples: stats::DEFAULT_RESAMPLES,
            seed: stats::DEFAULT_SEED,
            permutations: stats::DEFAULT_PERMUTATIONS,
            order: Vec::new(),
            descriptors: BTreeMap::new(),
            margins: BTreeMap::new(),
            judge_agreement: Vec::new(),
        }
    }
}

/// A finished report; build it with [`Report::build`].
#[derive(Debug, Clone)]
pub struct Report {
    baseline: String,
    models: Vec<String>,
    metrics: Vec<MetricKey>,
    descriptors: BTreeMap<MetricKey, MetricDescriptor>,
    cells: BTreeMap<(String, MetricKey), Cell>,
    paired: BTreeMap<(String, MetricKey), Paired>,
    domains: Vec<String>,
    domain_metrics: Vec<MetricKey>,
    domain_cells: BTreeMap<(String, String, MetricKey), Cell>,
    unscored: Vec<Unscored>,
    items: Vec<Item>,
    resamples: usize,
    seed: u64,
    permutations: usize,
    judge_agreement: Vec<crate::Calibration>,
}

/// Values and failures of one cell while building.
#[derive(Default)]
struct Acc {
    values: Vec<f64>,
    failures: usize,
}

/// Each item's value (`None`: failed) of one model and metric, in input order.
type PerItem = Vec<(String, Option<f64>)>;

/// One item attempted by both: (item, baseline's value, model's value),
/// `None` for a failure.
type Pair = (String, Option<f64>, Option<f64>);

impl Report {
    /// Computes the report of `observations`.
    ///
    /// Errors: no observations; a baseline that is not among the models; the
    /// same (benchmark, model, item, scorer) twice; a NaN or infinite value;
    /// no resamples.
    pub fn build(
        observations: &[Observation],
        options: &ReportOptions,
    ) -> Result<Report, ReportError> {
        if observations.is_empty() {
            return Err(ReportError::Empty);
        }
        if options.resamples == 0 {
            return Err(ReportError::NoResamples);
        }
        let mut models: Vec<String> = Vec::new();
        let mut benchmarks: Vec<&str> = Vec::new();
        for o in observations {
            if !models.contains(&o.model) {
                models.push(o.model.clone());
            }
            if !benchmarks.contains(&o.benchmark.as_str()) {
                benchmarks.push(&o.benchmark);
            }
        }
        let baseline = choose_baseline(&models, options.baseline.as_deref())?;

        let mut seen = HashSet::new();
        // Metrics seen per (benchmark, scorer): what a failure counts against.
        let mut known: BTreeMap<(&str, Option<&str>), BTreeSet<&str>> = BTreeMap::new();
        let mut observed: BTreeMap<MetricKey, Vec<f64>> = BTreeMap::new();
        for o in observations {
            if !seen.insert((&o.benchmark, &o.model, &o.item_id, &o.scorer)) {
                return Err(ReportError::DuplicateItem {
                    benchmark: o.benchmark.clone(),
                    model: o.model.clone(),
                    item: o.item_id.clone(),
                });
            }
            if o.failed {
                continue;
            }
            for (metric, &value) in &o.metrics {
                if !value.is_finite() {
                    return Err(ReportError::NotFinite {
                        benchmark: o.benchmark.clone(),
                        model: o.model.clone(),
                        item: o.item_id.clone(),
                        metric: metric.clone(),
                        value,
                    });
                }
                known
                    .entry((&o.benchmark, o.scorer.as_deref()))
                    .or_default()
                    .insert(metric);
                observed
                    .entry(MetricKey::new(&o.benchmark, metric))
                    .or_default()
                    .push(value);
            }
        }

        // A scorer that failed on every item of a model has no metric to
        // count those failures against: they are listed apart, never shown
        // as a column named after the scorer.
        let mut unscored: Vec<Unscored> = Vec::new();
        // An item of no particular scorer (one that could not be generated)
        // failed every metric of its benchmark.
        let known_for = |o: &Observation| -> Vec<&str> {
            known
                .iter()
                .filter(|((b, s), _)| {
                    *b == o.benchmark && (o.scorer.is_none() || *s == o.scorer.as_deref())
                })
                .flat_map(|(_, metrics)| metrics.iter().copied())
                .collect()
        };
        for o in observations.iter().filter(|o| o.failed) {
            if !known_for(o).is_empty() {
                continue;
            }
            match unscored
                .iter_mut()
                .find(|u| u.benchmark == o.benchmark && u.scorer == o.scorer && u.model == o.model)
            {
                Some(u) => u.failures += 1,
                None => unscored.push(Unscored {
                    benchmark: o.benchmark.clone(),
                    scorer: o.scorer.clone(),
                    model: o.model.clone(),
                    failures: 1,
                }),
            }
        }

        let contributions = |o: &Observation| -> Vec<(MetricKey, Option<f64>)> {
            if o.failed {
                known_for(o)
                    .into_iter()
                    .map(|m| (MetricKey::new(&o.benchmark, m), None))
                    .collect()
            } else {
                o.metrics
                    .iter()
                    .map(|(m, v)| (MetricKey::new(&o.benchmark, m), Some(*v)))
                    .collect()
            }
        };
        let mut main: BTreeMap<(String, MetricKey), PerItem> = BTreeMap::new();
        let mut by_domain: BTreeMap<(String, String, MetricKey), Acc> = BTreeMap::new();
        let mut domain_pairs: BTreeSet<(String, String)> = BTreeSet::new();
        let mut domain_benchmarks: BTreeSet<&str> = BTreeSet::new();
        for o in observations {
            let parts = contributions(o);
            for (key, value) in &parts {
                main.entry((o.model.clone(), key.clone()))
                    .or_default()
                    .push((o.item_id.clone(), *value));
            }
            if let Some(domain) = &o.domain {
                domain_pairs.insert((o.model.clone(), domain.clone()));
                domain_benchmarks.insert(&o.benchmark);
                for (key, value) in parts {
                    add(
                        by_domain
                            .entry((o.model.clone(), domain.clone(), key))
                            .or_default(),
                        value,
                    );
                }
            }
        }

        let metrics = ordered(
            known
                .iter()
                .flat_map(|((b, _), ms)| ms.iter().map(|m| MetricKey::new(*b, *m))),
            &options.order,
            &benchmarks,
        );
        let descriptors: BTreeMap<MetricKey, MetricDescriptor> = metrics
            .iter()
            .map(|k| {
                let d = match options.descriptors.get(&k.id()) {
                    Some(d) => MetricDescriptor {
                        declared: true,
                        ..d.clone()
                    },
                    None => {
                        MetricDescriptor::derived(observed.get(k).map(Vec::as_slice).unwrap_or(&[]))
                    }
                };
                (k.clone(), d)
            })
            .collect();

        let empty = PerItem::new();
        let mut cells = BTreeMap::new();
        for model in &models {
            for key in &metrics {
                let per = main.get(&(model.clone(), key.clone())).unwrap_or(&empty);
                let values: Vec<f64> = per.iter().filter_map(|(_, v)| *v).collect();
                let failures = per.iter().filter(|(_, v)| v.is_none()).count();
                cells.insert(
                    (model.clone(), key.clone()),
                    Cell::of(&values, failures, &descriptors[key], options),
                );
            }
        }

        let paired = paired_table(&models, &baseline, &metrics, &descriptors, &main, options);

        let domain_metrics: Vec<MetricKey> = metrics
            .iter()
            .filter(|k| domain_benchmarks.contains(k.benchmark.as_str()))
            .cloned()
            .collect();
        let domains: Vec<String> = domain_pairs
            .iter()
            .map(|(_, d)| d.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut domain_cells = BTreeMap::new();
        for (model, domain) in domain_pairs {
            for key in &domain_metrics {
                let acc = by_domain
                    .remove(&(model.clone(), domain.clone(), key.clone()))
                    .unwrap_or_default();
                domain_cells.insert(
                    (model.clone(), domain.clone(), key.clone()),
                    Cell::of(&acc.values, acc.failures, &descriptors[key], options),
                );
            }
        }

        Ok(Report {
            items: items(observations, &models),
            baseline,
            models,
            metrics,
            descriptors,
            cells,
            paired,
            domains,
            domain_metrics,
            domain_cells,
            unscored,
            resamples: options.resamples,
            seed: options.seed,
            permutations: options.permutations,
            judge_agreement: options.judge_agreement.clone(),
        })
    }

    /// The judge calibrations given with the report.
    pub fn judge_agreement(&self) -> &[crate::Calibration] {
        &self.judge_agreement
    }

    /// The model the others are compared with.
    pub fn baseline(&self) -> &str {
        &self.baseline
    }

    /// Every model, baseline included, in input order.
    pub fn models(&self) -> &[String] {
        &self.models
    }

    /// The models compared with the baseline, in input order.
    pub fn compared(&self) -> impl Iterator<Item = &str> {
        self.models
            .iter()
            .map(String::as_str)
            .filter(|m| *m != self.baseline)
    }

    /// Every metric, in table order.
    pub fn metrics(&self) -> &[MetricKey] {
        &self.metrics
    }

    /// How `key` is presented: declared, or derived from its values.
    pub fn descriptor(&self, key: &MetricKey) -> MetricDescriptor {
        self.descriptors
            .get(key)
            .cloned()
            .unwrap_or_else(|| MetricDescriptor::derived(&[]))
    }

    /// The column heading of `key`: the declared label, else
    /// `BENCHMARK/METRIC`, with ` %` for percent metrics.
    pub fn label(&self, key: &MetricKey) -> String {
        let d = self.descriptor(key);
        match (d.label, d.unit) {
            (Some(l), _) => l,
            (None, Unit::Percent) => format!("{} %", key.id()),
            (None, Unit::Number) => key.id(),
        }
    }

    /// The cell of `model` on `key`; `None` only for an unknown model or
    /// metric (a model without scores for a metric has a cell with `n = 0`).
    pub fn cell(&self, model: &str, key: &MetricKey) -> Option<&Cell> {
        self.cells.get(&(model.to_string(), key.clone()))
    }

    /// `model` against the baseline on `key`, mean against mean; `None` for
    /// the baseline itself or an unknown model or metric.
    pub fn delta(&self, model: &str, key: &MetricKey) -> Option<Delta> {
        if model == self.baseline {
            return None;
        }
        let m = self.cell(model, key)?;
        let b = self.cell(&self.baseline, key)?;
        Some(Delta::between(
            m.mean,
            b.mean,
            self.descriptor(key).can_be_negative(),
        ))
    }

    /// `model` against the baseline on `key`, item by item; `None` for the
    /// baseline itself or an unknown model or metric.
    pub fn paired(&self, model: &str, key: &MetricKey) -> Option<&Paired> {
        self.paired.get(&(model.to_string(), key.clone()))
    }

    /// How many p-values the Holm adjustment was across.
    pub fn tests(&self) -> usize {
        self.paired.values().filter(|p| p.p.is_some()).count()
    }

    /// Every domain, sorted.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// The metrics of the benchmarks that have domains, in table order.
    pub fn domain_metrics(&self) -> &[MetricKey] {
        &self.domain_metrics
    }

    /// The cell of `model` in `domain` on `key`; `None` where the model has
    /// no observation in that domain.
    pub fn domain_cell(&self, model: &str, domain: &str, key: &MetricKey) -> Option<&Cell> {
        self.domain_cells
            .get(&(model.to_string(), domain.to_string(), key.clone()))
    }

    /// Scorers that scored no item of a model.
    pub fn unscored(&self) -> &[Unscored] {
        &self.unscored
    }

    /// Every item, in input order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Bootstrap resamples per interval.
    pub fn resamples(&self) -> usize {
        self.resamples
    }

    /// The seed of the bootstrap and the Monte Carlo tests.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Random sign patterns of a Monte Carlo sign-flip test.
    pub fn permutations(&self) -> usize {
        self.permutations
    }
}

fn add(acc: &mut Acc, value: Option<f64>) {
    match value {
        Some(v) => acc.values.push(v),
        None => acc.failures += 1,
    }
}

/// The two-sided p-value of paired differences `d`: exact McNemar when
/// every paired value is 0 or 1, else the sign-flip test.
fn p_value(d: &[f64], binary: bool, options: &ReportOptions) -> (Test, f64) {
    if binary {
        let up = d.iter().filter(|x| **x > 0.0).count();
        let down = d.iter().filter(|x| **x < 0.0).count();
        return (Test::McNemar, stats::mcnemar_exact(up, down));
    }
    let t = stats::sign_flip(
        d,
        stats::Alternative::TwoSided,
        options.permutations,
        options.seed,
    );
    let test = if t.exact {
        Test::SignFlipExact
    } else {
        Test::SignFlipMonteCarlo
    };
    (test, t.p)
}

/// The fewest pairs with which a two-sided exact paired test (McNemar or
/// sign-flip) can reach p < 0.05 at all: the smallest p of `n` pairs is
/// `2 / 2^n`, 0.0625 for 5 and 0.031 for 6.
pub const MIN_PAIRS: usize = 6;

/// The smallest detectable difference of paired differences `d`
/// ([`stats::minimum_detectable`]); `None` with fewer than [`MIN_PAIRS`]
/// pairs (nothing is detectable) or no spread to estimate it from (every
/// difference equal), where the formula would read as "any difference".
fn detectable(d: &[f64]) -> Option<f64> {
    if d.len() < MIN_PAIRS {
        return None;
    }
    stats::sd(d)
        .filter(|sd| *sd > 0.0)
        .and_then(|sd| stats::minimum_detectable(sd, d.len()))
}

fn verdict(p_adjusted: f64, mean: f64, higher_is_better: bool) -> Verdict {
    if p_adjusted >= ALPHA || mean == 0.0 {
        return Verdict::NoDifference;
    }
    if (mean > 0.0) == higher_is_better {
        Verdict::Better
    } else {
        Verdict::Worse
    }
}

fn is_binary(x: f64) -> bool {
    x == 0.0 || x == 1.0
}

/// Every compared model × metric against the baseline, Holm-adjusted
/// together; failure bounds last, since they use each cell's Holm multiplier.
fn paired_table(
    models: &[String],
    baseline: &str,
    metrics: &[MetricKey],
    descriptors: &BTreeMap<MetricKey, MetricDescriptor>,
    main: &BTreeMap<(String, MetricKey), PerItem>,
    options: &ReportOptions,
) -> BTreeMap<(String, MetricKey), Paired> {
    let empty = PerItem::new();
    let mut out = BTreeMap::new();
    // (key of the cell, its pairs, all 0/1) for the bounds pass.
    let mut all_pairs: Vec<((String, MetricKey), Vec<Pair>, bool)> = Vec::new();
    for model in models.iter().filter(|m| *m != baseline) {
        for key in metrics {
            let desc = &descriptors[key];
            let base = main
                .get(&(baseline.to_string(), key.clone()))
                .unwrap_or(&empty);
            let other: HashMap<&str, Option<f64>> = main
                .get(&(model.clone(), key.clone()))
                .unwrap_or(&empty)
                .iter()
                .map(|(id, v)| (id.as_str(), *v))
                .collect();
            // (item, baseline value, model value) for items both attempted.
            let pairs: Vec<Pair> = base
                .iter()
                .filter_map(|(id, b)| other.get(id.as_str()).map(|m| (id.clone(), *b, *m)))
                .collect();
            let scored: Vec<(&str, f64, f64)> = pairs
                .iter()
                .filter_map(|(id, b, m)| Some((id.as_str(), (*b)?, (*m)?)))
                .collect();
            let d: Vec<f64> = scored.iter().map(|(_, b, m)| m - b).collect();
            let binary = scored
                .iter()
                .all(|(_, b, m)| is_binary(*b) && is_binary(*m));
            let tested = (!d.is_empty()).then(|| p_value(&d, binary, options));
            let threshold = desc.flip_threshold();
            let mut flips = Flips {
                threshold,
                ..Flips::default()
            };
            for (id, b, m) in &scored {
                if m - b >= threshold {
                    flips.up.push(id.to_string());
                } else if b - m >= threshold {
                    flips.down.push(id.to_string());
                }
            }
            let equivalence = options.margins.get(&key.id()).and_then(|&margin| {
                (!d.is_empty()).then(|| {
                    let p = stats::tost(&d, margin, options.permutations, options.seed);
                    Equivalence {
                        margin,
                        p,
                        equivalent: p < ALPHA,
                    }
                })
            });
            out.insert(
                (model.clone(), key.clone()),
                Paired {
                    n: d.len(),
                    mean: stats::mean(&d),
                    ci95: stats::bootstrap_ci(&d, options.resamples, options.seed),
                    test: tested.map(|t| t.0),
                    p: tested.map(|t| t.1),
                    p_holm: None,
                    verdict: Verdict::NotCompared,
                    equivalence,
                    flips,
                    mdd: detectable(&d),
                    bounds: None,
                },
            );
            all_pairs.push(((model.clone(), key.clone()), pairs, binary));
        }
    }

    // Holm across every cell with a p-value.
    let family: Vec<(String, MetricKey)> = out
        .iter()
        .filter(|(_, p)| p.p.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    let ps: Vec<f64> = family.iter().map(|k| out[k].p.unwrap_or(1.0)).collect();
    let adjusted = stats::holm(&ps);
    // Each cell's Holm multiplier: m − (its rank among the p-values).
    let mut order: Vec<usize> = (0..ps.len()).collect();
    order.sort_by(|&a, &b| ps[a].total_cmp(&ps[b]));
    let mut multiplier = vec![1.0; ps.len()];
    for (rank, &i) in order.iter().enumerate() {
        multiplier[i] = (ps.len() - rank) as f64;
    }
    let mut multipliers: HashMap<(String, MetricKey), f64> = HashMap::new();
    for ((k, adj), mult) in family.iter().zip(&adjusted).zip(&multiplier) {
        if let Some(cell) = out.get_mut(k) {
            cell.p_holm = Some(*adj);
            cell.verdict = verdict(
                *adj,
                cell.mean.unwrap_or(0.0),
                descriptors[&k.1].higher_is_better,
            );
        }
        multipliers.insert(k.clone(), *mult);
    }

    // Failure bounds: failed values at the range's ends.
    for (k, pairs, binary) in all_pairs {
        let desc = &descriptors[&k.1];
        let Some((lo, hi)) = desc.range else { continue };
        if !pairs.iter().any(|(_, b, m)| b.is_none() || m.is_none()) {
            continue;
        }
        let (good, bad) = if desc.higher_is_better {
            (hi, lo)
        } else {
            (lo, hi)
        };
        let ends = |model_end: f64, base_end: f64| -> Vec<f64> {
            pairs
                .iter()
                .map(|(_, b, m)| m.unwrap_or(model_end) - b.unwrap_or(base_end))
                .collect()
        };
        let best = ends(good, bad);
        let worst = ends(bad, good);
        let Some(cell) = out.get_mut(&k) else {
            continue;
        };
        let mult = multipliers.get(&k).copied().unwrap_or(1.0);
        let binary = binary && lo == 0.0 && hi == 1.0;
        let verdict_at = |d: &[f64]| {
            let (_, p) = p_value(d, binary, options);
            verdict(
                (p * mult).min(1.0),
                stats::mean(d).unwrap_or(0.0),
                desc.higher_is_better,
            )
        };
        let could_change = [&best, &worst]
            .iter()
            .any(|d| verdict_at(d) != cell.verdict);
        cell.bounds = Some(FailureBounds {
            n: pairs.len(),
            worst: stats::mean(&worst).unwrap_or(0.0),
            best: stats::mean(&best).unwrap_or(0.0),
            verdict_could_change: could_change,
        });
    }
    out
}

/// Every (benchmark, item) in input order, each with one row per model.
fn items(observations: &[Observation], models: &[String]) -> Vec<Item> {
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut out: Vec<Item> = Vec::new();
    for o in observations {
        let i = *index.entry((&o.benchmark, &o.item_id)).or_insert_with(|| {
            out.push(Item {
                benchmark: o.benchmark.clone(),
                id: o.item_id.clone(),
                domain: None,
                rows: Vec::new(),
            });
            out.len() - 1
        });
        let item = &mut out[i];
        if item.domain.is_none() {
            item.domain = o.domain.clone();
        }
        let row = match item.rows.iter().position(|r| r.model == o.model) {
            Some(r) => r,
            None => {
                item.rows.push(ItemRow {
                    model: o.model.clone(),
                    prompt: None,
                    response: None,
                    scores: Vec::new(),
                });
                item.rows.len() - 1
            }
        };
        let row = &mut item.rows[row];
        if row.prompt.is_none() {
            row.prompt = o.detail.prompt.clone();
        }
        if row.response.is_none() {
            row.response = o.detail.response.clone();
        }
        row.scores.push(ItemScore {
            scorer: o.scorer.clone(),
            metrics: o.metrics.clone(),
            failed: o.failed,
            detail: Detail {
                prompt: None,
                response: None,
                ..o.detail.clone()
            },
        });
    }
    for item in &mut out {
        item.rows
            .sort_by_key(|r| models.iter().position(|m| *m == r.model));
    }
    out
}

/// `order` first (as given), then by benchmark in `benchmarks` order, then
/// by metric name; without repeats.
fn ordered(
    keys: impl Iterator<Item = MetricKey>,
    order: &[String],
    benchmarks: &[&str],
) -> Vec<MetricKey> {
    let mut keys: Vec<MetricKey> = keys.collect::<BTreeSet<_>>().into_iter().collect();
    keys.sort_by_key(|k| {
        let id = k.id();
        (
            order.iter().position(|o| *o == id).unwrap_or(order.len()),
            benchmarks
                .iter()
                .position(|b| *b == k.benchmark)
                .unwrap_or(benchmarks.len()),
        )
    });
    keys
}

fn choose_baseline(models: &[String], asked: Option<&str>) -> Result<String, ReportError> {
    if let Some(asked) = asked {
        return if models.iter().any(|m| m == asked) {
            Ok(asked.to_string())
        } else {
            Err(ReportError::UnknownBaseline {
                baseline: asked.to_string(),
                models: models.to_vec(),
            })
        };
    }
    ["base", "baseline"]
        .iter()
        .find_map(|name| models.iter().find(|m| m == name))
        .or_else(|| models.first())
        .cloned()
        .ok_or(ReportError::Empty)
}

#[cfg(test)]
mod tests;
