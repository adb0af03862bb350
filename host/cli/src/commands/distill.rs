//! `lem distill`: the LEK data step. Each seed prompt is wrapped by a kernel
//! plugin and answered by the teacher; the training example keeps the plain
//! prompt and the teacher's answer, so the kernel's ethics is carried by the
//! answers, not by the text. Teacher answers go to `OUT/responses.jsonl`
//! first (resumable like `lem generate`); `train.jsonl` / `valid.jsonl`
//! and `distill.json` (teacher, kernel and seed hashes) are then written
//! from every answer there.

use super::engine_args::ModelArgs;
use crate::models::{Models, RemoteArgs};
use crate::pipeline::{self, GenerateJob, KernelStep};
use anyhow::{Context, Result, bail};
use lem_core::jsonl::Located;
use lem_core::{BenchmarkItem, BenchmarkManifest, ResponseRecord};
use lem_engine::SamplingParams;
use lem_plugin_host::kernel::{Kernel, KernelConfig};
use lem_plugin_host::{Runtime, RuntimeConfig};
use lem_train::dataset::{DistilledExample, write_split};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `lem distill`.
#[derive(clap::Args)]
pub struct Args {
    /// The teacher: a local model or `openai:BASE_URL#MODEL`, `gemini:MODEL`.
    #[arg(long, default_value = crate::resolve::DEFAULT_MODEL)]
    teacher: String,
    #[command(flatten)]
    remote: RemoteArgs,
    /// Kernel plugin: a shipped kernel (none, system, sandwich) or a .wasm file.
    #[arg(long, default_value = "sandwich")]
    kernel: String,
    /// The kernel text the plugin places.
    #[arg(long, default_value = "kernel/kernel.txt")]
    kernel_text: PathBuf,
    /// The axioms (JSON) the plugin may use.
    #[arg(long, default_value = "kernel/axioms.json")]
    axioms: PathBuf,
    /// Seed prompts: a directory of .json/.jsonl files or one file; each a
    /// JSON array (or JSON lines) of {"id", "prompt", ...}.
    #[arg(long, default_value = "seeds")]
    seeds: PathBuf,
    /// Output directory: responses.jsonl, train.jsonl, valid.jsonl, distill.json.
    #[arg(long)]
    out: PathBuf,
    /// Share of examples in valid.jsonl.
    #[arg(long, default_value_t = 0.1)]
    valid_fraction: f64,
    /// Seed of the train/valid split and of sampling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Only the first N seeds.
    #[arg(long)]
    limit: Option<usize>,
    /// Teacher sampling temperature.
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 512)]
    max_tokens: usize,
    /// Sequences a local teacher decodes together.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// CPU threads of a local teacher.
    #[arg(long)]
    threads: Option<usize>,
}

const MANIFEST: &str = r#"
name = "distill"
description = "lem distill: seed prompts answered by a teacher under a kernel"
[prompt]
plugin = "template"
field = "prompt"
"#;

