//! A scorer whose describe() declares 200,000 metrics: refused at load.

use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

struct DeclaresTooMuch;

impl Scorer for DeclaresTooMuch {
    fn describe() -> PluginInfo {
        let mut info = PluginInfo::scorer("declares-too-much", "0.1.0", &[]);
        info.metrics = (0..200_000).map(|i| format!("metric-{i}")).collect();
        info
    }

    fn score(_item: Item, _response: String) -> Result<ScoreCard, PluginError> {
        Ok(ScoreCard::metric("metric-0", 1.0))
    }
}

lem_plugin_sdk::export_scorer!(DeclaresTooMuch);
