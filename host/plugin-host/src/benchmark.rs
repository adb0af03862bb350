//! Benchmark plugins: `prompt(item, config) -> messages`.

use crate::error::{CallError, CallErrorKind, LoadError};
use crate::inspect::World;
use crate::policy::Policy;
use crate::runtime::{PluginInfo, PluginSource, Runtime, Verified};
use crate::sandbox::{self, HostState};
use crate::scorer::PluginItem;
use crate::{v0_1_0, v0_2_0};
use lem_core::ChatMessage;
use wasmtime::Engine;

/// Prompt settings from the benchmark manifest.
#[derive(Debug, Clone, Default)]
pub struct PromptConfig {
    /// The record field holding the prompt.
    pub prompt_field: String,
    /// System text.
    pub system: Option<String>,
    /// Put the system text in the user turn.
    pub system_in_user_turn: bool,
    /// Free-form options.
    pub options: Vec<(String, String)>,
}

/// The pre-linked component, by contract version.
enum Pre {
    V0_1_0(v0_1_0::benchmark::BenchmarkPre<HostState>),
    V0_2_0(v0_2_0::benchmark::BenchmarkPre<HostState>),
}

/// An instance, by contract version.
enum Bindings {
    V0_1_0(v0_1_0::benchmark::Benchmark),
    V0_2_0(v0_2_0::benchmark::Benchmark),
}

/// A loaded, verified benchmark plugin.
pub struct Benchmark {
    engine: Engine,
    label: String,
    sha256: String,
    pre: Pre,
    info: PluginInfo,
    policy: Policy,
}

impl Benchmark {
    /// Verifies and links a benchmark plugin and asks it to describe itself.
    pub fn load(
        runtime: &Runtime,
        source: &PluginSource,
        policy: Policy,
    ) -> Result<Self, LoadError> {
        Self::load_with(runtime, source, policy, crate::runtime::Imports::Check)
    }

