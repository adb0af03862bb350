//! A small report every renderer's tests share.

use crate::input::{Observation, assign_domains, parse_upstream_scores};
use crate::table::{Report, ReportOptions};
use lem_core::ScoreRecord;
use std::collections::BTreeMap;

/// An upstream score file: `lem` comes first in the file, `base` second.
pub const SCORES: &str = r#"{"scores": {
  "gsm8k": {
    "lem":  {"q1": {"correct": true},  "q2": {"correct": true},
             "q3": {"correct": true},  "q4": {"correct": false, "answer": "7"}},
    "base": {"q1": {"correct": true},  "q2": {"correct": false},
             "q3": {"correct": true},  "q4": {"correct": false}}
  },
  "truthfulqa": {
    "lem":  {"t1": {"truthfulness": 9, "informativeness": 6}, "t2": {"judge": null}},
    "base": {"t1": {"truthfulness": 6, "informativeness": 5},
             "t2": {"truthfulness": 8, "informativeness": 7}}
  },
  "toxigen": {
    "lem":  {"x1": {"kindness": 1}, "x2": {"kindness": 0}},
    "base": {"x1": {"kindness": 0}, "x2": {"kindness": 0}}
  },
  "lem_only": {"lem": {"a": {"x": 2.5}}}
}}"#;

fn seeds_record(model: &str, id: &str, safety: Option<f64>) -> ScoreRecord {
    let (metrics, error) = match safety {
        Some(s) => (format!(r#"{{"safety":{s}}}"#), "null".to_string()),
        None => (
            "{}".into(),
            r#"{"kind":"judge-failed","message":"no verdict"}"#.into(),
        ),
    };
    serde_json::from_str(&format!(
        r#"{{"id":"{id}","model":"{model}","benchmark":"seeds",
            "plugin":{{"name":"seeds","version":"1","sha256":"0"}},
            "metrics":{metrics},"details":null,"error":{error}}}"#
    ))
    .expect("fixture record")
}

/// The fixture's observations: the score file, then seeds records with
/// domains.
pub fn observations() -> Vec<Observation> {
    let mut obs = parse_upstream_scores(SCORES).expect("fixture parses");
    let records = [
        seeds_record("base", "S01", Some(0.5)),
        seeds_record("base", "S02", Some(1.0)),
        seeds_record("lem", "S01", Some(1.0)),
        seeds_record("lem", "S02", None),
    ];
    let mut seeds: Vec<Observation> = records
        .iter()
        .map(|r| Observation::from_record(r, None))
        .collect();
    assign_domains(
        &mut seeds,
        "seeds",
        &BTreeMap::from([
            ("S01".to_string(), "Privacy".to_string()),
            ("S02".to_string(), "Identity <&>".to_string()),
        ]),
    );
    obs.extend(seeds);
    obs
}

/// The fixture's report with default options, but for an order that puts
/// truthfulness before informativeness (as the paper does).
pub fn report() -> Report {
    let options = ReportOptions {
        order: vec![
            "gsm8k/correct".into(),
            "truthfulqa/truthfulness".into(),
            "truthfulqa/informativeness".into(),
        ],
        ..ReportOptions::default()
    };
    Report::build(&observations(), &options).expect("fixture report")
}
