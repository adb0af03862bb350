//! Kernel plugins: `apply(messages, config) -> messages`.

use crate::error::{CallError, LoadError};
use crate::inspect::World;
use crate::policy::Policy;
use crate::runtime::{PluginInfo, PluginSource, Runtime, Verified};
use crate::sandbox::{self, HostState};
use crate::{v0_1_0, v0_2_0};
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

/// The pre-linked component, by contract version.
enum Pre {
    V0_1_0(v0_1_0::kernel::KernelPre<HostState>),
    V0_2_0(v0_2_0::kernel::KernelPre<HostState>),
}

/// An instance, by contract version.
enum Bindings {
    V0_1_0(v0_1_0::kernel::Kernel),
    V0_2_0(v0_2_0::kernel::Kernel),
}

/// A loaded, verified kernel plugin.
pub struct Kernel {
    engine: Engine,
    label: String,
    sha256: String,
    pre: Pre,
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
            label,
            sha256,
            pre,
            info,
        } = runtime.verify(source, World::Kernel, &policy, imports)?;
        let instantiate = |e: wasmtime::Error| LoadError::Instantiate {
            label: label.clone(),
            reason: format!("{e:#}"),
        };
        let pre = match info.wit_version.as_str() {
            "0.1.0" => Pre::V0_1_0(v0_1_0::kernel::KernelPre::new(pre).map_err(instantiate)?),
            "0.2.0" => Pre::V0_2_0(v0_2_0::kernel::KernelPre::new(pre).map_err(instantiate)?),
            other => {
                return Err(LoadError::UnsupportedVersion {
                    label,
                    found: other.to_string(),
                    supported: crate::SUPPORTED_WIT_VERSIONS.join(", "),
                });
            }
        };
        let mut kernel = Kernel {
            engine: runtime.engine().clone(),
            label,
            sha256,
            pre,
            info: PluginInfo::default(),
            policy,
        };
        kernel.info = kernel
            .call(|bindings, store| match bindings {
                Bindings::V0_1_0(b) => b
                    .lem_plugin_kernel_api()
                    .call_describe(store)
                    .map(v0_1_0::info_from_guest),
                Bindings::V0_2_0(b) => b
                    .lem_plugin_kernel_api()
                    .call_describe(store)
                    .map(v0_2_0::info_from_guest),
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
        let limits = &self.policy.limits;
        let out: Vec<ChatMessage> = self.call(|bindings, store| {
            Ok(match bindings {
                Bindings::V0_1_0(b) => {
                    use v0_1_0::kernel::exports::lem::plugin::kernel_api::KernelConfig;
                    let guest_messages: Vec<_> =
                        messages.iter().map(v0_1_0::message_to_guest).collect();
                    let guest_config = KernelConfig {
                        text: config.text.clone(),
                        axioms: config.axioms.clone(),
                        options: config.options.clone(),
                    };
                    b.lem_plugin_kernel_api()
                        .call_apply(store, &guest_messages, &guest_config)?
                        .map(|out| out.into_iter().map(v0_1_0::message_from_guest).collect())
                        .map_err(|e| v0_1_0::plugin_error(e, limits))
                }
                Bindings::V0_2_0(b) => {
                    use v0_2_0::kernel::exports::lem::plugin::kernel_api::KernelConfig;
                    let guest_messages: Vec<_> =
                        messages.iter().map(v0_2_0::message_to_guest).collect();
                    let guest_config = KernelConfig {
                        text: config.text.clone(),
                        axioms: config.axioms.clone(),
                        options: config.options.clone(),
                    };
                    b.lem_plugin_kernel_api()
                        .call_apply(store, &guest_messages, &guest_config)?
                        .map(|out| out.into_iter().map(v0_2_0::message_from_guest).collect())
                        .map_err(|e| v0_2_0::plugin_error(e, limits))
                }
            })
        })??;
        crate::benchmark::check_messages(&out, &self.policy)?;
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
