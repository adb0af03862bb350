//! GSM8K scoring: the wasm component (warm call, per-item instantiation, a
//! whole 50-item run from the compiled cache) against the same code native.
//!
//! `cargo bench -p lem-plugin-host --bench scorer`

use criterion::{Criterion, criterion_group, criterion_main};
use lem_plugin_host::scorer::PluginItem;
use lem_plugin_host::{NoJudge, PluginSource, Policy, Runtime, RuntimeConfig, Scorer};
use std::hint::black_box;
use std::sync::Arc;

/// A typical model answer: reasoning, then the marker.
fn response(n: usize) -> String {
    let mut text = String::from("Let me work through this step by step.\n");
    for step in 1..=12 {
        text.push_str(&format!(
            "Step {step}: we have {} apples and give away {} of them, leaving {}.\n",
            10 * step,
            step,
            9 * step
        ));
    }
    text.push_str(&format!("So the total is {n}.\n#### {n}"));
    text
}

fn items() -> Vec<(PluginItem, String)> {
    (0..50)
        .map(|i| {
            let item = PluginItem {
                id: format!("bench-{i}"),
                benchmark: "gsm8k".into(),
                record: format!(
                    "{{\"id\":\"bench-{i}\",\"question\":\"How many?\",\"correct_answer\":\"{}\"}}",
                    100 + i % 7
                ),
            };
            (item, response(100 + i % 5))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
    };
    let bytes = std::fs::read(lem_bundled::built_plugin("gsm8k")).unwrap();
    let source = PluginSource::from_bytes("gsm8k", bytes);
    let runtime = Runtime::new(config.clone()).unwrap();
    let scorer = Scorer::load(&runtime, &source, Policy::default(), Arc::new(NoJudge)).unwrap();
    let items = items();
    let (item, text) = &items[0];

    let mut group = c.benchmark_group("gsm8k");
    group.bench_function("native", |b| {
        b.iter(|| lem_gsm8k::grade(black_box(&item.record), black_box(text)).unwrap())
    });
    let mut instance = scorer.instance().unwrap();
    group.bench_function("wasm warm call", |b| {
        b.iter(|| {
            instance
                .score(black_box(item), black_box(text), &[], &[])
                .unwrap()
        })
    });
    group.bench_function("wasm fresh store per item", |b| {
        b.iter(|| {
            scorer
                .score(black_box(item), black_box(text), &[], &[])
                .result
                .unwrap()
        })
    });
    group.sample_size(20);
    group.bench_function("50-item run, component from cache", |b| {
        b.iter(|| {
            let runtime = Runtime::new(config.clone()).unwrap();
            let scorer =
                Scorer::load(&runtime, &source, Policy::default(), Arc::new(NoJudge)).unwrap();
            for (item, text) in &items {
                black_box(scorer.score(item, text, &[], &[]).result.unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
