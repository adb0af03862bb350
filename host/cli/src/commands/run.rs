//! `lem run EVAL.toml`: every (model, kernel, benchmark) of a config is
//! generated where missing (resumable), scored, and reported.
//!
//! Everything the config names is resolved and checked first — models,
//! kernels, judge, benchmarks, files, and every plugin the run will load
//! (kernels, prompt plugins, scorers) with its pinned hash — so a typo or a
//! wrong pin fails in a second with the config line, not after an hour of
//! generation. `--dry-run` does all of that and stops.

use super::engine_args::ModelArgs;
use super::report::{self, Format};
use crate::judging::BackendJudge;
use crate::models::{Models, RemoteArgs};
use crate::pipeline::{self, GenerateJob, KernelStep, ScoreJob};
use anyhow::{Context, Result, anyhow};
use lem_core::eval::{At, EvalConfig};
use lem_core::jsonl::Located;
use lem_core::{BenchmarkItem, BenchmarkManifest, ResponseRecord};
use lem_models::{AnswerCache, ModelSpec};
use lem_plugin_host::kernel::{Kernel, KernelConfig};
use lem_plugin_host::{Judge, Runtime, RuntimeConfig};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `lem run`.
#[derive(clap::Args)]
pub struct Args {
    /// The eval config (TOML).
    config: PathBuf,
    /// List what would run, and stop.
    #[arg(long)]
    dry_run: bool,
    /// Ask the judge again even for answers cached by earlier runs.
    #[arg(long)]
    no_judge_cache: bool,
    /// CPU threads for local models (default: the cores not already busy).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    remote: RemoteArgs,
}

/// A benchmark, resolved.
struct BenchmarkPlan {
    manifest: BenchmarkManifest,
    items: Vec<Located<BenchmarkItem>>,
}

/// One (model, kernel) pair: what its results are called.
struct Candidate {
    label: String,
    model_label: String,
    spec: String,
    kernel: usize,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = EvalConfig::load(&args.config)?;
    let base_dir = config
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let runtime = Runtime::new(RuntimeConfig::with_default_cache())?;

