//! Finding a JSON object in free text, as judge models answer.

use serde_json::{Map, Value};

/// Returns the last JSON object found in `text` (prose, code fences and all).
///
/// Judges often wrap their verdict in explanation or a ```json fence; the
/// last complete object is taken to be the verdict.
pub fn last_object(text: &str) -> Option<Map<String, Value>> {
    let bytes = text.as_bytes();
    let mut found = None;
    let mut start = 0;
    while let Some(offset) = text[start..].find('{') {
        let open = start + offset;
        if let Some(close) = matching_brace(bytes, open)
            && let Ok(Value::Object(map)) = serde_json::from_str(&text[open..=close])
        {
            found = Some(map);
            start = close + 1;
            continue;
        }
        start = open + 1;
    }
    found
}

/// Index of the `}` closing the `{` at `open`, honouring JSON strings.
fn matching_brace(bytes: &[u8], open: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_object_among_prose_and_fences() {
        let text = "First {\"a\": 1} then\n```json\n{\"a\": 2, \"s\": \"}{\"}\n```\nbye";
        let obj = last_object(text).unwrap();
        assert_eq!(obj["a"], 2);
        assert_eq!(obj["s"], "}{");
    }

    #[test]
    fn nested_objects_count_as_one() {
        let obj = last_object("x {\"outer\": {\"inner\": 3}} y").unwrap();
        assert_eq!(obj["outer"]["inner"], 3);
    }

    #[test]
    fn none_when_absent_or_broken() {
        assert!(last_object("no json here").is_none());
        assert!(last_object("{\"a\": 1").is_none());
        assert!(last_object("{not json}").is_none());
    }
}
