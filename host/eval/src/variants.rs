//! Building a config's `[variants]`: the artifacts that make a LEK variant
//! (distilled data, then one LoRA adapter per training stage) and the
//! abliterated baseline, each stored under `OUT/artifacts/` and named by the
//! sha256 of everything that made it.
//!
//! Why it is shaped so: a variant is a chain of steps, and each step's key
//! hashes its own inputs *and the key of the step before it* (lem's version,
//! the model's weights, the data, the kernel, every flag). So a rerun finds
//! every artifact and builds nothing; a changed flag changes the key of its
//! step and of every step after it — only those are built again, and only
//! the results of the variants they make are generated again (a run's
//! answers are tied to what produced them, see `RunDir::claim`).
//!
//! Each step survives `kill -9`: distillation appends teacher answers as
//! they come (the generate pass), training checkpoints every step
//! atomically, abliteration writes into a `.partial` directory renamed at
//! the end; a step is done when its `built.json` exists, written last.

use crate::distill::{self, Distill};
use crate::error::{Error, Result};
use crate::event::{Event, Sink, Task};
use crate::models::Models;
use lem_core::eval::{Build, EvalConfig, TrainData, Variant};
use lem_core::hash::{sha256_file, sha256_hex};
use lem_plugin_host::Runtime;
use lem_train::abliterate::{AbliterateConfig, LayerChoice, PromptFile};
use lem_train::base::BaseModel;
use lem_train::lora::{LoraSpec, parse_targets};
use lem_train::{TrainConfig, TrainEvent};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The file that marks a step's artifact complete (written last).
const BUILT: &str = "built.json";

/// A local model as a variant starts from it: weights, and an adapter on
/// top when it is a trained variant.
#[derive(Debug, Clone)]
pub struct LocalModel {
    /// The `.gguf` file or safetensors directory.
    pub path: PathBuf,
    /// What it is called in records (`qwen2.5-coder-0.5b-instruct`, a path).
    pub reference: String,
    /// What identifies the weights in keys (their sha256, or the artifact key).
    pub identity: Value,
    /// A LoRA adapter applied on top, and its step's key.
    pub adapter: Option<(PathBuf, String)>,
}

impl LocalModel {
    /// Its identity with the adapter, for keys and records.
    pub fn full_identity(&self) -> Value {
        match &self.adapter {
            Some((_, key)) => json!({"weights": self.identity, "adapter": key}),
            None => self.identity.clone(),
        }
    }
}

/// Who answers the seeds.
#[derive(Debug, Clone)]
enum Teacher {
    Local(LocalModel),
    Spec(String),
}

/// What one step does.
#[derive(Debug, Clone)]
enum StepKind {
    Distill {
        teacher: Teacher,
        job: Distill,
    },
    Train {
        base: LocalModel,
        data: PathBuf,
        init: Option<PathBuf>,
        stage: lem_core::eval::TrainStage,
    },
    Abliterate {
        from: LocalModel,
        harmful: PathBuf,
        harmless: PathBuf,
        layer: LayerChoice,
        max_tokens: usize,
    },
}

/// One step of building a variant.
#[derive(Debug, Clone)]
pub struct Step {
    /// The variant it builds.
    pub variant: String,
    /// `distill`, `train (stage 1 of 2)`, `abliterate`.
    pub what: String,
    /// The sha256 of its inputs (with the previous step's key).
    pub key: String,
    /// Where its artifact goes.
    pub dir: PathBuf,
    /// Everything its key hashes.
    pub inputs: Value,
    kind: StepKind,
}

/// Where a step stands in the run directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Its artifact is complete: it will be reused.
    Built,
    /// Begun and interrupted: it resumes.
    Partial,
    /// Not begun.
    Missing,
}

impl Step {
    /// Where it stands.
    pub fn status(&self) -> StepStatus {
        if self.dir.join(BUILT).is_file() {
            StepStatus::Built
        } else if self.dir.exists() || self.dir.with_extension("partial").exists() {
            StepStatus::Partial
        } else {
            StepStatus::Missing
        }
    }
}

/// A variant as evaluated: the model it became.
#[derive(Debug, Clone)]
pub struct BuiltVariant {
    /// Its label.
    pub name: String,
    /// What it was built from, as written.
    pub from: String,
    /// The model it became.
    pub model: LocalModel,
    /// Its steps (indices into [`VariantPlan::steps`]), in order, its
    /// `from` variant's first.
    pub chain: Vec<usize>,
}

