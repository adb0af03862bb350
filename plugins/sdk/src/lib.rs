//! The guest SDK for lem plugins.
//!
//! A lem plugin is a WebAssembly component built with plain
//! `cargo build --target wasm32-wasip2`. It targets one of three worlds of a
//! frozen contract (`wit/lem-plugin-X.Y.Z`): a **scorer** (scores a response),
//! a **kernel** (rewrites the messages sent to a model) or a **benchmark**
//! (turns a data record into messages).
//!
//! Two contract versions are supported side by side, and the host loads both:
//!
//! * `lem:plugin@0.1.0`, the crate root's [`scorer`], [`kernel`] and
//!   [`benchmark`] modules and their export macros, as it always was;
//! * `lem:plugin@0.2.0`, in [`v0_2_0`]: scorers whose judge calls carry a
//!   JSON schema and come back with value distributions, that describe
//!   their metrics' ranges, and that receive their manifest options and the
//!   messages sent to the model. [`rubric::declarative`] builds a whole
//!   judged scorer on it from a few declarations. Kernels and benchmarks
//!   are as in 0.1.0, with 0.2.0's `plugin-info`.
//!
//! The records both versions share (items, messages, metrics, score cards,
//! plugin errors) are one set of Rust types, so helpers work with either.
//!
//! Why it is shaped so: each world gets its own module with its own bindings
//! and export macro, so a plugin author implements one trait and calls one
//! macro; the types every world shares (items, messages, errors) and the host
//! imports (`log`, `judge`) are generated once and re-exported from here.
//! The helpers ([`json`], [`record`], [`rubric`]) are plain Rust so they can
//! be unit tested natively.
//!
//! ```no_run
//! use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};
//!
//! struct Length;
//! impl Scorer for Length {
//!     fn describe() -> PluginInfo { PluginInfo::scorer("length", "0.1.0", &["chars"]) }
//!     fn score(_item: Item, response: String) -> Result<ScoreCard, PluginError> {
//!         Ok(ScoreCard::metric("chars", response.chars().count() as f64))
//!     }
//! }
//! lem_plugin_sdk::export_scorer!(Length);
//! ```
#![deny(missing_docs)]

