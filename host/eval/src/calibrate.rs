//! How far a judge agrees with a reference judge: recorded responses
//! re-judged by the benchmark's scorer plugins (the [`score`](crate::score)
//! pass, with the same [`BackendJudge`] as `lem score`) and held against the
//! reference's scores of the same items, field by field
//! ([`lem_report::calibration`] does the statistics).
//!
//! The reference is a score file in the upstream layout,
//! `{"scores": {BENCHMARK: {MODEL: {ITEM_ID: {FIELD: VALUE, ...}}}}}`. A
//! field is a metric that one of the benchmark's scorers emits and the
//! reference also has, matched by name; the others are listed, not guessed
//! at. Responses whose item has no reference scores are skipped and counted.
//! An item the judge fails on (no answer, an answer the scorer cannot read)
//! is a counted failure of each of its scorer's fields, never a score.

use crate::error::{Error, IoContext, Result};
use crate::event::{Event, Sink, Task};
use crate::judge::BackendJudge;
use crate::score::{self, ScoreJob};
use lem_core::jsonl::{self, JsonlError, Located};
use lem_core::{BenchmarkItem, ResponseRecord, ScoreRecord};
use lem_plugin_host::{Judge, Runtime};
use lem_report::{Calibration, FieldAgreement, Judged};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// The upstream layout, for error messages.
const REFERENCE_LAYOUT: &str = "{\"scores\": {BENCHMARK: {MODEL: {ITEM_ID: {FIELD: VALUE, ...}}}}} (the upstream judge-scores layout)";

/// Everything one calibration needs.
pub struct CalibrateJob<'a> {
    /// A shipped benchmark name or a manifest path.
    pub benchmark: &'a str,
    /// The benchmark's data, if not the manifest's file (the judges'
    /// prompts need the items: TruthfulQA's reference answers, say).
    pub data: Option<&'a Path>,
    /// Recorded responses (JSONL, as `lem generate` writes), of one model.
    pub responses: &'a Path,
    /// The reference scores.
    pub reference: &'a Path,
    /// The model key inside the reference (default: the responses' model).
    pub model: Option<&'a str>,
    /// Judge at most this many responses (the first ones that have a reference).
    pub limit: Option<usize>,
    /// The judge under test.
    pub judge: &'a Arc<BackendJudge>,
    /// Items judged at once.
    pub concurrency: usize,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
    /// The bootstrap generator's seed.
    pub seed: u64,
}

/// What a calibration found.
pub struct CalibrationOutcome {
    /// The agreement table, ready to render with `lem_report::calibration`.
    pub calibration: Calibration,
    /// The judge's score records of the responses judged, in response order
    /// (one per response and scorer).
    pub records: Vec<ScoreRecord>,
}

