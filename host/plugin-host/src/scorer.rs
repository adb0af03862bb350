//! Scorer plugins: `score(item, response) -> metrics`.

use crate::error::{CallError, CallErrorKind, LoadError};
use crate::inspect::{ComponentInfo, World};
use crate::judge::{Judge, JudgeCall};
use crate::policy::Policy;
use crate::runtime::{PluginInfo, PluginSource, Runtime, Verified};
use crate::sandbox::{self, HostState};
use crate::{v0_1_0, v0_2_0};
use lem_core::{ChatMessage, PluginIdentity};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use wasmtime::{Engine, Store};

/// One item as a plugin receives it: id, benchmark and the record as JSON text.
#[derive(Debug, Clone)]
pub struct PluginItem {
    /// The item's id.
    pub id: String,
    /// The benchmark's name.
    pub benchmark: String,
    /// The whole record, JSON text.
    pub record: String,
}

impl PluginItem {
    /// Prepares a benchmark item for plugins.
    pub fn new(benchmark: &str, item: &lem_core::BenchmarkItem) -> Self {
        PluginItem {
            id: item.id.clone(),
            benchmark: benchmark.to_string(),
            record: item.record_json(),
        }
    }

    fn to_guest(&self) -> v0_1_0::scorer::lem::plugin::types::Item {
        v0_1_0::scorer::lem::plugin::types::Item {
            id: self.id.clone(),
            benchmark: self.benchmark.clone(),
            record: self.record.clone(),
        }
    }
}

/// A score card as a plugin of any version returned it, not yet checked.
pub(crate) struct GuestScoreCard {
    pub(crate) metrics: Vec<(String, f64)>,
    pub(crate) details: Option<String>,
}

/// A scored item.
#[derive(Debug, Clone)]
pub struct Scored {
    /// Metric name → value, all finite and declared by the plugin.
    pub metrics: BTreeMap<String, f64>,
    /// The plugin's details: valid JSON, as the plugin wrote it.
    pub details: Option<Box<serde_json::value::RawValue>>,
}

/// The outcome of scoring one item: a score or a recorded error, plus every
/// judge call made on the way.
#[derive(Debug, Clone)]
pub struct ScoreOutcome {
    /// The score, or why there is none.
    pub result: Result<Scored, CallError>,
    /// The judge calls, for the audit trail.
    pub judge_calls: Vec<JudgeCall>,
}

/// The pre-linked component, by the contract version it was built against.
enum Bindings {
    V0_1_0(v0_1_0::scorer::ScorerPre<HostState>),
    V0_2_0(v0_2_0::scorer::ScorerPre<HostState>),
}

/// An instance, by contract version.
enum Instance {
    V0_1_0(v0_1_0::scorer::Scorer),
    V0_2_0(v0_2_0::scorer::Scorer),
}

/// A loaded, verified scorer plugin.
pub struct Scorer {
    engine: Engine,
    label: String,
    sha256: String,
    component: ComponentInfo,
    bindings: Bindings,
    info: PluginInfo,
    /// `info.metrics`' names as a set: a returned metric is checked in O(1).
    declared: HashSet<String>,
    policy: Policy,
    judge: Arc<dyn Judge>,
}

impl Scorer {
    /// Verifies and links a scorer, then asks it to `describe` itself (under
    /// the same limits as any call).
    pub fn load(
        runtime: &Runtime,
        source: &PluginSource,
        policy: Policy,
        judge: Arc<dyn Judge>,
    ) -> Result<Self, LoadError> {
        Self::load_with(
            runtime,
            source,
            policy,
            judge,
            crate::runtime::Imports::Check,
        )
    }

