//! Reading fields of a benchmark record (the item's JSON text).

use crate::PluginError;
use serde_json::Value;

/// A parsed benchmark record.
pub struct Record(Value);

impl Record {
    /// Parses the item's JSON text.
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        serde_json::from_str(json)
            .map(Record)
            .map_err(|e| PluginError::InvalidInput(format!("item record is not JSON: {e}")))
    }

    /// A field as text: strings as they are, numbers and booleans printed.
    pub fn text(&self, field: &str) -> Result<String, PluginError> {
        match self.0.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
            Some(other) => Err(PluginError::InvalidInput(format!(
                "field `{field}` should be text, found {other}"
            ))),
            None => Err(PluginError::InvalidInput(format!(
                "the record has no field `{field}`"
            ))),
        }
    }

    /// An optional text field: absent, null or blank is `None`; otherwise as
    /// [`Record::text`].
    pub fn optional_text(&self, field: &str) -> Result<Option<String>, PluginError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => Ok(Some(self.text(field)?).filter(|t| !t.trim().is_empty())),
        }
    }

    /// The raw JSON value of a field, if present.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_text_is_none_when_absent_null_or_blank() {
        let r = Record::parse(r#"{"a": "x", "n": 3, "z": null, "b": "  ", "l": [1]}"#).unwrap();
        assert_eq!(r.optional_text("a").unwrap().as_deref(), Some("x"));
        assert_eq!(r.optional_text("n").unwrap().as_deref(), Some("3"));
        for field in ["missing", "z", "b"] {
            assert_eq!(r.optional_text(field).unwrap(), None, "{field}");
        }
        assert!(matches!(
            r.optional_text("l"),
            Err(PluginError::InvalidInput(_))
        ));
    }
}