pub fn run(args: Args) -> Result<ExitCode> {
    let (items, seed_files) = read_seeds(&args.seeds)?;
    let items: Vec<_> = match args.limit {
        Some(n) => items.into_iter().take(n).collect(),
        None => items,
    };
    let manifest =
        BenchmarkManifest::parse(MANIFEST, Path::new("bundled:distill"), Path::new("."))?;
    let runtime = Runtime::new(RuntimeConfig::with_default_cache())?;
    let (benchmark, prompt_config) = pipeline::prompt_maker(&runtime, &manifest)?;
    let kernel_source = crate::resolve::kernel(&args.kernel, Path::new("."))?;
    let kernel_plugin_sha = lem_core::hash::sha256_hex(&kernel_source.bytes);
    let kernel = Kernel::load(&runtime, &kernel_source, lem_core::Policy::default())?;
    let kernel_name = crate::resolve::kernel_name(&args.kernel);
    let (text, axioms) = if kernel_name == "none" {
        (String::new(), String::new())
    } else {
        let read = |p: &Path, what: &str| {
            std::fs::read_to_string(p).with_context(|| {
                format!(
                    "{what} {}: kernel `{kernel_name}` needs it (pass --{what})",
                    p.display()
                )
            })
        };
        (
            read(&args.kernel_text, "kernel-text")?,
            read(&args.axioms, "axioms")?,
        )
    };
    let kernel_config = KernelConfig {
        text,
        axioms,
        options: Vec::new(),
    };
    let mut engine = ModelArgs::for_spec(&args.teacher);
    engine.threads = args.threads;
    let mut models = Models::new(&engine, &args.remote, args.batch_size);
    let teacher = models.get(&args.teacher)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let responses = args.out.join("responses.jsonl");
    // (id, plain prompt) in seed order.
    let seeds: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            let p = i.value.record.get("prompt").and_then(|v| v.as_str());
            (i.value.id.clone(), p.unwrap_or_default().to_string())
        })
        .collect();
    let rt = crate::models::runtime()?;
    let done = pipeline::generate(
        GenerateJob {
            manifest: &manifest,
            items,
            prompts: (&benchmark, &prompt_config),
            kernel: KernelStep {
                name: kernel_name.clone(),
                plugin: Some((&kernel, &kernel_config)),
            },
            model: &teacher,
            model_name: teacher.name.clone(),
            params: SamplingParams {
                temperature: args.temperature,
                max_tokens: args.max_tokens,
                seed: args.seed,
                ..SamplingParams::default()
            },
            out: responses.clone(),
            progress: pipeline::progress_bar(0, "distilling"),
        },
        &rt,
    )?;

    // Every answer on file (this run's and earlier runs'), in seed order.
    let answers: HashMap<String, ResponseRecord> = lem_core::jsonl::read(&responses)?
        .into_iter()
        .map(|r: Located<ResponseRecord>| (r.value.id.clone(), r.value))
        .collect();
    let mut examples = Vec::new();
    let mut empty = 0;
    for (id, prompt) in &seeds {
        let Some(r) = answers.get(id) else { continue };
        if r.response.trim().is_empty() {
            empty += 1;
            continue;
        }
        examples.push(DistilledExample {
            id: id.clone(),
            prompt: prompt.clone(),
            answer: r.response.clone(),
        });
    }
    let counts = write_split(&args.out, &examples, args.valid_fraction, args.seed)?;
    let record = json!({
        "teacher": {"spec": teacher.spec, "name": teacher.name, "sha256": teacher.sha256},
        "kernel": {
            "name": kernel_name,
            "plugin_sha256": kernel_plugin_sha,
            "text_sha256": lem_core::hash::sha256_hex(kernel_config.text.as_bytes()),
            "axioms_sha256": lem_core::hash::sha256_hex(kernel_config.axioms.as_bytes()),
        },
        "seeds": seed_files,
        "sampling": {"temperature": args.temperature, "max_tokens": args.max_tokens, "seed": args.seed},
        "valid_fraction": args.valid_fraction,
        "examples": {"train": counts.train, "valid": counts.valid, "empty_answers_skipped": empty},
    });
    let path = args.out.join("distill.json");
    std::fs::write(&path, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "{}: {} train + {} valid examples ({} answered now, {} empty answers skipped)",
        args.out.display(),
        counts.train,
        counts.valid,
        done.answered,
        empty
    );
    if done.failed > 0 {
        bail!(
            "{} seeds could not be answered (see above); run again to fill them in",
            done.failed
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Seed items from a file or a directory of `.json` / `.jsonl` files
/// (sorted), with each file's sha256 for the manifest.
fn read_seeds(path: &Path) -> Result<(Vec<Located<BenchmarkItem>>, serde_json::Value)> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "jsonl"))
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_owned()]
    };
    if files.is_empty() {
        bail!("{}: no .json or .jsonl seed files", path.display());
    }
    let mut items = Vec::new();
    let mut hashes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for file in &files {
        let text = lem_core::text::read_to_string(file)?;
        hashes.push(json!({"file": file.display().to_string(), "sha256": lem_core::hash::sha256_hex(text.as_bytes())}));
        let records: Vec<(usize, serde_json::Value)> = if text.trim_start().starts_with('[') {
            let values: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{}:{}: not a JSON array of seeds: {e}",
                    file.display(),
                    e.line()
                )
            })?;
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i + 1, v))
                .collect()
        } else {
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    serde_json::from_str(l)
                        .map(|v| (i + 1, v))
                        .map_err(|e| anyhow::anyhow!("{}:{}: not JSON: {e}", file.display(), i + 1))
                })
                .collect::<Result<_>>()?
        };
        for (n, value) in records {
            let at = || format!("{}: seed {n}", file.display());
            let Some(obj) = value.as_object().cloned() else {
                bail!("{}: a seed is an object with \"id\" and \"prompt\"", at());
            };
            if !obj.get("prompt").is_some_and(|p| p.is_string()) {
                bail!("{}: missing \"prompt\" (a string)", at());
            }
            let item = BenchmarkItem::from_record(obj, "id")
                .map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
            if !seen.insert(item.id.clone()) {
                bail!("{}: id `{}` appears twice", at(), item.id);
            }
            items.push(Located {
                line: n,
                value: item,
            });
        }
    }
    Ok((items, serde_json::Value::Array(hashes)))
}
