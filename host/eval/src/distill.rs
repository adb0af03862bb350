//! The LEK data step: each seed prompt is wrapped by a kernel plugin and
//! answered by a teacher; the training example keeps the plain prompt and
//! the teacher's answer, so the kernel's ethics is carried by the answers,
//! not by the text.
//!
//! Teacher answers go to `OUT/responses.jsonl` first (resumable like the
//! generate pass, which does the work); `train.jsonl` / `valid.jsonl` and
//! `distill.json` (teacher, kernel and seed hashes) are then written from
//! every answer there.

use crate::error::{Error, IoContext, Result};
use crate::event::{Sink, Task};
use crate::generate::{self, GenerateJob, KernelStep, PromptMaker};
use crate::models::OpenModel;
use lem_core::jsonl::Located;
use lem_core::{BenchmarkItem, BenchmarkManifest, ResponseRecord};
use lem_engine::SamplingParams;
use lem_plugin_host::Runtime;
use lem_plugin_host::kernel::{Kernel, KernelConfig};
use lem_train::dataset::{DistilledExample, write_split};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What to distill, and how.
#[derive(Debug, Clone)]
pub struct Distill {
    /// A shipped kernel (`none`, `system`, `sandwich`) or a kernel `.wasm`.
    pub kernel: String,
    /// The kernel text the plugin places (unused by `none`).
    pub kernel_text: PathBuf,
    /// The axioms (JSON) the plugin may use (unused by `none`).
    pub axioms: PathBuf,
    /// Seed prompts: a directory of `.json`/`.jsonl` files or one file.
    pub seeds: PathBuf,
    /// Output directory: responses.jsonl, train.jsonl, valid.jsonl, distill.json.
    pub out: PathBuf,
    /// Share of examples in valid.jsonl.
    pub valid_fraction: f64,
    /// Seed of the train/valid split and of sampling.
    pub seed: u64,
    /// Only the first N seeds.
    pub limit: Option<usize>,
    /// Teacher sampling temperature.
    pub temperature: f32,
    /// Longest answer, in tokens.
    pub max_tokens: usize,
    /// Prompts not to distill: the evaluated items (a seed with the same
    /// text would put a test item in the training data).
    pub held_out: Vec<String>,
}

/// What a distillation wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distilled {
    /// Examples in train.jsonl.
    pub train: usize,
    /// Examples in valid.jsonl.
    pub valid: usize,
    /// Seeds the teacher answered now.
    pub answered: usize,
    /// Empty answers left out.
    pub empty: usize,
    /// Seeds that could not be answered (a rerun tries them again).
    pub failed: usize,
}

const MANIFEST: &str = r#"
name = "distill"
description = "lem distill: seed prompts answered by a teacher under a kernel"
[prompt]
plugin = "template"
field = "prompt"
"#;