    pub(crate) fn load_with(
        runtime: &Runtime,
        source: &PluginSource,
        policy: Policy,
        judge: Arc<dyn Judge>,
        imports: crate::runtime::Imports,
    ) -> Result<Self, LoadError> {
        let Verified {
            label,
            sha256,
            info: component,
            pre,
        } = runtime.verify(source, World::Scorer, &policy, imports)?;
        let instantiate = |e: wasmtime::Error| LoadError::Instantiate {
            label: label.clone(),
            reason: format!("{e:#}"),
        };
        // `verify` has refused every version not in SUPPORTED_WIT_VERSIONS.
        let bindings = match component.wit_version.as_str() {
            "0.1.0" => Bindings::V0_1_0(v0_1_0::scorer::ScorerPre::new(pre).map_err(instantiate)?),
            "0.2.0" => Bindings::V0_2_0(v0_2_0::scorer::ScorerPre::new(pre).map_err(instantiate)?),
            other => {
                return Err(LoadError::UnsupportedVersion {
                    label,
                    found: other.to_string(),
                    supported: crate::SUPPORTED_WIT_VERSIONS.join(", "),
                });
            }
        };
        let mut scorer = Scorer {
            engine: runtime.engine().clone(),
            label: label.clone(),
            sha256,
            component,
            bindings,
            info: PluginInfo::default(),
            declared: HashSet::new(),
            policy,
            judge,
        };
        let describe_failed = |e: CallError| LoadError::Instantiate {
            label: label.clone(),
            reason: format!("describe() failed: {e}"),
        };
        let mut instance = scorer.instance().map_err(describe_failed)?;
        let info = instance.describe().map_err(describe_failed)?;
        drop(instance);
        scorer.info = crate::bound::check_info(info, &scorer.policy.limits).map_err(|reason| {
            LoadError::Instantiate {
                label: label.clone(),
                reason,
            }
        })?;
        scorer.declared = scorer.info.metric_names().map(str::to_string).collect();
        Ok(scorer)
    }

    /// What the plugin says about itself, with the metrics [`declare`](Self::declare)d for it.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Accepts `names` from this plugin as declared metrics, as though its
    /// `describe()` had named them: for a scorer whose options define its
    /// metrics (a benchmark manifest's scorer `metrics`), which it cannot
    /// know when described. The same bounds hold as for `describe()`'s
    /// (valid names, at most `max_metrics` in all, none twice).
    pub fn declare(&mut self, names: &[String]) -> Result<(), LoadError> {
        let mut info = self.info.clone();
        for name in names {
            if !self.declared.contains(name) {
                info.metrics.push(crate::MetricDescriptor::named(name));
            }
        }
        self.info = crate::bound::check_info(info, &self.policy.limits).map_err(|reason| {
            LoadError::Instantiate {
                label: self.label.clone(),
                reason: format!("declared metrics: {reason}"),
            }
        })?;
        self.declared = self.info.metric_names().map(str::to_string).collect();
        Ok(())
    }

    /// What the component's imports and exports say.
    pub fn component(&self) -> &ComponentInfo {
        &self.component
    }

    /// Name, version and digest, for score records.
    pub fn identity(&self) -> PluginIdentity {
        PluginIdentity {
            name: self.info.name.clone(),
            version: self.info.version.clone(),
            sha256: self.sha256.clone(),
        }
    }

    /// Scores one response in a fresh store: nothing of an earlier call can
    /// affect it, and nothing of it outlives it.
    ///
    /// `messages` are those sent to the model under test (after the kernel;
    /// empty when unknown) and `options` the scorer's options from its
    /// manifest entry. A plugin of contract 0.2.0 or later receives both; a
    /// 0.1.0 plugin's `score` has no place for them and is called exactly
    /// as before.
    pub fn score(
        &self,
        item: &PluginItem,
        response: &str,
        messages: &[ChatMessage],
        options: &[(String, String)],
    ) -> ScoreOutcome {
        match self.instance() {
            Ok(mut instance) => {
                let result = instance.score(item, response, messages, options);
                ScoreOutcome {
                    result,
                    judge_calls: std::mem::take(&mut instance.store.data_mut().judge_calls),
                }
            }
            Err(e) => ScoreOutcome {
                result: Err(e),
                judge_calls: Vec::new(),
            },
        }
    }

    /// A live instance whose store is reused across calls. Faster (no
    /// instantiation per call) but calls share guest state: use it for trusted
    /// plugins and benchmarks; [`Scorer::score`] is the isolated path.
    pub fn instance(&self) -> Result<ScorerInstance<'_>, CallError> {
        let mut store =
            sandbox::new_store(&self.engine, &self.label, &self.policy, self.judge.clone())?;
        let classify =
            |store: &Store<HostState>, e| sandbox::classify(store, e, &self.policy.limits);
        let bindings = match &self.bindings {
            Bindings::V0_1_0(pre) => Instance::V0_1_0(
                pre.instantiate(&mut store)
                    .map_err(|e| classify(&store, e))?,
            ),
            Bindings::V0_2_0(pre) => Instance::V0_2_0(
                pre.instantiate(&mut store)
                    .map_err(|e| classify(&store, e))?,
            ),
        };
        Ok(ScorerInstance {
            scorer: self,
            store,
            bindings,
        })
    }
}

/// An instantiated scorer.
pub struct ScorerInstance<'a> {
    scorer: &'a Scorer,
    store: Store<HostState>,
    bindings: Instance,
}

