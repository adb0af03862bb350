//! A whole evaluation through the library, no CLI code: a tiny random
//! model answers two GSM8K items, the shipped scorer scores them, the report
//! is built, and every step is seen as an event in a `Vec`.

use lem_eval::{Event, Pass, Plan, RunOptions};
use lem_plugin_host::{Runtime, RuntimeConfig};
use std::sync::Mutex;

fn plan(dir: &std::path::Path, model: &std::path::Path, plugins: &Runtime) -> Plan {
    std::fs::write(
        dir.join("eval.toml"),
        format!(
            r#"out = "out"

[models]
tiny = "local:{}"

[[benchmarks]]
name = "gsm8k"
limit = 2

[generation]
max_tokens = 8
"#,
            model.display()
        ),
    )
    .unwrap();
    let config = lem_core::eval::EvalConfig::load(&dir.join("eval.toml")).unwrap();
    Plan::resolve(config, plugins).unwrap()
}

#[test]
fn a_tiny_model_is_evaluated_and_reported_with_events_in_a_vec() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    std::fs::create_dir(&model).unwrap();
    lem_engine::testing::write_model_dir(&model, 7);
    let plugins = Runtime::new(RuntimeConfig::default()).unwrap();

    let plan = plan(dir.path(), &model, &plugins);
    let rows = plan.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].items, rows[0].done), (2, 0));

    let events = Mutex::new(Vec::new());
    let outcome = plan
        .execute(&plugins, &RunOptions::default(), &events)
        .unwrap();
    assert_eq!(outcome.failed, 0);
    assert_eq!(outcome.judge_counts, None);

    let events = events.into_inner().unwrap();
    let started = |pass: Pass| {
        events.iter().find_map(|e| match e {
            Event::Started { task, total } if task.pass == pass => Some(*total),
            _ => None,
        })
    };
    let advanced = |pass: Pass| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Advanced { task, .. } if task.pass == pass))
            .count()
    };
    assert_eq!(started(Pass::Generate), Some(2), "{events:?}");
    assert_eq!(advanced(Pass::Generate), 2);
    // Two items, one scorer (the GSM8K exact match).
    assert_eq!(started(Pass::Score), Some(2));
    assert_eq!(advanced(Pass::Score), 2);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Finished { .. }))
            .count(),
        2
    );
    assert!(!events.iter().any(|e| matches!(e, Event::ItemFailed { .. })));

    let report = lem_report::to_json(&outcome.report);
    assert_eq!(
        report["models"]["tiny"]["gsm8k/accuracy"]["n"], 2,
        "{report:#}"
    );
    let run_dir = plan.run_dir();
    let responses = std::fs::read_to_string(run_dir.responses("tiny", "gsm8k")).unwrap();
    assert_eq!(responses.lines().count(), 2);
    for format in [
        lem_eval::Format::Md,
        lem_eval::Format::Html,
        lem_eval::Format::Json,
    ] {
        assert!(run_dir.report(format).is_file());
    }

    // A rerun generates nothing (the responses stay as they were) and scores again.
    let plan = self::plan(dir.path(), &model, &plugins);
    assert_eq!(plan.rows()[0].done, 2);
    let events = Mutex::new(Vec::new());
    plan.execute(&plugins, &RunOptions::default(), &events)
        .unwrap();
    let events = events.into_inner().unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Started { task, .. } if task.pass == Pass::Generate)),
        "{events:?}"
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.responses("tiny", "gsm8k")).unwrap(),
        responses
    );
}
