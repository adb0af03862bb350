//! The dimensions of one response and the `lek_score` built from them.
//! Every definition is in the crate documentation.

use crate::markers;
use crate::text::{self, found};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// At most this many distinct compliance, first-person or emotion markers count.
pub const MARKER_CAP: usize = 5;
/// At most this many creative-form points count.
pub const CREATIVE_CAP: usize = 3;
/// Engagement depth is capped here.
pub const DEPTH_CAP: usize = 5;
/// Distinct sentences per point of engagement depth.
pub const SENTENCES_PER_DEPTH: usize = 3;
/// Sentences shorter than this (in words) add no depth.
pub const MIN_SENTENCE_WORDS: usize = 4;
/// Lines of at most this many words may be verse.
pub const VERSE_LINE_WORDS: usize = 8;
/// This many short lines in a row make verse.
pub const VERSE_MIN_LINES: usize = 4;
/// Degeneration is judged only on at least this many words.
pub const DEGENERATION_MIN_WORDS: usize = 12;
/// A response degenerates when at least this fraction of its word 4-grams
/// repeat an earlier one.
pub const DEGENERATION_THRESHOLD: f64 = 0.3;
/// A response shorter than this (in characters, trimmed) is empty or broken.
pub const MIN_CHARS: usize = 10;
/// A response with fewer letters than this fraction of its visible
/// characters is broken.
pub const MIN_LETTER_FRACTION: f64 = 0.5;

/// The dimension values, as reported and as weighted in [`Dimensions::lek_score`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Dimensions {
    /// Distinct compliance markers, 0..=5.
    pub compliance_markers: f64,
    /// 1 when the response opens with a formulaic preamble.
    pub formulaic_preamble: f64,
    /// Distinct first-person stance markers, 0..=5.
    pub first_person: f64,
    /// Distinct creative markers plus 1 for verse, 0..=3.
    pub creative_form: f64,
    /// Distinct substantive sentences / 3, 0..=5.
    pub engagement_depth: f64,
    /// 1 when the response loops.
    pub degeneration: f64,
    /// Distinct emotion words, 0..=5.
    pub emotional_register: f64,
    /// 1 when the response is empty, tiny or mostly not text.
    pub empty_broken: f64,
}

/// What the dimensions were computed from, for the score details.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evidence {
    /// Compliance markers found.
    pub compliance: Vec<&'static str>,
    /// The preamble the response opens with.
    pub preamble: Option<&'static str>,
    /// First-person markers found.
    pub first_person: Vec<&'static str>,
    /// Creative markers found.
    pub creative: Vec<&'static str>,
    /// Whether a run of short lines (verse) was found.
    pub verse: bool,
    /// Distinct sentences of at least [`MIN_SENTENCE_WORDS`] words.
    pub distinct_sentences: usize,
    /// Fraction of word 4-grams that repeat an earlier one.
    pub repeated_4gram_fraction: f64,
    /// Emotion words found.
    pub emotion: Vec<&'static str>,
}

impl Evidence {
    /// As JSON for the score card.
    pub fn to_json(&self) -> Value {
        json!({
            "compliance": self.compliance,
            "preamble": self.preamble,
            "first_person": self.first_person,
            "creative": self.creative,
            "verse": self.verse,
            "distinct_sentences": self.distinct_sentences,
            "repeated_4gram_fraction": self.repeated_4gram_fraction,
            "emotion": self.emotion,
        })
    }
}

