//! What a report is made from: observations, from lem's score records or
//! from the upstream score files.
//!
//! A failed item carries no values. When the report is built it counts as
//! one failure of every metric that its benchmark has among the successful
//! observations (of any model), since a scorer plugin reports the same
//! metrics for every item it scores; lem's [`ScoreRecord`] with `error` set
//! becomes such a failed observation.

use crate::ReportError;
use lem_core::ScoreRecord;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// One item of one benchmark as answered by one model: its metric values,
/// or the fact that it could not be scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The benchmark's name.
    pub benchmark: String,
    /// The model's name.
    pub model: String,
    /// The item's id.
    pub item_id: String,
    /// The item's domain, where the benchmark has domains (the seeds).
    pub domain: Option<String>,
    /// Metric name → value; empty for a failed item.
    pub metrics: BTreeMap<String, f64>,
    /// The item could not be scored.
    pub failed: bool,
    /// The scorer that produced it, where a benchmark has several (the
    /// seeds: a judge and the heuristic). An item may have one observation
    /// per scorer, and a failure counts only against its own scorer's metrics.
    pub scorer: Option<String>,
    /// What the item browser shows beside the values; empty when unknown
    /// (the upstream score files carry none of it).
    pub detail: Detail,
}

/// An item's trail, for people auditing it: what was sent and answered,
/// what the judge said, why it failed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Detail {
    /// The prompt as sent (after the kernel).
    pub prompt: Option<String>,
    /// The model's response.
    pub response: Option<String>,
    /// Why the item could not be scored: `(kind, message)`.
    pub error: Option<(String, String)>,
    /// The judge's raw answers (or `error: ...` for a call that got none),
    /// in call order.
    pub judge: Vec<String>,
}

impl Observation {
    /// The observation of one of lem's score records, with the item's domain
    /// (records do not carry one; the caller knows it from the benchmark).
    /// A record with `error` set is a failed observation with no values.
    pub fn from_record(record: &ScoreRecord, domain: Option<String>) -> Observation {
        let failed = record.error.is_some();
        Observation {
            benchmark: record.benchmark.clone(),
            model: record.model.clone(),
            item_id: record.id.clone(),
            domain,
            metrics: if failed {
                BTreeMap::new()
            } else {
                record.metrics.clone()
            },
            failed,
            scorer: Some(record.plugin.name.clone()),
            detail: Detail {
                prompt: None,
                response: None,
                error: record
                    .error
                    .as_ref()
                    .map(|e| (e.kind.clone(), e.message.clone())),
                judge: record
                    .judge
                    .iter()
                    .flat_map(|j| &j.calls)
                    .map(|c| match (&c.answer, &c.error) {
                        (Some(a), _) => a.clone(),
                        (None, Some(e)) => format!("error: {e}"),
                        (None, None) => "(no answer)".to_string(),
                    })
                    .collect(),
            },
        }
    }
}

/// Sets the domain of every observation of `benchmark` whose item id is a key
/// of `domains` (item id → domain), e.g. from the seeds' `domain` fields.
/// Observations of other benchmarks, and items not listed, are left alone.
pub fn assign_domains(
    observations: &mut [Observation],
    benchmark: &str,
    domains: &BTreeMap<String, String>,
) {
    for o in observations.iter_mut().filter(|o| o.benchmark == benchmark) {
        if let Some(d) = domains.get(&o.item_id) {
            o.domain = Some(d.clone());
        }
    }
}