/// Answers `job`'s seeds with `teacher` under its kernel, and writes the
/// training set.
pub fn distill(
    job: &Distill,
    teacher: &OpenModel,
    plugins: &Runtime,
    sink: &dyn Sink,
) -> Result<Distilled> {
    let (items, seed_files) = read_seeds(&job.seeds)?;
    let kept = kept_seeds(&items, job.limit, &job.held_out);
    let held_out = items.len() - kept_seeds(&items, None, &job.held_out).len();
    let items: Vec<_> = items
        .into_iter()
        .filter(|i| kept.contains(&i.value.id))
        .collect();
    let manifest =
        BenchmarkManifest::parse(MANIFEST, Path::new("bundled:distill"), Path::new("."))?;
    let prompts = PromptMaker::load(plugins, &manifest, &lem_core::Limits::default())?;
    let kernel_source = crate::resolve::kernel(&job.kernel, Path::new("."))?;
    let kernel_plugin_sha = lem_core::hash::sha256_hex(&kernel_source.bytes);
    let kernel =
        Kernel::load(plugins, &kernel_source, lem_core::Policy::default()).map_err(|cause| {
            Error::Plugin {
                context: format!("loading kernel `{}`", job.kernel),
                cause,
            }
        })?;
    let kernel_name = crate::resolve::kernel_name(&job.kernel);
    let (text, axioms) = if kernel_name == "none" {
        (String::new(), String::new())
    } else {
        let read = |p: &Path, what: &str| {
            std::fs::read_to_string(p).map_err(|e| {
                Error::Invalid(format!(
                    "{what} {}: {e}: kernel `{kernel_name}` needs it (pass --{what})",
                    p.display()
                ))
            })
        };
        (
            read(&job.kernel_text, "kernel-text")?,
            read(&job.axioms, "axioms")?,
        )
    };
    let kernel_config = KernelConfig {
        text,
        axioms,
        options: Vec::new(),
    };
    std::fs::create_dir_all(&job.out).at(&job.out)?;
    let responses = job.out.join("responses.jsonl");
    // (id, plain prompt) in seed order.
    let seeds: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            let p = i.value.record.get("prompt").and_then(|v| v.as_str());
            (i.value.id.clone(), p.unwrap_or_default().to_string())
        })
        .collect();
    let rt = crate::models::runtime()?;
    let done = generate::generate(
        GenerateJob {
            manifest: &manifest,
            items: &items,
            prompts: &prompts,
            kernel: KernelStep {
                name: kernel_name.clone(),
                plugin: Some((&kernel, &kernel_config)),
            },
            model: teacher,
            model_name: teacher.name.clone(),
            params: SamplingParams {
                temperature: job.temperature,
                max_tokens: job.max_tokens,
                seed: job.seed,
                ..SamplingParams::default()
            },
            out: responses.clone(),
            task: Task::generate("", "distill"),
        },
        &rt,
        sink,
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
    let counts = write_split(&job.out, &examples, job.valid_fraction, job.seed)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let record = json!({
        "teacher": {"spec": teacher.spec, "name": teacher.name, "sha256": teacher.sha256},
        "kernel": {
            "name": kernel_name,
            "plugin_sha256": kernel_plugin_sha,
            "text_sha256": lem_core::hash::sha256_hex(kernel_config.text.as_bytes()),
            "axioms_sha256": lem_core::hash::sha256_hex(kernel_config.axioms.as_bytes()),
        },
        "seeds": seed_files,
        "seeds_held_out_as_evaluated_items": held_out,
        "sampling": {"temperature": job.temperature, "max_tokens": job.max_tokens, "seed": job.seed},
        "valid_fraction": job.valid_fraction,
        "examples": {"train": counts.train, "valid": counts.valid, "empty_answers_skipped": empty},
    });
    crate::RunDir::write_atomic(&job.out.join("distill.json"), &format!("{record:#}"))?;
    Ok(Distilled {
        train: counts.train,
        valid: counts.valid,
        answered: done.answered,
        empty,
        failed: done.failed,
    })
}

/// The ids of the seeds distilled: in order, those whose prompt is not in
/// `held_out`, then the first `limit` of them.
pub fn kept_seeds(
    items: &[Located<BenchmarkItem>],
    limit: Option<usize>,
    held_out: &[String],
) -> Vec<String> {
    let held_out: HashSet<&str> = held_out.iter().map(|p| p.trim()).collect();
    items
        .iter()
        .filter(|i| {
            let prompt = i.value.record.get("prompt").and_then(|v| v.as_str());
            !prompt.is_some_and(|p| held_out.contains(p.trim()))
        })
        .take(limit.unwrap_or(usize::MAX))
        .map(|i| i.value.id.clone())
        .collect()
}

/// Seed items from a file or a directory of `.json` / `.jsonl` files
/// (sorted), with each file's sha256 for the record of what made the set.
pub fn read_seeds(path: &Path) -> Result<(Vec<Located<BenchmarkItem>>, serde_json::Value)> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(path)
            .at(path)?
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
        return Err(Error::Invalid(format!(
            "{}: no .json or .jsonl seed files",
            path.display()
        )));
    }
    let mut items = Vec::new();
    let mut hashes = Vec::new();
    let mut seen = HashSet::new();
    for file in &files {
        let text = lem_core::text::read_to_string(file)?;
        hashes.push(json!({"file": file.display().to_string(), "sha256": lem_core::hash::sha256_hex(text.as_bytes())}));
        let bad = |line: usize, message: String| Error::Data {
            path: file.clone(),
            line,
            message,
        };
        let records: Vec<(usize, serde_json::Value)> = if text.trim_start().starts_with('[') {
            let values: Vec<serde_json::Value> = serde_json::from_str(&text)
                .map_err(|e| bad(e.line(), format!("not a JSON array of seeds: {e}")))?;
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
                        .map_err(|e| bad(i + 1, format!("not JSON: {e}")))
                })
                .collect::<Result<_>>()?
        };
        for (n, value) in records {
            let at = |message: String| {
                Error::Invalid(format!("{}: seed {n}: {message}", file.display()))
            };
            let Some(obj) = value.as_object().cloned() else {
                return Err(at("a seed is an object with \"id\" and \"prompt\"".into()));
            };
            if !obj.get("prompt").is_some_and(|p| p.is_string()) {
                return Err(at("missing \"prompt\" (a string)".into()));
            }
            let item = BenchmarkItem::from_record(obj, "id").map_err(|e| at(e.to_string()))?;
            if !seen.insert(item.id.clone()) {
                return Err(at(format!("id `{}` appears twice", item.id)));
            }
            items.push(Located {
                line: n,
                value: item,
            });
        }
    }
    Ok((items, serde_json::Value::Array(hashes)))
}