    // 1. Resolve and check everything before any generation.
    for (label, spec) in &config.models {
        check_spec(&config, spec, &base_dir)
            .map_err(|e| config.error(spec.line, format!("model `{}`: {e}", label.value)))?;
    }
    if let Some(judge) = &config.judge {
        check_spec(&config, judge, &base_dir)
            .map_err(|e| config.error(judge.line, format!("judge: {e}")))?;
    }
    let kernel_config = kernel_config(&config)?;
    let limits = &config.limits;
    let mut kernels = Vec::new();
    for name in &config.kernels {
        let source = crate::resolve::kernel_capped(&name.value, &base_dir, limits.max_wasm_bytes)
            .map_err(|e| config.error(name.line, e.to_string()))?;
        let policy = lem_core::Policy {
            limits: limits.clone(),
            sha256: config.kernel_pin(&name.value).map(str::to_string),
            ..lem_core::Policy::default()
        };
        let kernel = Kernel::load(&runtime, &source, policy)
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
        let at = |e: anyhow::Error| config.error(run.name.line, format!("{e:#}"));
        let reference = if base_dir.join(&run.name.value).is_file() {
            base_dir.join(&run.name.value).display().to_string()
        } else {
            run.name.value.clone()
        };
        let manifest = crate::resolve::benchmark(&reference).map_err(at)?;
        let data = run.data.as_ref().map(|d| d.value.clone());
        let mut items = crate::data::load_items(&manifest, data.as_deref()).map_err(|e| {
            let line = run.data.as_ref().map_or(run.name.line, |d| d.line);
            config.error(line, format!("benchmark `{}`: {e:#}", run.name.value))
        })?;
        if let Some(limit) = run.limit {
            items.truncate(limit);
        }
        benchmarks.push(BenchmarkPlan { manifest, items });
    }
    let mut candidates = Vec::new();
    for (model_label, spec) in &config.models {
        for (k, (kernel, _)) in kernels.iter().enumerate() {
            candidates.push(Candidate {
                label: if kernel == "none" {
                    model_label.value.clone()
                } else {
                    format!("{}+{kernel}", model_label.value)
                },
                model_label: model_label.value.clone(),
                spec: spec.value.clone(),
                kernel: k,
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
    // Every plugin the run will load, loaded now: prompt plugins, and the
    // scorers (without the judge; scoring loads them again with it), so a
    // wrong pin or a plugin that cannot describe itself stops the run before
    // any generation, and `--dry-run` has checked what the run will use.
    let prompts: Vec<_> = config
        .benchmarks
        .iter()
        .zip(&benchmarks)
        .map(|(run, b)| {
            pipeline::prompt_maker_with(&runtime, &b.manifest, limits)
                .map_err(|e| config.error(run.name.line, format!("{e:#}")))
        })
        .collect::<Result<_, _>>()?;
    let mut verified_scorers = Vec::new();
    for (run, b) in config.benchmarks.iter().zip(&benchmarks) {
        let scorers = pipeline::load_scorers(&runtime, &b.manifest, None, limits, &|_| {})
            .map_err(|e| config.error(run.name.line, format!("{e:#}")))?;
        // A judge scorer without a judge is a config error.
        if config.judge.is_none()
            && let Some(s) = scorers.iter().find(|s| s.info().needs_judge)
        {
            return Err(config
                .error(
                    run.name.line,
                    format!(
                        "benchmark `{}` is scored by `{}`, which asks a judge: set `judge = \"MODEL SPEC\"`",
                        b.manifest.name,
                        s.info().name
                    ),
                )
                .into());
        }
        verified_scorers.push(scorers.iter().map(|s| s.identity()).collect::<Vec<_>>());
    }
    let judge_engine = ModelArgs {
        threads: args.threads,
        ..ModelArgs::for_spec("")
    };
    let batch = config.generation.batch_size;
    let mut models = Models::new(&judge_engine, &args.remote, batch);
    let rt = crate::models::runtime()?;
    let out = &config.out;

    if args.dry_run {
        print_plan(&config, &candidates, &kernels, &benchmarks);
        print_plugins(&kernels, &benchmarks, &prompts, &verified_scorers);
        return Ok(ExitCode::SUCCESS);
    }

    // 2. Generate what is missing: every job at once, so a local model
    //    batches across benchmarks and kernels.
    let open: Vec<_> = candidates
        .iter()
        .map(|c| {
            models
                .get(&c.spec)
                .with_context(|| format!("opening model `{}` ({})", c.model_label, c.spec))
        })
        .collect::<Result<_>>()?;
    let bars = indicatif::MultiProgress::new();
    let results: Vec<Result<pipeline::Generated>> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (c, model) in candidates.iter().zip(&open) {
            for (b, (prompt, prompt_config)) in benchmarks.iter().zip(&prompts) {
                let (kernel_name, kernel) = &kernels[c.kernel];
                let generation = &config.generation;
                let manifest = &b.manifest;
                let params = lem_engine::SamplingParams {
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
                };
                let job = GenerateJob {
                    manifest,
                    items: b.items.clone(),
                    prompts: (prompt, prompt_config),
                    kernel: KernelStep {
                        name: kernel_name.clone(),
                        plugin: Some((kernel, &kernel_config)),
                    },
                    model,
                    model_name: c.label.clone(),
                    params,
                    out: responses_path(out, &c.label, &manifest.name),
                    progress: bars.add(pipeline::progress_bar(
                        0,
                        &format!("{} {}", c.label, manifest.name),
                    )),
                };
                let rt = &rt;
                handles.push(scope.spawn(move || {
                    if let Some(dir) = job.out.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    pipeline::generate(job, rt)
                }));
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a generation thread panicked")))
            })
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
            (!args.no_judge_cache)
                .then(|| AnswerCache::new(lem_core::lem_home().join("judge-cache"))),
            rt.handle().clone(),
            config.judge_max_tokens,
        ))),
        None => None,
    };
    let mut scorer_ids = BTreeMap::new();
    let mut jobs = Vec::new();
    for (run, b) in config.benchmarks.iter().zip(&benchmarks) {
        let scorers = pipeline::load_scorers(&runtime, &b.manifest, judge.clone(), limits, &|_| {})
            .map_err(|e| config.error(run.name.line, format!("{e:#}")))?;
        scorer_ids.insert(
            b.manifest.name.clone(),
            scorers.iter().map(|s| s.identity()).collect::<Vec<_>>(),
        );
        let items: HashMap<String, Located<BenchmarkItem>> = b
            .items
            .iter()
            .map(|i| (i.value.id.clone(), i.clone()))
            .collect();
        let mut responses = Vec::new();
        for c in &candidates {
            let path = responses_path(out, &c.label, &b.manifest.name);
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
    let scored: Vec<_> = std::thread::scope(|scope| {
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
                    progress: bars.add(pipeline::progress_bar(0, &format!("scoring {name}"))),
                };
                scope.spawn(move || pipeline::score(&job))
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    for ((name, ..), records) in jobs.iter().zip(scored) {
        let records = records.map_err(|_| anyhow!("a scoring thread panicked"))?;
        for c in &candidates {
            let path = out
                .join("scores")
                .join(&c.label)
                .join(format!("{name}.jsonl"));
            std::fs::create_dir_all(path.parent().unwrap_or(out))?;
            let mut file = lem_core::AtomicFile::create(&path)?;
            for r in records.iter().filter(|r| r.model == c.label) {
                file.write_json(r)?;
            }
            file.commit()
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }

    // 4. What produced it, then the report.
    write_manifest(
        &config,
        &candidates,
        &open,
        &kernels,
        judge.as_deref(),
        &scorer_ids,
    )?;
    let observations = report::run_observations(out)?;
    let margins = config
        .margins
        .iter()
        .map(|(metric, margin)| (metric.value.clone(), *margin))
        .collect();
    let report = report::build_with(
        &observations,
        config.baseline.as_ref().map(|b| b.value.clone()),
        margins,
    )?;
    for (format, name) in [
        (Format::Md, "report.md"),
        (Format::Html, "report.html"),
        (Format::Json, "report.json"),
    ] {
        let path = out.join(name);
        let mut file = lem_core::AtomicFile::create(&path)?;
        std::io::Write::write_all(&mut file, report::render(&report, format)?.as_bytes())?;
        file.commit()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{}", report::render(&report, Format::Md)?);
    eprintln!("{}: report.md, report.html, report.json", out.display());
    if failed > 0 {
        eprintln!(
            "{failed} items could not be generated (see above, and responses/RUN/BENCHMARK.failures.jsonl); run again to fill them in"
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// A model spec that parses and, when local, names a model that exists.
fn check_spec(config: &EvalConfig, spec: &At<String>, base_dir: &Path) -> Result<()> {
    let _ = config;
    if let ModelSpec::Local(reference) = spec.value.parse::<ModelSpec>()? {
        let beside = base_dir.join(&reference);
        if !beside.exists() {
            crate::resolve::model(&reference)?;
        }
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

fn responses_path(out: &Path, label: &str, benchmark: &str) -> PathBuf {
    out.join("responses")
        .join(label)
        .join(format!("{benchmark}.jsonl"))
}

fn print_plan(
    config: &EvalConfig,
    candidates: &[Candidate],
    kernels: &[(String, Kernel)],
    benchmarks: &[BenchmarkPlan],
) {
    let header = [
        "run",
        "model",
        "kernel",
        "benchmark",
        "items",
        "done",
        "to generate",
        "scorers",
    ];
    let mut rows = Vec::new();
    for c in candidates {
        for b in benchmarks {
            let path = responses_path(&config.out, &c.label, &b.manifest.name);
            let done_ids: std::collections::HashSet<String> =
                lem_core::jsonl::read::<ResponseRecord>(&path)
                    .map(|rs| rs.into_iter().map(|r| r.value.id).collect())
                    .unwrap_or_default();
            let done = b
                .items
                .iter()
                .filter(|i| done_ids.contains(&i.value.id))
                .count();
            rows.push(vec![
                c.label.clone(),
                c.spec.clone(),
                kernels[c.kernel].0.clone(),
                b.manifest.name.clone(),
                b.items.len().to_string(),
                done.to_string(),
                (b.items.len() - done).to_string(),
                b.manifest
                    .scorers
                    .iter()
                    .map(|s| s.plugin.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ]);
        }
    }
    print!("{}", crate::table::render(&header, &rows));
    println!(
        "judge: {}; output: {}",
        config.judge.as_ref().map_or("none", |j| j.value.as_str()),
        config.out.display()
    );
}

/// Every plugin the run loads, with its digest: what `--dry-run` verified.
fn print_plugins(
    kernels: &[(String, Kernel)],
    benchmarks: &[BenchmarkPlan],
    prompts: &[(
        lem_plugin_host::benchmark::Benchmark,
        lem_plugin_host::benchmark::PromptConfig,
    )],
    scorers: &[Vec<lem_core::PluginIdentity>],
) {
    let mut rows = Vec::new();
    for (name, kernel) in kernels {
        rows.push(vec![
            "kernel".into(),
            name.clone(),
            kernel.sha256().to_string(),
        ]);
    }
    for ((b, (prompt, _)), scorers) in benchmarks.iter().zip(prompts).zip(scorers) {
        rows.push(vec![
            format!("prompt ({})", b.manifest.name),
            prompt.info().name.clone(),
            prompt.sha256().to_string(),
        ]);
        for s in scorers {
            rows.push(vec![
                format!("scorer ({})", b.manifest.name),
                s.name.clone(),
                s.sha256.clone(),
            ]);
        }
    }
    println!("plugins loaded and verified (pins checked):");
    print!(
        "{}",
        crate::table::render(&["role", "plugin", "sha256"], &rows)
    );
}

fn write_manifest(
    config: &EvalConfig,
    candidates: &[Candidate],
    open: &[Arc<crate::models::OpenModel>],
    kernels: &[(String, Kernel)],
    judge: Option<&BackendJudge>,
    scorers: &BTreeMap<String, Vec<lem_core::PluginIdentity>>,
) -> Result<()> {
    let runs: BTreeMap<_, _> = candidates
        .iter()
        .zip(open)
        .map(|(c, m)| {
            (
                c.label.clone(),
                json!({"model": m.spec, "model_sha256": m.sha256, "kernel": kernels[c.kernel].0}),
            )
        })
        .collect();
    let kernel_hashes: BTreeMap<_, _> = kernels
        .iter()
        .map(|(name, k)| (name.clone(), k.sha256().to_string()))
        .collect();
    let manifest = json!({
        "config": config.path,
        "runs": runs,
        "kernels": kernel_hashes,
        "kernel_text_sha256": config.kernel_text.as_ref().and_then(|f| lem_core::hash::sha256_file(&f.value).ok()),
        "axioms_sha256": config.axioms.as_ref().and_then(|f| lem_core::hash::sha256_file(&f.value).ok()),
        "judge": judge.map(|j| j.identity()),
        "scorers": scorers,
        "generation": {
            "batch_size": config.generation.batch_size,
            "max_tokens": config.generation.max_tokens,
            "temperature": config.generation.temperature,
            "seed": config.generation.seed,
        },
    });
    let path = config.out.join("run.json");
    let mut file = lem_core::AtomicFile::create(&path)?;
    std::io::Write::write_all(
        &mut file,
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    file.commit()
        .with_context(|| format!("writing {}", path.display()))
}
