//! A benchmark plugin of contract 0.2.0: the prompt field of the record as
//! the user turn, after the system text; an item `no-user` gets a system
//! turn only, and a record that is not JSON is `invalid-input`.

wit_bindgen::generate!({
    path: "../../../wit/lem-plugin-0.2.0",
    world: "benchmark",
});

use exports::lem::plugin::benchmark_api::{Guest, PromptConfig};
use lem::plugin::types::{Item, Message, PluginError, PluginInfo};

struct BenchmarkV2;

fn message(role: &str, content: String) -> Message {
    Message {
        role: role.into(),
        content,
    }
}

impl Guest for BenchmarkV2 {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "benchmark-v2".into(),
            version: "0.2.0".into(),
            description: "a 0.2.0 benchmark plugin".into(),
            metrics: Vec::new(),
            needs_judge: false,
        }
    }

    fn prompt(item: Item, config: PromptConfig) -> Result<Vec<Message>, PluginError> {
        let record: serde_json::Value = serde_json::from_str(&item.record)
            .map_err(|e| PluginError::InvalidInput(format!("not JSON: {e}")))?;
        let system = config.system.unwrap_or_default();
        if item.id == "no-user" {
            return Ok(vec![message("system", system)]);
        }
        let prompt = record[config.prompt_field.as_str()]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(vec![message("system", system), message("user", prompt)])
    }
}

export!(BenchmarkV2);
