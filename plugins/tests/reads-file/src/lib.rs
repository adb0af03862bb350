//! Tries to read /etc/passwd: needs wasi:filesystem.

use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

struct Guest;

impl Scorer for Guest {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("reads-file", "0.1.0", &["ok"])
    }

    fn score(_item: Item, _response: String) -> Result<ScoreCard, PluginError> {
        let text = std::fs::read_to_string("/etc/passwd")
            .map_err(|e| PluginError::Internal(e.to_string()))?;
        Ok(ScoreCard::metric("ok", text.len() as f64))
    }
}

lem_plugin_sdk::export_scorer!(Guest);
