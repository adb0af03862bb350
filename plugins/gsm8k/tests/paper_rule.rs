//! The paper's rule against Python's own regular-expression engine: 3,000
//! random answer-like strings and what Python's `re` extracts from each
//! (`fixtures/paper_rule_cases.jsonl`, written by `scripts/gsm8k_rule_cases.py`).

use lem_gsm8k::paper;
use serde_json::{Value, json};

#[test]
fn extraction_equals_pythons_re_on_random_strings() {
    let cases = include_str!("fixtures/paper_rule_cases.jsonl");
    let mut differ = Vec::new();
    let mut extracted = 0;
    for line in cases.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let response = case["response"].as_str().unwrap();
        let got = paper::extract(response).map(|e| json!([e.text, e.method.as_str()]));
        extracted += usize::from(got.is_some());
        if got.as_ref().unwrap_or(&Value::Null) != &case["extracted"] {
            differ.push(format!(
                "{response:?}: lem {got:?}, Python {}",
                case["extracted"]
            ));
        }
    }
    assert_eq!(cases.lines().count(), 3000);
    assert!(
        extracted > 1000,
        "the cases exercise extraction: {extracted}"
    );
    assert!(
        differ.is_empty(),
        "{} differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
}
