//! Contract `lem:plugin@0.2.0` (`wit/lem-plugin-0.2.0`): scorers, kernels
//! and benchmarks.
//!
//! What a 0.2.0 scorer gets over a 0.1.0 one:
//!
//! * [`judge::complete`] takes a JSON schema for the answer and can ask for
//!   the probability of each value of the schema's integer fields; the
//!   answer says whether decoding was constrained and carries those
//!   distributions when the backend can give them;
//! * [`PluginInfo`] describes each metric ([`MetricDescriptor`]: range,
//!   direction, unit) instead of naming it;
//! * `score` receives a [`ScoreContext`]: the scorer's options from its
//!   manifest entry and the messages sent to the model under test.
//!
//! Implement [`scorer::Scorer`] (a trait of this SDK: the generated bindings
//! stay hidden, so a later contract can keep the same trait), then call
//! [`export_scorer!`](crate::v0_2_0::export_scorer). For a judged rubric,
//! [`crate::rubric::declarative`] does all of it from a few declarations.
//!
//! Kernels ([`kernel::Kernel`], [`export_kernel!`](crate::v0_2_0::export_kernel))
//! and benchmarks ([`benchmark::Benchmark`],
//! [`export_benchmark!`](crate::v0_2_0::export_benchmark)) work as in 0.1.0;
//! their [`PluginInfo`] is 0.2.0's, with no metrics
//! ([`PluginInfo::kernel`], [`PluginInfo::benchmark`]).
//!
//! ```no_run
//! use lem_plugin_sdk::v0_2_0::scorer::{
//!     Item, MetricDescriptor, PluginError, PluginInfo, ScoreCard, ScoreContext, Scorer,
//! };
//!
//! struct Turns;
//! impl Scorer for Turns {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::scorer("turns", "0.1.0", [MetricDescriptor::new("turns").range(0.0, 64.0)])
//!     }
//!     fn score(_item: Item, _response: String, context: ScoreContext) -> Result<ScoreCard, PluginError> {
//!         Ok(ScoreCard::metric("turns", context.messages.len() as f64))
//!     }
//! }
//! lem_plugin_sdk::v0_2_0::export_scorer!(Turns);
//! ```

use crate::__bindings::v0_2_0_scorer as bindings;

pub use crate::{Item, Message, Metric, PluginError, ScoreCard};
pub use bindings::exports::lem::plugin::scorer_api::ScoreContext;
pub use bindings::lem::plugin::types::{MetricDescriptor, MetricRange, MetricUnit, PluginInfo};

/// Exports a [`scorer::Scorer`] implementation as the component's 0.2.0 scorer.
///
/// Only on wasm32: built natively (e.g. for `cargo test`) the plugin crate
/// is plain Rust, so its logic can be unit tested without a wasm runtime.
pub use crate::__export_scorer_v0_2_0 as export_scorer;

/// Scorer plugins: implement [`scorer::Scorer`], then call [`export_scorer!`].
pub mod scorer {
    pub use super::{
        Item, Message, Metric, MetricDescriptor, MetricRange, MetricUnit, PluginError, PluginInfo,
        ScoreCard, ScoreContext,
    };

    /// A scorer of contract 0.2.0.
    pub trait Scorer {
        /// What the plugin is and which metrics it returns. Runs once, at
        /// load, and may not call the judge.
        fn describe() -> PluginInfo;

        /// Scores `response` to `item`; `context` holds the scorer's
        /// manifest options and the messages the model was sent.
        fn score(
            item: Item,
            response: String,
            context: ScoreContext,
        ) -> Result<ScoreCard, PluginError>;
    }
}

/// Exports a [`kernel::Kernel`] implementation as the component's 0.2.0
/// kernel (only on wasm32, as [`export_scorer!`]).
pub use crate::__export_kernel_v0_2_0 as export_kernel;

/// Exports a [`benchmark::Benchmark`] implementation as the component's
/// 0.2.0 benchmark (only on wasm32, as [`export_scorer!`]).
pub use crate::__export_benchmark_v0_2_0 as export_benchmark;

/// Kernel plugins: implement [`kernel::Kernel`], then call [`export_kernel!`].
pub mod kernel {
    pub use super::{Message, PluginError, PluginInfo};
    pub use crate::__bindings::v0_2_0_kernel::exports::lem::plugin::kernel_api::KernelConfig;

    /// A kernel of contract 0.2.0: rewrites the messages sent to a model.
    pub trait Kernel {
        /// What the plugin is ([`PluginInfo::kernel`]).
        fn describe() -> PluginInfo;

