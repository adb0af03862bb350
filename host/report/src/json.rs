//! The report as JSON, for other programs.
//!
//! The shape is fixed:
//!
//! ```text
//! {"baseline": MODEL,
//!  "models": {MODEL: {"BENCHMARK/METRIC": {"mean", "ci95": [lo, hi], "n", "failures"}}},
//!  "differential": {MODEL: {"BENCHMARK/METRIC": {"delta", "percent"}}},
//!  "domains": {MODEL: {DOMAIN: {"BENCHMARK/METRIC": {"mean", "ci95", "n", "failures"}}}}}
//! ```
//!
//! Values are the raw metric values (GSM8K's accuracy is a fraction here,
//! not a percent). A missing mean, interval, delta or percent is `null`.
//! `differential` leaves out the baseline; `domains` holds only the models
//! and domains that were observed, and is empty when nothing has a domain.

use crate::table::{Cell, Report};
use serde_json::{Map, Value, json};

/// The report as a JSON value of the shape above.
pub fn to_json(report: &Report) -> Value {
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
    for model in report.compared() {
        let mut deltas = Map::new();
        for key in report.metrics() {
            if let Some(d) = report.delta(model, key) {
                deltas.insert(
                    key.id(),
                    json!({"delta": number(d.delta), "percent": number(d.percent)}),
                );
            }
        }
        differential.insert(model.to_string(), Value::Object(deltas));
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

    json!({
        "baseline": report.baseline(),
        "models": models,
        "differential": differential,
        "domains": domains,
    })
}

fn cell_json(cell: &Cell) -> Value {
    json!({
        "mean": number(cell.mean),
        "ci95": cell.ci95.map(|(lo, hi)| json!([lo, hi])).unwrap_or(Value::Null),
        "n": cell.n,
        "failures": cell.failures,
    })
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
        assert_eq!(top, ["baseline", "differential", "domains", "models"]);
        assert_eq!(v["baseline"], "base");

        let models = v["models"].as_object().unwrap();
        assert_eq!(models.len(), 2);
        for cells in models.values() {
            for cell in cells.as_object().unwrap().values() {
                assert_eq!(keys(cell), ["ci95", "failures", "mean", "n"]);
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

        let p = &v["domains"]["lem"]["Identity <&>"]["seeds/safety"];
        assert_eq!(
            (p["n"].as_u64(), p["failures"].as_u64()),
            (Some(0), Some(1))
        );
        assert!(p["mean"].is_null());
        assert_eq!(v["domains"]["base"]["Privacy"]["seeds/safety"]["mean"], 0.5);
    }
}
