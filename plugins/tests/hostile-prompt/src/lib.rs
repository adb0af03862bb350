//! A benchmark plugin that misbehaves in the way the item id names; any
//! other item's prompt is its `question` field.

use lem_plugin_sdk::benchmark::{Benchmark, Item, Message, PluginError, PluginInfo, PromptConfig};
use lem_plugin_sdk::record::Record;
use std::hint::black_box;

struct HostilePrompt;

impl Benchmark for HostilePrompt {
    fn describe() -> PluginInfo {
        PluginInfo::plugin("hostile-prompt", "0.1.0")
    }

    fn prompt(item: Item, config: PromptConfig) -> Result<Vec<Message>, PluginError> {
        Ok(match item.id.as_str() {
            "empty" => vec![Message::new("user", "")],
            "huge" => vec![Message::new("user", "h".repeat(2 << 20))],
            "loop" => loop {
                black_box(&item);
            },
            "bad-role" => vec![Message::new("narrator", "once upon a time")],
            "error" => return Err(PluginError::InvalidInput("no prompt for this item".into())),
            _ => {
                let text = Record::parse(&item.record)?.text(&config.prompt_field)?;
                vec![Message::new("user", text)]
            }
        })
    }
}

lem_plugin_sdk::export_benchmark!(HostilePrompt);
