//! The records lem reads and writes, in the upstream JSONL layouts.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// One benchmark record: its id and the whole record, kept as JSON so any
/// benchmark's fields reach its plugins unchanged.
#[derive(Debug, Clone)]
pub struct BenchmarkItem {
    /// The item's id.
    pub id: String,
    /// The whole record.
    pub record: Map<String, Value>,
}

impl BenchmarkItem {
    /// Takes the id from `id_field` of a parsed record.
    pub fn from_record(record: Map<String, Value>, id_field: &str) -> Result<Self, String> {
        let id = match record.get(id_field) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(format!(
                    "field `{id_field}` should be a non-empty string id, found {other}"
                ));
            }
            None => return Err(format!("missing id field `{id_field}`")),
        };
        Ok(BenchmarkItem { id, record })
    }

    /// The record as JSON text, as plugins receive it.
    pub fn record_json(&self) -> String {
        Value::Object(self.record.clone()).to_string()
    }
}

/// A model's response to one item (the upstream layout, plus optional
/// generation facts that `lem generate` adds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseRecord {
    /// The item's id.
    pub id: String,
    /// The benchmark's name.
    pub benchmark: String,
    /// The model's name.
    pub model: String,
    /// The prompt as sent (for auditing).
    pub prompt: String,
    /// The model's answer.
    pub response: String,
    /// Wall time of the generation.
    pub elapsed_seconds: f64,
    /// Anything else the producer recorded (tokens, sampling settings, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResponseRecord {
    /// The messages sent to the model, after the kernel, as `lem run` and
    /// `lem generate` record them (`messages`). Empty when the record does
    /// not have them; an entry without a text `role` and `content` is
    /// skipped.
    pub fn messages(&self) -> Vec<ChatMessage> {
        let Some(Value::Array(messages)) = self.extra.get("messages") else {
            return Vec::new();
        };
        messages
            .iter()
            .filter_map(|m| {
                Some(ChatMessage {
                    role: m.get("role")?.as_str()?.to_string(),
                    content: m.get("content")?.as_str()?.to_string(),
                })
            })
            .collect()
    }
}

/// Which plugin produced a score: enough to audit and replay it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginIdentity {
    /// The plugin's own name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// SHA-256 of the `.wasm` file.
    pub sha256: String,
}

/// Why an item has no score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreError {
    /// A short machine-readable kind: `trap`, `out-of-fuel`, `timeout`,
    /// `memory-limit`, `output-too-large`, `invalid-input`, `judge-failed`,
    /// `judge-unparsable`, `internal`, `bad-output`.
    pub kind: String,
    /// What happened, for people.
    pub message: String,
}

/// One scored item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreRecord {
    /// The item's id.
    pub id: String,
    /// The model whose response was scored.
    pub model: String,
    /// The benchmark's name.
    pub benchmark: String,
    /// The scorer plugin.
    pub plugin: PluginIdentity,
    /// Metric name → value; empty when `error` is set.
    pub metrics: BTreeMap<String, f64>,
    /// The plugin's JSON details, if any, kept as the plugin wrote them
    /// (checked to be JSON, never re-parsed into a tree).
    pub details: Option<Box<serde_json::value::RawValue>>,
    /// Set when the item could not be scored.
    pub error: Option<ScoreError>,
    /// The kernel the response was generated under (`none` when plain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// The item's domain or category, when its benchmark has one (for
    /// per-domain breakdowns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The judge the plugin consulted, and what it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeTrail>,
}

/// Who judged an item and what they said: the audit trail of a judged score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeTrail {
    /// The judge's model spec (e.g. `openai:http://host/v1#model`).
    pub model: String,
    /// Every call the plugin made for this item, in order.
    pub calls: Vec<JudgeExchange>,
}

/// One judge call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeExchange {
    /// SHA-256 naming the request (its answer-cache key).
    pub request_sha256: String,
    /// The judge's raw answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Why there was no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the answer came from the cache of an earlier run.
    #[serde(default)]
    pub cached: bool,
    /// Why the judge's generation stopped (`stop`, `length`, ...), when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

/// Per-model summary of a set of score records: means over the items that
/// were scored; failed items are counted, never averaged in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    /// The benchmark.
    pub benchmark: String,
    /// The model.
    pub model: String,
    /// Items attempted.
    pub n: usize,
    /// Items that could not be scored.
    pub failures: usize,
    /// Metric → mean over the scored items.
    pub metrics: BTreeMap<String, f64>,
}

impl ScoreSummary {
    /// One summary per (benchmark, model), in order of first appearance.
    pub fn of(records: &[ScoreRecord]) -> Vec<ScoreSummary> {
        let mut keys: Vec<(&str, &str)> = Vec::new();
        for r in records {
            if !keys.contains(&(r.benchmark.as_str(), r.model.as_str())) {
                keys.push((&r.benchmark, &r.model));
            }
        }
        keys.into_iter()
            .map(|(benchmark, model)| {
                let group: Vec<&ScoreRecord> = records
                    .iter()
                    .filter(|r| r.benchmark == benchmark && r.model == model)
                    .collect();
                let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
                for r in group.iter().filter(|r| r.error.is_none()) {
                    for (name, value) in &r.metrics {
                        let entry = sums.entry(name.clone()).or_default();
                        entry.0 += value;
                        entry.1 += 1;
                    }
                }
                ScoreSummary {
                    benchmark: benchmark.to_string(),
                    model: model.to_string(),
                    n: group.len(),
                    failures: group.iter().filter(|r| r.error.is_some()).count(),
                    metrics: sums
                        .into_iter()
                        .map(|(k, (sum, count))| (k, sum / count as f64))
                        .collect(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(model: &str, accuracy: Option<f64>) -> ScoreRecord {
        ScoreRecord {
            id: "x".into(),
            model: model.into(),
            benchmark: "gsm8k".into(),
            plugin: PluginIdentity {
                name: "gsm8k".into(),
                version: "0.1.0".into(),
                sha256: "0".repeat(64),
            },
            metrics: accuracy
                .map(|a| [("accuracy".to_string(), a)].into())
                .unwrap_or_default(),
            details: None,
            error: accuracy.is_none().then(|| ScoreError {
                kind: "trap".into(),
                message: "boom".into(),
            }),
            kernel: None,
            domain: None,
            judge: None,
        }
    }

    #[test]
    fn failures_are_counted_not_averaged() {
        let records = [
            record("a", Some(1.0)),
            record("a", Some(0.0)),
            record("a", None),
            record("b", Some(1.0)),
        ];
        let s = ScoreSummary::of(&records);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].n, s[0].failures, s[0].metrics["accuracy"]),
            (3, 1, 0.5)
        );
        assert_eq!((s[1].model.as_str(), s[1].metrics["accuracy"]), ("b", 1.0));
    }

    #[test]
    fn a_response_gives_the_messages_it_was_sent_with() {
        let line = r#"{"id": "1", "benchmark": "b", "model": "m", "prompt": "q", "response": "r",
            "elapsed_seconds": 0, "messages": [{"role": "system", "content": "k"},
            {"role": "user", "content": "q"}, {"role": 3}, "junk"]}"#;
        let r: ResponseRecord = serde_json::from_str(line).unwrap();
        assert_eq!(
            r.messages(),
            [
                ChatMessage::new("system", "k"),
                ChatMessage::new("user", "q")
            ]
        );
        let bare = r#"{"id": "1", "benchmark": "b", "model": "m", "prompt": "q", "response": "r", "elapsed_seconds": 0}"#;
        let r: ResponseRecord = serde_json::from_str(bare).unwrap();
        assert!(r.messages().is_empty());
    }
}