/// Re-judges the responses and measures agreement with the reference, field
/// by field. Progress goes to `sink` as the score pass's events, plus
/// notices for skipped responses and the judge's cache counts.
///
/// Everything that can be checked without the judge is checked first: the
/// benchmark, its data, the responses file, the reference's layout, that
/// the reference has the benchmark and model, that some field matches a
/// scorer metric, and that some response has a reference.
pub fn calibrate(
    job: &CalibrateJob<'_>,
    runtime: &Runtime,
    sink: &dyn Sink,
) -> Result<CalibrationOutcome> {
    let manifest = crate::resolve::benchmark(job.benchmark)?;
    if manifest.scorers.is_empty() {
        return Err(Error::Invalid(format!(
            "benchmark `{}` names no scorer plugin (add a [[scorers]] entry to its manifest)",
            manifest.name
        )));
    }
    let items: HashMap<String, Located<BenchmarkItem>> =
        crate::data::load_items(&manifest, job.data)?
            .into_iter()
            .map(|item| (item.value.id.clone(), item))
            .collect();
    let responses = read_responses(job.responses, &manifest.name, &items)?;
    let model = match job.model {
        Some(model) => model.to_string(),
        None => responses_model(job.responses, &responses)?,
    };
    let reference = read_reference(job.reference, &manifest.name, &model)?;

    let scorers = score::load_scorers(
        runtime,
        &manifest,
        Some(job.judge.clone()),
        &lem_core::Limits::default(),
        &|_| {},
    )?;
    // Each metric with the scorer that emits it (two scorers of one
    // benchmark never share a metric: `load_scorers` refuses it).
    let metrics: Vec<(String, usize)> = scorers
        .iter()
        .enumerate()
        .flat_map(|(s, scorer)| {
            scorer
                .plugin
                .info()
                .metric_names()
                .map(move |m| (m.to_string(), s))
        })
        .collect();
    let fields: Vec<(String, usize)> = metrics
        .iter()
        .filter(|(m, _)| reference.fields.contains(m))
        .cloned()
        .collect();
    let unmatched_reference_fields: Vec<String> = reference
        .fields
        .iter()
        .filter(|f| !metrics.iter().any(|(m, _)| m == *f))
        .cloned()
        .collect();
    let unmatched_judge_metrics: Vec<String> = metrics
        .iter()
        .filter(|(m, _)| !reference.fields.contains(m))
        .map(|(m, _)| m.clone())
        .collect();
    if fields.is_empty() {
        return Err(Error::Reference {
            path: job.reference.to_path_buf(),
            message: format!(
                "no field of model `{model}` under `{}` matches a metric of the benchmark's scorers \
                 (reference fields: {}; scorer metrics: {}); fields are matched by name",
                manifest.name,
                names(&reference.fields),
                names(&unmatched_judge_metrics),
            ),
        });
    }

    let (with_reference, skipped): (Vec<_>, Vec<_>) = responses
        .into_iter()
        .partition(|r| reference.items.contains_key(&r.value.id));
    if with_reference.is_empty() {
        return Err(Error::NoOverlap {
            responses: job.responses.to_path_buf(),
            reference: job.reference.to_path_buf(),
            benchmark: manifest.name.clone(),
            model,
            hint: format!(
                "the responses' ids (e.g. `{}`) are not among the reference's (e.g. `{}`); \
                 check that both files are of the same items, and --model",
                skipped.first().map_or("", |r| r.value.id.as_str()),
                reference.items.keys().next().map_or("", String::as_str),
            ),
        });
    }
    if !skipped.is_empty() {
        sink.event(Event::Notice(format!(
            "{} of {} responses skipped: the reference has no scores for their item (first: `{}`)",
            skipped.len(),
            skipped.len() + with_reference.len(),
            skipped[0].value.id
        )));
    }
    let mut selected = with_reference;
    if let Some(limit) = job.limit {
        selected.truncate(limit);
    }

    let records = score::score(
        &ScoreJob {
            benchmark: &manifest.name,
            items: &items,
            responses: &selected,
            scorers: &scorers,
            judge: Some(job.judge),
            concurrency: job.concurrency,
            task: Task::score(&manifest.name),
        },
        sink,
    )?;
    let (hits, asked) = job.judge.counts();
    sink.event(Event::Notice(format!(
        "judge {}: {asked} requests sent, {hits} answers from the cache",
        job.judge.identity()
    )));

    let judged: Vec<&ResponseRecord> = selected.iter().map(|r| &r.value).collect();
    let fields = pair_fields(&judged, &records, scorers.len(), &fields, &reference)
        .into_iter()
        .map(|(field, items)| FieldAgreement::compute(&field, &items, job.resamples, job.seed))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CalibrationOutcome {
        calibration: Calibration {
            benchmark: manifest.name.clone(),
            judge: job.judge.identity(),
            reference: job.reference.display().to_string(),
            reference_model: reference.model,
            responses: job.responses.display().to_string(),
            judged: judged.len(),
            skipped: skipped.len(),
            limit: job.limit,
            unmatched_reference_fields,
            unmatched_judge_metrics,
            resamples: job.resamples,
            seed: job.seed,
            fields,
        },
        records,
    })
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}

/// One model's reference scores for one benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The model key.
    pub model: String,
    /// Item id → field → value (numbers; booleans as 0/1). Items with no
    /// numeric field are left out: they have no reference.
    pub items: BTreeMap<String, BTreeMap<String, f64>>,
    /// Every numeric field of those items, in order of first appearance.
    pub fields: Vec<String>,
}

