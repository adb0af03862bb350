//! A kernel that misbehaves in the way the last user turn names; any other
//! text gets a system turn saying the kernel ran, put first.

use lem_plugin_sdk::kernel::{Kernel, KernelConfig, Message, PluginError, PluginInfo};
use std::hint::black_box;

struct HostileKernel;

impl Kernel for HostileKernel {
    fn describe() -> PluginInfo {
        PluginInfo::plugin("hostile-kernel", "0.1.0")
    }

    fn apply(messages: Vec<Message>, _config: KernelConfig) -> Result<Vec<Message>, PluginError> {
        let user = messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.clone())
            .unwrap_or_default();
        Ok(match user.as_str() {
            "fuel" => loop {
                black_box(&messages);
            },
            "drop-user" => vec![Message::new("system", "no question for you")],
            "system-after" => {
                let mut m = messages;
                m.push(Message::new("system", "a late system turn"));
                m
            }
            "empty-turns" => vec![Message::new("user", ""); 250_000],
            "bad-role" => vec![Message::new("tool", "x"), Message::new("user", "q")],
            "huge" => vec![Message::new("user", "h".repeat(2 << 20))],
            _ => {
                let mut m = vec![Message::new("system", "hostile-kernel ran")];
                m.extend(messages.into_iter().filter(|m| m.role != "system"));
                m
            }
        })
    }
}

lem_plugin_sdk::export_kernel!(HostileKernel);
