//! Kernel plugins: `apply(messages, config) -> messages`.

use crate::error::{CallError, LoadError};
use crate::inspect::World;
use crate::policy::Policy;
use crate::runtime::{PluginInfo, PluginSource, Runtime, Verified};
use crate::sandbox::{self, HostState};
use crate::v0_1_0;
use lem_core::ChatMessage;
use wasmtime::Engine;

/// What the host hands a kernel: text and axioms it read from files, and options.
#[derive(Debug, Clone, Default)]
pub struct KernelConfig {
    /// The kernel text.
    pub text: String,
    /// The axioms document (JSON text), possibly empty.
    pub axioms: String,
    /// Free-form options.
    pub options: Vec<(String, String)>,
}

/// A loaded, verified kernel plugin.
pub struct Kernel {
    engine: Engine,
    label: String,
    sha256: String,
    pre: v0_1_0::kernel::KernelPre<HostState>,
    info: PluginInfo,
    policy: Policy,
}

impl Kernel {
    /// Verifies and links a kernel and asks it to describe itself.
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
        } = runtime.verify(source, World::Kernel, &policy, imports)?;
        let pre = v0_1_0::kernel::KernelPre::new(pre).map_err(|e| LoadError::Instantiate {
            label: label.clone(),
            reason: format!("{e:#}"),
        })?;
        let mut kernel = Kernel {
            engine: runtime.engine().clone(),
            label,
            sha256,
            pre,
            info: PluginInfo::default(),
            policy,
        };
        kernel.info = kernel
            .call(|bindings, store| {
                bindings
                    .lem_plugin_kernel_api()
                    .call_describe(store)
                    .map(v0_1_0::info_from_guest)
            })
            .map_err(|e| LoadError::Instantiate {
                label: kernel.label.clone(),
                reason: format!("describe() failed: {e}"),
            })?;
        kernel.info =
            crate::bound::check_info(std::mem::take(&mut kernel.info), &kernel.policy.limits)
                .map_err(|reason| LoadError::Instantiate {
                    label: kernel.label.clone(),
                    reason,
                })?;
        Ok(kernel)
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// SHA-256 of the component.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Rewrites `messages` with the kernel, in a fresh store.
    pub fn apply(
        &self,
        messages: &[ChatMessage],
        config: &KernelConfig,
    ) -> Result<Vec<ChatMessage>, CallError> {
        let guest_messages: Vec<_> = messages.iter().map(v0_1_0::message_to_guest).collect();
        let guest_config = v0_1_0::kernel::exports::lem::plugin::kernel_api::KernelConfig {
            text: config.text.clone(),
            axioms: config.axioms.clone(),
            options: config.options.clone(),
        };
        let result = self.call(|bindings, store| {
            bindings
                .lem_plugin_kernel_api()
                .call_apply(store, &guest_messages, &guest_config)
        })?;
        let out = result.map_err(|e| v0_1_0::plugin_error(e, &self.policy.limits))?;
        crate::benchmark::check_messages(&out, &self.policy)?;
        Ok(out.into_iter().map(v0_1_0::message_from_guest).collect())
    }

    fn call<R>(
        &self,
        f: impl FnOnce(&v0_1_0::kernel::Kernel, &mut wasmtime::Store<HostState>) -> wasmtime::Result<R>,
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
