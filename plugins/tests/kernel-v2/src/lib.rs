//! A kernel of contract 0.2.0: puts a system turn first naming the kernel
//! text and how many options it got; a last user turn of `bad-role` gets a
//! message of role `tool` back instead.

wit_bindgen::generate!({
    path: "../../../wit/lem-plugin-0.2.0",
    world: "kernel",
});

use exports::lem::plugin::kernel_api::{Guest, KernelConfig};
use lem::plugin::types::{Message, PluginError, PluginInfo};

struct KernelV2;

impl Guest for KernelV2 {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "kernel-v2".into(),
            version: "0.2.0".into(),
            description: "a 0.2.0 kernel".into(),
            metrics: Vec::new(),
            needs_judge: false,
        }
    }

    fn apply(messages: Vec<Message>, config: KernelConfig) -> Result<Vec<Message>, PluginError> {
        if messages.last().is_some_and(|m| m.content == "bad-role") {
            return Ok(vec![Message {
                role: "tool".into(),
                content: "x".into(),
            }]);
        }
        let mut out = vec![Message {
            role: "system".into(),
            content: format!("{} ({} options)", config.text, config.options.len()),
        }];
        out.extend(messages.into_iter().filter(|m| m.role != "system"));
        Ok(out)
    }
}

export!(KernelV2);
