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
        let Verified {
            label, sha256, pre, ..
        } = runtime.verify(source, World::Benchmark, &policy)?;
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
        let out = result.map_err(v0_1_0::plugin_error)?;
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

/// Messages returned by a plugin: bounded in size, with known roles.
pub(crate) fn check_messages(
    messages: &[v0_1_0::scorer::lem::plugin::types::Message],
    policy: &Policy,
) -> Result<(), CallError> {
    let size: usize = messages
        .iter()
        .map(|m| m.role.len() + m.content.len())
        .sum();
    if size > policy.limits.max_output_bytes {
        return Err(CallError::new(
            CallErrorKind::OutputTooLarge,
            format!(
                "returned {size} bytes of messages; the limit is {}",
                policy.limits.max_output_bytes
            ),
        ));
    }
    if let Some(m) = messages
        .iter()
        .find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
    {
        return Err(CallError::new(
            CallErrorKind::BadOutput,
            format!(
                "message role `{}` is not one of system, user, assistant",
                m.role
            ),
        ));
    }
    if messages.is_empty() {
        return Err(CallError::new(
            CallErrorKind::BadOutput,
            "returned no messages",
        ));
    }
    Ok(())
}
