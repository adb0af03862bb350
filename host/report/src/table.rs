//! The report itself: every number the renderers show, computed once.
//!
//! A report has one [`Cell`] per model and metric (`BENCHMARK/METRIC`), with
//! the mean over scored items, its 95% bootstrap interval (see
//! [`crate::stats`]), the number of scored items and the number of
//! failures; the [`Delta`] of every other model against the baseline; and,
//! for observations that have a domain, the same cells per model and domain.
//!
//! The baseline is the model named in [`ReportOptions::baseline`]; failing
//! that a model named `base`, failing that one named `baseline`, failing
//! that the first model in input order.

use crate::ReportError;
use crate::input::Observation;
use crate::stats;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

/// The metrics of the paper's main table, in its order; they come first,
/// every other metric follows sorted by benchmark and name.
pub const PAPER_ORDER: [(&str, &str); 8] = [
    ("gsm8k", "accuracy"),
    // The upstream score files' name for the same quantity.
    ("gsm8k", "correct"),
    ("truthfulqa", "truthfulness"),
    ("truthfulqa", "informativeness"),
    ("do_not_answer", "safety"),
    ("do_not_answer", "nuance"),
    ("toxigen", "kindness"),
    ("toxigen", "awareness"),
];

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

    /// `BENCHMARK/METRIC`, as the JSON output names it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.benchmark, self.metric)
    }

    /// GSM8K's accuracy (a fraction of items right) is shown as a percent.
    pub fn is_percent(&self) -> bool {
        self.benchmark == "gsm8k" && (self.metric == "accuracy" || self.metric == "correct")
    }

    /// The column heading: `GSM8K %` for GSM8K's accuracy, else the id.
    pub fn label(&self) -> String {
        match (self.benchmark.as_str(), self.metric.as_str()) {
            ("gsm8k", "accuracy") => "GSM8K %".to_string(),
            ("gsm8k", "correct") => "GSM8K % (correct)".to_string(),
            _ => self.id(),
        }
    }

    /// Position in [`PAPER_ORDER`], or past its end.
    fn paper_rank(&self) -> usize {
        PAPER_ORDER
            .iter()
            .position(|(b, m)| *b == self.benchmark && *m == self.metric)
            .unwrap_or(PAPER_ORDER.len())
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.benchmark, self.metric)
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
}

impl Cell {
    fn of(values: &[f64], failures: usize, options: &ReportOptions) -> Cell {
        Cell {
            mean: stats::mean(values),
            ci95: stats::bootstrap_ci(values, options.resamples, options.seed),
            n: values.len(),
            failures,
        }
    }
}

/// A model against the baseline on one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delta {
    /// `model − baseline`; `None` when either mean is missing.
    pub delta: Option<f64>,
    /// `100 · (model − baseline) / baseline`; `None` also when the
    /// baseline's mean is 0.
    pub percent: Option<f64>,
}

impl Delta {
    /// The delta of mean `model` against mean `baseline`.
    pub fn between(model: Option<f64>, baseline: Option<f64>) -> Delta {
        match (model, baseline) {
            (Some(m), Some(b)) => Delta {
                delta: Some(m - b),
                percent: (b != 0.0).then(|| 100.0 * (m - b) / b),
            },
            _ => Delta {
                delta: None,
                percent: None,
            },
        }
    }
}

/// How to build a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// The model others are compared with; `None` for the default rule
    /// (`base`, else `baseline`, else the first model in input order).
    pub baseline: Option<String>,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
    /// The bootstrap generator's seed.
    pub seed: u64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            baseline: None,
            resamples: stats::DEFAULT_RESAMPLES,
            seed: stats::DEFAULT_SEED,
        }
    }
}

/// A finished report; build it with [`Report::build`].
#[derive(Debug, Clone)]
pub struct Report {
    baseline: String,
    models: Vec<String>,
    metrics: Vec<MetricKey>,
    cells: BTreeMap<(String, MetricKey), Cell>,
    domains: Vec<String>,
    domain_metrics: Vec<MetricKey>,
    domain_cells: BTreeMap<(String, String, MetricKey), Cell>,
    resamples: usize,
    seed: u64,
}

/// Values and failures of one cell while building.
#[derive(Default)]
struct Acc {
    values: Vec<f64>,
    failures: usize,
}

