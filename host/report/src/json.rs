//! The report as JSON, for other programs.
//!
//! The shape (every field of earlier versions kept, new ones added):
//!
//! ```text
//! {"baseline": MODEL,
//!  "method": {"alpha", "adjustment": "holm", "tests", "resamples", "seed",
//!             "permutations", "exact_max"},
//!  "metrics": {"BENCHMARK/METRIC": {"label", "unit": "percent"|"number",
//!             "range": [lo, hi]|null, "higher_is_better", "declared"}},
//!  "models": {MODEL: {"BENCHMARK/METRIC": {"mean", "ci95": [lo, hi], "n", "failures",
//!             "bounds": [lo, hi]|null}}},
//!  "differential": {MODEL: {"BENCHMARK/METRIC": {"delta", "percent"}}},
//!  "paired": {MODEL: {"BENCHMARK/METRIC": {"n", "mean", "ci95", "test", "p", "p_holm",
//!             "verdict", "equivalence": {"margin", "p", "equivalent"}|null,
//!             "flips": {"threshold", "up": [ITEM], "down": [ITEM]}, "mdd",
//!             "bounds": {"n", "worst", "best", "verdict_could_change"}|null}}},
//!  "domains": {MODEL: {DOMAIN: {"BENCHMARK/METRIC": {"mean", "ci95", "n", "failures", "bounds"}}}},
//!  "unscored": [{"benchmark", "scorer", "model", "failures"}],
//!  "judge_agreement": [CALIBRATION]}   (as `lem judge calibrate --json` prints it)
//! ```
//!
//! Values are the raw metric values (a percent metric is a fraction here).
//! A missing number is `null`; `percent` is `null` where the metric can be
//! negative or the baseline's mean is not above 0. `differential` and
//! `paired` leave out the baseline; `domains` holds only the models and
//! domains that were observed, and is empty when nothing has a domain.
//! `verdict` is `better`, `worse`, `no detectable difference` or
//! `not compared`; `test` is `mcnemar-exact`, `sign-flip-exact` or
//! `sign-flip-monte-carlo`.

use crate::table::{Cell, Paired, Report};
use serde_json::{Map, Value, json};

/// The report as a JSON value of the shape above.
pub fn to_json(report: &Report) -> Value {
    let mut metrics = Map::new();
    for key in report.metrics() {
        let d = report.descriptor(key);
        metrics.insert(
            key.id(),
            json!({
                "label": report.label(key),
                "unit": d.unit.name(),
                "range": pair(d.range),
                "higher_is_better": d.higher_is_better,
                "declared": d.declared,
            }),
        );
    }

    let mut models = Map::new();
    for model in report.models() {
        let mut cells = Map::new();
        for key in report.metrics() {
            if let Some(cell) = report.cell(model, key) {
                cells.insert(key.id(), cell_json(cell));
            }
        }
        models.insert(model.clone(), Value::Object(cells));
    }

    let mut differential = Map::new();
    let mut paired = Map::new();
    for model in report.compared() {
        let mut deltas = Map::new();
        let mut pairs = Map::new();
        for key in report.metrics() {
            if let Some(d) = report.delta(model, key) {
                deltas.insert(
                    key.id(),
                    json!({"delta": number(d.delta), "percent": number(d.percent)}),
                );
            }
            if let Some(p) = report.paired(model, key) {
                pairs.insert(key.id(), paired_json(p));
            }
        }
        differential.insert(model.to_string(), Value::Object(deltas));
        paired.insert(model.to_string(), Value::Object(pairs));
    }

    let mut domains = Map::new();
    for model in report.models() {
        let mut per_domain = Map::new();
        for domain in report.domains() {
            let mut cells = Map::new();
            for key in report.domain_metrics() {
                if let Some(cell) = report.domain_cell(model, domain, key) {
                    cells.insert(key.id(), cell_json(cell));
                }
            }
            if !cells.is_empty() {
                per_domain.insert(domain.clone(), Value::Object(cells));
            }
        }
        if !per_domain.is_empty() {
            domains.insert(model.clone(), Value::Object(per_domain));
        }
    }

    let unscored: Vec<Value> = report
        .unscored()
        .iter()
        .map(|u| {
            json!({"benchmark": u.benchmark, "scorer": u.scorer, "model": u.model,
                   "failures": u.failures})
        })
        .collect();

    json!({
        "baseline": report.baseline(),
        "method": {
            "alpha": crate::table::ALPHA,
            "adjustment": "holm",
            "tests": report.tests(),
            "resamples": report.resamples(),
            "seed": report.seed(),
            "permutations": report.permutations(),
            "exact_max": crate::stats::EXACT_MAX,
        },
        "metrics": metrics,
        "models": models,
        "differential": differential,
        "paired": paired,
        "domains": domains,
        "unscored": unscored,
        "judge_agreement": report
            .judge_agreement()
            .iter()
            .map(crate::calibration::to_json)
            .collect::<Vec<_>>(),
    })
}

fn cell_json(cell: &Cell) -> Value {
    json!({
        "mean": number(cell.mean),
        "ci95": pair(cell.ci95),
        "n": cell.n,
        "failures": cell.failures,
        "bounds": pair(cell.bounds),
    })
}