impl ScorerInstance<'_> {
    fn reset_budget(&mut self) -> Result<(), CallError> {
        let limits = &self.scorer.policy.limits;
        self.store
            .set_fuel(limits.fuel.unwrap_or(u64::MAX))
            .map_err(|e| CallError::new(CallErrorKind::Internal, e.to_string()))?;
        sandbox::start_call(&mut self.store);
        Ok(())
    }

    fn describe(&mut self) -> Result<PluginInfo, CallError> {
        self.reset_budget()?;
        // Nothing is scored yet, so a judge call here would be in nobody's
        // audit trail.
        self.store.data_mut().judge_allowed = false;
        let limits = &self.scorer.policy.limits;
        match &self.bindings {
            Instance::V0_1_0(b) => b
                .lem_plugin_scorer_api()
                .call_describe(&mut self.store)
                .map(v0_1_0::info_from_guest),
            Instance::V0_2_0(b) => b
                .lem_plugin_scorer_api()
                .call_describe(&mut self.store)
                .map(v0_2_0::info_from_guest),
        }
        .map_err(|e| sandbox::classify(&self.store, e, limits))
    }

    /// Scores one response (see [`Scorer::score`] for `messages` and `options`).
    pub fn score(
        &mut self,
        item: &PluginItem,
        response: &str,
        messages: &[ChatMessage],
        options: &[(String, String)],
    ) -> Result<Scored, CallError> {
        self.reset_budget()?;
        self.store.data_mut().judge_allowed = true;
        let limits = &self.scorer.policy.limits;
        let classify = |store: &Store<HostState>, e| sandbox::classify(store, e, limits);
        let score = match &self.bindings {
            Instance::V0_1_0(b) => b
                .lem_plugin_scorer_api()
                .call_score(&mut self.store, &item.to_guest(), response)
                .map_err(|e| classify(&self.store, e))?
                .map(v0_1_0::score_card_from_guest)
                .map_err(|e| v0_1_0::plugin_error(e, limits))?,
            Instance::V0_2_0(b) => b
                .lem_plugin_scorer_api()
                .call_score(
                    &mut self.store,
                    &v0_2_0::item_to_guest(item),
                    response,
                    &v0_2_0::context_to_guest(messages, options),
                )
                .map_err(|e| classify(&self.store, e))?
                .map(v0_2_0::score_card_from_guest)
                .map_err(|e| v0_2_0::plugin_error(e, limits))?,
        };
        check_output(&self.scorer.declared, &self.scorer.policy, score)
    }
}

/// Holds a plugin's answer to the contract: bounded size, finite and
/// declared metrics (looked up in a set, so the check costs O(metrics)),
/// details that are JSON of bounded depth with finite numbers.
fn check_output(
    declared: &HashSet<String>,
    policy: &Policy,
    score: GuestScoreCard,
) -> Result<Scored, CallError> {
    let size: usize = score
        .metrics
        .iter()
        .map(|(name, _)| name.len() + 8)
        .sum::<usize>()
        + score.details.as_ref().map_or(0, String::len);
    let cap = policy.limits.max_output_bytes;
    if size > cap {
        return Err(CallError::new(
            CallErrorKind::OutputTooLarge,
            format!("returned {size} bytes; the limit is {cap}"),
        ));
    }
    if score.metrics.len() > declared.len() {
        return Err(CallError::new(
            CallErrorKind::BadOutput,
            format!(
                "returned {} metrics; its describe() declares {}",
                score.metrics.len(),
                declared.len()
            ),
        ));
    }
    let mut metrics = BTreeMap::new();
    for (name, value) in score.metrics {
        if !declared.contains(&name) {
            return Err(CallError::new(
                CallErrorKind::BadOutput,
                format!(
                    "returned metric `{}`, which its describe() does not declare",
                    crate::bound::preview(&name)
                ),
            ));
        }
        if !value.is_finite() {
            return Err(CallError::new(
                CallErrorKind::BadOutput,
                format!("metric `{name}` is {value}, not a finite number"),
            ));
        }
        if metrics.insert(name.clone(), value).is_some() {
            return Err(CallError::new(
                CallErrorKind::BadOutput,
                format!("metric `{name}` returned twice"),
            ));
        }
    }
    let details = match score.details {
        None => None,
        Some(text) => {
            crate::bound::check_details(&text, policy.limits.max_details_depth)
                .map_err(|e| CallError::new(CallErrorKind::BadOutput, e))?;
            Some(serde_json::value::RawValue::from_string(text).map_err(|e| {
                CallError::new(
                    CallErrorKind::BadOutput,
                    format!("details are not JSON: {e}"),
                )
            })?)
        }
    };
    Ok(Scored { metrics, details })
}
