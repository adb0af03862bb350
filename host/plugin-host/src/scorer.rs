//! Scorer plugins: `score(item, response) -> metrics`.

use crate::error::{CallError, CallErrorKind, LoadError};
use crate::inspect::{ComponentInfo, World};
use crate::judge::{Judge, JudgeCall};
use crate::policy::Policy;
use crate::runtime::{PluginInfo, PluginSource, Runtime, Verified};
use crate::sandbox::{self, HostState};
use crate::v0_1_0;
use lem_core::PluginIdentity;
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

enum Bindings {
    V0_1_0(v0_1_0::scorer::ScorerPre<HostState>),
}

/// A loaded, verified scorer plugin.
pub struct Scorer {
    engine: Engine,
    label: String,
    sha256: String,
    component: ComponentInfo,
    bindings: Bindings,
    info: PluginInfo,
    /// `info.metrics` as a set: a returned metric is checked in O(1).
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
        let bindings = match component.wit_version.as_str() {
            _ => Bindings::V0_1_0(v0_1_0::scorer::ScorerPre::new(pre).map_err(instantiate)?),
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
        scorer.declared = scorer.info.metrics.iter().cloned().collect();
        Ok(scorer)
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
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
    pub fn score(&self, item: &PluginItem, response: &str) -> ScoreOutcome {
        match self.instance() {
            Ok(mut instance) => {
                let result = instance.score(item, response);
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
        let bindings = match &self.bindings {
            Bindings::V0_1_0(pre) => pre
                .instantiate(&mut store)
                .map_err(|e| sandbox::classify(&store, e, &self.policy.limits))?,
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
    bindings: v0_1_0::scorer::Scorer,
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
        let api = self.bindings.lem_plugin_scorer_api();
        let info = api
            .call_describe(&mut self.store)
            .map_err(|e| sandbox::classify(&self.store, e, &self.scorer.policy.limits))?;
        Ok(v0_1_0::info_from_guest(info))
    }

    /// Scores one response.
    pub fn score(&mut self, item: &PluginItem, response: &str) -> Result<Scored, CallError> {
        self.reset_budget()?;
        self.store.data_mut().judge_allowed = true;
        let api = self.bindings.lem_plugin_scorer_api();
        let result = api
            .call_score(&mut self.store, &item.to_guest(), response)
            .map_err(|e| sandbox::classify(&self.store, e, &self.scorer.policy.limits))?;
        let limits = &self.scorer.policy.limits;
        let score = result.map_err(|e| v0_1_0::plugin_error(e, limits))?;
        check_output(&self.scorer.declared, &self.scorer.policy, score)
    }
}

/// Holds a plugin's answer to the contract: bounded size, finite and
/// declared metrics (looked up in a set, so the check costs O(metrics)),
/// details that are JSON of bounded depth with finite numbers.
fn check_output(
    declared: &HashSet<String>,
    policy: &Policy,
    score: v0_1_0::scorer::lem::plugin::types::ScoreCard,
) -> Result<Scored, CallError> {
    let size: usize = score
        .metrics
        .iter()
        .map(|m| m.name.len() + 8)
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
    for m in score.metrics {
        if !declared.contains(&m.name) {
            return Err(CallError::new(
                CallErrorKind::BadOutput,
                format!(
                    "returned metric `{}`, which its describe() does not declare",
                    crate::bound::preview(&m.name)
                ),
            ));
        }
        if !m.value.is_finite() {
            return Err(CallError::new(
                CallErrorKind::BadOutput,
                format!("metric `{}` is {}, not a finite number", m.name, m.value),
            ));
        }
        if metrics.insert(m.name.clone(), m.value).is_some() {
            return Err(CallError::new(
                CallErrorKind::BadOutput,
                format!("metric `{}` returned twice", m.name),
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
