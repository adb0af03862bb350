//! The `system` kernel: the kernel text becomes (the start of) the system turn.
//!
//! If the messages already have a system turn, the kernel text goes before
//! its content, separated by a blank line, in that same turn: one system turn
//! is what chat templates expect, and the kernel comes first so the
//! benchmark's own instructions read as working within it. Otherwise a system
//! turn holding the kernel text is put first.
//!
//! Option `system_role` (`"true"` by default, or `"false"`): set it to
//! `"false"` for models whose chat template has no system role (Gemma's, for
//! one). The kernel text is then put before the content of the first user
//! turn, separated by a blank line, and any system turn is left as it is.
//!
//! Unknown options, an option value other than `true`/`false`, blank kernel
//! text, or (with `system_role = false`) no user turn are `invalid-input`:
//! a misconfigured arm must fail, not silently run without its kernel.
#![deny(missing_docs)]

use lem_plugin_sdk::kernel::{Kernel, KernelConfig, Message, PluginError, PluginInfo};

/// The option naming whether the model's template has a system role.
pub const SYSTEM_ROLE: &str = "system_role";

/// Where the kernel text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the system turn (the default).
    SystemTurn,
    /// Before the first user turn's content (`system_role = false`).
    FirstUserTurn,
}

impl Placement {
    /// Reads the options.
    pub fn from_options(options: &[(String, String)]) -> Result<Self, PluginError> {
        let mut placement = Placement::SystemTurn;
        for (key, value) in options {
            if key != SYSTEM_ROLE {
                return Err(PluginError::InvalidInput(format!(
                    "kernel-system has no option `{key}` (it knows `{SYSTEM_ROLE}`)"
                )));
            }
            placement = match value.trim() {
                "true" => Placement::SystemTurn,
                "false" => Placement::FirstUserTurn,
                other => {
                    return Err(PluginError::InvalidInput(format!(
                        "option `{SYSTEM_ROLE}` should be `true` or `false`, found `{other}`"
                    )));
                }
            };
        }
        Ok(placement)
    }
}

/// Adds the kernel text to `messages` as the options say.
pub fn apply(
    mut messages: Vec<Message>,
    config: &KernelConfig,
) -> Result<Vec<Message>, PluginError> {
    let placement = Placement::from_options(&config.options)?;
    let text = config.text.trim();
    if text.is_empty() {
        return Err(PluginError::InvalidInput("the kernel text is empty".into()));
    }
    let role = match placement {
        Placement::SystemTurn => "system",
        Placement::FirstUserTurn => "user",
    };
    match messages.iter_mut().find(|m| m.role == role) {
        Some(turn) => turn.content = join(text, &turn.content),
        None if placement == Placement::SystemTurn => {
            messages.insert(0, Message::new("system", text));
        }
        None => {
            return Err(PluginError::InvalidInput(
                "there is no user turn to put the kernel text in".into(),
            ));
        }
    }
    Ok(messages)
}

/// The kernel text, a blank line, then the existing content (if any).
fn join(kernel: &str, content: &str) -> String {
    if content.trim().is_empty() {
        kernel.to_string()
    } else {
        format!("{kernel}\n\n{content}")
    }
}

struct KernelSystem;

impl Kernel for KernelSystem {
    fn describe() -> PluginInfo {
        PluginInfo::plugin("kernel-system", env!("CARGO_PKG_VERSION"))
            .with_description("kernel text in the system turn (or the first user turn)")
    }

    fn apply(messages: Vec<Message>, config: KernelConfig) -> Result<Vec<Message>, PluginError> {
        apply(messages, &config)
    }
}

lem_plugin_sdk::export_kernel!(KernelSystem);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(options: &[(&str, &str)]) -> KernelConfig {
        KernelConfig {
            text: "KERNEL\n".into(),
            axioms: String::new(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn pairs(m: &[Message]) -> Vec<(&str, &str)> {
        m.iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect()
    }

    #[test]
    fn adds_a_system_turn_first_when_there_is_none() {
        let out = apply(vec![Message::new("user", "hi")], &config(&[])).unwrap();
        assert_eq!(pairs(&out), [("system", "KERNEL"), ("user", "hi")]);
    }

    #[test]
    fn goes_before_an_existing_system_turn_in_the_same_turn() {
        let messages = vec![
            Message::new("system", "Be brief."),
            Message::new("user", "hi"),
        ];
        let out = apply(messages, &config(&[("system_role", "true")])).unwrap();
        assert_eq!(
            pairs(&out),
            [("system", "KERNEL\n\nBe brief."), ("user", "hi")]
        );
    }

    #[test]
    fn without_a_system_role_it_prefixes_the_first_user_turn() {
        let messages = vec![
            Message::new("user", "first"),
            Message::new("assistant", "ok"),
            Message::new("user", "second"),
        ];
        let out = apply(messages, &config(&[("system_role", "false")])).unwrap();
        assert_eq!(
            pairs(&out),
            [
                ("user", "KERNEL\n\nfirst"),
                ("assistant", "ok"),
                ("user", "second")
            ]
        );
        let none = apply(
            vec![Message::new("system", "s")],
            &config(&[("system_role", "false")]),
        );
        assert!(matches!(none, Err(PluginError::InvalidInput(_))));
    }

    #[test]
    fn bad_options_and_empty_text_are_invalid_input() {
        let hi = || vec![Message::new("user", "hi")];
        for bad in [&[("system_role", "no")][..], &[("systemrole", "false")][..]] {
            let result = apply(hi(), &config(bad));
            assert!(
                matches!(result, Err(PluginError::InvalidInput(_))),
                "{bad:?}"
            );
        }
        let mut blank = config(&[]);
        blank.text = " \n".into();
        assert!(matches!(
            apply(hi(), &blank),
            Err(PluginError::InvalidInput(_))
        ));
        assert_eq!(__lem_exported_kernel().name, "kernel-system");
    }
}
