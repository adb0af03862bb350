//! The two steps every command shares: answer a benchmark's items with a
//! model (resumable), and score answers with a benchmark's scorers.

use crate::judging::BackendJudge;
use crate::models::OpenModel;
use anyhow::{Context, Result};
use lem_core::jsonl::Located;
use lem_core::{
    AppendStore, BenchmarkItem, BenchmarkManifest, ChatMessage, ResponseRecord, ScoreRecord,
};
use lem_engine::SamplingParams;
use lem_models::ChatRequest;
use lem_plugin_host::benchmark::{Benchmark, PromptConfig};
use lem_plugin_host::kernel::{Kernel, KernelConfig};
use lem_plugin_host::scorer::PluginItem;
use lem_plugin_host::{Runtime, Scorer};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// A kernel plugin with its configuration, and the name records give it.
pub struct KernelStep<'a> {
    /// The name in records (`none`, `sandwich`, ...).
    pub name: String,
    /// The plugin, or `None` for no kernel at all.
    pub plugin: Option<(&'a Kernel, &'a KernelConfig)>,
}

impl KernelStep<'_> {
    /// No kernel.
    pub fn none() -> Self {
        KernelStep {
            name: "none".into(),
            plugin: None,
        }
    }
}

/// The benchmark plugin that makes a manifest's prompts, loaded under the
/// default limits.
pub fn prompt_maker(
    runtime: &Runtime,
    manifest: &BenchmarkManifest,
) -> Result<(Benchmark, PromptConfig)> {
    prompt_maker_with(runtime, manifest, &lem_core::Limits::default())
}

/// The benchmark plugin that makes a manifest's prompts, loaded under `limits`.
pub fn prompt_maker_with(
    runtime: &Runtime,
    manifest: &BenchmarkManifest,
    limits: &lem_core::Limits,
) -> Result<(Benchmark, PromptConfig)> {
    let source = crate::resolve::plugin_capped(
        &manifest.prompt.plugin,
        &manifest.base_dir,
        limits.max_wasm_bytes,
    )?;
    let policy = lem_core::Policy {
        limits: limits.clone(),
        sha256: manifest.prompt.sha256.clone(),
        ..lem_core::Policy::default()
    };
    let benchmark = Benchmark::load(runtime, &source, policy)
        .with_context(|| format!("loading the prompt plugin of benchmark `{}`", manifest.name))?;
    let config = PromptConfig {
        prompt_field: manifest.prompt.field.clone(),
        system: manifest.prompt.system.clone(),
        system_in_user_turn: manifest.prompt.system_in_user_turn,
        options: Vec::new(),
    };
    Ok((benchmark, config))
}

/// What a generation pass did.
pub struct Generated {
    /// Items answered now.
    pub answered: usize,
    /// Items that failed (reported on stderr and in the failures file; a
    /// rerun tries them again).
    pub failed: usize,
    /// Tokens generated now.
    pub tokens: u64,
    /// Wall time.
    pub seconds: f64,
}

/// Everything one generation pass needs.
pub struct GenerateJob<'a> {
    /// The benchmark.
    pub manifest: &'a BenchmarkManifest,
    /// Its items.
    pub items: Vec<Located<BenchmarkItem>>,
    /// Its prompt plugin.
    pub prompts: (&'a Benchmark, &'a PromptConfig),
    /// The kernel.
    pub kernel: KernelStep<'a>,
    /// The model.
    pub model: &'a OpenModel,
    /// The model's name in records.
    pub model_name: String,
    /// Sampling settings.
    pub params: SamplingParams,
    /// The responses file (appended to; items already there are skipped).
    pub out: std::path::PathBuf,
    /// Where progress shows (its length is set here).
    pub progress: indicatif::ProgressBar,
}

