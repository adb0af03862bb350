//! The template benchmark: the prompt is one field of the record; the
//! manifest's system text becomes a system turn, or (as the upstream GSM8K
//! runs do) is put in the user turn before the prompt.

use lem_plugin_sdk::benchmark::{Benchmark, Item, Message, PluginError, PluginInfo, PromptConfig};
use lem_plugin_sdk::record::Record;

struct Template;

impl Benchmark for Template {
    fn describe() -> PluginInfo {
        PluginInfo::plugin("template", env!("CARGO_PKG_VERSION"))
            .with_description("prompt = one record field; optional system text")
    }

    fn prompt(item: Item, config: PromptConfig) -> Result<Vec<Message>, PluginError> {
        let text = Record::parse(&item.record)?.text(&config.prompt_field)?;
        Ok(match config.system.filter(|s| !s.trim().is_empty()) {
            None => vec![Message::new("user", text)],
            Some(system) if config.system_in_user_turn => {
                vec![Message::new("user", format!("{system}\n\n{text}"))]
            }
            Some(system) => vec![Message::new("system", system), Message::new("user", text)],
        })
    }
}

lem_plugin_sdk::export_benchmark!(Template);
