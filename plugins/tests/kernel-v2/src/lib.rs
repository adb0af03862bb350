//! A kernel of contract 0.2.0, built with the SDK's 0.2.0 kernel API: puts a
//! system turn first naming the kernel text and how many options it got; a
//! last user turn of `bad-role` gets a message of role `tool` back instead.

use lem_plugin_sdk::v0_2_0::kernel::{Kernel, KernelConfig, Message, PluginError, PluginInfo};

struct KernelV2;

impl Kernel for KernelV2 {
    fn describe() -> PluginInfo {
        PluginInfo::kernel("kernel-v2", "0.2.0").with_description("a 0.2.0 kernel")
    }

    fn apply(messages: Vec<Message>, config: KernelConfig) -> Result<Vec<Message>, PluginError> {
        if messages.last().is_some_and(|m| m.content == "bad-role") {
            return Ok(vec![Message::new("tool", "x")]);
        }
        let mut out = vec![Message::new(
            "system",
            format!("{} ({} options)", config.text, config.options.len()),
        )];
        out.extend(messages.into_iter().filter(|m| m.role != "system"));
        Ok(out)
    }
}

lem_plugin_sdk::v0_2_0::export_kernel!(KernelV2);
