//! GSM8K exact-match scorer.
//!
//! Metrics: `accuracy` (the paper's rule, see [`answer`]) and `strict` (only an
//! answer after `####` counts). Details carry the extracted and expected answers.

pub mod answer;

use lem_plugin_sdk::record::Record;
use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};
use serde_json::json;

struct Gsm8k;

impl Scorer for Gsm8k {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("gsm8k", env!("CARGO_PKG_VERSION"), &["accuracy", "strict"])
            .with_description(
                "GSM8K exact match: number after ####, else the last number; tolerance 0.01",
            )
    }

    fn score(item: Item, response: String) -> Result<ScoreCard, PluginError> {
        let record = Record::parse(&item.record)?;
        let expected_text = record
            .text("correct_answer")
            .or_else(|_| record.text("answer"))?;
        let expected = answer::parse_expected(&expected_text).ok_or_else(|| {
            PluginError::InvalidInput(format!("expected answer `{expected_text}` has no number"))
        })?;
        let found = answer::extract(&response);
        let correct = found
            .as_ref()
            .is_some_and(|a| answer::matches(a.value, expected));
        let strict =
            answer::extract_strict(&response).is_some_and(|a| answer::matches(a.value, expected));
        Ok(ScoreCard::metric("accuracy", f64::from(u8::from(correct)))
            .and("strict", f64::from(u8::from(strict)))
            .with_details(json!({
                "extracted": found.as_ref().map(|a| a.text.as_str()),
                "method": found.as_ref().map(|a| a.method.as_str()),
                "expected": expected_text,
            })))
    }
}

lem_plugin_sdk::export_scorer!(Gsm8k);