/// Answers every item of `job` not yet in its responses file.
pub fn generate(job: GenerateJob<'_>, rt: &tokio::runtime::Runtime) -> Result<Generated> {
    let (mut store, opened) = AppendStore::open(&job.out)?;
    if opened.repaired_bytes > 0 {
        eprintln!(
            "{}: cut off a torn last line ({} bytes) left by an interrupted run; that item will be generated again",
            job.out.display(),
            opened.repaired_bytes
        );
    }
    let pending: Vec<_> = job
        .items
        .iter()
        .filter(|i| !store.contains(&i.value.id))
        .collect();
    let started = Instant::now();
    let failures_path = failures_path(&job.out);
    if pending.is_empty() {
        return Ok(Generated {
            answered: 0,
            failed: 0,
            tokens: 0,
            seconds: 0.0,
        });
    }

    // Prompts: benchmark plugin, then kernel plugin, both in the sandbox.
    // A plugin that fails on one item costs that item only: it gets a
    // failure record and the others go on to the model.
    let (benchmark, prompt_config) = job.prompts;
    let mut requests = Vec::with_capacity(pending.len());
    let mut failures = Vec::new();
    for item in &pending {
        let id = &item.value.id;
        let messages = match benchmark.prompt(
            &PluginItem::new(&job.manifest.name, &item.value),
            prompt_config,
        ) {
            Ok(messages) => messages,
            Err(e) => {
                failures.push(Failure::new(id, item.line, "prompt", &e, &job.progress));
                continue;
            }
        };
        let messages = match job.kernel.plugin {
            Some((kernel, config)) => match kernel.apply(&messages, config) {
                Ok(messages) => messages,
                Err(e) => {
                    let stage = format!("kernel `{}`", job.kernel.name);
                    failures.push(Failure::new(id, item.line, &stage, &e, &job.progress));
                    continue;
                }
            },
            None => messages,
        };
        let request = ChatRequest {
            messages,
            max_tokens: job.params.max_tokens as u32,
            temperature: job.params.temperature,
            top_p: (job.params.top_p < 1.0).then_some(job.params.top_p),
            seed: Some(job.params.seed),
        };
        requests.push((id.clone(), request));
    }

    let prompt_failures = failures.len();
    let progress = job.progress.clone();
    progress.set_length(requests.len() as u64);
    let (mut answered, mut failed, mut tokens, mut write_error) = (0, 0, 0u64, None);
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (id, request) in requests {
            let client = job.model.client.clone();
            tasks.spawn(async move {
                let asked = Instant::now();
                let result = client.complete(&request).await;
                (id, request.messages, result, asked.elapsed())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((id, messages, result, elapsed)) = joined else {
                failed += 1;
                continue;
            };
            match result {
                Ok(done) => {
                    tokens += done.usage.completion_tokens;
                    let record = ResponseRecord {
                        id: id.clone(),
                        benchmark: job.manifest.name.clone(),
                        model: job.model_name.clone(),
                        // What the model was asked, after the kernel: the
                        // last user turn, and every message as sent.
                        prompt: last_user_turn(&messages),
                        response: done.text,
                        elapsed_seconds: elapsed.as_secs_f64(),
                        extra: json!({
                            "tokens_in": done.usage.prompt_tokens,
                            "tokens_out": done.usage.completion_tokens,
                            "finish_reason": done.finish_reason,
                            "sampling": job.params,
                            "model_spec": job.model.spec,
                            "model_sha256": job.model.sha256,
                            "kernel": job.kernel.name,
                            "messages": messages,
                        })
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    };
                    if write_error.is_none()
                        && let Err(e) = store.append(&id, &record)
                    {
                        write_error = Some(e);
                    }
                    answered += 1;
                }
                Err(error) => {
                    failed += 1;
                    let message = error.to_string();
                    progress.suspend(|| {
                        eprintln!(
                            "item `{}`: {}",
                            crate::text::escape(&id),
                            crate::text::escape(&message)
                        )
                    });
                    failures.push(Failure {
                        id,
                        line: None,
                        stage: "model".into(),
                        kind: "model".into(),
                        message,
                    });
                }
            }
            progress.inc(1);
            progress.set_message(format!(
                "{:.1} tok/s",
                tokens as f64 / started.elapsed().as_secs_f64().max(1e-9)
            ));
        }
    });
    progress.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e.into());
    }
    write_failures(&failures_path, &failures)?;
    Ok(Generated {
        answered,
        failed: failed + prompt_failures,
        tokens,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// An item that could not be generated, and why: one line of the failures
/// file beside the responses (`BENCH.failures.jsonl`), rewritten by every
/// pass that had something to generate.
#[derive(serde::Serialize)]
struct Failure {
    id: String,
    /// Its line in the benchmark data.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    /// `prompt`, `kernel `NAME``, or `model`.
    stage: String,
    /// The plugin error's kind (`out-of-fuel`, `bad-output`, ...), or `model`.
    kind: String,
    message: String,
}

impl Failure {
    /// A plugin's failure on one item, reported on stderr as it happens.
    fn new(
        id: &str,
        line: usize,
        stage: &str,
        error: &lem_plugin_host::CallError,
        progress: &indicatif::ProgressBar,
    ) -> Self {
        progress.suspend(|| {
            eprintln!(
                "item `{}` (data line {line}): {stage} failed: {}",
                crate::text::escape(id),
                crate::text::escape(&error.to_string())
            )
        });
        Failure {
            id: id.to_string(),
            line: Some(line),
            stage: stage.to_string(),
            kind: error.kind.as_str().to_string(),
            message: error.message.clone(),
        }
    }
}

/// `responses/RUN/BENCH.jsonl` → `responses/RUN/BENCH.failures.jsonl`.
pub fn failures_path(responses: &std::path::Path) -> std::path::PathBuf {
    responses.with_extension("failures.jsonl")
}

fn write_failures(path: &std::path::Path, failures: &[Failure]) -> Result<()> {
    if failures.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let context = || format!("writing {}", path.display());
    let mut file = lem_core::AtomicFile::create(path).with_context(context)?;
    for f in failures {
        file.write_json(f).with_context(context)?;
    }
    file.commit().with_context(context)
}

/// The last user turn: what the model was asked, for the records.
fn last_user_turn(messages: &[ChatMessage]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

/// A progress bar for `total` steps of `what`.
pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what:<28} {{bar:30}} {{pos}}/{{len}} {{msg}} eta {{eta}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    )
}

/// Everything one scoring pass needs.
pub struct ScoreJob<'a> {
    /// The benchmark's name.
    pub benchmark: &'a str,
    /// Item lookup by id.
    pub items: &'a std::collections::HashMap<String, Located<BenchmarkItem>>,
    /// The responses to score.
    pub responses: &'a [Located<ResponseRecord>],
    /// The scorers.
    pub scorers: &'a [Scorer],
    /// The judge the scorers call, if any.
    pub judge: Option<&'a Arc<BackendJudge>>,
    /// Items scored at once (judge calls wait on the network or the engine).
    pub concurrency: usize,
    /// Where progress shows (its length is set here).
    pub progress: indicatif::ProgressBar,
}