/// Every variant of a config, resolved into steps with keys.
#[derive(Debug, Default)]
pub struct VariantPlan {
    /// Every step, in an order that builds each after what it needs.
    pub steps: Vec<Step>,
    /// The variants, in the config's order.
    pub variants: Vec<BuiltVariant>,
}

/// The sha256 of files and model directories seen while resolving a plan,
/// so each is read once.
#[derive(Debug, Default)]
pub struct Digests(HashMap<PathBuf, String>);

impl Digests {
    /// The sha256 of a file, or of a safetensors directory's weights and
    /// config (each file's digest, in name order, hashed).
    pub fn of(&mut self, path: &Path) -> std::io::Result<String> {
        if let Some(d) = self.0.get(path) {
            return Ok(d.clone());
        }
        let digest = if path.is_dir() {
            // A safetensors directory: its weights and config, in order.
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "safetensors")
                        || p.file_name().is_some_and(|n| n == "config.json")
                })
                .collect();
            files.sort();
            let parts: Vec<String> = files
                .iter()
                .map(|f| sha256_file(f))
                .collect::<std::io::Result<_>>()?;
            sha256_hex(parts.join("\n").as_bytes())
        } else {
            sha256_file(path)?
        };
        self.0.insert(path.to_owned(), digest.clone());
        Ok(digest)
    }
}

/// The first 16 hex digits of the sha256 of `inputs` (canonical JSON):
/// what names an artifact directory.
fn key_of(inputs: &Value) -> String {
    sha256_hex(inputs.to_string().as_bytes())
}

