//! Benchmark plugins: `prompt(item, config) -> messages`.

use crate::error::{CallError, CallErrorKind, LoadError};
use crate::inspect::World;
use crate::policy::Policy;
use crate::runtime::{PluginInfo, PluginSource, Runtime, Verified};
use crate::sandbox::{self, HostState};
use crate::scorer::PluginItem;
use crate::v0_1_0;
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

/// A loaded, verified benchmark plugin.
pub struct Benchmark {
    engine: Engine,
    label: String,
    sha256: String,
    pre: v0_1_0::benchmark::BenchmarkPre<HostState>,
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
            label, sha256, pre, ..
        } = runtime.verify(source, World::Benchmark, &policy, imports)?;
        let pre =
            v0_1_0::benchmark::BenchmarkPre::new(pre).map_err(|e| LoadError::Instantiate {
                label: label.clone(),
                reason: format!("{e:#}"),
            })?;
        let mut benchmark = Benchmark {
            engine: runtime.engine().clone(),
            label,
            sha256,
            pre,
            info: PluginInfo::default(),
            policy,
        };
        benchmark.info = benchmark
            .call(|b, store| {
                b.lem_plugin_benchmark_api()
                    .call_describe(store)
                    .map(v0_1_0::info_from_guest)
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
        let guest_item = v0_1_0::scorer::lem::plugin::types::Item {
            id: item.id.clone(),
            benchmark: item.benchmark.clone(),
            record: item.record.clone(),
        };
        let guest_config = v0_1_0::benchmark::exports::lem::plugin::benchmark_api::PromptConfig {
            prompt_field: config.prompt_field.clone(),
            system: config.system.clone(),
            system_in_user_turn: config.system_in_user_turn,
            options: config.options.clone(),
        };
        let result = self.call(|b, store| {
            b.lem_plugin_benchmark_api()
                .call_prompt(store, &guest_item, &guest_config)
        })?;
        let out = result.map_err(|e| v0_1_0::plugin_error(e, &self.policy.limits))?;
        check_messages(&out, &self.policy)?;
        Ok(out.into_iter().map(v0_1_0::message_from_guest).collect())
    }

    fn call<R>(
        &self,
        f: impl FnOnce(
            &v0_1_0::benchmark::Benchmark,
            &mut wasmtime::Store<HostState>,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        sandbox::call_fresh(
            &self.engine,
            &self.label,
            &self.policy,
            |store| self.pre.instantiate(store),
            f,
        )
    }
}

/// Messages returned by a plugin, held to the contract before they reach a
/// model: at most `max_messages` of them and `max_output_bytes` in all;
/// roles from the contract's set; system turns only at the start; and a user
/// turn with text in it (a prompt that asks nothing is not a prompt).
pub(crate) fn check_messages(
    messages: &[v0_1_0::scorer::lem::plugin::types::Message],
    policy: &Policy,
) -> Result<(), CallError> {
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
    use v0_1_0::scorer::lem::plugin::types::Message;

    fn msgs(turns: &[(&str, &str)]) -> Vec<Message> {
        turns
            .iter()
            .map(|(role, content)| Message {
                role: role.to_string(),
                content: content.to_string(),
            })
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