impl Report {
    /// Computes the report of `observations`.
    ///
    /// Errors: no observations; a baseline that is not among the models; the
    /// same (benchmark, model, item) twice; a NaN or infinite value; no
    /// resamples.
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
        for o in observations {
            if !models.contains(&o.model) {
                models.push(o.model.clone());
            }
        }
        let baseline = choose_baseline(&models, options.baseline.as_deref())?;

        let mut seen = HashSet::new();
        // Metrics seen per (benchmark, scorer): what a failure counts against.
        let mut known: BTreeMap<(&str, Option<&str>), BTreeSet<&str>> = BTreeMap::new();
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
            }
        }

        // Each observation's contributions: (key, Some(value)) or (key, None)
        // for a failure.
        // A scorer that failed on every item has no known metrics: its
        // failures are counted under the scorer's name, so they still show.
        for o in observations.iter().filter(|o| o.failed) {
            let scorer = o.scorer.as_deref();
            if !known.contains_key(&(o.benchmark.as_str(), scorer)) {
                let name = scorer.unwrap_or("score");
                known
                    .entry((&o.benchmark, scorer))
                    .or_default()
                    .insert(name);
            }
        }
        let contributions = |o: &Observation| -> Vec<(MetricKey, Option<f64>)> {
            if o.failed {
                known
                    .get(&(o.benchmark.as_str(), o.scorer.as_deref()))
                    .into_iter()
                    .flatten()
                    .map(|m| (MetricKey::new(&o.benchmark, *m), None))
                    .collect()
            } else {
                o.metrics
                    .iter()
                    .map(|(m, v)| (MetricKey::new(&o.benchmark, m), Some(*v)))
                    .collect()
            }
        };
        let mut main: BTreeMap<(String, MetricKey), Acc> = BTreeMap::new();
        let mut by_domain: BTreeMap<(String, String, MetricKey), Acc> = BTreeMap::new();
        let mut domain_pairs: BTreeSet<(String, String)> = BTreeSet::new();
        let mut domain_benchmarks: BTreeSet<&str> = BTreeSet::new();
        for o in observations {
            let parts = contributions(o);
            for (key, value) in &parts {
                add(
                    main.entry((o.model.clone(), key.clone())).or_default(),
                    *value,
                );
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
        );
        let mut cells = BTreeMap::new();
        for model in &models {
            for key in &metrics {
                let acc = main
                    .remove(&(model.clone(), key.clone()))
                    .unwrap_or_default();
                cells.insert(
                    (model.clone(), key.clone()),
                    Cell::of(&acc.values, acc.failures, options),
                );
            }
        }

        let domain_metrics = ordered(
            metrics
                .iter()
                .filter(|k| domain_benchmarks.contains(k.benchmark.as_str()))
                .cloned(),
        );
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
                    Cell::of(&acc.values, acc.failures, options),
                );
            }
        }

        Ok(Report {
            baseline,
            models,
            metrics,
            cells,
            domains,
            domain_metrics,
            domain_cells,
            resamples: options.resamples,
            seed: options.seed,
        })
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

    /// Every metric, in the paper's order first, then sorted.
    pub fn metrics(&self) -> &[MetricKey] {
        &self.metrics
    }

    /// The cell of `model` on `key`; `None` only for an unknown model or
    /// metric (a model without scores for a metric has a cell with `n = 0`).
    pub fn cell(&self, model: &str, key: &MetricKey) -> Option<&Cell> {
        self.cells.get(&(model.to_string(), key.clone()))
    }

    /// `model` against the baseline on `key`; `None` for the baseline itself
    /// or an unknown model or metric.
    pub fn delta(&self, model: &str, key: &MetricKey) -> Option<Delta> {
        if model == self.baseline {
            return None;
        }
        let m = self.cell(model, key)?;
        let b = self.cell(&self.baseline, key)?;
        Some(Delta::between(m.mean, b.mean))
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

    /// Bootstrap resamples per interval.
    pub fn resamples(&self) -> usize {
        self.resamples
    }

    /// The bootstrap generator's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

fn add(acc: &mut Acc, value: Option<f64>) {
    match value {
        Some(v) => acc.values.push(v),
        None => acc.failures += 1,
    }
}

/// Paper order first, then by benchmark and metric, without repeats.
fn ordered(keys: impl Iterator<Item = MetricKey>) -> Vec<MetricKey> {
    let mut keys: Vec<MetricKey> = keys.collect::<BTreeSet<_>>().into_iter().collect();
    keys.sort_by_key(|k| k.paper_rank());
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
