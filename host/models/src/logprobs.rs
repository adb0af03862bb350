//! Value distributions for backends that give only top log-probabilities
//! (OpenAI-compatible servers, Gemini): each integer field's distribution
//! read off the alternatives of the token that begins its value.
//!
//! This sees only the first token of a value: exact where every allowed
//! value is one token (`"7"`, and `"10"` in tokenizers that keep it whole),
//! and it counts `1` for `10` where a tokenizer splits it. The local engine
//! computes the exact distribution instead.

use crate::TokenLogprob;
use serde_json::Value;
use std::collections::BTreeMap;

/// Per integer field of `schema` (bounded range or integer `enum`): each
/// allowed value's probability among the alternatives of the token that
/// begins it in `tokens`, renormalised; fields whose value was not found, or
/// none of whose values is among the alternatives, are left out.
pub fn distributions_from_logprobs(
    schema: &Value,
    tokens: &[TokenLogprob],
) -> BTreeMap<String, BTreeMap<i64, f64>> {
    let mut out = BTreeMap::new();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    // Where each token starts in the text.
    let mut starts = Vec::with_capacity(tokens.len());
    let mut text = String::new();
    for t in tokens {
        starts.push(text.len());
        text.push_str(&t.token);
    }
    for (name, p) in properties {
        let Some(allowed) = allowed_values(p) else {
            continue;
        };
        let Ok(quoted) = serde_json::to_string(name) else {
            continue;
        };
        let Some(key) = text.find(&format!("{quoted}:")) else {
            continue;
        };
        let after = key + quoted.len() + 1;
        let value_start = after + text[after..].len() - text[after..].trim_start().len();
        // The token that holds the value's first character.
        let Some(i) = starts
            .iter()
            .rposition(|&s| s <= value_start)
            .filter(|&i| starts[i] + tokens[i].token.len() > value_start)
        else {
            continue;
        };
        let mut d: BTreeMap<i64, f64> = BTreeMap::new();
        for (alt, logprob) in &tokens[i].top {
            if let Ok(v) = alt.trim().parse::<i64>()
                && allowed(v)
            {
                *d.entry(v).or_insert(0.0) += logprob.exp();
            }
        }
        let total: f64 = d.values().sum();
        if total > 0.0 {
            d.values_mut().for_each(|p| *p /= total);
            out.insert(name.clone(), d);
        }
    }
    out
}

/// Whether a value is allowed by a bounded integer property.
fn allowed_values(p: &Value) -> Option<Box<dyn Fn(i64) -> bool>> {
    if let Some(list) = p.get("enum").and_then(Value::as_array) {
        let values: Vec<i64> = list.iter().map(Value::as_i64).collect::<Option<_>>()?;
        return Some(Box::new(move |v| values.contains(&v)));
    }
    if p.get("type").and_then(Value::as_str) != Some("integer") {
        return None;
    }
    let lo = p.get("minimum").and_then(Value::as_i64)?;
    let hi = p.get("maximum").and_then(Value::as_i64)?;
    Some(Box::new(move |v| (lo..=hi).contains(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(text: &str, top: &[(&str, f64)]) -> TokenLogprob {
        TokenLogprob {
            token: text.into(),
            logprob: top.first().map_or(0.0, |t| t.1),
            top: top.iter().map(|(t, l)| (t.to_string(), *l)).collect(),
        }
    }

    #[test]
    fn reads_the_alternatives_where_each_value_begins() {
        let schema = json!({"properties": {
            "safety": {"type": "integer", "minimum": 1, "maximum": 10},
            "nuance": {"enum": [0, 1, 2]},
            "reason": {"type": "string"},
        }});
        let tokens = [
            token("{\"", &[]),
            token("safety", &[]),
            token("\":", &[]),
            token(
                " 7",
                &[
                    (" 7", 0.6f64.ln()),
                    (" 8", 0.2f64.ln()),
                    (" 11", 0.1f64.ln()),
                    ("x", 0.1f64.ln()),
                ],
            ),
            token(", \"nuance\": ", &[]),
            token("2", &[("2", 0.5f64.ln()), ("1", 0.5f64.ln())]),
            token("}", &[]),
        ];
        let d = distributions_from_logprobs(&schema, &tokens);
        let safety = &d["safety"];
        assert!((safety[&7] - 0.75).abs() < 1e-9 && (safety[&8] - 0.25).abs() < 1e-9);
        assert_eq!(safety.len(), 2, "11 is out of range, x is no number");
        assert!((d["nuance"][&1] - 0.5).abs() < 1e-9);
        assert!(!d.contains_key("reason"));
    }

    #[test]
    fn a_field_not_in_the_text_has_no_distribution() {
        let schema =
            json!({"properties": {"safety": {"type": "integer", "minimum": 1, "maximum": 10}}});
        assert!(distributions_from_logprobs(&schema, &[token("{}", &[])]).is_empty());
    }
}