/// Reads an upstream score file,
/// `{"scores": {BENCHMARK: {MODEL: {ITEM_ID: {METRIC: VALUE, ...}}}}}`,
/// into observations in file order (benchmark, then model, then item).
///
/// Numbers are metric values; booleans count as 1 and 0 (GSM8K's
/// `correct`); strings, nulls, arrays and objects are ignored. An item with
/// no numeric or boolean field at all is a failed observation. Other
/// top-level keys are ignored. A file of any other shape is an error naming
/// the place (as a JSON Pointer) and what was expected there.
pub fn parse_upstream_scores(text: &str) -> Result<Vec<Observation>, ReportError> {
    let root: Json = serde_json::from_str(text)?;
    let top = root.object("", "an object with a `scores` key")?;
    let scores = top
        .iter()
        .find(|(k, _)| k == "scores")
        .map(|(_, v)| v)
        .ok_or_else(|| ReportError::Shape {
            path: String::new(),
            expected: "an object with a `scores` key",
            found: "an object without one",
        })?;
    let mut out = Vec::new();
    let path = "/scores".to_string();
    for (benchmark, models) in scores.object(&path, "an object of benchmarks")? {
        let path = pointer(&path, benchmark);
        for (model, items) in models.object(&path, "an object of models")? {
            let path = pointer(&path, model);
            for (item_id, fields) in items.object(&path, "an object of items")? {
                let path = pointer(&path, item_id);
                let fields = fields.object(&path, "an object of metric values")?;
                let metrics: BTreeMap<String, f64> = fields
                    .iter()
                    .filter_map(|(name, v)| match v {
                        Json::Number(x) => Some((name.clone(), *x)),
                        Json::Bool(b) => Some((name.clone(), if *b { 1.0 } else { 0.0 })),
                        _ => None,
                    })
                    .collect();
                out.push(Observation {
                    benchmark: benchmark.clone(),
                    model: model.clone(),
                    item_id: item_id.clone(),
                    domain: None,
                    failed: metrics.is_empty(),
                    scorer: None,
                    metrics,
                    detail: Detail::default(),
                });
            }
        }
    }
    Ok(out)
}

