//! The score pass hands each scorer its manifest entry's `options` and each
//! response's messages (as `lem run` and `lem generate` record them): a
//! contract 0.2.0 scorer receives both; a 0.1.0 scorer scores as before.

use lem_core::jsonl::Located;
use lem_core::{BenchmarkItem, BenchmarkManifest, ResponseRecord};
use lem_eval::score::{self, ScoreJob};
use lem_eval::{Discard, Task};
use lem_plugin_host::{Runtime, RuntimeConfig};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

fn response(id: &str, text: &str, messages: Option<Value>) -> Located<ResponseRecord> {
    let mut record = json!({
        "id": id, "benchmark": "b", "model": "m", "prompt": "q", "response": text,
        "elapsed_seconds": 0.0,
    });
    if let Some(messages) = messages {
        record["messages"] = messages;
    }
    Located {
        line: 1,
        value: serde_json::from_value(record).unwrap(),
    }
}

#[test]
fn manifest_options_and_sent_messages_reach_the_scorer() {
    let manifest = format!(
        r#"name = "b"
[[scorers]]
plugin = "{}"
options = {{ guidance = "Be strict.", reasoning = "true" }}
[[scorers]]
plugin = "gsm8k"
[scorers.options]
ignored = "by a 0.1.0 scorer"
"#,
        lem_bundled::test_plugin("contract-v2").display()
    );
    let manifest =
        BenchmarkManifest::parse(&manifest, Path::new("b.toml"), Path::new(".")).unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let scorers = score::load_scorers(
        &runtime,
        &manifest,
        None,
        &lem_core::Limits::default(),
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        scorers[0].options,
        [
            ("guidance".to_string(), "Be strict.".to_string()),
            ("reasoning".to_string(), "true".to_string())
        ]
    );
    let items: HashMap<String, Located<BenchmarkItem>> = ["sent", "bare"]
        .into_iter()
        .map(|id| {
            let record = json!({"id": id, "question": "2+2?", "correct_answer": "4"});
            let Value::Object(record) = record else {
                unreachable!()
            };
            let item = BenchmarkItem {
                id: id.into(),
                record,
            };
            (
                id.to_string(),
                Located {
                    line: 1,
                    value: item,
                },
            )
        })
        .collect();
    let responses = [
        response(
            "sent",
            "#### 4",
            Some(json!([
                {"role": "system", "content": "the kernel"},
                {"role": "user", "content": "2+2?"}
            ])),
        ),
        response("bare", "#### 4", None),
    ];
    let records = score::score(
        &ScoreJob {
            benchmark: "b",
            items: &items,
            responses: &responses,
            scorers: &scorers,
            judge: None,
            concurrency: 1,
            task: Task::score("b"),
        },
        &Discard,
    )
    .unwrap();
    let record = |id: &str, plugin: &str| {
        records
            .iter()
            .find(|r| r.id == id && r.plugin.name == plugin)
            .unwrap_or_else(|| panic!("no record for {id} by {plugin}"))
    };
    let sent = record("sent", "contract-v2");
    assert!(sent.error.is_none(), "{:?}", sent.error);
    assert_eq!(
        (sent.metrics["messages"], sent.metrics["options"]),
        (2.0, 2.0)
    );
    let details: Value = serde_json::from_str(sent.details.as_ref().unwrap().get()).unwrap();
    assert_eq!(
        details["messages"],
        json!([["system", "the kernel"], ["user", "2+2?"]])
    );
    assert_eq!(
        details["options"],
        json!([["guidance", "Be strict."], ["reasoning", "true"]])
    );
    // A response without recorded messages: an empty list.
    let bare = record("bare", "contract-v2");
    assert_eq!(
        (bare.metrics["messages"], bare.metrics["options"]),
        (0.0, 2.0)
    );
    // The 0.1.0 scorer beside it scores as it always did.
    for id in ["sent", "bare"] {
        assert_eq!(record(id, "gsm8k").metrics["accuracy"], 1.0);
    }
}
