//! Sleeps an hour on the item named `sleep`: the wait is inside a host call
//! (`wasi:io/poll`), where no guest-time deadline can fire.

use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

struct Sleeper;

impl Scorer for Sleeper {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("sleeper", "0.1.0", &["ok"])
    }

    fn score(item: Item, _response: String) -> Result<ScoreCard, PluginError> {
        if item.id == "sleep" {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        Ok(ScoreCard::metric("ok", 1.0))
    }
}

lem_plugin_sdk::export_scorer!(Sleeper);
