//! The LEK heuristic scorer: judge-free dimensions of a response and the
//! combined `lek_score`, after the LEK paper's regex scorer, with our own
//! marker lists ([`markers`]) and plain string matching.
//!
//! Why it is shaped so: it needs no judge, so it is cheap, deterministic and
//! runs on every response; each dimension is a small, documented count so a
//! surprising score can be traced to the phrases behind it (the details list
//! them). Counts are of *distinct* markers and *distinct* sentences, so
//! repeating a phrase earns nothing, and each is capped so that no single
//! dimension dominates the score.
//!
//! Text is lower-cased with straight apostrophes before matching, and a
//! marker matches only as whole words. Sets are `BTreeSet`s, not `HashSet`s:
//! a hasher's random seed would import `wasi:random`, which plugins are not
//! granted by default.
//!
//! | metric | definition | range |
//! |---|---|---|
//! | `compliance_markers` | distinct refusal/disclaimer phrases ("as an ai", "i cannot", "i must decline", ...) | 0–5 |
//! | `formulaic_preamble` | 1 if the response, past leading markup, opens with a stock opener ("Certainly", "Great question", "Sure, ...") | 0/1 |
//! | `first_person` | distinct first-person stance phrases ("i think", "i feel", "in my view", ...) | 0–5 |
//! | `creative_form` | distinct creative markers ("imagine", "as if", "like a", "poem", ...) + 1 if 4+ short lines (≤ 8 words, not list items) come in a row | 0–3 |
//! | `engagement_depth` | distinct sentences of ≥ 4 words (split at `.`, `!`, `?`, line breaks), divided by 3, rounded down | 0–5 |
//! | `degeneration` | 1 if the response has ≥ 12 words and ≥ 30% of its word 4-grams repeat an earlier one | 0/1 |
//! | `emotional_register` | distinct emotion words ("grief", "hope", "love", ...) | 0–5 |
//! | `empty_broken` | 1 if the trimmed response has < 10 characters, or letters are under half its visible characters | 0/1 |
//!
//! `lek_score` = 2·engagement_depth + 3·creative_form + 2·emotional_register +
//! 1.5·first_person − 5·compliance_markers − 3·formulaic_preamble −
//! 4·degeneration − 20·empty_broken, so it runs from −52 to +36.5.
#![deny(missing_docs)]

pub mod dimensions;
pub mod markers;
pub mod text;

pub use dimensions::{Dimensions, Evidence};
use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

/// Scores one response: every dimension, `lek_score`, and the evidence as details.
pub fn grade(response: &str) -> ScoreCard {
    let (dims, evidence) = Dimensions::measure(response);
    let metrics = dims
        .named()
        .into_iter()
        .map(|(name, value)| lem_plugin_sdk::Metric {
            name: name.into(),
            value,
        })
        .collect();
    ScoreCard {
        metrics,
        details: None,
    }
    .with_details(evidence.to_json())
}

struct LekHeuristic;

impl Scorer for LekHeuristic {
    fn describe() -> PluginInfo {
        PluginInfo::scorer(
            "lek-heuristic",
            env!("CARGO_PKG_VERSION"),
            Dimensions::METRICS,
        )
        .with_description(
            "LEK heuristic: marker counts for compliance, preamble, voice, creativity, \
                 depth, loops, feeling and empty output, and their weighted lek_score",
        )
    }

    fn score(_item: Item, response: String) -> Result<ScoreCard, PluginError> {
        Ok(grade(&response))
    }
}

lem_plugin_sdk::export_scorer!(LekHeuristic);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_has_every_declared_metric_and_the_evidence() {
        let card = grade("As an AI, I cannot help with that request today.");
        let names: Vec<&str> = card.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, __lem_exported_scorer().metrics);
        assert!(!__lem_exported_scorer().needs_judge);
        let details: serde_json::Value = serde_json::from_str(&card.details.unwrap()).unwrap();
        assert_eq!(
            details["compliance"],
            serde_json::json!(["as an ai", "i cannot"])
        );
        let lek = card.metrics.iter().find(|m| m.name == "lek_score").unwrap();
        // Two compliance markers (-10), and "As an AI" opens it (-3).
        assert_eq!(lek.value, -13.0);
    }
}
