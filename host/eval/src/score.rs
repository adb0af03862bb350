//! The score pass: every response scored by every scorer plugin of its
//! benchmark, judge calls made on the way; one record per pair, a failure
//! recorded with its cause and never turned into a score.

use crate::error::{Error, Result};
use crate::event::{Event, Sink, Task};
use crate::judge::BackendJudge;
use lem_core::jsonl::Located;
use lem_core::{BenchmarkItem, BenchmarkManifest, ResponseRecord, ScoreRecord};
use lem_plugin_host::scorer::PluginItem;
use lem_plugin_host::{Runtime, Scorer};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Everything one scoring pass needs.
pub struct ScoreJob<'a> {
    /// The benchmark's name.
    pub benchmark: &'a str,
    /// Item lookup by id.
    pub items: &'a HashMap<String, Located<BenchmarkItem>>,
    /// The responses to score; each must answer an item of `items`.
    pub responses: &'a [Located<ResponseRecord>],
    /// The scorers, each with its manifest entry's options.
    pub scorers: &'a [ManifestScorer],
    /// The judge the scorers call, if any.
    pub judge: Option<&'a Arc<BackendJudge>>,
    /// Items scored at once (judge calls wait on the network or the engine).
    pub concurrency: usize,
    /// What events call this pass.
    pub task: Task,
}

/// Scores every response with every scorer; one record per pair, in
/// response order. A response whose item is not in `items` is an
/// [`Error::UnknownItem`], found before anything is scored.
pub fn score(job: &ScoreJob<'_>, sink: &dyn Sink) -> Result<Vec<ScoreRecord>> {
    let answered: Vec<(&ResponseRecord, &BenchmarkItem)> = job
        .responses
        .iter()
        .map(|r| match job.items.get(&r.value.id) {
            Some(item) => Ok((&r.value, &item.value)),
            None => Err(Error::UnknownItem {
                benchmark: job.benchmark.to_string(),
                id: r.value.id.clone(),
            }),
        })
        .collect::<Result<_>>()?;
    let pairs: Vec<(usize, usize)> = (0..answered.len())
        .flat_map(|r| (0..job.scorers.len()).map(move |s| (r, s)))
        .collect();
    sink.event(Event::Started {
        task: job.task.clone(),
        total: pairs.len() as u64,
    });
    let slots: Vec<std::sync::OnceLock<ScoreRecord>> =
        pairs.iter().map(|_| std::sync::OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let workers = if job.judge.is_some() {
        job.concurrency.max(1)
    } else {
        1
    };
    std::thread::scope(|scope| {
        for _ in 0..workers.min(pairs.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(r, s)) = pairs.get(i) else { break };
                    let (response, item) = answered[r];
                    let _ = slots[i].set(score_one(job, response, item, &job.scorers[s]));
                    sink.event(Event::Advanced {
                        task: job.task.clone(),
                        status: None,
                    });
                }
            });
        }
    });
    sink.event(Event::Finished {
        task: job.task.clone(),
    });
    Ok(slots.into_iter().filter_map(|s| s.into_inner()).collect())
}

fn score_one(
    job: &ScoreJob<'_>,
    response: &ResponseRecord,
    item: &BenchmarkItem,
    configured: &ManifestScorer,
) -> ScoreRecord {
    let scorer = &configured.plugin;
    // What the model under test was sent, after the kernel (empty for
    // responses that do not record it); a 0.1.0 scorer ignores it and the
    // options.
    let outcome = scorer.score(
        &PluginItem::new(job.benchmark, item),
        &response.response,
        &response.messages(),
        &configured.options,
    );
    let judge = job
        .judge
        .filter(|_| !outcome.judge_calls.is_empty())
        .map(|j| j.finish_item(&outcome.judge_calls, outcome.result.is_ok()));
    let (metrics, details, error) = match outcome.result {
        Ok(scored) => (scored.metrics, scored.details, None),
        Err(e) => (Default::default(), None, Some(e.into())),
    };
    ScoreRecord {
        id: response.id.clone(),
        model: response.model.clone(),
        benchmark: job.benchmark.to_string(),
        plugin: scorer.identity(),
        metrics,
        details,
        error,
        kernel: response
            .extra
            .get("kernel")
            .and_then(|k| k.as_str())
            .map(str::to_string),
        domain: item
            .record
            .get("domain")
            .and_then(|d| d.as_str())
            .map(str::to_string),
        judge,
    }
}

/// A scorer plugin as a benchmark manifest's `[[scorers]]` entry configures it.
pub struct ManifestScorer {
    /// The loaded plugin.
    pub plugin: Scorer,
    /// The entry's `options`, (key, value) in key order: every item's
    /// `score` call gets them (contract 0.2.0 and later).
    pub options: Vec<(String, String)>,
}

/// The manifest's scorers, each with its policy (its entry's limits, else
/// `run_limits`) as `adjust` leaves it and its options, all calling `judge`
/// (or no judge).
///
/// Two scorers of one benchmark may not declare the same metric: score
/// summaries and reports key metrics by benchmark and name, so a second
/// scorer's `accuracy` would be averaged into the first's. Such a manifest is
/// refused here, before anything runs.
pub fn load_scorers(
    runtime: &Runtime,
    manifest: &BenchmarkManifest,
    judge: Option<Arc<BackendJudge>>,
    run_limits: &lem_core::Limits,
    adjust: &dyn Fn(&mut lem_core::Policy),
) -> Result<Vec<ManifestScorer>> {
    let judge: Arc<dyn lem_plugin_host::Judge> = match judge {
        Some(j) => j,
        None => Arc::new(lem_plugin_host::NoJudge),
    };
    let scorers = manifest
        .scorers
        .iter()
        .map(|reference| {
            let mut policy = reference.policy_with(run_limits);
            adjust(&mut policy);
            let source = crate::resolve::plugin_capped(
                &reference.plugin,
                &manifest.base_dir,
                policy.limits.max_wasm_bytes,
            )?;
            let context = || {
                format!(
                    "loading scorer `{}` of benchmark `{}`",
                    reference.plugin, manifest.name
                )
            };
            let mut plugin =
                Scorer::load(runtime, &source, policy, judge.clone()).map_err(|cause| {
                    Error::Plugin {
                        context: context(),
                        cause,
                    }
                })?;
            // Metrics its options define, named in the manifest entry.
            plugin
                .declare(&reference.metrics)
                .map_err(|cause| Error::Plugin {
                    context: context(),
                    cause,
                })?;
            Ok(ManifestScorer {
                plugin,
                options: reference.option_pairs(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for (scorer, reference) in scorers.iter().zip(&manifest.scorers) {
        for metric in scorer.plugin.info().metric_names() {
            if let Some(first) = owner.insert(metric, &reference.plugin) {
                return Err(Error::Invalid(format!(
                    "benchmark `{}`: scorers `{first}` and `{}` both declare metric `{metric}`; \
                     metrics are keyed by benchmark and name, so one would be averaged into the other. \
                     Score them as separate benchmarks, or drop one",
                    manifest.name, reference.plugin
                )));
            }
        }
    }
    Ok(scorers)
}

/// [`Error::NeedsJudge`] when one of `scorers` asks a judge and the run has none.
pub fn check_judge(benchmark: &str, scorers: &[ManifestScorer], has_judge: bool) -> Result<()> {
    match scorers.iter().find(|s| s.plugin.info().needs_judge) {
        Some(s) if !has_judge => Err(Error::NeedsJudge {
            benchmark: benchmark.to_string(),
            scorer: s.plugin.info().name.clone(),
        }),
        _ => Ok(()),
    }
}