#[doc(hidden)]
#[allow(missing_docs)]
pub mod __bindings {
    /// The scorer world; its types are shared by the other two worlds.
    pub mod scorer {
        wit_bindgen::generate!({
            path: "../../wit/lem-plugin-0.1.0",
            world: "scorer",
            pub_export_macro: true,
            export_macro_name: "export_scorer_raw",
            default_bindings_module: "lem_plugin_sdk::__bindings::scorer",
        });
    }
    /// The kernel world.
    pub mod kernel {
        wit_bindgen::generate!({
            path: "../../wit/lem-plugin-0.1.0",
            world: "kernel",
            pub_export_macro: true,
            export_macro_name: "export_kernel_raw",
            default_bindings_module: "lem_plugin_sdk::__bindings::kernel",
            with: {
                "lem:plugin/types@0.1.0": crate::__bindings::scorer::lem::plugin::types,
                "lem:plugin/log@0.1.0": crate::__bindings::scorer::lem::plugin::log,
            },
        });
    }
    /// The benchmark world.
    pub mod benchmark {
        wit_bindgen::generate!({
            path: "../../wit/lem-plugin-0.1.0",
            world: "benchmark",
            pub_export_macro: true,
            export_macro_name: "export_benchmark_raw",
            default_bindings_module: "lem_plugin_sdk::__bindings::benchmark",
            with: {
                "lem:plugin/types@0.1.0": crate::__bindings::scorer::lem::plugin::types,
                "lem:plugin/log@0.1.0": crate::__bindings::scorer::lem::plugin::log,
            },
        });
    }
    /// The scorer world of contract 0.2.0. The records it shares with 0.1.0
    /// unchanged are the 0.1.0 Rust types, so one `Message` or `ScoreCard`
    /// serves both versions. It is included in a world of another name
    /// because wit-bindgen names a crate-wide macro after the world, and
    /// 0.1.0's is `scorer` too; the component's imports and exports are the
    /// contract's all the same.
    pub mod v0_2_0_scorer {
        wit_bindgen::generate!({
            inline: "package lem:sdk; world scorer-v0-2-0 { include lem:plugin/scorer@0.2.0; }",
            path: "../../wit/lem-plugin-0.2.0",
            world: "lem:sdk/scorer-v0-2-0",
            generate_all,
            pub_export_macro: true,
            export_macro_name: "export_scorer_raw_v0_2_0",
            default_bindings_module: "lem_plugin_sdk::__bindings::v0_2_0_scorer",
            with: {
                "lem:plugin/types@0.2.0/item": crate::__bindings::scorer::lem::plugin::types::Item,
                "lem:plugin/types@0.2.0/message": crate::__bindings::scorer::lem::plugin::types::Message,
                "lem:plugin/types@0.2.0/metric": crate::__bindings::scorer::lem::plugin::types::Metric,
                "lem:plugin/types@0.2.0/score-card": crate::__bindings::scorer::lem::plugin::types::ScoreCard,
                "lem:plugin/types@0.2.0/plugin-error": crate::__bindings::scorer::lem::plugin::types::PluginError,
            },
        });
    }
    /// The kernel world of contract 0.2.0 (included under another name for
    /// the same reason as the scorer's); its records are the scorer
    /// bindings' own.
    pub mod v0_2_0_kernel {
        wit_bindgen::generate!({
            inline: "package lem:sdk; world kernel-v0-2-0 { include lem:plugin/kernel@0.2.0; }",
            path: "../../wit/lem-plugin-0.2.0",
            world: "lem:sdk/kernel-v0-2-0",
            generate_all,
            pub_export_macro: true,
            export_macro_name: "export_kernel_raw_v0_2_0",
            default_bindings_module: "lem_plugin_sdk::__bindings::v0_2_0_kernel",
            with: {
                "lem:plugin/types@0.2.0/metric-unit": crate::__bindings::v0_2_0_scorer::lem::plugin::types::MetricUnit,
                "lem:plugin/types@0.2.0/metric-range": crate::__bindings::v0_2_0_scorer::lem::plugin::types::MetricRange,
                "lem:plugin/types@0.2.0/metric-descriptor": crate::__bindings::v0_2_0_scorer::lem::plugin::types::MetricDescriptor,
                "lem:plugin/types@0.2.0/plugin-info": crate::__bindings::v0_2_0_scorer::lem::plugin::types::PluginInfo,
                "lem:plugin/types@0.2.0/item": crate::__bindings::scorer::lem::plugin::types::Item,
                "lem:plugin/types@0.2.0/message": crate::__bindings::scorer::lem::plugin::types::Message,
                "lem:plugin/types@0.2.0/metric": crate::__bindings::scorer::lem::plugin::types::Metric,
                "lem:plugin/types@0.2.0/score-card": crate::__bindings::scorer::lem::plugin::types::ScoreCard,
                "lem:plugin/types@0.2.0/plugin-error": crate::__bindings::scorer::lem::plugin::types::PluginError,
                "lem:plugin/log@0.2.0": crate::__bindings::v0_2_0_scorer::lem::plugin::log,
            },
        });
    }
    /// The benchmark world of contract 0.2.0, as the kernel's.
    pub mod v0_2_0_benchmark {
        wit_bindgen::generate!({
            inline: "package lem:sdk; world benchmark-v0-2-0 { include lem:plugin/benchmark@0.2.0; }",
            path: "../../wit/lem-plugin-0.2.0",
            world: "lem:sdk/benchmark-v0-2-0",
            generate_all,
            pub_export_macro: true,
            export_macro_name: "export_benchmark_raw_v0_2_0",
            default_bindings_module: "lem_plugin_sdk::__bindings::v0_2_0_benchmark",
            with: {
                "lem:plugin/types@0.2.0/metric-unit": crate::__bindings::v0_2_0_scorer::lem::plugin::types::MetricUnit,
                "lem:plugin/types@0.2.0/metric-range": crate::__bindings::v0_2_0_scorer::lem::plugin::types::MetricRange,
                "lem:plugin/types@0.2.0/metric-descriptor": crate::__bindings::v0_2_0_scorer::lem::plugin::types::MetricDescriptor,
                "lem:plugin/types@0.2.0/plugin-info": crate::__bindings::v0_2_0_scorer::lem::plugin::types::PluginInfo,
                "lem:plugin/types@0.2.0/item": crate::__bindings::scorer::lem::plugin::types::Item,
                "lem:plugin/types@0.2.0/message": crate::__bindings::scorer::lem::plugin::types::Message,
                "lem:plugin/types@0.2.0/metric": crate::__bindings::scorer::lem::plugin::types::Metric,
                "lem:plugin/types@0.2.0/score-card": crate::__bindings::scorer::lem::plugin::types::ScoreCard,
                "lem:plugin/types@0.2.0/plugin-error": crate::__bindings::scorer::lem::plugin::types::PluginError,
                "lem:plugin/log@0.2.0": crate::__bindings::v0_2_0_scorer::lem::plugin::log,
            },
        });
    }
}