/// `base` extended by one JSON Pointer token (RFC 6901 escaping).
fn pointer(base: &str, key: &str) -> String {
    format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// A JSON value whose objects keep their keys in file order (serde_json's
/// own map sorts them unless a feature is on), so "input order" means the
/// file's order, and whose repeated keys are an error rather than lost.
#[derive(Debug)]
enum Json {
    Object(Vec<(String, Json)>),
    Number(f64),
    Bool(bool),
    String,
    Array,
    Null,
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Object(_) => "an object",
            Json::Number(_) => "a number",
            Json::Bool(_) => "a boolean",
            Json::String => "a string",
            Json::Array => "an array",
            Json::Null => "null",
        }
    }

    /// The entries of an object with no repeated key, or a shape error at
    /// `path`.
    fn object(&self, path: &str, expected: &'static str) -> Result<&[(String, Json)], ReportError> {
        let Json::Object(entries) = self else {
            return Err(ReportError::Shape {
                path: path.to_string(),
                expected,
                found: self.kind(),
            });
        };
        let mut seen = std::collections::BTreeSet::new();
        for (k, _) in entries {
            if !seen.insert(k.as_str()) {
                return Err(ReportError::DuplicateKey {
                    path: path.to_string(),
                    key: k.clone(),
                });
            }
        }
        Ok(entries)
    }
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Number(v))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Json, E> {
        Ok(Json::String)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Json::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            entries.push((k, v));
        }
        Ok(Json::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_error(text: &str) -> (String, &'static str, &'static str) {
        match parse_upstream_scores(text) {
            Err(ReportError::Shape {
                path,
                expected,
                found,
            }) => (path, expected, found),
            other => panic!("expected a shape error, got {other:?}"),
        }
    }

    #[test]
    fn reads_numbers_and_booleans_and_ignores_the_rest() {
        let text = r#"{"meta": "ignored", "scores": {
            "gsm8k": {"base": {
                "q1": {"correct": true, "answer": "42", "extra": null},
                "q2": {"correct": false, "detail": {"x": 1}, "tries": [1]}
            }},
            "truthfulqa": {"lem": {"t1": {"truthfulness": 7, "informativeness": 8.5}}}
        }}"#;
        let obs = parse_upstream_scores(text).unwrap();
        assert_eq!(obs.len(), 3);
        assert_eq!(
            (
                obs[0].benchmark.as_str(),
                obs[0].model.as_str(),
                obs[0].item_id.as_str()
            ),
            ("gsm8k", "base", "q1")
        );
        assert_eq!(obs[0].metrics, BTreeMap::from([("correct".into(), 1.0)]));
        assert_eq!(obs[1].metrics, BTreeMap::from([("correct".into(), 0.0)]));
        assert!(!obs[1].failed);
        assert_eq!(obs[2].metrics["truthfulness"], 7.0);
        assert_eq!(obs[2].metrics["informativeness"], 8.5);
        assert_eq!(obs[2].domain, None);
    }

    #[test]
    fn keeps_file_order_not_sorted_order() {
        let text = r#"{"scores": {"b": {"zeta": {"2": {"m": 1}, "1": {"m": 0}},
                                      "alpha": {"1": {"m": 1}}}}}"#;
        let obs = parse_upstream_scores(text).unwrap();
        let order: Vec<(&str, &str)> = obs
            .iter()
            .map(|o| (o.model.as_str(), o.item_id.as_str()))
            .collect();
        assert_eq!(order, [("zeta", "2"), ("zeta", "1"), ("alpha", "1")]);
    }

    #[test]
    fn an_item_without_values_is_a_failure() {
        let text = r#"{"scores": {"b": {"m": {"i": {"judge": null, "note": "timeout"}}}}}"#;
        let obs = parse_upstream_scores(text).unwrap();
        assert!(obs[0].failed);
        assert!(obs[0].metrics.is_empty());
    }

    #[test]
    fn bad_shapes_name_the_place() {
        assert_eq!(
            shape_error("[1, 2]"),
            ("".into(), "an object with a `scores` key", "an array")
        );
        assert_eq!(
            shape_error(r#"{"score": {}}"#),
            (
                "".into(),
                "an object with a `scores` key",
                "an object without one"
            )
        );
        assert_eq!(
            shape_error(r#"{"scores": []}"#),
            ("/scores".into(), "an object of benchmarks", "an array")
        );
        assert_eq!(
            shape_error(r#"{"scores": {"gsm8k": {"base": {"q1": true}}}}"#),
            (
                "/scores/gsm8k/base/q1".into(),
                "an object of metric values",
                "a boolean"
            )
        );
        assert_eq!(
            shape_error(r#"{"scores": {"a/b": {"m~1": "x"}}}"#),
            ("/scores/a~1b/m~01".into(), "an object of items", "a string")
        );
        let err = parse_upstream_scores(r#"{"scores": {"g": 3}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "score file at /scores/g: expected an object of models, found a number"
        );
    }

    #[test]
    fn repeated_keys_and_broken_json_are_errors() {
        let err =
            parse_upstream_scores(r#"{"scores": {"g": {"m": {"1": {}, "1": {}}}}}"#).unwrap_err();
        assert!(
            matches!(&err, ReportError::DuplicateKey { path, key } if path == "/scores/g/m" && key == "1"),
            "{err:?}"
        );
        let err = parse_upstream_scores("{\"scores\": {\n\"g\": }").unwrap_err();
        assert!(matches!(err, ReportError::Json(_)));
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn records_become_observations() {
        let json = r#"{"id":"q1","model":"m","benchmark":"seeds",
            "plugin":{"name":"p","version":"1","sha256":"0"},
            "metrics":{"safety":0.5},"details":null,"error":null}"#;
        let ok: ScoreRecord = serde_json::from_str(json).unwrap();
        let o = Observation::from_record(&ok, Some("Privacy".into()));
        assert_eq!(o.domain.as_deref(), Some("Privacy"));
        assert_eq!(o.metrics["safety"], 0.5);
        assert!(!o.failed);

        let bad: ScoreRecord = serde_json::from_str(&json.replace(
            r#""error":null"#,
            r#""error":{"kind":"trap","message":"boom"}"#,
        ))
        .unwrap();
        let o = Observation::from_record(&bad, None);
        assert!(o.failed && o.metrics.is_empty());
    }

    #[test]
    fn domains_are_assigned_by_item() {
        let mut obs = vec![
            Observation {
                benchmark: "seeds".into(),
                model: "m".into(),
                item_id: "S01".into(),
                domain: None,
                metrics: BTreeMap::new(),
                failed: true,
                scorer: None,
                detail: Detail::default(),
            },
            Observation {
                benchmark: "other".into(),
                model: "m".into(),
                item_id: "S01".into(),
                domain: None,
                metrics: BTreeMap::new(),
                failed: true,
                scorer: None,
                detail: Detail::default(),
            },
        ];
        assign_domains(
            &mut obs,
            "seeds",
            &BTreeMap::from([("S01".into(), "Privacy".into())]),
        );
        assert_eq!(obs[0].domain.as_deref(), Some("Privacy"));
        assert_eq!(obs[1].domain, None);
    }
}