        /// The messages to send instead of `messages`; `config` holds the
        /// kernel text, the axioms and the eval config's options.
        fn apply(messages: Vec<Message>, config: KernelConfig)
        -> Result<Vec<Message>, PluginError>;
    }

    impl KernelConfig {
        /// The value of option `key`, if set (the last one if twice).
        pub fn option(&self, key: &str) -> Option<&str> {
            super::last(&self.options, key)
        }
    }
}

/// Benchmark plugins: implement [`benchmark::Benchmark`], then call [`export_benchmark!`].
pub mod benchmark {
    pub use super::{Item, Message, PluginError, PluginInfo};
    pub use crate::__bindings::v0_2_0_benchmark::exports::lem::plugin::benchmark_api::PromptConfig;

    /// A benchmark of contract 0.2.0: turns an item's record into the
    /// messages sent to the model.
    pub trait Benchmark {
        /// What the plugin is ([`PluginInfo::benchmark`]).
        fn describe() -> PluginInfo;

        /// The messages for `item`; `config` holds the manifest's prompt
        /// settings and options.
        fn prompt(item: Item, config: PromptConfig) -> Result<Vec<Message>, PluginError>;
    }

    impl PromptConfig {
        /// The value of option `key`, if set (the last one if twice).
        pub fn option(&self, key: &str) -> Option<&str> {
            super::last(&self.options, key)
        }
    }
}

/// The last value of `key` in `options` (a key set twice: the later wins).
pub(crate) fn last<'a>(options: &'a [(String, String)], key: &str) -> Option<&'a str> {
    options
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The host's judge. The host routes requests to the judge configured for
/// the run; without one every call fails with [`judge::JudgeError::NotConfigured`].
pub mod judge {
    pub use super::bindings::lem::plugin::judge::{
        FieldDistribution, JudgeAnswer, JudgeError, JudgeRequest, ValueProbability, complete,
    };

    impl JudgeError {
        /// Why there is no answer, in words (its `Display` is the debug form).
        pub fn reason(&self) -> String {
            match self {
                JudgeError::NotConfigured => "no judge is configured for this run".into(),
                JudgeError::Failed(reason) => format!("the judge failed: {reason}"),
                JudgeError::BudgetExhausted => "the judge budget for this item is spent".into(),
                JudgeError::Refused(reason) => {
                    format!("the host refused the judge request: {reason}")
                }
            }
        }
    }
}

/// Logging to the host, tagged with the plugin's name. The host bounds it.
pub mod log {
    use super::bindings::lem::plugin::log::{Level, log};

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
    pub fn scorer(
        name: &str,
        version: &str,
        metrics: impl IntoIterator<Item = MetricDescriptor>,
    ) -> Self {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            metrics: metrics.into_iter().collect(),
            needs_judge: false,
        }
    }

    /// Describes a kernel (no metrics, no judge).
    pub fn kernel(name: &str, version: &str) -> Self {
        Self::scorer(name, version, [])
    }

    /// Describes a benchmark (no metrics, no judge).
    pub fn benchmark(name: &str, version: &str) -> Self {
        Self::scorer(name, version, [])
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

    /// The metrics' names, in order.
    pub fn metric_names(&self) -> Vec<&str> {
        self.metrics.iter().map(|m| m.name.as_str()).collect()
    }
}

impl MetricDescriptor {
    /// A plain number, higher is better, range not stated.
    pub fn new(name: &str) -> Self {
        MetricDescriptor {
            name: name.into(),
            range: None,
            higher_is_better: true,
            unit: MetricUnit::Number,
        }
    }

    /// Its lowest and highest values (`lo` < `hi`; the host refuses others).
    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some(MetricRange { lo, hi });
        self
    }

    /// Lower values are better (e.g. a harm score).
    pub fn lower_is_better(mut self) -> Self {
        self.higher_is_better = false;
        self
    }

    /// A 0-1 fraction, shown as a percent (range 0 to 1 unless set).
    pub fn percent(mut self) -> Self {
        self.unit = MetricUnit::Percent;
        if self.range.is_none() {
            self.range = Some(MetricRange { lo: 0.0, hi: 1.0 });
        }
        self
    }
}

impl ScoreContext {
    /// The value of option `key`, if the manifest sets it (the last one if
    /// twice).
    pub fn option(&self, key: &str) -> Option<&str> {
        last(&self.options, key)
    }
}

