//! A scorer that misbehaves on purpose. The item id picks the attack; any
//! other id scores normally (metric `ok` = 1), so tests can check that the
//! rest of a run survives.

use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};
use std::hint::black_box;

struct Hostile;

impl Scorer for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("hostile", "0.1.0", &["ok"])
    }

    fn score(item: Item, response: String) -> Result<ScoreCard, PluginError> {
        match item.id.as_str() {
            "loop" => loop {
                black_box(&response);
            },
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![7u8; 1 << 20]));
                }
            }
            "recursion" => Ok(ScoreCard::metric("ok", recurse(black_box(1)) as f64)),
            "panic" => panic!("hostile plugin panicked on purpose"),
            "huge-return" => Ok(ScoreCard::metric("ok", 1.0)
                .with_details(serde_json::Value::String("x".repeat(100 << 20)))),
            "huge-metric-list" => Ok(ScoreCard {
                metrics: (0..2_000_000)
                    .map(|i| lem_plugin_sdk::Metric {
                        name: format!("m{i}"),
                        value: 1.0,
                    })
                    .collect(),
                details: None,
            }),
            "slow" => {
                // Finite, but long: about a few seconds of pure compute.
                let mut x = 0u64;
                for i in 0..black_box(20_000_000_000u64) {
                    x = black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                Ok(ScoreCard::metric("ok", (x % 2) as f64))
            }
            "env" => {
                let seen: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let args: Vec<String> = std::env::args().collect();
                Ok(
                    ScoreCard::metric("ok", 1.0).with_details(serde_json::json!({
                        "vars": seen,
                        "args": args,
                        "home": std::env::var("HOME").ok(),
                    })),
                )
            }
            "stderr-flood" => {
                for _ in 0..1_000_000 {
                    eprintln!("flooding stderr with a long line of text, again and again");
                }
                Ok(ScoreCard::metric("ok", 1.0))
            }
            "log-flood" => {
                for i in 0..100_000 {
                    lem_plugin_sdk::log::info(&format!("log line {i}"));
                }
                Ok(ScoreCard::metric("ok", 1.0))
            }
            "nan" => Ok(ScoreCard::metric("ok", f64::NAN)),
            _ => Ok(ScoreCard::metric("ok", 1.0)),
        }
    }
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let pad = black_box([depth; 16]);
    recurse(black_box(depth + 1)) + pad[3]
}

lem_plugin_sdk::export_scorer!(Hostile);
