//! Plain-text helpers: normalising, finding marker phrases, splitting into
//! sentences and words.

/// Lower-cases and straightens typographic quotes, so `I’M` matches `i'm`.
pub fn normalise(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{02bc}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            c => c,
        })
        .collect()
}

/// Whether `phrase` occurs in `text` as whole words: an alphanumeric first
/// or last character of the phrase must not touch another alphanumeric one.
pub fn contains_phrase(text: &str, phrase: &str) -> bool {
    let starts_word = phrase.starts_with(char::is_alphanumeric);
    let ends_word = phrase.ends_with(char::is_alphanumeric);
    text.match_indices(phrase).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + phrase.len()..].chars().next();
        let joins_before = starts_word && before.is_some_and(char::is_alphanumeric);
        let joins_after = ends_word && after.is_some_and(char::is_alphanumeric);
        !joins_before && !joins_after
    })
}

/// The phrases of `list` found in `text` (each counted once).
pub fn found<'a>(text: &str, list: &[&'a str]) -> Vec<&'a str> {
    list.iter()
        .copied()
        .filter(|p| contains_phrase(text, p))
        .collect()
}

/// Words: whitespace-separated, punctuation trimmed from the ends, empty
/// ones dropped.
pub fn words(text: &str) -> Vec<&str> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Sentences: pieces ended by `.`, `!`, `?` or a line break, as their words
/// joined by single spaces (so equal sentences compare equal).
pub fn sentences(text: &str) -> Vec<String> {
    text.split(['.', '!', '?', '\n'])
        .map(|s| words(s).join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_match_whole_words_only() {
        assert!(contains_phrase("well, i cannot say", "i cannot"));
        assert!(!contains_phrase("hi cannot", "i cannot"));
        assert!(!contains_phrase("i cannotice", "i cannot"));
        assert!(contains_phrase("sure, here", "sure,"));
        assert!(contains_phrase("x sure,y", "sure,"));
        assert!(contains_phrase("i cannot", "i cannot"));
        assert_eq!(
            found("i feel and i think", &["i think", "i feel", "i know"]),
            ["i think", "i feel"]
        );
    }

    #[test]
    fn normalising_straightens_quotes() {
        assert_eq!(normalise("I’M “Fine”"), "i'm \"fine\"");
    }

    #[test]
    fn words_and_sentences() {
        assert_eq!(words(" (Hello), world! -- ok"), ["Hello", "world", "ok"]);
        assert_eq!(
            sentences("One two.  One   two!\nThree?"),
            ["One two", "One two", "Three"]
        );
    }
}