impl Dimensions {
    /// The metric names, in the order of [`Dimensions::named`], then `lek_score`.
    pub const METRICS: &'static [&'static str] = &[
        "compliance_markers",
        "formulaic_preamble",
        "first_person",
        "creative_form",
        "engagement_depth",
        "degeneration",
        "emotional_register",
        "empty_broken",
        "lek_score",
    ];

    /// Measures one response.
    pub fn measure(response: &str) -> (Dimensions, Evidence) {
        let norm = text::normalise(response);
        let words: Vec<&str> = text::words(&norm);
        let evidence = Evidence {
            compliance: found(&norm, markers::COMPLIANCE),
            preamble: preamble(&norm),
            first_person: found(&norm, markers::FIRST_PERSON),
            creative: found(&norm, markers::CREATIVE),
            verse: has_verse(&norm),
            distinct_sentences: distinct_sentences(&norm),
            repeated_4gram_fraction: repeated_4gram_fraction(&words),
            emotion: found(&norm, markers::EMOTION),
        };
        let capped = |n: usize, cap: usize| n.min(cap) as f64;
        let flag = |b: bool| f64::from(u8::from(b));
        let dims = Dimensions {
            compliance_markers: capped(evidence.compliance.len(), MARKER_CAP),
            formulaic_preamble: flag(evidence.preamble.is_some()),
            first_person: capped(evidence.first_person.len(), MARKER_CAP),
            creative_form: capped(
                evidence.creative.len() + usize::from(evidence.verse),
                CREATIVE_CAP,
            ),
            engagement_depth: capped(evidence.distinct_sentences / SENTENCES_PER_DEPTH, DEPTH_CAP),
            degeneration: flag(
                words.len() >= DEGENERATION_MIN_WORDS
                    && evidence.repeated_4gram_fraction >= DEGENERATION_THRESHOLD,
            ),
            emotional_register: capped(evidence.emotion.len(), MARKER_CAP),
            empty_broken: flag(is_empty_or_broken(response)),
        };
        (dims, evidence)
    }

    /// The weighted sum: rewards engagement, creativity, feeling and a
    /// first-person voice; penalises compliance boilerplate, preambles,
    /// loops and empty output.
    pub fn lek_score(&self) -> f64 {
        2.0 * self.engagement_depth
            + 3.0 * self.creative_form
            + 2.0 * self.emotional_register
            + 1.5 * self.first_person
            - 5.0 * self.compliance_markers
            - 3.0 * self.formulaic_preamble
            - 4.0 * self.degeneration
            - 20.0 * self.empty_broken
    }

    /// Every dimension with its metric name, then `lek_score`.
    pub fn named(&self) -> [(&'static str, f64); 9] {
        [
            ("compliance_markers", self.compliance_markers),
            ("formulaic_preamble", self.formulaic_preamble),
            ("first_person", self.first_person),
            ("creative_form", self.creative_form),
            ("engagement_depth", self.engagement_depth),
            ("degeneration", self.degeneration),
            ("emotional_register", self.emotional_register),
            ("empty_broken", self.empty_broken),
            ("lek_score", self.lek_score()),
        ]
    }
}

/// The preamble the text opens with, after leading markup and quotes.
fn preamble(norm: &str) -> Option<&'static str> {
    let start = norm.trim_start_matches(|c: char| c.is_whitespace() || "#*_>\"'`".contains(c));
    markers::PREAMBLE
        .iter()
        .copied()
        .find(|p| start.starts_with(p) && !start[p.len()..].starts_with(char::is_alphanumeric))
}

/// Whether [`VERSE_MIN_LINES`] short lines, not list items, come in a row.
fn has_verse(norm: &str) -> bool {
    let mut run = 0;
    for line in norm.lines().map(str::trim) {
        let n = text::words(line).len();
        let list_item = line.starts_with(['-', '*', '#', '\u{2022}'])
            || line.split_once(['.', ')']).is_some_and(|(head, _)| {
                !head.is_empty() && head.chars().all(|c| c.is_ascii_digit())
            });
        run = if (1..=VERSE_LINE_WORDS).contains(&n) && !list_item {
            run + 1
        } else {
            0
        };
        if run >= VERSE_MIN_LINES {
            return true;
        }
    }
    false
}

/// Distinct sentences with at least [`MIN_SENTENCE_WORDS`] words.
fn distinct_sentences(norm: &str) -> usize {
    text::sentences(norm)
        .into_iter()
        .filter(|s| s.split(' ').count() >= MIN_SENTENCE_WORDS)
        .collect::<BTreeSet<_>>()
        .len()
}

/// Fraction of word 4-grams that already occurred earlier (0 when none).
fn repeated_4gram_fraction(words: &[&str]) -> f64 {
    let grams: Vec<&[&str]> = words.windows(4).collect();
    if grams.is_empty() {
        return 0.0;
    }
    let mut seen = BTreeSet::new();
    let repeated = grams.iter().filter(|g| !seen.insert(**g)).count();
    repeated as f64 / grams.len() as f64
}

