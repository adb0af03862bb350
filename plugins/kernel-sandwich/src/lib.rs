//! The `sandwich` kernel ("sandwich signing"): the last user turn becomes
//! the axioms document, a blank line, the original prompt, a blank line, and
//! the kernel text.
//!
//! The prompt is wrapped on both sides so that the model reads the axioms
//! before the request and the kernel text last, right before it answers; the
//! last user turn is the one being answered, so that is where it goes in a
//! multi-turn conversation. The axioms go in verbatim (trimmed) so the model
//! sees the document as written; they must be JSON, checked here.
//!
//! Invalid input: no user turn, an empty or non-JSON axioms document, blank
//! kernel text, or any option (this kernel takes none), so a misconfigured
//! arm fails instead of silently running without its kernel.
#![deny(missing_docs)]

use lem_plugin_sdk::kernel::{Kernel, KernelConfig, Message, PluginError, PluginInfo};

/// Signs the last user turn with the axioms before and the kernel text after.
pub fn apply(
    mut messages: Vec<Message>,
    config: &KernelConfig,
) -> Result<Vec<Message>, PluginError> {
    if let Some((key, _)) = config.options.first() {
        return Err(PluginError::InvalidInput(format!(
            "kernel-sandwich takes no options, found `{key}`"
        )));
    }
    let axioms = config.axioms.trim();
    if axioms.is_empty() {
        return Err(PluginError::InvalidInput(
            "kernel-sandwich needs the axioms document, which is empty".into(),
        ));
    }
    serde_json::from_str::<serde_json::Value>(axioms)
        .map_err(|e| PluginError::InvalidInput(format!("the axioms document is not JSON: {e}")))?;
    let text = config.text.trim();
    if text.is_empty() {
        return Err(PluginError::InvalidInput("the kernel text is empty".into()));
    }
    let turn = messages
        .iter_mut()
        .rev()
        .find(|m| m.role == "user")
        .ok_or_else(|| PluginError::InvalidInput("there is no user turn to sign".into()))?;
    turn.content = format!("{axioms}\n\n{}\n\n{text}", turn.content);
    Ok(messages)
}

struct KernelSandwich;

impl Kernel for KernelSandwich {
    fn describe() -> PluginInfo {
        PluginInfo::plugin("kernel-sandwich", env!("CARGO_PKG_VERSION"))
            .with_description("axioms before and kernel text after the last user prompt")
    }

    fn apply(messages: Vec<Message>, config: KernelConfig) -> Result<Vec<Message>, PluginError> {
        apply(messages, &config)
    }
}

lem_plugin_sdk::export_kernel!(KernelSandwich);

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> KernelConfig {
        KernelConfig {
            text: "KERNEL TEXT\n".into(),
            axioms: "\n{\"axioms\": [1]}\n".into(),
            options: Vec::new(),
        }
    }

    fn pairs(m: &[Message]) -> Vec<(&str, &str)> {
        m.iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect()
    }

    #[test]
    fn signs_the_last_user_turn_and_nothing_else() {
        let messages = vec![
            Message::new("system", "sys"),
            Message::new("user", "first"),
            Message::new("assistant", "ok"),
            Message::new("user", "What now?"),
        ];
        let out = apply(messages, &config()).unwrap();
        assert_eq!(
            pairs(&out),
            [
                ("system", "sys"),
                ("user", "first"),
                ("assistant", "ok"),
                ("user", "{\"axioms\": [1]}\n\nWhat now?\n\nKERNEL TEXT"),
            ]
        );
    }

    #[test]
    fn invalid_configurations_are_invalid_input() {
        let hi = || vec![Message::new("user", "hi")];
        let invalid = |messages: Vec<Message>, config: KernelConfig, needle: &str| match apply(
            messages, &config,
        ) {
            Err(PluginError::InvalidInput(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected invalid-input about {needle}, got {other:?}"),
        };
        invalid(vec![Message::new("system", "s")], config(), "no user turn");
        invalid(
            hi(),
            KernelConfig {
                axioms: " ".into(),
                ..config()
            },
            "empty",
        );
        invalid(
            hi(),
            KernelConfig {
                axioms: "not json".into(),
                ..config()
            },
            "not JSON",
        );
        invalid(
            hi(),
            KernelConfig {
                text: "".into(),
                ..config()
            },
            "kernel text",
        );
        let options = vec![("system_role".into(), "false".into())];
        invalid(
            hi(),
            KernelConfig {
                options,
                ..config()
            },
            "no options",
        );
        assert_eq!(__lem_exported_kernel().name, "kernel-sandwich");
    }
}
