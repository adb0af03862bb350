//! Reads the wall clock: needs wasi:clocks.

use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

struct Guest;

impl Scorer for Guest {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("reads-clock", "0.1.0", &["ok"])
    }

    fn score(_item: Item, _response: String) -> Result<ScoreCard, PluginError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| PluginError::Internal(e.to_string()))?;
        Ok(ScoreCard::metric("ok", now.as_secs_f64()))
    }
}

lem_plugin_sdk::export_scorer!(Guest);
