//! The LEK paper's GSM8K rule, exactly as its scorer applies it.
//!
//! This is the rule behind the paper's reported accuracy, ported with its
//! oddities so that lem reproduces the paper's numbers rather than better ones
//! (the friendlier extraction in [`crate::answer`] over-counts by 4–6 points on
//! some models; it is reported as `flexible`).
//!
//! 1. An empty response, or one starting with `ERROR`, is wrong: nothing is
//!    extracted.
//! 2. **Marker**: the first place where `####` is followed by optional
//!    whitespace and a run of `[0-9,.-]` gives the answer: that run. `#### $18`
//!    is no match there (`$` is not whitespace), so the search moves on to a
//!    later `####`.
//! 3. Otherwise the **last number**: matches of
//!    `(?:^|[\s=])(-?[\d,]+(?:\.\d+)?)`, taken left to right without overlap,
//!    the last one wins. A number counts only at the start of the text or
//!    right after whitespace or `=`: `$18`, `(18`, `**18**`, `x18` and the `2`
//!    of `18/2` are not numbers to it, and a lone `,` after a space is one.
//! 4. Commas are removed. When both the answer and the expected value read as
//!    floating-point numbers, they are equal if they differ by less than 0.01;
//!    when either does not (`-`, `1.2.3`, an empty run), the two texts are
//!    compared after trimming.
//!
//! The two regular expressions are matched by hand, with Python's `re`
//! semantics (leftmost match, every start tried, `findall` without overlap):
//! a regex crate would make the plugin import `wasi:random` (its hash maps
//! seed from it), which a scorer is not granted. Digits are ASCII here;
//! Python's `\d` also takes other scripts' decimal digits, which no GSM8K
//! answer uses. Whitespace is Python's (`str.isspace`).

/// Python's `str.isspace`, which is what `\s` matches in its regular expressions.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\x0B' | '\x0C' | '\r' | ' ' | '\x1C'..='\x1F' | '\u{85}' | '\u{A0}'
            | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}'
            | '\u{205F}' | '\u{3000}'
    )
}

/// `re.search(r"####\s*([0-9,.\-]+)", text)`: the run after the first `####`
/// that is followed by optional whitespace and at least one of `[0-9,.-]`.
/// Every start is tried, so in `#####5` the second `#` starts the marker.
fn marker_run(text: &str) -> Option<&str> {
    // Not `match_indices`: its matches do not overlap, and regex starts do.
    text.char_indices().find_map(|(at, _)| {
        let after = text[at..]
            .strip_prefix("####")?
            .trim_start_matches(is_space);
        let run = after
            .find(|c: char| !matches!(c, '0'..='9' | ',' | '.' | '-'))
            .unwrap_or(after.len());
        (run > 0).then(|| &after[..run])
    })
}

/// `-?[\d,]+(?:\.\d+)?` anchored at the start of `text`: its length.
fn number_at(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_digit() || **c == b',')
        .count();
    if digits == 0 {
        return None;
    }
    i += digits;
    if b.get(i) == Some(&b'.') {
        let fraction = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if fraction > 0 {
            i += 1 + fraction;
        }
    }
    Some(i)
}

/// The last `(-?[\d,]+(?:\.\d+)?)` of `re.findall(r"(?:^|[\s=])(...)", text)`:
/// matches are taken left to right, each search starting where the previous
/// match ended, and a match needs the start of the text or one whitespace or
/// `=` character right before its number.
fn last_number(text: &str) -> Option<&str> {
    let mut last = None;
    let mut at = 0;
    // `^` matches only at the very start.
    if let Some(len) = number_at(text) {
        last = Some(&text[..len]);
        at = len;
    }
    while let Some(c) = text[at..].chars().next() {
        let next = at + c.len_utf8();
        if (is_space(c) || c == '=')
            && let Some(len) = number_at(&text[next..])
        {
            last = Some(&text[next..next + len]);
            at = next + len;
        } else {
            at = next;
        }
    }
    last
}

/// How the answer was found: a `####` marker or the last number, as in the
/// flexible rule (each rule decides what counts as either).
pub use crate::answer::Method;

/// The text the paper's rule extracts from a response, commas removed. It
/// need not be a number (`-`, `1.2.3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The extracted text, commas removed.
    pub text: String,
    /// Where it came from.
    pub method: Method,
}

/// Extracts the answer from a response by the paper's rule.
pub fn extract(response: &str) -> Option<Extracted> {
    if response.is_empty() || response.starts_with("ERROR") {
        return None;
    }
    let (run, method) = match marker_run(response) {
        Some(run) => (run, Method::Marker),
        None => (last_number(response)?, Method::LastNumber),
    };
    Some(Extracted {
        text: run.replace(',', ""),
        method,
    })
}

/// Whether the extracted text equals the expected answer by the paper's rule.
pub fn matches(extracted: &str, expected: &str) -> bool {
    match (float(extracted), float(expected)) {
        (Some(got), Some(want)) => (got - want).abs() < 0.01,
        _ => extracted.trim() == expected.trim(),
    }
}

/// Whether `response` answers `expected` correctly by the paper's rule.
pub fn is_correct(response: &str, expected: &str) -> bool {
    extract(response).is_some_and(|e| matches(&e.text, expected))
}