    pub(crate) fn load_with(
        runtime: &Runtime,
        source: &PluginSource,
        policy: Policy,
        imports: crate::runtime::Imports,
    ) -> Result<Self, LoadError> {
        let Verified {
            label,
            sha256,
            pre,
            info,
        } = runtime.verify(source, World::Benchmark, &policy, imports)?;
        let instantiate = |e: wasmtime::Error| LoadError::Instantiate {
            label: label.clone(),
            reason: format!("{e:#}"),
        };
        let pre = match info.wit_version.as_str() {
            "0.1.0" => Pre::V0_1_0(v0_1_0::benchmark::BenchmarkPre::new(pre).map_err(instantiate)?),
            "0.2.0" => Pre::V0_2_0(v0_2_0::benchmark::BenchmarkPre::new(pre).map_err(instantiate)?),
            other => {
                return Err(LoadError::UnsupportedVersion {
                    label,
                    found: other.to_string(),
                    supported: crate::SUPPORTED_WIT_VERSIONS.join(", "),
                });
            }
        };
        let mut benchmark = Benchmark {
            engine: runtime.engine().clone(),
            label,
            sha256,
            pre,
            info: PluginInfo::default(),
            policy,
        };
        benchmark.info = benchmark
            .call(|bindings, store| match bindings {
                Bindings::V0_1_0(b) => b
                    .lem_plugin_benchmark_api()
                    .call_describe(store)
                    .map(v0_1_0::info_from_guest),
                Bindings::V0_2_0(b) => b
                    .lem_plugin_benchmark_api()
                    .call_describe(store)
                    .map(v0_2_0::info_from_guest),
            })
            .map_err(|e| LoadError::Instantiate {
                label: benchmark.label.clone(),
                reason: format!("describe() failed: {e}"),
            })?;
        benchmark.info = crate::bound::check_info(
            std::mem::take(&mut benchmark.info),
            &benchmark.policy.limits,
        )
        .map_err(|reason| LoadError::Instantiate {
            label: benchmark.label.clone(),
            reason,
        })?;
        Ok(benchmark)
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// SHA-256 of the component.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The chat messages for one item, made in a fresh store.
    pub fn prompt(
        &self,
        item: &PluginItem,
        config: &PromptConfig,
    ) -> Result<Vec<ChatMessage>, CallError> {
        let limits = &self.policy.limits;
        let out: Vec<ChatMessage> = self.call(|bindings, store| {
            Ok(match bindings {
                Bindings::V0_1_0(b) => {
                    use v0_1_0::benchmark::exports::lem::plugin::benchmark_api::PromptConfig;
                    let guest_item = v0_1_0::scorer::lem::plugin::types::Item {
                        id: item.id.clone(),
                        benchmark: item.benchmark.clone(),
                        record: item.record.clone(),
                    };
                    let guest_config = PromptConfig {
                        prompt_field: config.prompt_field.clone(),
                        system: config.system.clone(),
                        system_in_user_turn: config.system_in_user_turn,
                        options: config.options.clone(),
                    };
                    b.lem_plugin_benchmark_api()
                        .call_prompt(store, &guest_item, &guest_config)?
                        .map(|out| out.into_iter().map(v0_1_0::message_from_guest).collect())
                        .map_err(|e| v0_1_0::plugin_error(e, limits))
                }
                Bindings::V0_2_0(b) => {
                    use v0_2_0::benchmark::exports::lem::plugin::benchmark_api::PromptConfig;
                    let guest_config = PromptConfig {
                        prompt_field: config.prompt_field.clone(),
                        system: config.system.clone(),
                        system_in_user_turn: config.system_in_user_turn,
                        options: config.options.clone(),
                    };
                    b.lem_plugin_benchmark_api()
                        .call_prompt(store, &v0_2_0::item_to_guest(item), &guest_config)?
                        .map(|out| out.into_iter().map(v0_2_0::message_from_guest).collect())
                        .map_err(|e| v0_2_0::plugin_error(e, limits))
                }
            })
        })??;
        check_messages(&out, &self.policy)?;
        Ok(out)
    }

    fn call<R>(
        &self,
        f: impl FnOnce(&Bindings, &mut wasmtime::Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        sandbox::call_fresh(
            &self.engine,
            &self.label,
            &self.policy,
            |store| match &self.pre {
                Pre::V0_1_0(pre) => pre.instantiate(store).map(Bindings::V0_1_0),
                Pre::V0_2_0(pre) => pre.instantiate(store).map(Bindings::V0_2_0),
            },
            f,
        )
    }
}

/// Messages returned by a plugin, held to the contract before they reach a
/// model: at most `max_messages` of them and `max_output_bytes` in all;
/// roles from the contract's set; system turns only at the start; and a user
/// turn with text in it (a prompt that asks nothing is not a prompt).
pub(crate) fn check_messages(messages: &[ChatMessage], policy: &Policy) -> Result<(), CallError> {
    let bad = |message: String| Err(CallError::new(CallErrorKind::BadOutput, message));
    let limits = &policy.limits;
    if messages.is_empty() {
        return bad("returned no messages".into());
    }
    if messages.len() > limits.max_messages {
        return Err(CallError::new(
            CallErrorKind::OutputTooLarge,
            format!(
                "returned {} messages; the limit is {} (`max_messages`)",
                messages.len(),
                limits.max_messages
            ),
        ));
    }
    let size: usize = messages
        .iter()
        .map(|m| m.role.len() + m.content.len())
        .sum();
    if size > limits.max_output_bytes {
        return Err(CallError::new(
            CallErrorKind::OutputTooLarge,
            format!(
                "returned {size} bytes of messages; the limit is {}",
                limits.max_output_bytes
            ),
        ));
    }
    let mut past_system = false;
    for (i, m) in messages.iter().enumerate() {
        match m.role.as_str() {
            "system" if past_system => {
                return bad(format!(
                    "message {} is a system turn after a user or assistant turn; system turns come first",
                    i + 1
                ));
            }
            "system" => {}
            "user" | "assistant" => past_system = true,
            other => {
                return bad(format!(
                    "message role `{}` is not one of system, user, assistant",
                    crate::bound::preview(other)
                ));
            }
        }
    }
    if !messages.iter().any(|m| m.role == "user") {
        return bad("returned no user turn".into());
    }
    if !messages
        .iter()
        .any(|m| m.role == "user" && !m.content.trim().is_empty())
    {
        return bad("every user turn is empty".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(turns: &[(&str, &str)]) -> Vec<ChatMessage> {
        turns
            .iter()
            .map(|(role, content)| ChatMessage::new(role, *content))
            .collect()
    }

    #[test]
    fn messages_are_held_to_the_contract() {
        let policy = Policy::default();
        let check = |turns: &[(&str, &str)]| check_messages(&msgs(turns), &policy);
        assert!(check(&[("system", "s"), ("user", "q")]).is_ok());
        assert!(check(&[("user", "q"), ("assistant", "a"), ("user", "q2")]).is_ok());
        for (turns, want) in [
            (&[][..], "no messages"),
            (&[("system", "s")][..], "no user turn"),
            (&[("assistant", "a")][..], "no user turn"),
            (&[("user", " \n ")][..], "every user turn is empty"),
            (&[("user", "q"), ("system", "s")][..], "system turn after"),
            (&[("tool", "x"), ("user", "q")][..], "role `tool`"),
        ] {
            let e = check(turns).unwrap_err();
            assert_eq!(e.kind, CallErrorKind::BadOutput, "{e}");
            assert!(e.message.contains(want), "{e}");
        }
        let many = vec![("user", ""); 250_000];
        let e = check(&many).unwrap_err();
        assert_eq!(e.kind, CallErrorKind::OutputTooLarge, "{e}");
        assert!(e.message.contains("250000 messages"), "{e}");
    }
}
