//! Seeds a hasher from random bytes: needs wasi:random.

use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

struct Guest;

impl Scorer for Guest {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("reads-random", "0.1.0", &["ok"])
    }

    fn score(_item: Item, _response: String) -> Result<ScoreCard, PluginError> {
        use std::hash::{BuildHasher, RandomState};
        Ok(ScoreCard::metric(
            "ok",
            (RandomState::new().hash_one(1u8) % 2) as f64,
        ))
    }
}

lem_plugin_sdk::export_scorer!(Guest);
