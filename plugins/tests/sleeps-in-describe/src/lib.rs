//! describe() sleeps an hour inside a host call: `lem plugin inspect` on it
//! must still return.

use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

struct SleepsInDescribe;

impl Scorer for SleepsInDescribe {
    fn describe() -> PluginInfo {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        PluginInfo::scorer("sleeps-in-describe", "0.1.0", &["ok"])
    }

    fn score(_item: Item, _response: String) -> Result<ScoreCard, PluginError> {
        Ok(ScoreCard::metric("ok", 1.0))
    }
}

lem_plugin_sdk::export_scorer!(SleepsInDescribe);
