//! `lem run`'s work as a library: an [`EvalConfig`] resolved into a checked
//! [`Plan`], and the plan executed — every variant built where missing
//! ([`crate::variants`]), every (model, kernel, benchmark) generated where
//! missing (resumable), scored, and reported.
//!
//! Everything the config names is resolved and checked first — models,
//! kernels, judge, benchmarks, files, and every plugin the run will load
//! (kernels, prompt plugins, scorers) with its pinned hash — so a typo or a
//! wrong pin fails in a second with the config line, not after an hour of
//! generation.

use crate::error::{Error, Result};
use crate::event::{Sink, Task};
use crate::generate::{self, GenerateJob, KernelStep, PromptMaker};
use crate::judge::BackendJudge;
use crate::models::{ModelOptions, Models, OpenModel};
use crate::report::{self, Format};
use crate::run_dir::RunDir;
use crate::score::{self, ScoreJob};
use crate::variants::{Digests, LocalModel, StepStatus, VariantPlan};
use lem_core::eval::{At, EvalConfig};
use lem_core::jsonl::Located;
use lem_core::{BenchmarkItem, BenchmarkManifest, PluginIdentity, ResponseRecord};
use lem_models::{AnswerCache, ModelSpec};
use lem_plugin_host::kernel::{Kernel, KernelConfig};
use lem_plugin_host::{Judge, Runtime};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A checked evaluation: what will be generated, scored and reported.
pub struct Plan {
    config: EvalConfig,
    kernel_config: KernelConfig,
    kernels: Vec<(String, Kernel)>,
    benchmarks: Vec<PlannedBenchmark>,
    candidates: Vec<Candidate>,
    variants: VariantPlan,
    run_dir: RunDir,
    /// The judge calibrations the config names, read.
    judge_agreement: Vec<lem_report::Calibration>,
}

/// A benchmark of the plan, resolved, its plugins loaded.
struct PlannedBenchmark {
    manifest: BenchmarkManifest,
    items: Vec<Located<BenchmarkItem>>,
    prompts: PromptMaker,
    /// The scorers as verified (loaded without the judge).
    scorers: Vec<PluginIdentity>,
    /// Its line in the config.
    line: usize,
}

/// One (model, kernel) pair: what its results are called.
struct Candidate {
    label: String,
    model_label: String,
    spec: String,
    /// A local model or built variant (else `spec` names a remote model).
    local: Option<LocalModel>,
    kernel: usize,
    /// What makes its answers: model, kernel, generation settings.
    identity: Value,
}

/// One row of what a run would do: a (run, benchmark) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// The run's label (`base`, `base+sandwich`).
    pub run: String,
    /// Its model spec.
    pub model: String,
    /// Its kernel.
    pub kernel: String,
    /// The benchmark.
    pub benchmark: String,
    /// Items in the run.
    pub items: usize,
    /// Items already answered in the run directory.
    pub done: usize,
    /// The benchmark's scorer plugins.
    pub scorers: Vec<String>,
    /// The answers on file were made by another model, kernel or setting:
    /// they will be set aside and the items generated again.
    pub changed: bool,
}

/// One step of building a variant, as `--dry-run` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRow {
    /// The variant.
    pub variant: String,
    /// `distill`, `train (stage 1 of 2)`, `abliterate`.
    pub step: String,
    /// Its artifact directory.
    pub artifact: PathBuf,
    /// Built (reused), partial (resumes), or missing (built).
    pub status: StepStatus,
}

/// A plugin the plan loaded and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRow {
    /// `kernel`, `prompt (BENCH)`, `scorer (BENCH)`.
    pub role: String,
    /// Its name.
    pub plugin: String,
    /// Its digest.
    pub sha256: String,
}

/// How a plan is executed.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// How models open (the config's batch size replaces `batch_size`).
    pub models: ModelOptions,
    /// Where judge answers are cached across runs (`None`: ask again).
    pub judge_cache: Option<PathBuf>,
}

/// What executing a plan did.
pub struct RunOutcome {
    /// The report, also written to the run directory in every format.
    pub report: lem_report::Report,
    /// Items that could not be generated (a rerun tries them again).
    pub failed: usize,
    /// The judge's (answers from the cache, requests sent), if there is one.
    pub judge_counts: Option<(usize, usize)>,
}

