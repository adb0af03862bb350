//! Reports of runs: how the shipped benchmarks present their metrics, and
//! the report in each format.
//!
//! The statistics live in `lem-report`, which knows no benchmark by name.
//! This module adds how the shipped benchmarks' manifests describe their
//! metrics (`[[metrics]]`: label, range, direction, unit), in the paper's
//! column order (see [`shipped_presentation`]). Every other metric is
//! presented by the rule in `lem_report::MetricDescriptor::derived`.

use crate::error::{Error, Result};
use lem_report::calibration::{self, Calibration};
use lem_report::{MetricDescriptor, Observation, Report, ReportOptions, Unit};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

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

/// How a run's report is presented, beyond its observations: the metrics
/// its own manifests and scorer plugins described, its baseline and its
/// equivalence margins. `lem run` records it in `run.json` (`report`), so
/// `lem report RUN_DIR` gives the report the run wrote; its flags override.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Presentation {
    /// Metrics the shipped manifests say nothing of (id `BENCHMARK/METRIC`
    /// and descriptor, in column order): a run's own manifests'
    /// `[[metrics]]`, then what its scorer plugins describe (contract
    /// 0.2.0). The shipped manifests' word wins.
    pub metrics: Vec<(String, MetricDescriptor)>,
    /// The model every other is compared with; `None`: `base`, `baseline`,
    /// else the first model.
    pub baseline: Option<String>,
    /// Equivalence margins by metric id.
    pub margins: BTreeMap<String, f64>,
    /// How far the judge agrees with a reference judge
    /// (`lem judge calibrate`), one per benchmark calibrated.
    pub judge_agreement: Vec<Calibration>,
}

impl Presentation {
    /// The report of `observations`, presented this way.
    pub fn build(&self, observations: &[Observation]) -> Result<Report> {
        let (mut order, mut descriptors) = shipped_presentation();
        for (id, descriptor) in &self.metrics {
            if let std::collections::btree_map::Entry::Vacant(slot) = descriptors.entry(id.clone())
            {
                order.push(id.clone());
                slot.insert(descriptor.clone());
            }
        }
        let options = ReportOptions {
            baseline: self.baseline.clone(),
            order,
            descriptors,
            margins: self.margins.clone(),
            judge_agreement: self.judge_agreement.clone(),
            ..ReportOptions::default()
        };
        Ok(Report::build(observations, &options)?)
    }

    /// As `run.json` records it.
    pub fn to_json(&self) -> Value {
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|(id, d)| {
                json!({
                    "id": id,
                    "range": d.range.map(|(lo, hi)| [lo, hi]),
                    "higher_is_better": d.higher_is_better,
                    "unit": d.unit.name(),
                    "label": d.label,
                })
            })
            .collect();
        let agreement: Vec<Value> = self
            .judge_agreement
            .iter()
            .map(calibration::to_json)
            .collect();
        json!({"metrics": metrics, "baseline": self.baseline, "margins": self.margins,
               "judge_agreement": agreement})
    }

    /// What the `run.json` at `path` records (its `report`); the default
    /// for a run directory without one, or one written before lem recorded
    /// it. A `run.json` that is not what lem writes is an error naming it.
    pub fn of_run(path: &Path) -> Result<Presentation> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let bad = |what: String| {
            Error::Invalid(format!(
                "{}: {what}; it is not a run.json lem wrote (delete it, or rerun `lem run`)",
                path.display()
            ))
        };
        let run: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
        let Some(report) = run.get("report") else {
            return Ok(Self::default());
        };
        let mut out = Presentation {
            baseline: report["baseline"].as_str().map(str::to_string),
            ..Self::default()
        };
        if let Some(margins) = report["margins"].as_object() {
            for (id, m) in margins {
                let m = m
                    .as_f64()
                    .ok_or_else(|| bad(format!("margin `{id}` is not a number")))?;
                out.margins.insert(id.clone(), m);
            }
        }
        for c in report["judge_agreement"].as_array().into_iter().flatten() {
            out.judge_agreement
                .push(calibration::from_json(c).map_err(|e| bad(e.to_string()))?);
        }
        for m in report["metrics"].as_array().into_iter().flatten() {
            let id = m["id"]
                .as_str()
                .ok_or_else(|| bad("a metric without an id".into()))?;
            let range = match &m["range"] {
                Value::Null => None,
                r => match (r[0].as_f64(), r[1].as_f64()) {
                    (Some(lo), Some(hi)) => Some((lo, hi)),
                    _ => return Err(bad(format!("metric `{id}`: range is not [lo, hi]"))),
                },
            };
            let unit = m["unit"]
                .as_str()
                .and_then(Unit::from_name)
                .ok_or_else(|| bad(format!("metric `{id}`: unit {}", m["unit"])))?;
            let higher_is_better = m["higher_is_better"]
                .as_bool()
                .ok_or_else(|| bad(format!("metric `{id}`: higher_is_better is not true/false")))?;
            out.metrics.push((
                id.to_string(),
                MetricDescriptor {
                    range,
                    higher_is_better,
                    unit,
                    label: m["label"].as_str().map(str::to_string),
                    declared: true,
                },
            ));
        }
        Ok(out)
    }
}

/// The calibration `lem judge calibrate --out FILE.json` wrote at `path`;
/// the error says which file and what is wrong.
pub fn read_calibration(path: &Path) -> std::result::Result<lem_report::Calibration, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON ({e})", path.display()))?;
    lem_report::calibration::from_json(&value).map_err(|e| format!("{}: {e}", path.display()))
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
                    unit: m.unit.into(),
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
                    unit: spec.unit.into(),
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
    fn a_presentation_round_trips_through_run_json() {
        let p = Presentation {
            metrics: vec![
                (
                    "mine/harm".into(),
                    MetricDescriptor {
                        range: Some((0.0, 4.0)),
                        higher_is_better: false,
                        unit: Unit::Number,
                        label: Some("Harm".into()),
                        declared: true,
                    },
                ),
                (
                    "mine/ok".into(),
                    MetricDescriptor {
                        range: None,
                        higher_is_better: true,
                        unit: Unit::Percent,
                        label: None,
                        declared: true,
                    },
                ),
            ],
            baseline: Some("it".into()),
            margins: BTreeMap::from([("gsm8k/accuracy".into(), 0.02)]),
            judge_agreement: Vec::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        std::fs::write(
            &path,
            json!({"runs": {}, "report": p.to_json()}).to_string(),
        )
        .unwrap();
        assert_eq!(Presentation::of_run(&path).unwrap(), p);
        // Older run.json (no `report`) and no run.json: the defaults.
        std::fs::write(&path, r#"{"runs": {}}"#).unwrap();
        assert_eq!(
            Presentation::of_run(&path).unwrap(),
            Presentation::default()
        );
        assert_eq!(
            Presentation::of_run(&dir.path().join("none.json")).unwrap(),
            Presentation::default()
        );
        // A damaged one is an error that names the file.
        std::fs::write(
            &path,
            r#"{"report": {"metrics": [{"id": "a", "unit": "furlongs"}]}}"#,
        )
        .unwrap();
        let err = Presentation::of_run(&path).unwrap_err().to_string();
        assert!(err.contains("run.json") && err.contains("a"), "{err}");
    }

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
        let report = Presentation {
            metrics: all,
            ..Presentation::default()
        }
        .build(&[obs("x", 1.0), obs("y", 3.0)])
        .unwrap();
        let json = lem_report::to_json(&report).to_string();
        assert!(json.contains("mine/harm"), "{json}");
    }
}
