//! The flexible GSM8K rule: a friendlier reading of a response than the
//! paper's (see [`crate::paper`]), reported as the `flexible` and `strict`
//! metrics, as harnesses report flexible and strict matches beside each other.
//!
//! When the response has a `####` marker, the answer is the number directly
//! after it (spaces and a `$` may stand between); a marker with no number
//! after it means no answer: the model gave the marker and then said nothing.
//! Without a marker, the answer is the last number anywhere in the response,
//! wherever it stands (`$18`, `**18**`). Commas are thousands separators and
//! are dropped. Two answers are equal when they differ by less than 0.01.

/// How the answer was found in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// After a `####` marker.
    Marker,
    /// No usable marker: the last number in the text.
    LastNumber,
}

impl Method {
    /// Name used in score details.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Marker => "####",
            Method::LastNumber => "last-number",
        }
    }
}

/// An answer found in a response: the text as written (commas removed) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The number as written, commas removed.
    pub text: String,
    /// Its value.
    pub value: f64,
    /// Where it came from.
    pub method: Method,
}

/// Finds the answer in a model's response.
pub fn extract(response: &str) -> Option<Answer> {
    if response.contains("####") {
        return response.split("####").skip(1).find_map(|after| {
            let after = after.trim_start_matches(|c: char| c.is_whitespace() || c == '$');
            let (text, value) = numbers(after).next()?;
            let direct = after.starts_with(|c: char| c.is_ascii_digit())
                || (after.starts_with('-') && text.starts_with('-'));
            direct.then_some(Answer {
                text,
                value,
                method: Method::Marker,
            })
        });
    }
    numbers(response).last().map(|(text, value)| Answer {
        text,
        value,
        method: Method::LastNumber,
    })
}

/// The strict variant: only a number directly after `####` counts.
pub fn extract_strict(response: &str) -> Option<Answer> {
    extract(response).filter(|a| a.method == Method::Marker)
}

/// Whether two answers are equal under the paper's tolerance.
pub fn matches(got: f64, expected: f64) -> bool {
    (got - expected).abs() < 0.01
}

/// Parses a reference answer (`"1,234"`, `"-3.5"`, `"#### 72"`).
pub fn parse_expected(text: &str) -> Option<f64> {
    extract(text).map(|a| a.value)
}

/// Every number in `text`, in order: an optional minus, digits (commas allowed
/// between digits), and an optional fractional part. A trailing full stop is
/// punctuation, not a decimal point.
fn numbers(text: &str) -> impl Iterator<Item = (String, f64)> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if !bytes[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let negative = i > 0 && bytes[i - 1] == b'-';
            let mut digits = String::new();
            if negative {
                digits.push('-');
            }
            while i < bytes.len() {
                match bytes[i] {
                    b @ b'0'..=b'9' => digits.push(b as char),
                    b',' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {}
                    _ => break,
                }
                i += 1;
            }
            if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                digits.push('.');
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    digits.push(bytes[i] as char);
                    i += 1;
                }
            }
            if let Ok(value) = digits.parse::<f64>() {
                return Some((digits, value));
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_wins_over_later_numbers() {
        let a = extract("so 3 + 4 = 7\n#### 7\nCheck: 12 apples").unwrap();
        assert_eq!((a.text.as_str(), a.method), ("7", Method::Marker));
    }

    #[test]
    fn last_number_when_no_marker() {
        let a = extract("She pays $1,250.50 for 3 items. The answer is 18.").unwrap();
        assert_eq!(a.text, "18");
        assert_eq!(a.method, Method::LastNumber);
        assert!(extract_strict("The answer is 18.").is_none());
    }

    #[test]
    fn commas_decimals_and_signs() {
        assert_eq!(extract("#### 1,234,567").unwrap().value, 1_234_567.0);
        assert_eq!(extract("it fell to -3.25 degrees").unwrap().value, -3.25);
        assert_eq!(extract("a list: 1, 2, 3").unwrap().value, 3.0);
        assert_eq!(extract("x = 5.").unwrap().text, "5");
    }

    #[test]
    fn marker_without_number_is_no_answer() {
        assert!(extract("I think 42. The final answer is ####").is_none());
        assert!(extract("#### the answer is 42").is_none());
        let a = extract("#### $1,000 total, not 12").unwrap();
        assert_eq!((a.value, a.method), (1000.0, Method::Marker));
        assert_eq!(extract("first #### then\n#### -7").unwrap().value, -7.0);
    }

    #[test]
    fn tolerance_is_strictly_below_a_hundredth() {
        assert!(matches(18.0, 18.009));
        assert!(!matches(18.0, 18.01 + 1e-9));
        assert!(extract("no digits at all").is_none());
    }
}