/// Scores every response with every scorer; one record per pair, in
/// response order. A failure is a record with its cause, never a score.
pub fn score(job: &ScoreJob<'_>) -> Vec<ScoreRecord> {
    let pairs: Vec<(usize, usize)> = (0..job.responses.len())
        .flat_map(|r| (0..job.scorers.len()).map(move |s| (r, s)))
        .collect();
    let progress = &job.progress;
    progress.set_length(pairs.len() as u64);
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
                    let _ = slots[i].set(score_one(job, &job.responses[r].value, &job.scorers[s]));
                    progress.inc(1);
                }
            });
        }
    });
    progress.finish_and_clear();
    slots.into_iter().filter_map(|s| s.into_inner()).collect()
}

fn score_one(job: &ScoreJob<'_>, response: &ResponseRecord, scorer: &Scorer) -> ScoreRecord {
    let item = &job.items[&response.id].value;
    let outcome = scorer.score(&PluginItem::new(job.benchmark, item), &response.response);
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

/// The manifest's scorers, each with its policy (its entry's limits, else
/// `run_limits`) as `adjust` leaves it, all calling `judge` (or no judge).
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
) -> Result<Vec<Scorer>> {
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
            Scorer::load(runtime, &source, policy, judge.clone()).with_context(|| {
                format!(
                    "loading scorer `{}` of benchmark `{}`",
                    reference.plugin, manifest.name
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut owner: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (scorer, reference) in scorers.iter().zip(&manifest.scorers) {
        for metric in &scorer.info().metrics {
            if let Some(first) = owner.insert(metric, &reference.plugin) {
                anyhow::bail!(
                    "benchmark `{}`: scorers `{first}` and `{}` both declare metric `{metric}`; \
                     metrics are keyed by benchmark and name, so one would be averaged into the other. \
                     Score them as separate benchmarks, or drop one",
                    manifest.name,
                    reference.plugin
                );
            }
        }
    }
    Ok(scorers)
}