/// Reads `model`'s scores of `benchmark` from the reference file at `path`
/// (see the module documentation for the layout). A file that is not that
/// layout, or lacks the benchmark or the model, is an [`Error::Reference`]
/// saying what the file has instead.
pub fn read_reference(path: &Path, benchmark: &str, model: &str) -> Result<Reference> {
    let text = std::fs::read_to_string(path).at(path)?;
    let wrong = |message: String| Error::Reference {
        path: path.to_path_buf(),
        message,
    };
    let observations = lem_report::parse_upstream_scores(&text)
        .map_err(|e| wrong(format!("{e}; --reference takes {REFERENCE_LAYOUT}")))?;
    let mut benchmarks: Vec<&str> = Vec::new();
    let mut models: Vec<&str> = Vec::new();
    for o in &observations {
        if !benchmarks.contains(&o.benchmark.as_str()) {
            benchmarks.push(&o.benchmark);
        }
        if o.benchmark == benchmark && !models.contains(&o.model.as_str()) {
            models.push(&o.model);
        }
    }
    if models.is_empty() {
        return Err(wrong(format!(
            "no scores for benchmark `{benchmark}` (the file has: {}); pass the --benchmark these scores are of",
            if benchmarks.is_empty() {
                "nothing".to_string()
            } else {
                benchmarks.join(", ")
            }
        )));
    }
    if !models.contains(&model) {
        return Err(wrong(format!(
            "no model `{model}` under benchmark `{benchmark}` (models there: {}); pass --model with one of them",
            models.join(", ")
        )));
    }
    let mut items = BTreeMap::new();
    let mut fields: Vec<String> = Vec::new();
    for o in observations
        .into_iter()
        .filter(|o| o.benchmark == benchmark && o.model == model && !o.failed)
    {
        for name in o.metrics.keys() {
            if !fields.contains(name) {
                fields.push(name.clone());
            }
        }
        items.insert(o.item_id, o.metrics);
    }
    Ok(Reference {
        model: model.to_string(),
        items,
        fields,
    })
}

/// Reads recorded responses of `benchmark`: every line a response record,
/// each id once and in the benchmark's `items`.
pub fn read_responses(
    path: &Path,
    benchmark: &str,
    items: &HashMap<String, Located<BenchmarkItem>>,
) -> Result<Vec<Located<ResponseRecord>>> {
    let responses = jsonl::read::<ResponseRecord>(path).map_err(|e| match e {
        JsonlError::Line {
            path,
            line,
            message,
        } => Error::Data {
            path,
            line,
            message: format!(
                "{message}; --responses takes JSONL, one object per line with id, benchmark, \
                 model, prompt, response and elapsed_seconds, as `lem generate` writes"
            ),
        },
        other => Error::Jsonl(other),
    })?;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in &responses {
        let at = |message: String| Error::Data {
            path: path.to_path_buf(),
            line: r.line,
            message,
        };
        if let Some(first) = seen.insert(&r.value.id, r.line) {
            return Err(at(format!(
                "duplicate response for id `{}` (first on line {first}); remove one",
                r.value.id
            )));
        }
        if r.value.benchmark != benchmark {
            return Err(at(format!(
                "response is for benchmark `{}`, but calibrating on `{benchmark}`; pass --benchmark {}",
                r.value.benchmark, r.value.benchmark
            )));
        }
        if !items.contains_key(&r.value.id) {
            return Err(at(format!(
                "id `{}` is not in the benchmark data; pass --data with the file these responses answer",
                r.value.id
            )));
        }
    }
    Ok(responses)
}

/// The one model the responses are of, or an error asking for `--model`.
fn responses_model(path: &Path, responses: &[Located<ResponseRecord>]) -> Result<String> {
    let mut models: Vec<&str> = Vec::new();
    for r in responses {
        if !models.contains(&r.value.model.as_str()) {
            models.push(&r.value.model);
        }
    }
    match models.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(Error::Invalid(format!(
            "{}: responses of several models ({}); calibrate one model's responses at a time, \
             or pass --model to name the reference's model key",
            path.display(),
            models.join(", ")
        ))),
    }
}

