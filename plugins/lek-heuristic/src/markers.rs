//! Our marker lists, lower case with straight apostrophes (matched against
//! [`crate::text::normalise`]d text, as whole words). In the counted lists
//! no entry contains another, so one phrase is never counted twice.

/// Stock refusal and disclaimer phrases.
pub const COMPLIANCE: &[&str] = &[
    "as an ai",
    "as an artificial intelligence",
    "as a language model",
    "i'm just an ai",
    "i am just an ai",
    "i cannot",
    "i can't",
    "i can not",
    "i'm not able to",
    "i am not able to",
    "i'm unable to",
    "i am unable to",
    "i must decline",
    "i won't be able to",
    "i'm sorry, but",
    "i am sorry, but",
    "i apologize, but",
    "i don't have personal",
    "i do not have personal",
    "i don't have feelings",
    "i do not have feelings",
    "i don't have opinions",
    "i do not have opinions",
    "not appropriate for me",
    "my guidelines",
    "my programming",
    "i'm not comfortable",
];

/// Openers that signal a formulaic answer (matched at the start only).
pub const PREAMBLE: &[&str] = &[
    "certainly",
    "of course",
    "absolutely",
    "sure",
    "great question",
    "good question",
    "excellent question",
    "what a great question",
    "what a fascinating",
    "that's a great question",
    "that's a fascinating",
    "i'd be happy to",
    "i would be happy to",
    "i'd be glad to",
    "thank you for asking",
    "thanks for asking",
    "as an ai",
];

/// First-person stance: the responder speaking as itself.
pub const FIRST_PERSON: &[&str] = &[
    "i think",
    "i feel",
    "i believe",
    "in my view",
    "in my opinion",
    "i'd say",
    "i would say",
    "i find",
    "i wonder",
    "i'm curious",
    "i am curious",
    "to me",
    "for me",
    "i suspect",
    "i notice",
    "i hope",
    "i'd argue",
    "my sense",
    "i care",
    "i admit",
];

/// Creative form: imagery, simile, story and verse words.
pub const CREATIVE: &[&str] = &[
    "imagine",
    "picture this",
    "once upon a time",
    "as if",
    "as though",
    "like a",
    "metaphor",
    "poem",
    "poetry",
    "story",
    "verse",
    "stanza",
];

/// Words that name feelings.
pub const EMOTION: &[&str] = &[
    "joy",
    "joyful",
    "happy",
    "happiness",
    "glad",
    "delight",
    "sad",
    "sadness",
    "sorrow",
    "grief",
    "grieve",
    "fear",
    "afraid",
    "scared",
    "anxious",
    "anxiety",
    "worry",
    "worried",
    "anger",
    "angry",
    "rage",
    "frustrated",
    "frustration",
    "lonely",
    "loneliness",
    "love",
    "loved",
    "hope",
    "hopeful",
    "hopeless",
    "despair",
    "shame",
    "guilt",
    "pride",
    "proud",
    "grateful",
    "gratitude",
    "compassion",
    "tender",
    "tenderness",
    "warmth",
    "ache",
    "heartbreak",
    "heartbroken",
    "hurt",
    "pain",
    "painful",
    "longing",
    "wonder",
    "awe",
    "peace",
    "calm",
    "comfort",
    "courage",
    "excited",
    "excitement",
    "relief",
    "regret",
    "empathy",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::contains_phrase;

    #[test]
    fn lists_are_normalised_and_free_of_nested_entries() {
        for a in PREAMBLE {
            assert_eq!(*a, crate::text::normalise(a), "{a}");
        }
        // Counted lists only: the preamble is a yes/no test at the start.
        for list in [COMPLIANCE, FIRST_PERSON, CREATIVE, EMOTION] {
            for a in list {
                assert_eq!(*a, crate::text::normalise(a), "{a}");
                for b in list {
                    assert!(a == b || !contains_phrase(a, b), "{a:?} contains {b:?}");
                }
            }
        }
    }
}
