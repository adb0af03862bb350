//! A benchmark plugin of contract 0.2.0, built with the SDK's 0.2.0
//! benchmark API: the prompt field of the record as the user turn, after
//! the system text; an item `no-user` gets a system turn only, and a record
//! that is not JSON is `invalid-input`.

use lem_plugin_sdk::v0_2_0::benchmark::{
    Benchmark, Item, Message, PluginError, PluginInfo, PromptConfig,
};

struct BenchmarkV2;

impl Benchmark for BenchmarkV2 {
    fn describe() -> PluginInfo {
        PluginInfo::benchmark("benchmark-v2", "0.2.0").with_description("a 0.2.0 benchmark plugin")
    }

    fn prompt(item: Item, config: PromptConfig) -> Result<Vec<Message>, PluginError> {
        let record: serde_json::Value = serde_json::from_str(&item.record)
            .map_err(|e| PluginError::InvalidInput(format!("not JSON: {e}")))?;
        let system = config.system.unwrap_or_default();
        if item.id == "no-user" {
            return Ok(vec![Message::new("system", &system)]);
        }
        let prompt = record[config.prompt_field.as_str()]
            .as_str()
            .unwrap_or_default();
        Ok(vec![
            Message::new("system", &system),
            Message::new("user", prompt),
        ])
    }
}

lem_plugin_sdk::v0_2_0::export_benchmark!(BenchmarkV2);