impl VariantPlan {
    /// Resolves `config`'s variants: every `from`, teacher, file and flag
    /// checked, every step keyed. `held_out` are prompts of the evaluated
    /// benchmarks: seeds with the same text are not distilled (the model
    /// would be trained on its test items). Errors name the config line.
    pub fn resolve(
        config: &EvalConfig,
        artifacts: &Path,
        held_out: &[String],
        digests: &mut Digests,
    ) -> Result<VariantPlan> {
        let mut plan = VariantPlan::default();
        let mut resolving = Resolver {
            config,
            artifacts,
            held_out,
            digests,
            done: HashMap::new(),
        };
        for i in 0..config.variants.len() {
            resolving.variant(i, &mut plan)?;
        }
        // The config's order, whatever order dependencies resolved them in.
        let order: HashMap<&str, usize> = config
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name.value.as_str(), i))
            .collect();
        plan.variants.sort_by_key(|v| order[v.name.as_str()]);
        Ok(plan)
    }

    /// Builds every step whose artifact is not complete, in order: teachers
    /// open through `models` (shared with the evaluation, so a teacher that
    /// is also a candidate or the judge opens once).
    pub fn build(&self, models: &mut Models, plugins: &Runtime, sink: &dyn Sink) -> Result<()> {
        for step in &self.steps {
            if step.status() == StepStatus::Built {
                continue;
            }
            let task = Task::build(&step.variant, &step.what);
            let fail = |message: String| Error::Build {
                variant: step.variant.clone(),
                step: step.what.clone(),
                message,
            };
            let outputs = match &step.kind {
                StepKind::Distill { teacher, job } => {
                    let teacher = match teacher {
                        Teacher::Local(m) => {
                            models.get_local(&m.path, &m.reference, adapter_dir(m))?
                        }
                        Teacher::Spec(spec) => models.get(spec)?,
                    };
                    let done = distill::distill(job, &teacher, plugins, sink)?;
                    if done.failed > 0 {
                        return Err(fail(format!(
                            "{} seeds could not be answered (see {}); run again to retry them",
                            done.failed,
                            crate::generate::failures_path(&job.out.join("responses.jsonl"))
                                .display()
                        )));
                    }
                    json!({"train_examples": done.train, "valid_examples": done.valid, "empty_answers_skipped": done.empty})
                }
                StepKind::Train {
                    base,
                    data,
                    init,
                    stage,
                } => train(step, base, data, init.as_deref(), stage, &task, sink)
                    .map_err(|e| fail(e.to_string()))?,
                StepKind::Abliterate {
                    from,
                    harmful,
                    harmless,
                    layer,
                    max_tokens,
                } => {
                    // An interrupted attempt left a directory without
                    // `built.json`: it is ours, and incomplete.
                    if step.dir.exists() {
                        std::fs::remove_dir_all(&step.dir).map_err(|e| Error::io(&step.dir, e))?;
                    }
                    sink.event(Event::Started {
                        task: task.clone(),
                        total: 1,
                    });
                    let read = |p: &Path| PromptFile::read(p).map_err(|e| fail(e.to_string()));
                    let (harmful, harmless) = (read(harmful)?, read(harmless)?);
                    let base = BaseModel::load(&from.path, None, lem_engine::DeviceKind::Cpu)
                        .map_err(|e| fail(e.to_string()))?;
                    let tokenizer = base
                        .tokenizer_files(None)
                        .map_err(|e| fail(e.to_string()))?;
                    let report = lem_train::abliterate::abliterate(
                        base,
                        &harmful,
                        &harmless,
                        tokenizer,
                        &step.dir,
                        &AbliterateConfig {
                            layer: *layer,
                            max_tokens: *max_tokens,
                        },
                        &mut |msg| sink.event(Event::Notice(format!("{}: {msg}", step.variant))),
                    )
                    .map_err(|e| fail(e.to_string()))?;
                    sink.event(Event::Advanced {
                        task: task.clone(),
                        status: None,
                    });
                    sink.event(Event::Finished { task: task.clone() });
                    serde_json::to_value(&report).unwrap_or(Value::Null)
                }
            };
            let record = json!({"variant": step.variant, "step": step.what, "key": step.key, "inputs": step.inputs, "outputs": outputs});
            crate::RunDir::write_atomic(&step.dir.join(BUILT), &format!("{record:#}"))?;
        }
        Ok(())
    }

    /// `variant`'s chain as `run.json` records it: each step with its key,
    /// artifact, inputs and what it measured (from `built.json`).
    pub fn record(&self, variant: &BuiltVariant) -> Value {
        let steps: Vec<Value> = variant
            .chain
            .iter()
            .map(|&i| {
                let s = &self.steps[i];
                let built = std::fs::read_to_string(s.dir.join(BUILT))
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok());
                json!({
                    "variant": s.variant,
                    "step": s.what,
                    "sha256": s.key,
                    "artifact": s.dir,
                    "inputs": s.inputs,
                    "outputs": built.and_then(|b| b.get("outputs").cloned()),
                })
            })
            .collect();
        json!({
            "from": variant.from,
            "model": variant.model.path,
            "adapter": variant.model.adapter.as_ref().map(|(dir, _)| dir),
            "identity": variant.model.full_identity(),
            "chain": steps,
        })
    }
}

fn adapter_dir(m: &LocalModel) -> Option<&Path> {
    m.adapter.as_ref().map(|(dir, _)| dir.as_path())
}

/// One training stage: the trainer checkpoints every step into the
/// artifact directory and continues from there after an interruption.
fn train(
    step: &Step,
    base: &LocalModel,
    data: &Path,
    init: Option<&Path>,
    stage: &lem_core::eval::TrainStage,
    task: &Task,
    sink: &dyn Sink,
) -> std::result::Result<Value, lem_train::TrainError> {
    let model = BaseModel::load(&base.path, None, lem_engine::DeviceKind::Cpu)?;
    let layers = model.num_layers();
    let num_layers = if stage.num_layers < 0 {
        layers
    } else {
        (stage.num_layers as usize).min(layers)
    };
    let sha = base
        .identity
        .get("sha256")
        .and_then(Value::as_str)
        .map(str::to_string);
    let config = TrainConfig {
        data: data.to_owned(),
        mask_prompt: stage.mask_prompt,
        iters: stage.iters,
        batch_size: stage.batch_size,
        learning_rate: stage.learning_rate,
        adapter_path: step.dir.clone(),
        save_every: 0,
        resume_adapter_file: init.map(Path::to_path_buf),
        max_seq_length: stage.max_seq_length,
        steps_per_report: 10,
        steps_per_eval: 0,
        val_batches: Some(25),
        grad_checkpoint: false,
        seed: stage.seed,
        lora: LoraSpec {
            rank: stage.lora_rank,
            alpha: stage.lora_alpha,
            dropout: 0.0,
            targets: parse_targets(&stage.lora_targets)?,
            num_layers,
        },
        export_mlx: false,
        test: false,
        base_model_name: base.reference.clone(),
        base_model_sha256: sha,
        checkpoint: true,
    };
    std::fs::create_dir_all(&step.dir).map_err(|e| {
        lem_train::TrainError::BadConfig(format!("creating {}: {e}", step.dir.display()))
    })?;
    let mut trainer = model.trainer(config)?;
    sink.event(Event::Started {
        task: task.clone(),
        total: stage.iters as u64,
    });
    let mut val_loss = None;
    trainer.train(&mut |event| match event {
        TrainEvent::Step { loss, .. } => sink.event(Event::Advanced {
            task: task.clone(),
            status: Some(format!("loss {loss:.3}")),
        }),
        TrainEvent::Eval { val_loss: v, .. } => val_loss = Some(v),
        _ => {}
    })?;
    sink.event(Event::Finished { task: task.clone() });
    Ok(json!({"adapted_blocks": num_layers, "final_val_loss": val_loss}))
}

