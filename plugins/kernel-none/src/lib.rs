//! The `none` kernel: hands the messages back unchanged.
//!
//! It is the baseline arm of a kernel comparison, so it is a real plugin
//! going through the same host path as the others, rather than a special case
//! in the host. It ignores the kernel text, the axioms and every option, so
//! an eval config can swap it in for any other kernel without edits.
#![deny(missing_docs)]

use lem_plugin_sdk::kernel::{Kernel, KernelConfig, Message, PluginError, PluginInfo};

/// Returns `messages` as they are.
pub fn apply(messages: Vec<Message>, _config: &KernelConfig) -> Vec<Message> {
    messages
}

struct KernelNone;

impl Kernel for KernelNone {
    fn describe() -> PluginInfo {
        PluginInfo::plugin("kernel-none", env!("CARGO_PKG_VERSION"))
            .with_description("baseline: messages unchanged")
    }

    fn apply(messages: Vec<Message>, config: KernelConfig) -> Result<Vec<Message>, PluginError> {
        Ok(apply(messages, &config))
    }
}

lem_plugin_sdk::export_kernel!(KernelNone);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_back_unchanged() {
        let messages = vec![Message::new("system", "s"), Message::new("user", "u")];
        let config = KernelConfig {
            text: "kernel".into(),
            axioms: "{}".into(),
            options: vec![("system_role".into(), "false".into())],
        };
        let out = apply(messages.clone(), &config);
        let pairs = |m: &[Message]| -> Vec<(String, String)> {
            m.iter()
                .map(|m| (m.role.clone(), m.content.clone()))
                .collect()
        };
        assert_eq!(pairs(&out), pairs(&messages));
        assert!(apply(Vec::new(), &config).is_empty());
        assert_eq!(__lem_exported_kernel().name, "kernel-none");
    }
}
