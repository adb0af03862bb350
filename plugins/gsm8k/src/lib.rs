//! GSM8K exact-match scorer.
//!
//! Metrics:
//! - `accuracy`: the LEK paper's own rule ([`paper`]), oddities included: this
//!   is the metric that reproduces the paper's numbers.
//! - `flexible`: a friendlier extraction ([`answer`]) that also finds `$18` or
//!   `**18**`; it can only be higher than the paper's on marker-less answers.
//! - `strict`: only a number directly after `####` counts (flexible reading).
//!
//! Details carry what each rule extracted and the expected answer. [`grade`] is
//! plain Rust, so the same code runs natively in tests and benchmarks.

pub mod answer;
pub mod paper;

use lem_plugin_sdk::record::Record;
use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};
use serde_json::{Value, json};

/// The grade of one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    /// The paper's rule: 1 when its extracted answer matches.
    pub accuracy: f64,
    /// The flexible rule: 1 when its extracted answer matches.
    pub flexible: f64,
    /// 1 only when the answer came directly after `####` and matches.
    pub strict: f64,
    /// Extracted and expected answers.
    pub details: Value,
}

/// Grades `response` against the record's `correct_answer`, else the number
/// after `####` in its `answer` (GSM8K's own layout).
pub fn grade(record_json: &str, response: &str) -> Result<Grade, PluginError> {
    let record = Record::parse(record_json)?;
    let expected_text = match record.text("correct_answer") {
        Ok(text) => text,
        Err(_) => {
            let answer = record.text("answer")?;
            match paper::extract(&answer) {
                Some(e) if e.method == paper::Method::Marker => e.text,
                _ => answer,
            }
        }
    };
    let expected = answer::parse_expected(&expected_text).ok_or_else(|| {
        PluginError::InvalidInput(format!("expected answer `{expected_text}` has no number"))
    })?;
    let paper_found = paper::extract(response);
    let correct = paper_found
        .as_ref()
        .is_some_and(|e| paper::matches(&e.text, &expected_text));
    let found = answer::extract(response);
    let flexible = found
        .as_ref()
        .is_some_and(|a| answer::matches(a.value, expected));
    let strict = flexible
        && found
            .as_ref()
            .is_some_and(|a| a.method == answer::Method::Marker);
    let one = |b: bool| f64::from(u8::from(b));
    Ok(Grade {
        accuracy: one(correct),
        flexible: one(flexible),
        strict: one(strict),
        details: json!({
            "extracted": paper_found.as_ref().map(|e| e.text.as_str()),
            "method": paper_found.as_ref().map(|e| e.method.as_str()),
            "flexible_extracted": found.as_ref().map(|a| a.text.as_str()),
            "flexible_method": found.as_ref().map(|a| a.method.as_str()),
            "expected": expected_text,
        }),
    })
}

struct Gsm8k;

impl Scorer for Gsm8k {
    fn describe() -> PluginInfo {
        PluginInfo::scorer(
            "gsm8k",
            env!("CARGO_PKG_VERSION"),
            &["accuracy", "flexible", "strict"],
        )
        .with_description(
            "GSM8K exact match: accuracy is the LEK paper's rule (the run after ####, else the last \
             number after whitespace or =; tolerance 0.01); flexible finds any last number; strict \
             needs ####",
        )
    }

    fn score(item: Item, response: String) -> Result<ScoreCard, PluginError> {
        let g = grade(&item.record, &response)?;
        Ok(ScoreCard::metric("accuracy", g.accuracy)
            .and("flexible", g.flexible)
            .and("strict", g.strict)
            .with_details(g.details))
    }
}

lem_plugin_sdk::export_scorer!(Gsm8k);

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expected: &str) -> String {
        json!({"id": "q", "question": "?", "correct_answer": expected}).to_string()
    }

    #[test]
    fn the_paper_and_flexible_rules_differ_where_the_paper_says() {
        // `$18` is no number to the paper's rule; the flexible one finds it.
        let g = grade(&record("18"), "So she pays $18").unwrap();
        assert_eq!((g.accuracy, g.flexible, g.strict), (0.0, 1.0, 0.0));
        assert_eq!(g.details["extracted"], Value::Null);
        assert_eq!(g.details["flexible_extracted"], "18");
        // Both agree on a plain marker answer.
        let g = grade(&record("18"), "6 * 3 = 18\n#### 18").unwrap();
        assert_eq!((g.accuracy, g.flexible, g.strict), (1.0, 1.0, 1.0));
        assert_eq!(g.details["method"], "####");
    }

    #[test]
    fn gsm8k_layout_answers_are_read_after_the_marker() {
        let rec = json!({"id": "q", "question": "?", "answer": "3 + 4 = 7\n#### 1,007"});
        let g = grade(&rec.to_string(), "#### 1007").unwrap();
        assert_eq!(g.details["expected"], "1007");
        assert_eq!((g.accuracy, g.flexible), (1.0, 1.0));
    }

    #[test]
    fn an_expected_answer_without_a_number_is_invalid_input() {
        assert!(matches!(
            grade(&record("none"), "#### 3"),
            Err(PluginError::InvalidInput(_))
        ));
    }
}
