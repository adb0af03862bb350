use lem_plugin_sdk::v0_2_0::scorer::{
    Item, MetricDescriptor, PluginError, PluginInfo, ScoreCard, ScoreContext, Scorer,
};

struct WordCount;

impl Scorer for WordCount {
    fn describe() -> PluginInfo {
        PluginInfo::scorer(
            "word-count",
            "0.2.0",
            [
                MetricDescriptor::new("words"),
                MetricDescriptor::new("answered").percent(),
            ],
        )
    }

    fn score(
        _item: Item,
        response: String,
        _context: ScoreContext,
    ) -> Result<ScoreCard, PluginError> {
        let words = response.split_whitespace().count() as f64;
        Ok(ScoreCard::metric("words", words).and("answered", f64::from(u8::from(words > 0.0))))
    }
}

lem_plugin_sdk::v0_2_0::export_scorer!(WordCount);
