use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

struct WordCount;

impl Scorer for WordCount {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("word-count", "0.1.0", &["words", "answered"])
    }

    fn score(_item: Item, response: String) -> Result<ScoreCard, PluginError> {
        let words = response.split_whitespace().count() as f64;
        Ok(ScoreCard::metric("words", words).and("answered", f64::from(u8::from(words > 0.0))))
    }
}

lem_plugin_sdk::export_scorer!(WordCount);