impl Plan {
    /// Resolves and checks everything `config` names, loading every plugin
    /// the run will use under `plugins`. Errors name the config line.
    pub fn resolve(config: EvalConfig, plugins: &Runtime) -> Result<Plan> {
        let base_dir = config
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for (label, spec) in &config.models {
            check_spec(spec, &base_dir)
                .map_err(|e| config.error(spec.line, format!("model `{}`: {e}", label.value)))?;
        }
        if let Some(judge) = &config.judge {
            check_spec(judge, &base_dir)
                .map_err(|e| config.error(judge.line, format!("judge: {e}")))?;
        }
        let kernel_config = kernel_config(&config)?;
        let limits = &config.limits;
        let mut kernels = Vec::new();
        for name in &config.kernels {
            let source =
                crate::resolve::kernel_capped(&name.value, &base_dir, limits.max_wasm_bytes)
                    .map_err(|e| config.error(name.line, e.to_string()))?;
            let policy = lem_core::Policy {
                limits: limits.clone(),
                sha256: config.kernel_pin(&name.value).map(str::to_string),
                ..lem_core::Policy::default()
            };
            let kernel = Kernel::load(plugins, &source, policy)
                .map_err(|e| config.error(name.line, format!("kernel `{}`: {e}", name.value)))?;
            if name.value != "none" && kernel_config.text.is_empty() {
                return Err(config
                    .error(
                        name.line,
                        format!(
                            "kernel `{}` needs the kernel text: set `kernel_text` (and `axioms`)",
                            name.value
                        ),
                    )
                    .into());
            }
            kernels.push((crate::resolve::kernel_name(&name.value), kernel));
        }
        let mut benchmarks = Vec::new();
        for run in &config.benchmarks {
            let at = |e: Error| config.error(run.name.line, e.to_string());
            let reference = if base_dir.join(&run.name.value).is_file() {
                base_dir.join(&run.name.value).display().to_string()
            } else {
                run.name.value.clone()
            };
            let manifest = crate::resolve::benchmark(&reference).map_err(at)?;
            let data = run.data.as_ref().map(|d| d.value.clone());
            let mut items = crate::data::load_items(&manifest, data.as_deref()).map_err(|e| {
                let line = run.data.as_ref().map_or(run.name.line, |d| d.line);
                config.error(line, format!("benchmark `{}`: {e}", run.name.value))
            })?;
            if let Some(limit) = run.limit {
                items.truncate(limit);
            }
            // Every plugin the run will load, loaded now: the prompt plugin,
            // and the scorers (without the judge; scoring loads them again
            // with it), so a wrong pin or a plugin that cannot describe
            // itself stops the run before any generation.
            let prompts = PromptMaker::load(plugins, &manifest, limits).map_err(at)?;
            let scorers =
                score::load_scorers(plugins, &manifest, None, limits, &|_| {}).map_err(at)?;
            if let Err(Error::NeedsJudge { benchmark, scorer }) =
                score::check_judge(&manifest.name, &scorers, config.judge.is_some())
            {
                return Err(config
                    .error(
                        run.name.line,
                        format!(
                            "benchmark `{benchmark}` is scored by `{scorer}`, which asks a judge: set `judge = \"MODEL SPEC\"`"
                        ),
                    )
                    .into());
            }
            benchmarks.push(PlannedBenchmark {
                scorers: scorers.iter().map(|s| s.plugin.identity()).collect(),
                manifest,
                items,
                prompts,
                line: run.name.line,
            });
        }
        let mut digests = Digests::default();
        let texts = kernel_identity(&config, &mut digests)?;
        let generation = json!({
            "max_tokens": config.generation.max_tokens,
            "temperature": config.generation.temperature,
            "seed": config.generation.seed,
        });
        let kernel_ids: Vec<Value> = kernels
            .iter()
            .map(|(name, k)| json!({"name": name, "plugin_sha256": k.sha256(), "text": texts}))
            .collect();
        let held_out = evaluated_prompts(&benchmarks);
        let run_dir = RunDir::new(&config.out);
        let variants =
            VariantPlan::resolve(&config, &run_dir.artifacts(), &held_out, &mut digests)?;
        let label = |model: &str, kernel: &str| {
            if kernel == "none" {
                model.to_string()
            } else {
                format!("{model}+{kernel}")
            }
        };
        let mut candidates = Vec::new();
        for (model_label, spec) in &config.models {
            let local = match spec.value.parse::<ModelSpec>() {
                Ok(ModelSpec::Local(reference)) => {
                    let path = crate::resolve::model_near(&reference, &base_dir)
                        .map_err(|e| config.error(spec.line, e.to_string()))?;
                    let sha = digests
                        .of(&path)
                        .map_err(|e| config.error(spec.line, format!("{}: {e}", path.display())))?;
                    Some(LocalModel {
                        path,
                        reference,
                        identity: json!({"sha256": sha}),
                        adapter: None,
                    })
                }
                _ => None,
            };
            let model = match &local {
                Some(m) => json!({"spec": spec.value, "sha256": m.identity["sha256"]}),
                None => json!({"spec": spec.value}),
            };
            for (k, (kernel, _)) in kernels.iter().enumerate() {
                candidates.push(Candidate {
                    label: label(&model_label.value, kernel),
                    model_label: model_label.value.clone(),
                    spec: spec.value.clone(),
                    local: local.clone(),
                    kernel: k,
                    identity: json!({"model": model, "kernel": kernel_ids[k], "generation": generation}),
                });
            }
        }
        for (v, built) in config.variants.iter().zip(&variants.variants) {
            for (k, (kernel, _)) in kernels.iter().enumerate() {
                let listed = v.kernels.as_ref().is_none_or(|ks| {
                    ks.iter()
                        .any(|n| crate::resolve::kernel_name(&n.value) == *kernel)
                });
                if !listed {
                    continue;
                }
                candidates.push(Candidate {
                    label: label(&built.name, kernel),
                    model_label: built.name.clone(),
                    spec: match &built.model.adapter {
                        Some((dir, _)) => format!(
                            "local:{}+adapter:{}",
                            built.model.reference,
                            dir.display()
                        ),
                        None => format!("local:{}", built.model.path.display()),
                    },
                    local: Some(built.model.clone()),
                    kernel: k,
                    identity: json!({"model": built.model.full_identity(), "kernel": kernel_ids[k], "generation": generation}),
                });
            }
        }
        if let Some(baseline) = &config.baseline
            && !candidates.iter().any(|c| c.label == baseline.value)
        {
            let labels: Vec<_> = candidates.iter().map(|c| c.label.as_str()).collect();
            return Err(config
                .error(
                    baseline.line,
                    format!(
                        "baseline `{}` is not one of the runs ({})",
                        baseline.value,
                        labels.join(", ")
                    ),
                )
                .into());
        }
        let judge_agreement = config
            .judge_calibration
            .iter()
            .map(|file| {
                report::read_calibration(&file.value)
                    .map_err(|e| config.error(file.line, format!("judge_calibration {e}")))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Plan {
            run_dir,
            config,
            kernel_config,
            kernels,
            benchmarks,
            candidates,
            variants,
            judge_agreement,
        })
    }

    /// The config the plan was resolved from.
    pub fn config(&self) -> &EvalConfig {
        &self.config
    }

    /// Where the run's files go.
    pub fn run_dir(&self) -> &RunDir {
        &self.run_dir
    }

    /// Every (run, benchmark) pair, with what is already done.
    pub fn rows(&self) -> Vec<PlanRow> {
        let mut rows = Vec::new();
        for c in &self.candidates {
            let changed = self.run_dir.made_by_other(&c.label, &c.identity);
            for b in &self.benchmarks {
                let path = self.run_dir.responses(&c.label, &b.manifest.name);
                let done_ids: HashSet<String> = if changed {
                    HashSet::new()
                } else {
                    lem_core::jsonl::read::<ResponseRecord>(&path)
                        .map(|rs| rs.into_iter().map(|r| r.value.id).collect())
                        .unwrap_or_default()
                };
                rows.push(PlanRow {
                    run: c.label.clone(),
                    model: c.spec.clone(),
                    kernel: self.kernels[c.kernel].0.clone(),
                    benchmark: b.manifest.name.clone(),
                    items: b.items.len(),
                    done: b
                        .items
                        .iter()
                        .filter(|i| done_ids.contains(&i.value.id))
                        .count(),
                    scorers: b
                        .manifest
                        .scorers
                        .iter()
                        .map(|s| s.plugin.clone())
                        .collect(),
                    changed,
                });
            }
        }
        rows
    }

    /// Every step of building the variants, with where it stands.
    pub fn builds(&self) -> Vec<BuildRow> {
        self.variants
            .steps
            .iter()
            .map(|s| BuildRow {
                variant: s.variant.clone(),
                step: s.what.clone(),
                artifact: s.dir.clone(),
                status: s.status(),
            })
            .collect()
    }

    /// Every plugin the plan loaded, with its digest (pins checked).
    pub fn plugins(&self) -> Vec<PluginRow> {
        let mut rows = Vec::new();
        for (name, kernel) in &self.kernels {
            rows.push(PluginRow {
                role: "kernel".into(),
                plugin: name.clone(),
                sha256: kernel.sha256().to_string(),
            });
        }
        for b in &self.benchmarks {
            rows.push(PluginRow {
                role: format!("prompt ({})", b.manifest.name),
                plugin: b.prompts.plugin.info().name.clone(),
                sha256: b.prompts.plugin.sha256().to_string(),
            });
            for s in &b.scorers {
                rows.push(PluginRow {
                    role: format!("scorer ({})", b.manifest.name),
                    plugin: s.name.clone(),
                    sha256: s.sha256.clone(),
                });
            }
        }
        rows
    }

    /// Generates what is missing, scores everything, writes `run.json` and
    /// the report in every format; progress goes to `sink`.
    pub fn execute(
        &self,
        plugins: &Runtime,
        options: &RunOptions,
        sink: &dyn Sink,
    ) -> Result<RunOutcome> {
        let config = &self.config;
        let mut models = Models::new(ModelOptions {
            batch_size: config.generation.batch_size,
            ..options.models.clone()
        });
        let rt = crate::models::runtime()?;

        // 1. Build the variants whose artifacts are missing.
        self.variants.build(&mut models, plugins, sink)?;

        // 2. Generate what is missing: every job at once, so a local model
        //    batches across benchmarks and kernels. Answers made by another
        //    model or setting are set aside first, not resumed from.
        let open: Vec<Arc<OpenModel>> = self
            .candidates
            .iter()
            .map(|c| {
                let opened = match &c.local {
                    Some(m) => models.get_local(
                        &m.path,
                        &m.reference,
                        m.adapter.as_ref().map(|(dir, _)| dir.as_path()),
                    ),
                    None => models.get(&c.spec),
                };
                opened.map_err(|e| Error::Model {
                    context: format!("opening model `{}` ({})", c.model_label, c.spec),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_>>()?;
        for c in &self.candidates {
            if let Some(moved) = self.run_dir.claim(&c.label, &c.identity)? {
                sink.event(crate::Event::Notice(format!(
                    "{}: the model, kernel or generation settings changed; its earlier answers and scores are in {}",
                    c.label,
                    moved.display()
                )));
            }
        }
        let results: Vec<Result<generate::Generated>> = std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for (c, model) in self.candidates.iter().zip(&open) {
                for b in &self.benchmarks {
                    let (kernel_name, kernel) = &self.kernels[c.kernel];
                    let job = GenerateJob {
                        manifest: &b.manifest,
                        items: &b.items,
                        prompts: &b.prompts,
                        kernel: KernelStep {
                            name: kernel_name.clone(),
                            plugin: Some((kernel, &self.kernel_config)),
                        },
                        model,
                        model_name: c.label.clone(),
                        params: self.sampling(&b.manifest),
                        out: self.run_dir.responses(&c.label, &b.manifest.name),
                        task: Task::generate(&c.label, &b.manifest.name),
                    };
                    let rt = &rt;
                    handles.push(scope.spawn(move || generate::generate(job, rt, sink)));
                }
            }
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(Error::Panicked("generation"))))
                .collect()
        });
        let mut failed = 0;
        for result in results {
            failed += result?.failed;
        }

        // 3. Score every run of a benchmark together (judge calls batch).
        let judge = match &config.judge {
            Some(spec) => Some(Arc::new(BackendJudge::new(
                models.get(&spec.value)?.client.clone(),
                options.judge_cache.as_ref().map(AnswerCache::new),
                rt.handle().clone(),
                config.judge_max_tokens,
            ))),
            None => None,
        };
        let mut scorer_ids = BTreeMap::new();
        // How the report presents metrics the shipped manifests do not:
        // this run's manifests' [[metrics]], then the scorer plugins' own
        // descriptions (contract 0.2.0).
        let (order, mut declared) =
            report::presentation(self.benchmarks.iter().map(|b| b.manifest.clone()));
        let mut more: Vec<(String, lem_report::MetricDescriptor)> = order
            .into_iter()
            .filter_map(|id| declared.remove(&id).map(|d| (id, d)))
            .collect();
        let mut jobs = Vec::new();
        for b in &self.benchmarks {
            let scorers =
                score::load_scorers(plugins, &b.manifest, judge.clone(), &config.limits, &|_| {})
                    .map_err(|e| config.error(b.line, e.to_string()))?;
            for s in &scorers {
                more.extend(report::described_by_plugins(
                    &b.manifest.name,
                    &s.plugin.info().metrics,
                ));
            }
            scorer_ids.insert(
                b.manifest.name.clone(),
                scorers
                    .iter()
                    .map(|s| s.plugin.identity())
                    .collect::<Vec<_>>(),
            );
            let items: HashMap<String, Located<BenchmarkItem>> = b
                .items
                .iter()
                .map(|i| (i.value.id.clone(), i.clone()))
                .collect();
            let mut responses = Vec::new();
            for c in &self.candidates {
                let path = self.run_dir.responses(&c.label, &b.manifest.name);
                if path.is_file() {
                    responses.extend(
                        lem_core::jsonl::read::<ResponseRecord>(&path)?
                            .into_iter()
                            .filter(|r| items.contains_key(&r.value.id)),
                    );
                }
            }
            jobs.push((&b.manifest.name, items, responses, scorers));
        }
        // Every benchmark at once, so judge calls share the engine's batch.
        let scored: Vec<Result<_>> = std::thread::scope(|scope| {
            let handles: Vec<_> = jobs
                .iter()
                .map(|(name, items, responses, scorers)| {
                    let job = ScoreJob {
                        benchmark: name.as_str(),
                        items,
                        responses,
                        scorers,
                        judge: judge.as_ref(),
                        concurrency: config.judge_concurrency,
                        task: Task::score(name.as_str()),
                    };
                    scope.spawn(move || score::score(&job, sink))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(Error::Panicked("scoring"))))
                .collect()
        });
        for ((name, ..), records) in jobs.iter().zip(scored) {
            let records = records?;
            for c in &self.candidates {
                self.run_dir.write_scores(
                    &c.label,
                    name,
                    records.iter().filter(|r| r.model == c.label),
                )?;
            }
        }

        // 4. What produced it and how to present it, then the report.
        let presentation = report::Presentation {
            metrics: more,
            baseline: config.baseline.as_ref().map(|b| b.value.clone()),
            margins: config
                .margins
                .iter()
                .map(|(metric, margin)| (metric.value.clone(), *margin))
                .collect(),
            judge_agreement: self.judge_agreement.clone(),
        };
        self.write_manifest(&open, judge.as_deref(), &scorer_ids, &presentation)?;
        let observations = self.run_dir.observations()?;
        let report = presentation.build(&observations)?;
        for (format, _) in Format::FILES {
            RunDir::write_atomic(
                &self.run_dir.report(format),
                &report::render(&report, format),
            )?;
        }
        Ok(RunOutcome {
            report,
            failed,
            judge_counts: judge.map(|j| j.counts()),
        })
    }

    /// The sampling settings of `manifest`'s items: the config's where it
    /// sets them (its `max_tokens` a cap), else the manifest's.
    fn sampling(&self, manifest: &BenchmarkManifest) -> lem_engine::SamplingParams {
        let generation = &self.config.generation;
        lem_engine::SamplingParams {
            temperature: generation
                .temperature
                .unwrap_or(manifest.generation.temperature),
            max_tokens: generation
                .max_tokens
                .map_or(manifest.generation.max_tokens, |cap| {
                    cap.min(manifest.generation.max_tokens)
                }) as usize,
            seed: generation.seed,
            ..lem_engine::SamplingParams::default()
        }
    }

    fn write_manifest(
        &self,
        open: &[Arc<OpenModel>],
        judge: Option<&BackendJudge>,
        scorers: &BTreeMap<String, Vec<PluginIdentity>>,
        presentation: &report::Presentation,
    ) -> Result<()> {
        let config = &self.config;
        let runs: BTreeMap<_, _> = self
            .candidates
            .iter()
            .zip(open)
            .map(|(c, m)| {
                (
                    c.label.clone(),
                    json!({"model": m.spec, "model_sha256": m.sha256, "kernel": self.kernels[c.kernel].0, "identity": c.identity}),
                )
            })
            .collect();
        let kernel_hashes: BTreeMap<_, _> = self
            .kernels
            .iter()
            .map(|(name, k)| (name.clone(), k.sha256().to_string()))
            .collect();
        let variants: BTreeMap<_, _> = self
            .variants
            .variants
            .iter()
            .map(|v| (v.name.clone(), self.variants.record(v)))
            .collect();
        let manifest = json!({
            "config": config.path,
            "runs": runs,
            "variants": variants,
            "kernels": kernel_hashes,
            "kernel_text_sha256": config.kernel_text.as_ref().and_then(|f| lem_core::hash::sha256_file(&f.value).ok()),
            "axioms_sha256": config.axioms.as_ref().and_then(|f| lem_core::hash::sha256_file(&f.value).ok()),
            "judge": judge.map(|j| j.identity()),
            "scorers": scorers,
            "report": presentation.to_json(),
            "generation": {
                "batch_size": config.generation.batch_size,
                "max_tokens": config.generation.max_tokens,
                "temperature": config.generation.temperature,
                "seed": config.generation.seed,
            },
        });
        RunDir::write_atomic(&self.run_dir.manifest(), &format!("{manifest:#}"))
    }
}

/// The sha256 of the kernel text and axioms (what a kernel adds besides
/// its plugin).
fn kernel_identity(config: &EvalConfig, digests: &mut Digests) -> Result<Value> {
    let mut out = json!({});
    for (name, file) in [
        ("text_sha256", &config.kernel_text),
        ("axioms_sha256", &config.axioms),
    ] {
        if let Some(f) = file {
            let sha = digests
                .of(&f.value)
                .map_err(|e| config.error(f.line, format!("{}: {e}", f.value.display())))?;
            out[name] = json!(sha);
        }
    }
    Ok(out)
}

/// The text of every evaluated item (its string fields): a seed with the
/// same prompt is held out of distillation.
fn evaluated_prompts(benchmarks: &[PlannedBenchmark]) -> Vec<String> {
    benchmarks
        .iter()
        .flat_map(|b| b.items.iter())
        .flat_map(|i| i.value.record.values())
        .filter_map(|v| v.as_str())
        .map(str::to_string)
        .collect()
}

/// A model spec that parses and, when local, names a model that exists.
fn check_spec(spec: &At<String>, base_dir: &Path) -> Result<()> {
    let parsed = spec
        .value
        .parse::<ModelSpec>()
        .map_err(|e| Error::Invalid(e.to_string()))?;
    if let ModelSpec::Local(reference) = parsed {
        crate::resolve::model_near(&reference, base_dir)?;
    }
    Ok(())
}

/// The kernel text and axioms the config names (read now, so a missing file
/// is a config error).
fn kernel_config(config: &EvalConfig) -> Result<KernelConfig> {
    let read = |file: &Option<At<PathBuf>>, what: &str| -> Result<String> {
        match file {
            Some(f) => std::fs::read_to_string(&f.value).map_err(|e| {
                config
                    .error(f.line, format!("{what} {}: {e}", f.value.display()))
                    .into()
            }),
            None => Ok(String::new()),
        }
    };
    let text = read(&config.kernel_text, "kernel text")?;
    let axioms = read(&config.axioms, "axioms")?;
    if let Some(f) = &config.axioms
        && let Err(e) = serde_json::from_str::<serde_json::Value>(&axioms)
    {
        return Err(config
            .error(
                f.line,
                format!("axioms {} is not JSON: {e}", f.value.display()),
            )
            .into());
    }
    Ok(KernelConfig {
        text,
        axioms,
        options: Vec::new(),
    })
}
