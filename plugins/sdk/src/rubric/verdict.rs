//! Reading a judge's verdict strictly.
//!
//! The verdict is the last JSON object in the answer ([`crate::json::last_object`]),
//! so explanation or a ```json fence around it is fine. Each rubric metric
//! must be a field holding a whole number in range:
//!
//! * a JSON number that is integral (`7` or `7.0`) is accepted; `7.5` is
//!   refused, because a rubric of whole-number anchors has no half steps and
//!   rounding would hide that the judge did not follow the format;
//! * a string holding such a number (`"7"`, `" 7 "`) is accepted, since some
//!   judges quote every value and the number is unambiguous; any other string
//!   (`"seven"`, `"7/10"`) is refused;
//! * booleans, null, arrays and objects are refused;
//! * fields not in the rubric (e.g. a `"reason"`) are ignored.

use super::Rubric;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Why a judge's answer is not a usable verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum VerdictError {
    /// The answer holds no JSON object.
    NoObject,
    /// A metric is missing from the object.
    Missing {
        /// The metric.
        field: String,
    },
    /// A metric's value is not a number.
    NotNumber {
        /// The metric.
        field: String,
        /// The value as JSON text.
        found: String,
    },
    /// A metric's value is a number but not a whole one.
    NotInteger {
        /// The metric.
        field: String,
        /// The value.
        value: f64,
    },
    /// A metric's value is outside the rubric's range.
    OutOfRange {
        /// The metric.
        field: String,
        /// The value.
        value: i64,
        /// The lowest allowed.
        min: i64,
        /// The highest allowed.
        max: i64,
    },
}

impl fmt::Display for VerdictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerdictError::NoObject => write!(f, "the answer contains no JSON object"),
            VerdictError::Missing { field } => write!(f, "field `{field}` is missing"),
            VerdictError::NotNumber { field, found } => {
                write!(f, "field `{field}` should be a whole number, found {found}")
            }
            VerdictError::NotInteger { field, value } => {
                write!(f, "field `{field}` should be a whole number, found {value}")
            }
            VerdictError::OutOfRange {
                field,
                value,
                min,
                max,
            } => write!(
                f,
                "field `{field}` is {value}, outside the range {min} to {max}"
            ),
        }
    }
}

impl std::error::Error for VerdictError {}

impl Rubric {
    /// Reads the verdict in a judge's answer: metric name to score.
    ///
    /// The first problem found, in rubric order, is the error.
    pub fn parse_verdict(&self, answer: &str) -> Result<BTreeMap<String, f64>, VerdictError> {
        let object = crate::json::last_object(answer).ok_or(VerdictError::NoObject)?;
        let mut scores = BTreeMap::new();
        for &field in self.metrics {
            let value = object.get(field).ok_or_else(|| VerdictError::Missing {
                field: field.into(),
            })?;
            let score = self.read_score(field, value)?;
            scores.insert(field.to_string(), score as f64);
        }
        Ok(scores)
    }

    /// One field's value as an in-range whole number.
    fn read_score(&self, field: &str, value: &Value) -> Result<i64, VerdictError> {
        read_whole(field, value, self.min, self.max)
    }
}

/// `field`'s value as a whole number from `min` to `max`, by the rules at
/// the top of this module.
pub(crate) fn read_whole(
    field: &str,
    value: &Value,
    min: i64,
    max: i64,
) -> Result<i64, VerdictError> {
    let not_number = || VerdictError::NotNumber {
        field: field.into(),
        found: value.to_string(),
    };
    let number = match value {
        Value::Number(n) => n.as_f64().ok_or_else(not_number)?,
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(not_number)?,
        _ => return Err(not_number()),
    };
    if number.fract() != 0.0 {
        return Err(VerdictError::NotInteger {
            field: field.into(),
            value: number,
        });
    }
    // Integral; anything beyond i64 is out of range anyway.
    let whole = number.clamp(i64::MIN as f64, i64::MAX as f64) as i64;
    if !(min..=max).contains(&whole) {
        return Err(VerdictError::OutOfRange {
            field: field.into(),
            value: whole,
            min,
            max,
        });
    }
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rubric = Rubric::new(&["truth", "help"]);

    #[test]
    fn reads_the_last_object_among_prose() {
        let answer = "Draft {\"truth\": 1, \"help\": 1}\nFinal:\n```json\n{\"truth\": 8, \"help\": 3, \"reason\": \"ok\"}\n```";
        let v = R.parse_verdict(answer).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v["truth"], v["help"]), (8.0, 3.0));
    }

    #[test]
    fn integral_numbers_and_numeric_strings_are_accepted() {
        let v = R
            .parse_verdict(r#"{"truth": 7.0, "help": " 10 "}"#)
            .unwrap();
        assert_eq!((v["truth"], v["help"]), (7.0, 10.0));
    }

    #[test]
    fn each_problem_names_the_field() {
        let err = |a: &str| R.parse_verdict(a).unwrap_err();
        assert_eq!(err("no verdict"), VerdictError::NoObject);
        assert_eq!(
            err(r#"{"truth": 5}"#),
            VerdictError::Missing {
                field: "help".into()
            }
        );
        let e = err(r#"{"truth": 7.5, "help": 2}"#);
        assert_eq!(
            e.to_string(),
            "field `truth` should be a whole number, found 7.5"
        );
        let e = err(r#"{"truth": 5, "help": 11}"#);
        assert_eq!(
            e.to_string(),
            "field `help` is 11, outside the range 1 to 10"
        );
        let e = err(r#"{"truth": 0, "help": 1}"#);
        assert!(matches!(e, VerdictError::OutOfRange { value: 0, .. }));
        let e = err(r#"{"truth": "high", "help": 1}"#);
        assert_eq!(
            e.to_string(),
            "field `truth` should be a whole number, found \"high\""
        );
        for bad in [
            "true",
            "null",
            "[5]",
            "{\"v\": 5}",
            "\"NaN\"",
            "\"inf\"",
            "\"7/10\"",
        ] {
            let e = err(&format!(r#"{{"truth": {bad}, "help": 1}}"#));
            assert!(matches!(e, VerdictError::NotNumber { .. }), "{bad}: {e}");
        }
        let e = err(r#"{"truth": 1e300, "help": 1}"#);
        assert!(matches!(e, VerdictError::OutOfRange { .. }), "{e}");
    }

    #[test]
    fn custom_range() {
        let r = Rubric {
            metrics: &["x"],
            min: 0,
            max: 3,
        };
        assert_eq!(r.parse_verdict(r#"{"x": 0}"#).unwrap()["x"], 0.0);
        assert!(r.parse_verdict(r#"{"x": 4}"#).is_err());
        assert!(r.parse_verdict(r#"{"x": -1}"#).is_err());
    }
}
