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

    /// The raw JSON value of a field, if present.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field)
    }
}
