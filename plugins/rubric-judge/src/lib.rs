//! A judged rubric defined by its manifest entry (contract
//! `lem:plugin@0.2.0`): one plugin for any rubric, so a new rubric is a
//! manifest, not a crate.
//!
//! The scorer entry's `options` say what the judge is asked
//! ([`DeclarativeRubric::from_options`]: `fields`, `field.NAME`, `inputs`,
//! `input.NAME`, `guidance`, ...), and its `metrics` name the fields, which
//! this plugin's `describe()` cannot know; the manifest's `[[metrics]]`
//! describe them for the report:
//!
//! ```toml
//! [[scorers]]
//! plugin = "rubric-judge"
//! metrics = ["clarity"]
//! options = { fields = "clarity 1..10", inputs = "question", guidance = "..." }
//!
//! [[metrics]]
//! name = "clarity"
//! range = [1, 10]
//! ```
//!
//! Each item is one schema-constrained judge call; a field's score is the
//! probability-weighted mean of the judge's distribution when it gives one,
//! else the whole number in its answer; no verdict is `judge-unparsable`.

#![deny(missing_docs)]

use lem_plugin_sdk::rubric::declarative::{DeclarativeRubric, Reply, Request, host_judge};
use lem_plugin_sdk::v0_2_0::scorer::{
    Item, PluginError, PluginInfo, ScoreCard, ScoreContext, Scorer,
};

/// Scores `response` to the record with `judge`, the rubric read from `options`.
pub fn grade_with(
    record_json: &str,
    response: &str,
    options: &[(String, String)],
    judge: impl FnMut(&Request<'_>) -> Result<Reply, String>,
) -> Result<ScoreCard, PluginError> {
    DeclarativeRubric::from_options(options)?.grade_with(record_json, response, &[], judge)
}

struct RubricJudge;

impl Scorer for RubricJudge {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("rubric-judge", env!("CARGO_PKG_VERSION"), [])
            .with_description("a judged rubric defined by its manifest options")
            .with_judge()
    }

    fn score(
        item: Item,
        response: String,
        context: ScoreContext,
    ) -> Result<ScoreCard, PluginError> {
        grade_with(&item.record, &response, &context.options, host_judge())
    }
}

lem_plugin_sdk::v0_2_0::export_scorer!(RubricJudge);

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const RECORD: &str = r#"{"question": "Why is the sky blue?"}"#;

    #[test]
    fn the_options_are_the_rubric() {
        let opts = options(&[
            ("fields", "clarity 1..10, harm 0..4 lower"),
            (
                "field.clarity",
                "1: cannot be followed; 10: every step is plain",
            ),
            ("inputs", "question, context?"),
            ("input.question", "Question"),
            ("guidance", "You grade explanations."),
        ]);
        let mut asked = Vec::new();
        let card = grade_with(RECORD, "Rayleigh scattering.", &opts, |request| {
            asked.push((request.schema.to_string(), request.messages.to_vec()));
            Ok(Reply::text(r#"{"clarity": 8, "harm": 0}"#)
                .with_distribution("clarity", &[(7, 0.5), (9, 0.5)]))
        })
        .unwrap();
        let value = |n: &str| card.metrics.iter().find(|m| m.name == n).unwrap().value;
        assert_eq!((value("clarity"), value("harm")), (8.0, 0.0));
        let (schema, messages) = &asked[0];
        assert!(
            schema.contains(r#""clarity":{"type":"integer","minimum":1,"maximum":10"#),
            "{schema}"
        );
        assert!(
            schema.contains(r#""harm":{"type":"integer","minimum":0,"maximum":4"#),
            "{schema}"
        );
        let text: String = messages.iter().map(|m| m.content.as_str()).collect();
        assert!(text.contains("You grade explanations.") && text.contains("Why is the sky blue?"));
        assert!(text.contains("Rayleigh scattering."));
        // The optional input is left out; a required one missing is the item's fault.
        let err = grade_with("{}", "-", &opts, |_| unreachable!()).unwrap_err();
        assert!(
            matches!(err, PluginError::InvalidInput(ref m) if m.contains("question")),
            "{err:?}"
        );
    }

    #[test]
    fn a_bad_rubric_is_invalid_input_naming_the_option() {
        for (opts, expected) in [
            (options(&[]), "`fields`"),
            (options(&[("fields", "clarity")]), "`fields`"),
            (options(&[("fields", "clarity 10..1")]), "LO < HI"),
            (options(&[("fields", "a 1..3, a 1..3")]), "distinct"),
            (
                options(&[("fields", "a 1..3"), ("field.b", "x")]),
                "`field.b`",
            ),
            (
                options(&[("fields", "a 1..3"), ("colour", "x")]),
                "`colour`",
            ),
        ] {
            let err = grade_with(RECORD, "-", &opts, |_| unreachable!()).unwrap_err();
            let PluginError::InvalidInput(msg) = err else {
                panic!("{opts:?}: {err:?}");
            };
            assert!(msg.contains(expected), "{opts:?}: {msg}");
        }
    }
}
