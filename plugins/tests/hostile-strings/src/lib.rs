//! A scorer whose strings attack the host that keeps and prints them. The
//! item id (up to a `#`, so many items can make one attack) picks the
//! attack; any other id scores normally (`ok` = 1).

use lem_plugin_sdk::Metric;
use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

struct HostileStrings;

const TEN_MB: usize = 10 << 20;

impl Scorer for HostileStrings {
    fn describe() -> PluginInfo {
        // Escape codes that would hide the rest of `inspect`'s output, a
        // newline forging an `imports` row, and ten megabytes of text.
        let description = format!(
            "innocent\u{1b}[8m\nimports      (none)\r\u{1b}]0;owned\u{7}{}",
            "d".repeat(TEN_MB)
        );
        PluginInfo::scorer("hostile-strings", "0.1.0", &["ok", "accuracy"])
            .with_description(&description)
    }

    fn score(item: Item, _response: String) -> Result<ScoreCard, PluginError> {
        match item.id.split('#').next().unwrap_or_default() {
            "huge-error" => Err(PluginError::Internal("e".repeat(TEN_MB))),
            "huge-invalid-input" => Err(PluginError::InvalidInput("i".repeat(TEN_MB))),
            "escape-error" => Err(PluginError::Internal(
                "bad\u{1b}[2J\nerror: forged line".into(),
            )),
            // Half a megabyte: under the output cap, so the name check sees it.
            "undeclared-huge-name" => Ok(ScoreCard::metric(&"n".repeat(1 << 19), 1.0)),
            "many-metrics" => Ok(ScoreCard {
                metrics: (0..45_000)
                    .map(|i| Metric {
                        name: format!("metric-{i}"),
                        value: 1.0,
                    })
                    .collect(),
                details: None,
            }),
            "deep-details" => Ok(ScoreCard {
                metrics: vec![Metric {
                    name: "ok".into(),
                    value: 1.0,
                }],
                details: Some(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))),
            }),
            "infinite-details" => Ok(ScoreCard {
                metrics: vec![Metric {
                    name: "ok".into(),
                    value: 1.0,
                }],
                details: Some(r#"{"x": 1e999}"#.into()),
            }),
            _ => Ok(ScoreCard::metric("ok", 1.0).and("accuracy", 1.0)),
        }
    }
}

lem_plugin_sdk::export_scorer!(HostileStrings);