fn paired_json(p: &Paired) -> Value {
    json!({
        "n": p.n,
        "mean": number(p.mean),
        "ci95": pair(p.ci95),
        "test": p.test.map(|t| t.name()),
        "p": number(p.p),
        "p_holm": number(p.p_holm),
        "verdict": p.verdict.text(),
        "equivalence": p.equivalence.map(|e| json!({
            "margin": e.margin, "p": e.p, "equivalent": e.equivalent,
        })),
        "flips": {"threshold": p.flips.threshold, "up": p.flips.up, "down": p.flips.down},
        "mdd": number(p.mdd),
        "bounds": p.bounds.map(|b| json!({
            "n": b.n, "worst": b.worst, "best": b.best,
            "verdict_could_change": b.verdict_could_change,
        })),
    })
}

fn pair(x: Option<(f64, f64)>) -> Value {
    x.map(|(lo, hi)| json!([lo, hi])).unwrap_or(Value::Null)
}

fn number(x: Option<f64>) -> Value {
    x.map(Value::from).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn has_exactly_the_documented_shape() {
        let v = to_json(&fixture::report());
        // Sorted here: serde_json keeps insertion order when a crate in the
        // build turns on its `preserve_order` feature.
        let keys = |x: &Value| {
            let mut k: Vec<String> = x.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let top = keys(&v);
        assert_eq!(
            top,
            [
                "baseline",
                "differential",
                "domains",
                "judge_agreement",
                "method",
                "metrics",
                "models",
                "paired",
                "unscored"
            ]
        );
        assert_eq!(v["baseline"], "base");

        let models = v["models"].as_object().unwrap();
        assert_eq!(models.len(), 2);
        for cells in models.values() {
            for cell in cells.as_object().unwrap().values() {
                assert_eq!(keys(cell), ["bounds", "ci95", "failures", "mean", "n"]);
            }
        }
        let g = &v["models"]["lem"]["gsm8k/correct"];
        assert_eq!(g["mean"], 0.75);
        assert_eq!(g["n"], 4);
        assert_eq!(g["failures"], 0);
        let ci = g["ci95"].as_array().unwrap();
        assert_eq!(ci.len(), 2);
        assert!(ci[0].as_f64().unwrap() <= 0.75 && 0.75 <= ci[1].as_f64().unwrap());

        let t = &v["models"]["lem"]["truthfulqa/truthfulness"];
        assert_eq!(
            (t["mean"].as_f64(), t["n"].as_u64(), t["failures"].as_u64()),
            (Some(9.0), Some(1), Some(1))
        );
        let none = &v["models"]["base"]["lem_only/x"];
        assert!(none["mean"].is_null() && none["ci95"].is_null());
        assert_eq!(none["n"], 0);

        let diff = v["differential"].as_object().unwrap();
        assert_eq!(diff.keys().collect::<Vec<_>>(), ["lem"]);
        let d = &diff["lem"]["gsm8k/correct"];
        assert_eq!(d.as_object().unwrap().len(), 2);
        assert_eq!(
            (d["delta"].as_f64(), d["percent"].as_f64()),
            (Some(0.25), Some(50.0))
        );
        assert!(diff["lem"]["toxigen/kindness"]["percent"].is_null());
        assert_eq!(diff["lem"]["toxigen/kindness"]["delta"], 0.5);
        assert!(diff["lem"]["lem_only/x"]["delta"].is_null());

        let t = &v["models"]["lem"]["truthfulqa/truthfulness"]["bounds"];
        assert_eq!((t[0].as_f64(), t[1].as_f64()), (Some(7.5), Some(9.0)));
        assert!(v["models"]["base"]["gsm8k/correct"]["bounds"].is_null());

        let pg = &v["paired"]["lem"]["gsm8k/correct"];
        assert_eq!(pg["n"], 4);
        assert_eq!(pg["mean"], 0.25);
        assert_eq!(pg["test"], "mcnemar-exact");
        assert_eq!(pg["p"], 1.0);
        assert_eq!(pg["verdict"], "no detectable difference");
        assert_eq!(pg["flips"]["up"], json!(["q2"]));
        assert_eq!(pg["flips"]["down"], json!([]));
        assert!(pg["equivalence"].is_null() && pg["bounds"].is_null());
        let pt = &v["paired"]["lem"]["truthfulqa/truthfulness"];
        assert_eq!(pt["test"], "sign-flip-exact");
        assert_eq!(
            (
                pt["bounds"]["worst"].as_f64(),
                pt["bounds"]["best"].as_f64()
            ),
            (Some(0.5), Some(2.0))
        );
        assert_eq!(v["paired"]["lem"]["lem_only/x"]["verdict"], "not compared");
        assert_eq!(v["method"]["adjustment"], "holm");
        assert_eq!(v["method"]["tests"], 5);
        assert_eq!(v["metrics"]["gsm8k/correct"]["unit"], "percent");
        assert_eq!(v["metrics"]["gsm8k/correct"]["range"], json!([0.0, 1.0]));
        assert_eq!(v["metrics"]["truthfulqa/truthfulness"]["unit"], "number");
        assert_eq!(v["metrics"]["truthfulqa/truthfulness"]["declared"], false);
        assert_eq!(v["unscored"], json!([]));

        let p = &v["domains"]["lem"]["Identity <&>"]["seeds/safety"];
        assert_eq!(
            (p["n"].as_u64(), p["failures"].as_u64()),
            (Some(0), Some(1))
        );
        assert!(p["mean"].is_null());
        assert_eq!(v["domains"]["base"]["Privacy"]["seeds/safety"]["mean"], 0.5);
    }
}
