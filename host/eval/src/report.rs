//! Reports of runs: how the shipped benchmarks present their metrics, and
//! the report in each format.
//!
//! The statistics live in `lem-report`, which knows no benchmark by name.
//! This module adds how the shipped benchmarks' manifests describe their
//! metrics (`[[metrics]]`: label, range, direction, unit), in the paper's
//! column order (see [`shipped_presentation`]). Every other metric is
//! presented by the rule in `lem_report::MetricDescriptor::derived`.

use crate::error::Result;
use lem_report::{MetricDescriptor, Observation, Report, ReportOptions, Unit};
use std::collections::BTreeMap;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown tables.
    Md,
    /// One self-contained HTML file with the forest plot and the item browser.
    Html,
    /// One JSON object.
    Json,
}

impl Format {
    /// Every format, with the file name a run directory gives it.
    pub const FILES: [(Format, &'static str); 3] = [
        (Format::Md, "report.md"),
        (Format::Html, "report.html"),
        (Format::Json, "report.json"),
    ];
}

/// The report of `observations` against `baseline` (default: `base`,
/// `baseline`, else the first model), with equivalence `margins` by metric
/// id (`BENCHMARK/METRIC`).
pub fn build(
    observations: &[Observation],
    baseline: Option<String>,
    margins: BTreeMap<String, f64>,
) -> Result<Report> {
    build_with(observations, baseline, margins, Vec::new())
}

/// [`build`], presenting also `more` metrics (id `BENCHMARK/METRIC` and
/// descriptor, in column order) where the shipped manifests say nothing of
/// them: a run's own manifests' `[[metrics]]`, then what its scorer plugins
/// describe (contract 0.2.0). A manifest's word wins over a plugin's.
pub fn build_with(
    observations: &[Observation],
    baseline: Option<String>,
    margins: BTreeMap<String, f64>,
    more: Vec<(String, MetricDescriptor)>,
) -> Result<Report> {
    let (mut order, mut descriptors) = shipped_presentation();
    for (id, descriptor) in more {
        if let std::collections::btree_map::Entry::Vacant(slot) = descriptors.entry(id.clone()) {
            order.push(id);
            slot.insert(descriptor);
        }
    }
    let options = ReportOptions {
        baseline,
        order,
        descriptors,
        margins,
        ..ReportOptions::default()
    };
    Ok(Report::build(observations, &options)?)
}

/// What `benchmark`'s scorer plugins say of their metrics, for the report:
/// the metrics a plugin *described* (contract 0.2.0: range, direction,
/// unit), by id `BENCHMARK/METRIC`; metrics a 0.1.0 plugin only named are
/// left to the report's rule for undeclared metrics.
pub fn described_by_plugins<'a>(
    benchmark: &str,
    metrics: impl IntoIterator<Item = &'a lem_plugin_host::MetricDescriptor>,
) -> Vec<(String, MetricDescriptor)> {
    metrics
        .into_iter()
        .filter(|m| m.described)
        .map(|m| {
            (
                format!("{benchmark}/{}", m.name),
                MetricDescriptor {
                    range: m.range.map(|[lo, hi]| (lo, hi)),
                    higher_is_better: m.higher_is_better,
                    unit: match m.unit {
                        lem_core::MetricUnit::Percent => Unit::Percent,
                        lem_core::MetricUnit::Number => Unit::Number,
                    },
                    label: None,
                    declared: true,
                },
            )
        })
        .collect()
}

/// The shipped benchmarks in the LEK paper's column order (GSM8K, TruthfulQA,
/// Do Not Answer, ToxiGen, then the seeds); any other shipped benchmark
/// follows by name.
const PAPER_ORDER: [&str; 5] = ["gsm8k", "truthfulqa", "do_not_answer", "toxigen", "seeds"];

/// How reports present the shipped benchmarks' metrics: each manifest's
/// `[[metrics]]` (label, range, direction, unit), benchmarks in the paper's
/// order, supplementary metrics after all the main ones.
pub fn shipped_presentation() -> (Vec<String>, BTreeMap<String, MetricDescriptor>) {
    let mut names: Vec<&str> = lem_bundled::manifest_names().collect();
    names.sort_by_key(|n| {
        let rank = PAPER_ORDER
            .iter()
            .position(|p| p == n)
            .unwrap_or(usize::MAX);
        (rank, *n)
    });
    presentation(
        names
            .iter()
            .filter_map(|name| crate::resolve::benchmark(name).ok()),
    )
}

/// The column order and descriptors the `[[metrics]]` of `manifests` declare.
pub fn presentation(
    manifests: impl IntoIterator<Item = lem_core::BenchmarkManifest>,
) -> (Vec<String>, BTreeMap<String, MetricDescriptor>) {
    let (mut main, mut supplementary, mut descriptors) = (Vec::new(), Vec::new(), BTreeMap::new());
    for manifest in manifests {
        for spec in &manifest.metrics {
            let id = format!("{}/{}", manifest.name, spec.name);
            descriptors.insert(
                id.clone(),
                MetricDescriptor {
                    range: spec.range.map(|[lo, hi]| (lo, hi)),
                    higher_is_better: spec.higher_is_better,
                    unit: match spec.unit {
                        lem_core::MetricUnit::Percent => Unit::Percent,
                        lem_core::MetricUnit::Number => Unit::Number,
                    },
                    label: spec.label.clone(),
                    declared: true,
                },
            );
            match spec.supplementary {
                true => supplementary.push(id),
                false => main.push(id),
            }
        }
    }
    main.extend(supplementary);
    (main, descriptors)
}

/// `report` as text in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Md => lem_report::to_markdown(report),
        Format::Html => lem_report::to_html(report),
        // A JSON value's alternate form is serde_json's pretty printing.
        Format::Json => format!("{:#}\n", lem_report::to_json(report)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugins_described_metrics_reach_the_report() {
        let described = lem_plugin_host::MetricDescriptor {
            name: "harm".into(),
            range: Some([0.0, 4.0]),
            higher_is_better: false,
            unit: lem_core::MetricUnit::Number,
            described: true,
        };
        let named = lem_plugin_host::MetricDescriptor::named("other");
        let shipped = lem_plugin_host::MetricDescriptor {
            name: "accuracy".into(),
            ..described.clone()
        };
        let more = described_by_plugins("mine", [&described, &named]);
        assert_eq!(more.len(), 1, "a merely named metric is not described");
        assert_eq!(more[0].0, "mine/harm");
        assert_eq!(more[0].1.range, Some((0.0, 4.0)));
        assert!(!more[0].1.higher_is_better);
        let gsm = described_by_plugins("gsm8k", [&shipped]);
        let obs = |model: &str, v: f64| {
            let mut o = Observation {
                benchmark: "mine".into(),
                model: model.into(),
                item_id: "a".into(),
                domain: None,
                metrics: BTreeMap::new(),
                failed: false,
                scorer: None,
                detail: Default::default(),
            };
            o.metrics.insert("harm".into(), v);
            o
        };
        let mut all = more.clone();
        all.extend(gsm);
        let report =
            build_with(&[obs("x", 1.0), obs("y", 3.0)], None, BTreeMap::new(), all).unwrap();
        let json = lem_report::to_json(&report).to_string();
        assert!(json.contains("mine/harm"), "{json}");
    }
}
