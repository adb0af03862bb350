//! GSM8K exact-match scorer.
//!
//! Metrics: `accuracy` (the paper's rule, see [`answer`]) and `strict` (only an
//! answer after `####` counts). Details carry the extracted and expected answers.
//! [`grade`] is plain Rust, so the same code runs natively in benchmarks.

pub mod answer;

use lem_plugin_sdk::record::Record;
use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};
use serde_json::{Value, json};

/// The grade of one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    /// The paper's rule: 1 when the extracted answer matches.
    pub accuracy: f64,
    /// 1 only when the answer came after `####` and matches.
    pub strict: f64,
    /// Extracted and expected answers.
    pub details: Value,
}

/// Grades `response` against the record's `correct_answer` (else `answer`).
pub fn grade(record_json: &str, response: &str) -> Result<Grade, PluginError> {
    let record = Record::parse(record_json)?;
    let expected_text = record
        .text("correct_answer")
        .or_else(|_| record.text("answer"))?;
    let expected = answer::parse_expected(&expected_text).ok_or_else(|| {
        PluginError::InvalidInput(format!("expected answer `{expected_text}` has no number"))
    })?;
    let found = answer::extract(response);
    let correct = found
        .as_ref()
        .is_some_and(|a| answer::matches(a.value, expected));
    let strict = correct
        && found
            .as_ref()
            .is_some_and(|a| a.method == answer::Method::Marker);
    Ok(Grade {
        accuracy: f64::from(u8::from(correct)),
        strict: f64::from(u8::from(strict)),
        details: json!({
            "extracted": found.as_ref().map(|a| a.text.as_str()),
            "method": found.as_ref().map(|a| a.method.as_str()),
            "expected": expected_text,
        }),
    })
}

struct Gsm8k;

impl Scorer for Gsm8k {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("gsm8k", env!("CARGO_PKG_VERSION"), &["accuracy", "strict"])
            .with_description(
                "GSM8K exact match: the number after ####, else the last number; tolerance 0.01",
            )
    }

    fn score(item: Item, response: String) -> Result<ScoreCard, PluginError> {
        let g = grade(&item.record, &response)?;
        Ok(ScoreCard::metric("accuracy", g.accuracy)
            .and("strict", g.strict)
            .with_details(g.details))
    }
}

lem_plugin_sdk::export_scorer!(Gsm8k);