use __bindings as bindings;

/// Exports a [`scorer::Scorer`] implementation as the component's scorer.
///
/// Only on wasm32: built natively (e.g. for `cargo test`) the plugin crate is
/// plain Rust, so its logic can be unit tested without a wasm runtime.
#[macro_export]
macro_rules! export_scorer {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::scorer::export_scorer_raw!($ty);
        /// Natively, the exported implementation is reachable from here.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub fn __lem_exported_scorer() -> $crate::PluginInfo {
            <$ty as $crate::scorer::Scorer>::describe()
        }
    };
}

/// Exports a [`kernel::Kernel`] implementation (only on wasm32, as [`export_scorer!`]).
#[macro_export]
macro_rules! export_kernel {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::kernel::export_kernel_raw!($ty);
        /// Natively, the exported implementation is reachable from here.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub fn __lem_exported_kernel() -> $crate::PluginInfo {
            <$ty as $crate::kernel::Kernel>::describe()
        }
    };
}

/// Exports a [`benchmark::Benchmark`] implementation (only on wasm32, as [`export_scorer!`]).
#[macro_export]
macro_rules! export_benchmark {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::benchmark::export_benchmark_raw!($ty);
        /// Natively, the exported implementation is reachable from here.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub fn __lem_exported_benchmark() -> $crate::PluginInfo {
            <$ty as $crate::benchmark::Benchmark>::describe()
        }
    };
}

pub mod json;
pub mod record;
pub mod rubric;
pub mod v0_2_0;

use bindings::scorer::lem::plugin::types as wit_types;

pub use rubric::{Rubric, Verdict, VerdictError};
pub use wit_types::{Item, Message, Metric, PluginError, PluginInfo, ScoreCard};

/// Scorer plugins: implement [`scorer::Scorer`], then call [`export_scorer!`].
pub mod scorer {
    pub use crate::bindings::scorer::exports::lem::plugin::scorer_api::Guest as Scorer;
    pub use crate::{Item, Metric, PluginError, PluginInfo, ScoreCard};
}

/// Kernel plugins: implement [`kernel::Kernel`], then call [`export_kernel!`].
pub mod kernel {
    pub use crate::bindings::kernel::exports::lem::plugin::kernel_api::{
        Guest as Kernel, KernelConfig,
    };
    pub use crate::{Message, PluginError, PluginInfo};
}

/// Benchmark plugins: implement [`benchmark::Benchmark`], then call [`export_benchmark!`].
pub mod benchmark {
    pub use crate::bindings::benchmark::exports::lem::plugin::benchmark_api::{
        Guest as Benchmark, PromptConfig,
    };
    pub use crate::{Item, Message, PluginError, PluginInfo};
}

/// The host's judge (scorer world only). The host routes requests to the
/// judge configured for the run; without one every call fails with
/// [`judge::JudgeError::NotConfigured`].
pub mod judge {
    pub use crate::__bindings::scorer::lem::plugin::judge::{JudgeError, JudgeRequest, complete};
}

/// Logging to the host, tagged with the plugin's name. The host bounds it.
pub mod log {
    use crate::__bindings::scorer::lem::plugin::log::{Level, log};

    /// Logs at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    /// Logs at info level.
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    /// Logs at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
}

impl PluginInfo {
    /// Describes a scorer that needs no judge.
    pub fn scorer(name: &str, version: &str, metrics: &[&str]) -> Self {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            metrics: metrics.iter().map(|m| (*m).into()).collect(),
            needs_judge: false,
        }
    }

    /// Describes a kernel or benchmark plugin (no metrics).
    pub fn plugin(name: &str, version: &str) -> Self {
        Self::scorer(name, version, &[])
    }

    /// Sets the one-line description.
    pub fn with_description(mut self, description: &str) -> Self {
        self.description = description.into();
        self
    }

    /// Marks the plugin as calling the judge.
    pub fn with_judge(mut self) -> Self {
        self.needs_judge = true;
        self
    }
}

impl ScoreCard {
    /// A score with one metric and no details.
    pub fn metric(name: &str, value: f64) -> Self {
        ScoreCard {
            metrics: vec![Metric {
                name: name.into(),
                value,
            }],
            details: None,
        }
    }

    /// Adds a metric.
    pub fn and(mut self, name: &str, value: f64) -> Self {
        self.metrics.push(Metric {
            name: name.into(),
            value,
        });
        self
    }

    /// Attaches JSON details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details.to_string());
        self
    }
}

impl Message {
    /// A message with the given role.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}