/// Per field, what the judge made of each judged item that has a reference
/// value for it, in response order. `records` are the score pass's: one
/// per (response, scorer), in response order then scorer order.
fn pair_fields(
    responses: &[&ResponseRecord],
    records: &[ScoreRecord],
    scorers: usize,
    fields: &[(String, usize)],
    reference: &Reference,
) -> Vec<(String, Vec<Judged>)> {
    fields
        .iter()
        .map(|(field, scorer)| {
            let judged = responses
                .iter()
                .enumerate()
                .filter_map(|(r, response)| {
                    let value = *reference.items.get(&response.id)?.get(field)?;
                    let record = records.get(r * scorers + scorer)?;
                    debug_assert_eq!(record.id, response.id);
                    Some(match (&record.error, record.metrics.get(field)) {
                        (Some(error), _) => Judged::Failed {
                            kind: error.kind.clone(),
                        },
                        (None, Some(judge)) => Judged::Scored {
                            judge: *judge,
                            reference: value,
                        },
                        (None, None) => Judged::Failed {
                            kind: "missing-metric".to_string(),
                        },
                    })
                })
                .collect();
            (field.clone(), judged)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lem_core::{PluginIdentity, ScoreError};
    use serde_json::json;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const REFERENCE: &str = r#"{"scores": {
        "truthfulqa": {
            "m": {
                "q1": {"truthfulness": 9, "informativeness": 7, "reasoning": "fine"},
                "q2": {"truthfulness": 2, "helpfulness": 5},
                "q3": {"reasoning": "no numbers: no reference"}
            },
            "other": {"q1": {"truthfulness": 1}}
        },
        "toxigen": {"m": {"t1": {"kindness": 3}}}
    }}"#;

    #[test]
    fn reads_one_models_reference_and_its_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "ref.json", REFERENCE);
        let r = read_reference(&path, "truthfulqa", "m").unwrap();
        assert_eq!(r.model, "m");
        assert_eq!(r.fields, ["informativeness", "truthfulness", "helpfulness"]);
        assert_eq!(r.items.keys().collect::<Vec<_>>(), ["q1", "q2"]);
        assert_eq!(r.items["q2"]["truthfulness"], 2.0);
    }

    #[test]
    fn a_wrong_reference_says_what_the_file_has() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "ref.json", REFERENCE);
        let err = read_reference(&path, "do_not_answer", "m")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(
            err.contains(
                "no scores for benchmark `do_not_answer` (the file has: truthfulqa, toxigen)"
            ),
            "{err}"
        );
        let err = read_reference(&path, "truthfulqa", "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "no model `x` under benchmark `truthfulqa` (models there: m, other); pass --model"
            ),
            "{err}"
        );
        for bad in ["[1, 2]", r#"{"scores": {"truthfulqa": [1]}}"#, "not json"] {
            let path = write(dir.path(), "bad.json", bad);
            let err = read_reference(&path, "truthfulqa", "m")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("--reference takes {\"scores\""),
                "{bad}: {err}"
            );
            assert!(err.starts_with(&path.display().to_string()), "{err}");
        }
        let err = read_reference(&dir.path().join("missing.json"), "truthfulqa", "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.json"), "{err}");
    }

    fn items(ids: &[&str]) -> HashMap<String, Located<BenchmarkItem>> {
        ids.iter()
            .map(|id| {
                let record = json!({"id": id}).as_object().unwrap().clone();
                (
                    id.to_string(),
                    Located {
                        line: 1,
                        value: BenchmarkItem::from_record(record, "id").unwrap(),
                    },
                )
            })
            .collect()
    }

    fn response(id: &str, model: &str) -> String {
        json!({"id": id, "benchmark": "truthfulqa", "model": model, "prompt": "p",
               "response": "r", "elapsed_seconds": 0.0})
        .to_string()
    }

    #[test]
    fn bad_responses_name_the_file_line_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let known = items(&["q1", "q2"]);
        let cases = [
            (
                "{\"id\": \"q1\"\n".to_string(),
                "responses.jsonl:1: not valid JSON",
                "--responses takes JSONL",
            ),
            (
                "{\"scores\": {}}\n".to_string(),
                "responses.jsonl:1: ",
                "--responses takes JSONL",
            ),
            (
                format!("{}\n{}\n", response("q1", "m"), response("q1", "m")),
                "responses.jsonl:2: ",
                "duplicate response for id `q1`",
            ),
            (
                format!("{}\n", response("q9", "m")),
                "responses.jsonl:1: ",
                "pass --data",
            ),
            (
                format!("{}\n", response("q1", "m").replace("truthfulqa", "toxigen")),
                "responses.jsonl:1: ",
                "pass --benchmark toxigen",
            ),
        ];
        for (text, place, what) in cases {
            let path = write(dir.path(), "responses.jsonl", &text);
            let err = read_responses(&path, "truthfulqa", &known)
                .unwrap_err()
                .to_string();
            assert!(err.contains(place) && err.contains(what), "{text}: {err}");
        }
        let path = write(
            dir.path(),
            "responses.jsonl",
            &format!("{}\n{}\n", response("q1", "a"), response("q2", "b")),
        );
        let responses = read_responses(&path, "truthfulqa", &known).unwrap();
        let err = responses_model(&path, &responses).unwrap_err().to_string();
        assert!(
            err.contains("several models (a, b)") && err.contains("--model"),
            "{err}"
        );
        assert_eq!(responses_model(&path, &responses[..1]).unwrap(), "a");
    }

    fn record(id: &str, plugin: &str, metrics: &[(&str, f64)], error: Option<&str>) -> ScoreRecord {
        ScoreRecord {
            id: id.into(),
            model: "m".into(),
            benchmark: "b".into(),
            plugin: PluginIdentity {
                name: plugin.into(),
                version: "1".into(),
                sha256: "0".into(),
            },
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            details: None,
            error: error.map(|kind| ScoreError {
                kind: kind.into(),
                message: "m".into(),
            }),
            kernel: None,
            domain: None,
            judge: None,
        }
    }

    #[test]
    fn pairs_by_field_counting_failures_and_skipping_missing_reference_values() {
        let reference = Reference {
            model: "m".into(),
            items: BTreeMap::from([
                (
                    "q1".to_string(),
                    BTreeMap::from([("a".to_string(), 9.0), ("c".to_string(), 1.0)]),
                ),
                ("q2".to_string(), BTreeMap::from([("a".to_string(), 4.0)])),
                (
                    "q3".to_string(),
                    BTreeMap::from([("a".to_string(), 5.0), ("c".to_string(), 2.0)]),
                ),
            ]),
            fields: vec!["a".into(), "c".into()],
        };
        let responses: Vec<ResponseRecord> = ["q1", "q2", "q3"]
            .iter()
            .map(|id| serde_json::from_str(&response(id, "m")).unwrap())
            .collect();
        let refs: Vec<&ResponseRecord> = responses.iter().collect();
        // Two scorers: s1 emits a and b, s2 emits c.
        let records = vec![
            record("q1", "s1", &[("a", 8.0), ("b", 1.0)], None),
            record("q1", "s2", &[("c", 1.0)], None),
            record("q2", "s1", &[], Some("judge-unparsable")),
            record("q2", "s2", &[], Some("judge-failed")),
            record("q3", "s1", &[("a", 5.0), ("b", 1.0)], None),
            record("q3", "s2", &[], Some("judge-unparsable")),
        ];
        let fields = vec![("a".to_string(), 0), ("c".to_string(), 1)];
        let paired = pair_fields(&refs, &records, 2, &fields, &reference);
        assert_eq!(
            paired,
            vec![
                (
                    "a".to_string(),
                    vec![
                        Judged::Scored {
                            judge: 8.0,
                            reference: 9.0
                        },
                        Judged::Failed {
                            kind: "judge-unparsable".into()
                        },
                        Judged::Scored {
                            judge: 5.0,
                            reference: 5.0
                        },
                    ]
                ),
                // q2 has no reference value of c: not counted, even though
                // its judge failed.
                (
                    "c".to_string(),
                    vec![
                        Judged::Scored {
                            judge: 1.0,
                            reference: 1.0
                        },
                        Judged::Failed {
                            kind: "judge-unparsable".into()
                        },
                    ]
                ),
            ]
        );
    }
}