/// Resolves variants depth-first (a variant after the one it builds from).
struct Resolver<'a> {
    config: &'a EvalConfig,
    artifacts: &'a Path,
    held_out: &'a [String],
    digests: &'a mut Digests,
    /// Variant index → its position in `plan.variants`.
    done: HashMap<usize, usize>,
}

impl Resolver<'_> {
    fn base_dir(&self) -> PathBuf {
        self.config
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    fn error(&self, line: usize, message: impl Into<String>) -> Error {
        self.config.error(line, message).into()
    }

    fn digest(&mut self, path: &Path, line: usize) -> Result<String> {
        self.digests
            .of(path)
            .map_err(|e| self.error(line, format!("{}: {e}", path.display())))
    }

    /// What `name` (a `from` or a teacher) names: a variant (resolved
    /// first), a `[models]` label, or a model spec.
    fn source(
        &mut self,
        name: &str,
        plan: &mut VariantPlan,
    ) -> Result<std::result::Result<usize, String>> {
        if let Some(j) = self
            .config
            .variants
            .iter()
            .position(|v| v.name.value == name)
        {
            return Ok(Ok(self.variant(j, plan)?));
        }
        let spec = self
            .config
            .models
            .iter()
            .find(|(label, _)| label.value == name)
            .map_or_else(|| name.to_string(), |(_, spec)| spec.value.clone());
        Ok(Err(spec))
    }

    /// A local model by spec (`local:X`, a path, an installed name).
    fn local(&mut self, spec: &str, line: usize, what: &str) -> Result<LocalModel> {
        let reference = match spec.parse::<lem_models::ModelSpec>() {
            Ok(lem_models::ModelSpec::Local(r)) => r,
            Ok(_) => {
                return Err(self.error(
                    line,
                    format!(
                        "{what} `{spec}` is a remote model: variants are built from local models (a .gguf, a safetensors directory, or an installed name)"
                    ),
                ));
            }
            Err(_) => spec.to_string(),
        };
        let path = crate::resolve::model_near(&reference, &self.base_dir())
            .map_err(|e| self.error(line, format!("{what} `{spec}`: {e}")))?;
        let sha256 = self.digest(&path, line)?;
        Ok(LocalModel {
            path,
            reference,
            identity: json!({"sha256": sha256}),
            adapter: None,
        })
    }

    /// Resolves variant `i` (and what it builds from); its position in
    /// `plan.variants`.
    fn variant(&mut self, i: usize, plan: &mut VariantPlan) -> Result<usize> {
        if let Some(&at) = self.done.get(&i) {
            return Ok(at);
        }
        let v: &Variant = &self.config.variants[i];
        let (from, mut chain) = match self.source(&v.from.value, plan)? {
            Ok(j) => (
                plan.variants[j].model.clone(),
                plan.variants[j].chain.clone(),
            ),
            Err(spec) => (
                self.local(
                    &spec,
                    v.from.line,
                    &format!("variant `{}` from", v.name.value),
                )?,
                Vec::new(),
            ),
        };
        let version = env!("CARGO_PKG_VERSION");
        let model = match &v.build {
            Build::Abliterate(a) => {
                let read = |file: &lem_core::eval::At<PathBuf>| {
                    PromptFile::read(&file.value)
                        .map(|p| p.sha256)
                        .map_err(|e| self.error(file.line, e.to_string()))
                };
                let (harmful, harmless) = (read(&a.harmful)?, read(&a.harmless)?);
                let layer: LayerChoice = a
                    .layer
                    .parse()
                    .map_err(|e: String| self.error(a.line, format!("`layer`: {e}")))?;
                let inputs = json!({
                    "step": "abliterate", "lem": version,
                    "model": from.full_identity(),
                    "harmful_sha256": harmful, "harmless_sha256": harmless,
                    "layer": a.layer, "max_tokens": a.max_tokens,
                });
                let key = key_of(&inputs);
                let dir = self.artifacts.join(format!("abliterated-{}", &key[..16]));
                chain.push(plan.steps.len());
                plan.steps.push(Step {
                    variant: v.name.value.clone(),
                    what: "abliterate".into(),
                    key: key.clone(),
                    dir: dir.clone(),
                    inputs,
                    kind: StepKind::Abliterate {
                        from: from.clone(),
                        harmful: a.harmful.value.clone(),
                        harmless: a.harmless.value.clone(),
                        layer,
                        max_tokens: a.max_tokens,
                    },
                });
                LocalModel {
                    path: dir,
                    reference: format!("{} (abliterated)", from.reference),
                    identity: json!({"artifact": key}),
                    adapter: None,
                }
            }
            Build::Train { distill, stages } => {
                let distilled = match distill {
                    None => None,
                    Some(d) => {
                        let teacher = match &d.teacher {
                            None => Teacher::Local(from.clone()),
                            Some(t) => match self.source(&t.value, plan)? {
                                Ok(j) => Teacher::Local(plan.variants[j].model.clone()),
                                Err(spec) => match spec.parse::<lem_models::ModelSpec>() {
                                    Ok(lem_models::ModelSpec::Local(_)) | Err(_) => {
                                        Teacher::Local(self.local(&spec, t.line, "teacher")?)
                                    }
                                    Ok(remote) => Teacher::Spec(remote.to_string()),
                                },
                            },
                        };
                        let teacher_identity = match &teacher {
                            Teacher::Local(m) => m.full_identity(),
                            Teacher::Spec(s) => json!({"spec": s}),
                        };
                        let base_dir = self.base_dir();
                        let kernel_ref = if base_dir.join(&d.kernel.value).is_file() {
                            base_dir.join(&d.kernel.value).display().to_string()
                        } else {
                            d.kernel.value.clone()
                        };
                        let source = crate::resolve::kernel(&d.kernel.value, &base_dir)
                            .map_err(|e| self.error(d.kernel.line, e.to_string()))?;
                        let kernel_name = crate::resolve::kernel_name(&d.kernel.value);
                        let file = |f: &Option<lem_core::eval::At<PathBuf>>| {
                            f.as_ref().map(|f| f.value.clone())
                        };
                        let (kernel_text, axioms) =
                            (file(&self.config.kernel_text), file(&self.config.axioms));
                        if kernel_name != "none" && kernel_text.is_none() {
                            return Err(self.error(
                                d.kernel.line,
                                format!(
                                    "distilling under kernel `{kernel_name}` needs the kernel text: set `kernel_text` (and `axioms`)"
                                ),
                            ));
                        }
                        let hash_opt = |me: &mut Self, f: &Option<PathBuf>| -> Result<Value> {
                            Ok(match f {
                                Some(p) => json!(me.digest(p, d.kernel.line)?),
                                None => Value::Null,
                            })
                        };
                        let text_sha = hash_opt(self, &kernel_text)?;
                        let axioms_sha = hash_opt(self, &axioms)?;
                        let (items, seed_files) = distill::read_seeds(&d.seeds.value)
                            .map_err(|e| self.error(d.seeds.line, format!("seeds: {e}")))?;
                        let kept = distill::kept_seeds(&items, d.limit, self.held_out);
                        if kept.is_empty() {
                            return Err(self.error(
                                d.seeds.line,
                                "no seed left to distill (all are evaluated items, or `limit` is 0)",
                            ));
                        }
                        let inputs = json!({
                            "step": "distill", "lem": version,
                            "teacher": teacher_identity,
                            "kernel": {"name": kernel_name, "plugin_sha256": sha256_hex(&source.bytes), "text_sha256": text_sha, "axioms_sha256": axioms_sha},
                            "seed_files": seed_files.as_array().map(|a| a.iter().map(|f| f["sha256"].clone()).collect::<Vec<_>>()),
                            "seeds": kept,
                            "max_tokens": d.max_tokens, "temperature": d.temperature,
                            "seed": d.seed, "valid_fraction": d.valid_fraction,
                        });
                        let key = key_of(&inputs);
                        let dir = self.artifacts.join(format!("distill-{}", &key[..16]));
                        chain.push(plan.steps.len());
                        plan.steps.push(Step {
                            variant: v.name.value.clone(),
                            what: "distill".into(),
                            key: key.clone(),
                            dir: dir.clone(),
                            inputs,
                            kind: StepKind::Distill {
                                teacher,
                                job: Distill {
                                    kernel: kernel_ref,
                                    kernel_text: kernel_text.unwrap_or_default(),
                                    axioms: axioms.unwrap_or_default(),
                                    seeds: d.seeds.value.clone(),
                                    out: dir.clone(),
                                    valid_fraction: d.valid_fraction,
                                    seed: d.seed,
                                    limit: d.limit,
                                    temperature: d.temperature,
                                    max_tokens: d.max_tokens,
                                    held_out: self.held_out.to_vec(),
                                },
                            },
                        });
                        Some((dir, key))
                    }
                };
                // Training runs on the weights; an adapter on `from` is
                // where the first stage starts (`resume`, checked by the
                // config).
                let base = LocalModel {
                    adapter: None,
                    ..from.clone()
                };
                let mut previous = from.adapter.clone();
                for (n, stage) in stages.iter().enumerate() {
                    let (data, data_identity) = match &stage.data.value {
                        TrainData::Distilled => {
                            let (dir, key) = distilled.clone().expect("checked by the config");
                            (dir, json!({"distilled": key}))
                        }
                        TrainData::Dir(dir) => {
                            let train = dir.join("train.jsonl");
                            if !train.is_file() {
                                return Err(self.error(
                                    stage.data.line,
                                    format!(
                                        "{}: no train.jsonl here: `data` names a directory with train.jsonl (and optionally valid.jsonl), or \"distilled\"",
                                        dir.display()
                                    ),
                                ));
                            }
                            let mut files = json!({"train": self.digest(&train, stage.data.line)?});
                            let valid = dir.join("valid.jsonl");
                            if valid.is_file() {
                                files["valid"] = json!(self.digest(&valid, stage.data.line)?);
                            }
                            (dir.clone(), files)
                        }
                    };
                    parse_targets(&stage.lora_targets)
                        .map_err(|e| self.error(stage.line, e.to_string()))?;
                    let init = if stage.resume { previous.clone() } else { None };
                    let inputs = json!({
                        "step": "train", "lem": version,
                        "base": base.identity,
                        "init_adapter": init.as_ref().map(|(_, k)| k),
                        "data": data_identity,
                        "iters": stage.iters, "batch_size": stage.batch_size,
                        "learning_rate": stage.learning_rate, "mask_prompt": stage.mask_prompt,
                        "num_layers": stage.num_layers, "lora_rank": stage.lora_rank,
                        "lora_alpha": stage.lora_alpha, "lora_targets": stage.lora_targets,
                        "max_seq_length": stage.max_seq_length, "seed": stage.seed,
                    });
                    let key = key_of(&inputs);
                    let dir = self.artifacts.join(format!("adapter-{}", &key[..16]));
                    chain.push(plan.steps.len());
                    plan.steps.push(Step {
                        variant: v.name.value.clone(),
                        what: format!("train (stage {} of {})", n + 1, stages.len()),
                        key: key.clone(),
                        dir: dir.clone(),
                        inputs,
                        kind: StepKind::Train {
                            base: base.clone(),
                            data,
                            init: init.map(|(d, _)| d),
                            stage: stage.clone(),
                        },
                    });
                    previous = Some((dir, key));
                }
                LocalModel {
                    adapter: previous,
                    ..base
                }
            }
        };
        let at = plan.variants.len();
        plan.variants.push(BuiltVariant {
            name: v.name.value.clone(),
            from: v.from.value.clone(),
            model,
            chain,
        });
        self.done.insert(i, at);
        Ok(at)
    }
}