/// The macro behind [`export_scorer`]: a shim type implements the generated
/// `Guest` trait by calling the plugin's [`scorer::Scorer`].
#[doc(hidden)]
#[macro_export]
macro_rules! __export_scorer_v0_2_0 {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub struct __LemScorerV0_2_0;

        #[cfg(target_arch = "wasm32")]
        impl $crate::__bindings::v0_2_0_scorer::exports::lem::plugin::scorer_api::Guest
            for __LemScorerV0_2_0
        {
            fn describe() -> $crate::v0_2_0::PluginInfo {
                <$ty as $crate::v0_2_0::scorer::Scorer>::describe()
            }
            fn score(
                item: $crate::Item,
                response: ::std::string::String,
                context: $crate::v0_2_0::ScoreContext,
            ) -> ::std::result::Result<$crate::ScoreCard, $crate::PluginError> {
                <$ty as $crate::v0_2_0::scorer::Scorer>::score(item, response, context)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::v0_2_0_scorer::export_scorer_raw_v0_2_0!(__LemScorerV0_2_0);

        /// Natively, the exported implementation is reachable from here.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub fn __lem_exported_scorer() -> $crate::v0_2_0::PluginInfo {
            <$ty as $crate::v0_2_0::scorer::Scorer>::describe()
        }
    };
}

/// The macro behind [`export_kernel`], as [`export_scorer`]'s.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_kernel_v0_2_0 {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub struct __LemKernelV0_2_0;

        #[cfg(target_arch = "wasm32")]
        impl $crate::__bindings::v0_2_0_kernel::exports::lem::plugin::kernel_api::Guest
            for __LemKernelV0_2_0
        {
            fn describe() -> $crate::v0_2_0::PluginInfo {
                <$ty as $crate::v0_2_0::kernel::Kernel>::describe()
            }
            fn apply(
                messages: ::std::vec::Vec<$crate::Message>,
                config: $crate::v0_2_0::kernel::KernelConfig,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::Message>, $crate::PluginError> {
                <$ty as $crate::v0_2_0::kernel::Kernel>::apply(messages, config)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::v0_2_0_kernel::export_kernel_raw_v0_2_0!(__LemKernelV0_2_0);

        /// Natively, the exported implementation is reachable from here.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub fn __lem_exported_kernel() -> $crate::v0_2_0::PluginInfo {
            <$ty as $crate::v0_2_0::kernel::Kernel>::describe()
        }
    };
}

/// The macro behind [`export_benchmark`], as [`export_scorer`]'s.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_benchmark_v0_2_0 {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub struct __LemBenchmarkV0_2_0;

        #[cfg(target_arch = "wasm32")]
        impl $crate::__bindings::v0_2_0_benchmark::exports::lem::plugin::benchmark_api::Guest
            for __LemBenchmarkV0_2_0
        {
            fn describe() -> $crate::v0_2_0::PluginInfo {
                <$ty as $crate::v0_2_0::benchmark::Benchmark>::describe()
            }
            fn prompt(
                item: $crate::Item,
                config: $crate::v0_2_0::benchmark::PromptConfig,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::Message>, $crate::PluginError> {
                <$ty as $crate::v0_2_0::benchmark::Benchmark>::prompt(item, config)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::v0_2_0_benchmark::export_benchmark_raw_v0_2_0!(__LemBenchmarkV0_2_0);

        /// Natively, the exported implementation is reachable from here.
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub fn __lem_exported_benchmark() -> $crate::v0_2_0::PluginInfo {
            <$ty as $crate::v0_2_0::benchmark::Benchmark>::describe()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_and_options_read_as_written() {
        let info = PluginInfo::scorer(
            "x",
            "1.0.0",
            [
                MetricDescriptor::new("a").range(1.0, 10.0),
                MetricDescriptor::new("harm").lower_is_better(),
                MetricDescriptor::new("rate").percent(),
            ],
        )
        .with_judge();
        assert_eq!(info.metric_names(), ["a", "harm", "rate"]);
        assert!(info.needs_judge);
        let range = info.metrics[0].range.unwrap();
        assert_eq!((range.lo, range.hi), (1.0, 10.0));
        assert!(!info.metrics[1].higher_is_better);
        assert_eq!(info.metrics[2].unit, MetricUnit::Percent);
        let range = info.metrics[2].range.unwrap();
        assert_eq!((range.lo, range.hi), (0.0, 1.0));
        let context = ScoreContext {
            messages: vec![Message::new("user", "q")],
            options: vec![("k".into(), "1".into()), ("k".into(), "2".into())],
        };
        assert_eq!(context.option("k"), Some("2"));
        assert_eq!(context.option("missing"), None);
    }
}