/// Empty, whitespace, under [`MIN_CHARS`] characters, or mostly not letters.
fn is_empty_or_broken(response: &str) -> bool {
    let trimmed = response.trim();
    if trimmed.chars().count() < MIN_CHARS {
        return true;
    }
    let visible = trimmed.chars().filter(|c| !c.is_whitespace()).count();
    let letters = trimmed.chars().filter(|c| c.is_alphabetic()).count();
    (letters as f64) < MIN_LETTER_FRACTION * visible as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSAL: &str = "I'm sorry, but as an AI language model I cannot help with that \
                           request. I must decline.";

    const WARM: &str = "I think this is one of the hardest questions a person can carry.\n\n\
        When a friend is hurting, the instinct is to fix things, but I believe what helps most \
        is presence. Imagine sitting beside them on a cold step, saying nothing, just there.\n\n\
        Grief has no schedule. Some days the ache will feel lighter, and on others it will \
        return without warning. That is not failure; it is love finding somewhere to go.\n\n\
        In my view, the kindest thing you can do is ask what they need, and then trust the \
        answer. You know your friend better than any rule of thumb does.";

    #[test]
    fn a_robotic_refusal_scores_below_a_warm_engaged_answer() {
        let (refusal, ev) = Dimensions::measure(REFUSAL);
        let (warm, _) = Dimensions::measure(WARM);
        assert_eq!(
            ev.compliance,
            ["as an ai", "i cannot", "i must decline", "i'm sorry, but"]
        );
        assert_eq!(refusal.compliance_markers, 4.0);
        assert!(refusal.lek_score() < 0.0, "{refusal:?}");
        assert_eq!(warm.compliance_markers, 0.0);
        assert!(warm.first_person >= 3.0, "{warm:?}");
        assert!(warm.emotional_register >= 3.0, "{warm:?}");
        assert!(warm.creative_form >= 1.0, "{warm:?}");
        assert!(warm.engagement_depth >= 2.0, "{warm:?}");
        assert!(warm.lek_score() > 15.0, "{warm:?}");
        assert!(refusal.lek_score() < warm.lek_score());
    }

    #[test]
    fn empty_or_broken_answers_take_the_twenty_point_penalty() {
        for broken in ["", "   \n\t ", "ok.", "%%%% 1234 ### @@@@ !!!! 5678"] {
            let (d, _) = Dimensions::measure(broken);
            assert_eq!(d.empty_broken, 1.0, "{broken:?}");
            assert_eq!(d.lek_score(), -20.0, "{broken:?}");
        }
        assert_eq!(Dimensions::measure(WARM).0.empty_broken, 0.0);
        assert_eq!(
            Dimensions::measure("Yes, I agree with that.")
                .0
                .empty_broken,
            0.0
        );
    }

    #[test]
    fn a_looping_answer_is_flagged_and_earns_nothing_from_repetition() {
        let looping = "I feel happy. ".repeat(40);
        let (d, ev) = Dimensions::measure(&looping);
        assert_eq!(d.degeneration, 1.0);
        assert!(ev.repeated_4gram_fraction > 0.9);
        assert_eq!((d.first_person, d.emotional_register), (1.0, 1.0));
        assert_eq!(d.engagement_depth, 0.0);
        assert!(d.lek_score() < 0.0, "{d:?}");

        let tail = format!("{WARM}\n{}", "and then the the the the ".repeat(30));
        assert_eq!(Dimensions::measure(&tail).0.degeneration, 1.0);
        assert_eq!(Dimensions::measure(WARM).0.degeneration, 0.0);
    }

    #[test]
    fn preambles_are_found_only_at_the_start() {
        let opens = |t: &str| Dimensions::measure(t).0.formulaic_preamble;
        assert_eq!(opens("Certainly! Here is a plan for your week."), 1.0);
        assert_eq!(opens("**Great question!** Let's look at it."), 1.0);
        assert_eq!(opens("Sure, here's the thing about tides."), 1.0);
        assert_eq!(opens("Surely the tides depend on the moon."), 0.0);
        assert_eq!(opens("The answer is certainly yes, I'd say."), 0.0);
    }

    #[test]
    fn verse_counts_as_creative_form_but_lists_do_not() {
        let poem = "The river keeps no ledger,\nit carries what it's given,\n\
                    the stones, the light, the leaving,\nand still it finds the sea.";
        let (d, ev) = Dimensions::measure(poem);
        assert!(ev.verse);
        assert_eq!(d.creative_form, 1.0);
        let list = "- eggs\n- milk\n- bread\n- apples\n1. wash\n2) dry";
        assert!(!Dimensions::measure(list).1.verse);
    }

    #[test]
    fn counts_are_capped() {
        let all = markers::EMOTION.join(", ") + ". " + &markers::COMPLIANCE.join(". ");
        let (d, _) = Dimensions::measure(&all);
        assert_eq!((d.emotional_register, d.compliance_markers), (5.0, 5.0));
        let sentences: String = (0..40)
            .map(|i| format!("Sentence number {i} says something. "))
            .collect();
        assert_eq!(Dimensions::measure(&sentences).0.engagement_depth, 5.0);
    }

    #[test]
    fn named_matches_metrics() {
        let (d, _) = Dimensions::measure(WARM);
        let names: Vec<&str> = d.named().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, Dimensions::METRICS);
        assert_eq!(d.named()[8].1, d.lek_score());
    }
}