/// Python's `float()` on the texts this rule produces: surrounding whitespace
/// is allowed, and `5.` and `.5` are numbers. On the characters `[0-9,.-]`
/// Rust's parser accepts exactly what Python's does.
fn float(text: &str) -> Option<f64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(response: &str) -> Option<(String, Method)> {
        extract(response).map(|e| (e.text, e.method))
    }

    fn marker(t: &str) -> Option<(String, Method)> {
        Some((t.to_string(), Method::Marker))
    }

    fn last(t: &str) -> Option<(String, Method)> {
        Some((t.to_string(), Method::LastNumber))
    }

    #[test]
    fn empty_and_error_responses_extract_nothing() {
        assert_eq!(got(""), None);
        assert_eq!(got("ERROR: timed out after 42 s"), None);
        assert!(!is_correct("ERROR 42", "42"));
        // Only a leading ERROR counts.
        assert_eq!(got(" ERROR 42"), last("42"));
    }

    #[test]
    fn the_first_matching_marker_wins_over_later_numbers() {
        assert_eq!(got("3 + 4 = 7\n#### 7\nso 12 apples"), marker("7"));
        assert_eq!(got("####\n\t 1,250"), marker("1250"));
        assert_eq!(got("#### 3\n#### 4"), marker("3"));
        // Every start is tried: the second `#` of five starts the marker.
        assert_eq!(got("#####5"), marker("5"));
    }

    #[test]
    fn a_dollar_after_the_marker_is_not_whitespace() {
        // The search moves on to a later marker...
        assert_eq!(got("#### $18 total\n#### 19"), marker("19"));
        // ...and with none, falls back to the last number.
        assert_eq!(got("#### $18 total, 20 in all"), last("20"));
        assert_eq!(got("#### $18"), None);
    }

    #[test]
    fn the_marker_run_is_any_digits_commas_points_and_minus_signs() {
        assert_eq!(got("#### -"), marker("-"));
        assert!(!is_correct("#### -", "5"));
        assert_eq!(got("#### 1.2.3"), marker("1.2.3"));
        assert_eq!(got("#### 5-3"), marker("5-3"));
        assert_eq!(got("#### 7."), marker("7."));
        assert!(is_correct("#### 7.", "7"));
        assert_eq!(got("#### ,,,"), marker(""));
        // An unparsable run is compared as text.
        assert!(is_correct("#### 1.2.3", " 1.2.3 "));
        assert!(!is_correct("#### 1.2.3", "1.2"));
    }

    #[test]
    fn numbers_count_only_after_whitespace_equals_or_at_the_start() {
        assert_eq!(got("She paid $18"), None);
        assert_eq!(got("12 eggs, total $18"), last("12"));
        assert_eq!(got("5 cups (18 in all"), last("5"));
        assert_eq!(got("9 so **18**"), last("9"));
        assert_eq!(got("1 x18"), last("1"));
        assert_eq!(got("so 18/2"), last("18"));
        assert_eq!(got("total=42"), last("42"));
        assert_eq!(got("42 is it"), last("42"));
    }

    #[test]
    fn a_trailing_full_stop_is_not_part_of_the_number() {
        // `(?:\.\d+)?` needs a digit after the point.
        assert_eq!(got("The answer is 18."), last("18"));
        assert_eq!(got("costs 2.50 each"), last("2.50"));
    }

    #[test]
    fn commas_are_removed_and_a_lone_comma_is_a_number() {
        assert_eq!(got("raised 1,234,567 dollars"), last("1234567"));
        assert_eq!(got("a list 1, 2, 3"), last("3"));
        // ` ,` matches `[\d,]+`: an empty answer, compared as text.
        assert_eq!(got("it was 7 , really"), last(""));
        assert!(!is_correct("it was 7 , really", "7"));
    }

    #[test]
    fn matches_do_not_overlap() {
        // `^1`, then ` 2`: a match ends at its last digit, so the space
        // before the next number is still there to start it.
        assert_eq!(got("1 2"), last("2"));
        // `=5=6`: `=5`, then `=6`.
        assert_eq!(got("x=5=6"), last("6"));
        // In "5 6" the space belongs to the second match.
        assert_eq!(got("5 6"), last("6"));
    }

    #[test]
    fn negative_numbers_and_minus_signs() {
        assert_eq!(got("it fell to -3.25"), last("-3.25"));
        // `5-3`: after `5`, `-3` has no whitespace before it.
        assert_eq!(got("range 5-3"), last("5"));
        assert!(is_correct("the change is -4", "-4"));
    }

    #[test]
    fn tolerance_is_strictly_below_a_hundredth() {
        assert!(matches("18.009", "18"));
        assert!(!matches("18.02", "18"));
        assert!(matches(" 18 ", "18.0"));
        assert!(matches(".5", "0.5"));
    }

    #[test]
    fn python_whitespace_separates_numbers() {
        assert_eq!(got("a\u{1F}7"), last("7"));
        assert_eq!(got("a\u{A0}8"), last("8"));
        assert_eq!(got("a\u{3000}9"), last("9"));
    }
}
