//! The generate pass: a benchmark's items, turned into prompts by its
//! prompt plugin, wrapped by a kernel plugin, answered by a model, appended
//! to a responses file that a rerun resumes.

use crate::error::{Error, IoContext, Result};
use crate::event::{Event, Sink, Task};
use crate::models::OpenModel;
use lem_core::jsonl::Located;
use lem_core::{AppendStore, BenchmarkItem, BenchmarkManifest, ChatMessage, ResponseRecord};
use lem_engine::SamplingParams;
use lem_models::ChatRequest;
use lem_plugin_host::Runtime;
use lem_plugin_host::benchmark::{Benchmark, PromptConfig};
use lem_plugin_host::kernel::{Kernel, KernelConfig};
use lem_plugin_host::scorer::PluginItem;
use serde_json::json;
use std::path::{Path, PathBuf};
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

/// A benchmark's prompt plugin, with the manifest's prompt settings.
pub struct PromptMaker {
    /// The plugin.
    pub plugin: Benchmark,
    /// The manifest's settings for it.
    pub config: PromptConfig,
}

impl PromptMaker {
    /// The prompt plugin a manifest names, loaded under `limits`.
    pub fn load(
        runtime: &Runtime,
        manifest: &BenchmarkManifest,
        limits: &lem_core::Limits,
    ) -> Result<Self> {
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
        let plugin = Benchmark::load(runtime, &source, policy).map_err(|cause| Error::Plugin {
            context: format!("loading the prompt plugin of benchmark `{}`", manifest.name),
            cause,
        })?;
        let config = PromptConfig {
            prompt_field: manifest.prompt.field.clone(),
            system: manifest.prompt.system.clone(),
            system_in_user_turn: manifest.prompt.system_in_user_turn,
            options: Vec::new(),
        };
        Ok(PromptMaker { plugin, config })
    }
}

/// What a generation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Generated {
    /// Items answered now.
    pub answered: usize,
    /// Items that failed (each reported as an [`Event::ItemFailed`] and in
    /// the failures file; a rerun tries them again).
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
    /// The items to answer.
    pub items: &'a [Located<BenchmarkItem>],
    /// Its prompt plugin.
    pub prompts: &'a PromptMaker,
    /// The kernel.
    pub kernel: KernelStep<'a>,
    /// The model.
    pub model: &'a OpenModel,
    /// The model's name in records.
    pub model_name: String,
    /// Sampling settings.
    pub params: SamplingParams,
    /// The responses file (appended to; items already there are skipped).
    pub out: PathBuf,
    /// What events call this pass.
    pub task: Task,
}

/// Answers every item of `job` not yet in its responses file.
pub fn generate(
    job: GenerateJob<'_>,
    rt: &tokio::runtime::Runtime,
    sink: &dyn Sink,
) -> Result<Generated> {
    if let Some(dir) = job.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    let (mut store, opened) = AppendStore::open(&job.out)?;
    if opened.repaired_bytes > 0 {
        sink.event(Event::Notice(format!(
            "{}: cut off a torn last line ({} bytes) left by an interrupted run; that item will be generated again",
            job.out.display(),
            opened.repaired_bytes
        )));
    }
    let pending: Vec<_> = job
        .items
        .iter()
        .filter(|i| !store.contains(&i.value.id))
        .collect();
    let started = Instant::now();
    if pending.is_empty() {
        return Ok(Generated::default());
    }
    let task = &job.task;
    let failed_event = |f: &Failure| {
        sink.event(Event::ItemFailed {
            task: task.clone(),
            id: f.id.clone(),
            line: f.line,
            stage: f.stage.clone(),
            message: f.message.clone(),
        })
    };

    // Prompts: benchmark plugin, then kernel plugin, both in the sandbox.
    // A plugin that fails on one item costs that item only: it gets a
    // failure record and the others go on to the model.
    let mut requests = Vec::with_capacity(pending.len());
    let mut failures = Vec::new();
    for item in &pending {
        let id = &item.value.id;
        let messages = match job.prompts.plugin.prompt(
            &PluginItem::new(&job.manifest.name, &item.value),
            &job.prompts.config,
        ) {
            Ok(messages) => messages,
            Err(e) => {
                let f = Failure::plugin(id, item.line, "prompt", &e);
                failed_event(&f);
                failures.push(f);
                continue;
            }
        };
        let messages = match job.kernel.plugin {
            Some((kernel, config)) => match kernel.apply(&messages, config) {
                Ok(messages) => messages,
                Err(e) => {
                    let stage = format!("kernel `{}`", job.kernel.name);
                    let f = Failure::plugin(id, item.line, &stage, &e);
                    failed_event(&f);
                    failures.push(f);
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
            ..ChatRequest::default()
        };
        requests.push((id.clone(), request));
    }

    let prompt_failures = failures.len();
    sink.event(Event::Started {
        task: task.clone(),
        total: requests.len() as u64,
    });
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
                    let f = Failure {
                        id,
                        line: None,
                        stage: "model".into(),
                        kind: "model".into(),
                        message: error.to_string(),
                    };
                    failed_event(&f);
                    failures.push(f);
                }
            }
            sink.event(Event::Advanced {
                task: task.clone(),
                status: Some(format!(
                    "{:.1} tok/s",
                    tokens as f64 / started.elapsed().as_secs_f64().max(1e-9)
                )),
            });
        }
    });
    sink.event(Event::Finished { task: task.clone() });
    if let Some(e) = write_error {
        return Err(e.into());
    }
    write_failures(&failures_path(&job.out), &failures)?;
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
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Failure {
    pub id: String,
    /// Its line in the benchmark data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// `prompt`, `kernel `NAME``, or `model`.
    pub stage: String,
    /// The plugin error's kind (`out-of-fuel`, `bad-output`, ...), or `model`.
    pub kind: String,
    pub message: String,
}

impl Failure {
    /// A plugin's failure on one item.
    fn plugin(id: &str, line: usize, stage: &str, error: &lem_plugin_host::CallError) -> Self {
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
pub fn failures_path(responses: &Path) -> PathBuf {
    responses.with_extension("failures.jsonl")
}

fn write_failures(path: &Path, failures: &[Failure]) -> Result<()> {
    if failures.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        };
    }
    let mut file = lem_core::AtomicFile::create(path).at(path)?;
    for f in failures {
        file.write_json(f).at(path)?;
    }
    file.commit().at(path)
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
