//! `[variants.NAME]`: models an eval config *builds* before it evaluates
//! them — the LEK variant (seeds distilled by a teacher under a kernel, then
//! one or more LoRA stages, a curriculum) and the abliterated baseline.
//!
//! ```toml
//! [variants.lek]
//! from = "it"                       # a [models] label, a variant, or a local model
//! kernels = ["none"]                # optional: a subset of the config's `kernels`
//! distill = { kernel = "sandwich", seeds = "../seeds", limit = 16, max_tokens = 256 }
//! train = [
//!   { data = "distilled", iters = 60, batch_size = 2, learning_rate = 1e-5, mask_prompt = true },
//!   { data = "../training/composure", iters = 20, resume = true },   # continues the adapter
//! ]
//!
//! [variants.abliterated]
//! from = "it"
//! abliterate = { harmful = "../benchmarks/abliteration/harmful.jsonl", harmless = "../benchmarks/abliteration/harmless.jsonl" }
//! ```
//!
//! This module checks what the text alone can tell — one build per
//! variant, `data = "distilled"` only with a `distill`, `resume` only after
//! an adapter exists, no cycle of `from`s — each error at its line. What
//! needs the disk (models, seed and prompt files) is checked by whoever
//! resolves the config, also before anything runs.

use super::{At, EvalError};
use crate::manifest::line_of;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A variant: a model built from another.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Its label (a run label, like a `[models]` label).
    pub name: At<String>,
    /// What it is built from: a `[models]` label, another variant, or a
    /// local model (name, path or `local:` spec).
    pub from: At<String>,
    /// The kernels it is evaluated under (default: all of the config's).
    pub kernels: Option<Vec<At<String>>>,
    /// How it is built.
    pub build: Build,
}

/// How a variant is built.
#[derive(Debug, Clone, PartialEq)]
pub enum Build {
    /// LoRA training in stages, on distilled data and/or data directories.
    Train {
        /// Seeds answered by a teacher under a kernel: the `distilled` data.
        distill: Option<DistillStep>,
        /// The stages, in order.
        stages: Vec<TrainStage>,
    },
    /// The refusal direction removed from the weights.
    Abliterate(AbliterateStep),
}

/// The distillation step of a variant.
#[derive(Debug, Clone, PartialEq)]
pub struct DistillStep {
    /// Its line.
    pub line: usize,
    /// The teacher: a `[models]` label, a variant, or a model spec
    /// (default: the variant's `from`, i.e. self-distillation).
    pub teacher: Option<At<String>>,
    /// The kernel the teacher answers under (shipped name or `.wasm`).
    pub kernel: At<String>,
    /// Seed prompts: a directory of `.json`/`.jsonl` files or one file.
    pub seeds: At<PathBuf>,
    /// Only the first N seeds.
    pub limit: Option<usize>,
    /// Longest answer, in tokens.
    pub max_tokens: usize,
    /// Teacher sampling temperature.
    pub temperature: f32,
    /// Seed of sampling and of the train/valid split.
    pub seed: u64,
    /// Share of examples held out in `valid.jsonl`.
    pub valid_fraction: f64,
}

/// Where a training stage's examples come from.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainData {
    /// The variant's distilled data.
    Distilled,
    /// A directory with `train.jsonl` (and optionally `valid.jsonl`).
    Dir(PathBuf),
}

/// One LoRA training stage (`lem train`'s flags, same defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainStage {
    /// Its line.
    pub line: usize,
    /// Its examples.
    pub data: At<TrainData>,
    /// Continue the previous stage's adapter (or, on the first stage, the
    /// `from` variant's) instead of starting a new one.
    pub resume: bool,
    /// Optimizer steps.
    pub iters: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Loss on the assistant's answer only.
    pub mask_prompt: bool,
    /// Adapt the last N blocks (-1: all).
    pub num_layers: i64,
    /// LoRA rank.
    pub lora_rank: usize,
    /// LoRA alpha.
    pub lora_alpha: f64,
    /// Projections to adapt (`all`, `attention`, `mlp`, or names).
    pub lora_targets: String,
    /// Longer examples are cut to this many tokens.
    pub max_seq_length: usize,
    /// Seed of the adapter initialisation and the batch order.
    pub seed: u64,
}

/// The abliteration step of a variant.
#[derive(Debug, Clone, PartialEq)]
pub struct AbliterateStep {
    /// Its line.
    pub line: usize,
    /// Harmful instructions (JSONL of `{"id", "prompt"}`).
    pub harmful: At<PathBuf>,
    /// Harmless instructions.
    pub harmless: At<PathBuf>,
    /// `auto` or a block index.
    pub layer: String,
    /// Greedy tokens per held-out harmful prompt when measuring refusals.
    pub max_tokens: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariant {
    from: Spanned<String>,
    kernels: Option<Vec<Spanned<String>>>,
    distill: Option<Spanned<RawDistill>>,
    train: Option<Spanned<Vec<Spanned<RawStage>>>>,
    abliterate: Option<Spanned<RawAbliterate>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDistill {
    teacher: Option<Spanned<String>>,
    kernel: Spanned<String>,
    seeds: Spanned<String>,
    limit: Option<usize>,
    #[serde(default = "default_distill_tokens")]
    max_tokens: usize,
    #[serde(default = "default_temperature")]
    temperature: f32,
    #[serde(default)]
    seed: u64,
    #[serde(default = "default_valid_fraction")]
    valid_fraction: f64,
}

fn default_distill_tokens() -> usize {
    256
}
fn default_temperature() -> f32 {
    0.7
}
fn default_valid_fraction() -> f64 {
    0.1
}

// Defaults are `lem train`'s (mlx_lm's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    data: Spanned<String>,
    #[serde(default)]
    resume: bool,
    #[serde(default = "default_iters")]
    iters: usize,
    #[serde(default = "default_batch")]
    batch_size: usize,
    #[serde(default = "default_lr")]
    learning_rate: f64,
    #[serde(default)]
    mask_prompt: bool,
    #[serde(default = "default_num_layers")]
    num_layers: i64,
    #[serde(default = "default_rank")]
    lora_rank: usize,
    #[serde(default = "default_alpha")]
    lora_alpha: f64,
    #[serde(default = "default_targets")]
    lora_targets: String,
    #[serde(default = "default_max_seq")]
    max_seq_length: usize,
    #[serde(default)]
    seed: u64,
}

fn default_iters() -> usize {
    1000
}
fn default_batch() -> usize {
    4
}
fn default_lr() -> f64 {
    1e-5
}
fn default_num_layers() -> i64 {
    16
}
fn default_rank() -> usize {
    8
}
fn default_alpha() -> f64 {
    16.0
}
fn default_targets() -> String {
    "all".into()
}
fn default_max_seq() -> usize {
    2048
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAbliterate {
    harmful: Spanned<String>,
    harmless: Spanned<String>,
    #[serde(default = "default_layer")]
    layer: Spanned<toml::Value>,
    #[serde(default = "default_abliterate_tokens")]
    max_tokens: usize,
}

fn default_layer() -> Spanned<toml::Value> {
    Spanned::new(0..0, toml::Value::String("auto".into()))
}
fn default_abliterate_tokens() -> usize {
    24
}

/// The name a stage's `data` gives the variant's distilled data.
pub const DISTILLED: &str = "distilled";

/// Parses and checks `[variants]`; `models` are the `[models]` labels.
pub(super) fn parse(
    raw: indexmap::IndexMap<Spanned<String>, Spanned<RawVariant>>,
    models: &[(At<String>, At<String>)],
    text: &str,
    path: &Path,
) -> Result<Vec<Variant>, EvalError> {
    let invalid = |line, message: String| EvalError::Invalid {
        path: path.to_owned(),
        line,
        message,
    };
    let line = |offset: usize| line_of(text, offset);
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let at = |s: Spanned<String>| At {
        line: line(s.span().start),
        value: s.into_inner(),
    };
    let at_path = |s: Spanned<String>| At {
        line: line(s.span().start),
        value: base.join(s.into_inner()),
    };
    let mut variants = Vec::new();
    for (name, raw) in raw {
        let name = at(name);
        let table_line = line(raw.span().start);
        let raw = raw.into_inner();
        if name.value.is_empty()
            || !name
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || name.value.starts_with('.')
        {
            return Err(invalid(
                name.line,
                format!(
                    "variant `{}`: a name is letters, digits, `-`, `_` and `.` (it names a directory of results)",
                    name.value
                ),
            ));
        }
        if models.iter().any(|(label, _)| label.value == name.value) {
            return Err(invalid(
                name.line,
                format!(
                    "variant `{}` has the name of a [models] entry: choose another",
                    name.value
                ),
            ));
        }
        let from = at(raw.from);
        let kernels = raw.kernels.map(|k| k.into_iter().map(at).collect());
        let build = match (raw.distill, raw.train, raw.abliterate) {
            (None, None, Some(a)) => {
                let a_line = line(a.span().start);
                let a = a.into_inner();
                let layer = match a.layer.get_ref() {
                    toml::Value::String(s) if s == "auto" => s.clone(),
                    toml::Value::Integer(n) if *n >= 0 => n.to_string(),
                    other => {
                        return Err(invalid(
                            line(a.layer.span().start),
                            format!("`layer` is \"auto\" or a block number, found `{other}`"),
                        ));
                    }
                };
                Build::Abliterate(AbliterateStep {
                    line: a_line,
                    harmful: at_path(a.harmful),
                    harmless: at_path(a.harmless),
                    layer,
                    max_tokens: a.max_tokens,
                })
            }
            (distill, Some(train), None) => {
                let train_line = line(train.span().start);
                let distill = distill.map(|d| {
                    let d_line = line(d.span().start);
                    let d = d.into_inner();
                    DistillStep {
                        line: d_line,
                        teacher: d.teacher.map(at),
                        kernel: at(d.kernel),
                        seeds: at_path(d.seeds),
                        limit: d.limit,
                        max_tokens: d.max_tokens,
                        temperature: d.temperature,
                        seed: d.seed,
                        valid_fraction: d.valid_fraction,
                    }
                });
                if let Some(d) = &distill
                    && !(0.0..1.0).contains(&d.valid_fraction)
                {
                    return Err(invalid(d.line, "`valid_fraction` must be in [0, 1)".into()));
                }
                let mut stages = Vec::new();
                for stage in train.into_inner() {
                    let s_line = line(stage.span().start);
                    let s = stage.into_inner();
                    let data_line = line(s.data.span().start);
                    let data = s.data.into_inner();
                    let data = if data == DISTILLED {
                        if distill.is_none() {
                            return Err(invalid(
                                data_line,
                                format!(
                                    "variant `{}`: `data = \"{DISTILLED}\"` needs a `distill` step in the variant",
                                    name.value
                                ),
                            ));
                        }
                        TrainData::Distilled
                    } else {
                        TrainData::Dir(base.join(data))
                    };
                    if s.iters == 0 || s.batch_size == 0 {
                        return Err(invalid(
                            s_line,
                            "`iters` and `batch_size` must be at least 1".into(),
                        ));
                    }
                    stages.push(TrainStage {
                        line: s_line,
                        data: At {
                            value: data,
                            line: data_line,
                        },
                        resume: s.resume,
                        iters: s.iters,
                        batch_size: s.batch_size,
                        learning_rate: s.learning_rate,
                        mask_prompt: s.mask_prompt,
                        num_layers: s.num_layers,
                        lora_rank: s.lora_rank,
                        lora_alpha: s.lora_alpha,
                        lora_targets: s.lora_targets,
                        max_seq_length: s.max_seq_length,
                        seed: s.seed,
                    });
                }
                if stages.is_empty() {
                    return Err(invalid(
                        train_line,
                        format!(
                            "variant `{}`: `train` is empty: give at least one stage",
                            name.value
                        ),
                    ));
                }
                if let Some(d) = &distill
                    && !stages.iter().any(|s| s.data.value == TrainData::Distilled)
                {
                    return Err(invalid(
                        d.line,
                        format!(
                            "variant `{}` distills data no stage trains on: add a stage with `data = \"{DISTILLED}\"`",
                            name.value
                        ),
                    ));
                }
                Build::Train { distill, stages }
            }
            (Some(d), None, _) => {
                return Err(invalid(
                    line(d.span().start),
                    format!(
                        "variant `{}`: `distill` makes training data; add `train = [{{ data = \"{DISTILLED}\", ... }}]`",
                        name.value
                    ),
                ));
            }
            (_, Some(_), Some(a)) => {
                return Err(invalid(
                    line(a.span().start),
                    format!(
                        "variant `{}` both trains and abliterates: build one from the other (`from`)",
                        name.value
                    ),
                ));
            }
            (None, None, None) => {
                return Err(invalid(
                    table_line,
                    format!(
                        "variant `{}` says how it is built: `train = [...]` (with `distill`) or `abliterate = {{ ... }}`",
                        name.value
                    ),
                ));
            }
        };
        variants.push(Variant {
            name,
            from,
            kernels,
            build,
        });
    }
    check_graph(&variants, &invalid)?;
    Ok(variants)
}

/// No cycle of `from`s; `resume` on a first stage only after an adapter.
fn check_graph(
    variants: &[Variant],
    invalid: &dyn Fn(usize, String) -> EvalError,
) -> Result<(), EvalError> {
    let find = |name: &str| variants.iter().position(|v| v.name.value == name);
    for (i, v) in variants.iter().enumerate() {
        // Follow `from` until a model; coming back to `v` is a cycle.
        let mut chain = vec![v.name.value.as_str()];
        let mut at = find(&v.from.value);
        while let Some(j) = at {
            chain.push(&variants[j].name.value);
            if j == i {
                return Err(invalid(
                    v.from.line,
                    format!(
                        "variants build from each other in a cycle ({}): one must start from a model",
                        chain.join(" ← ")
                    ),
                ));
            }
            if chain.len() > variants.len() + 1 {
                break; // a cycle not through `v`: reported at its own members
            }
            at = find(&variants[j].from.value);
        }
        let Build::Train { stages, .. } = &v.build else {
            continue;
        };
        let from_adapter =
            find(&v.from.value).is_some_and(|j| matches!(variants[j].build, Build::Train { .. }));
        match (stages[0].resume, from_adapter) {
            (true, false) => {
                return Err(invalid(
                    stages[0].line,
                    format!(
                        "variant `{}`: the first stage has `resume = true` but there is no adapter before it (`{}` is not a trained variant): remove `resume`",
                        v.name.value, v.from.value
                    ),
                ));
            }
            (false, true) => {
                return Err(invalid(
                    stages[0].line,
                    format!(
                        "variant `{}` builds from `{}`, a LoRA adapter: its first stage continues that adapter, so set `resume = true` (or build from `{}`'s own `from`)",
                        v.name.value, v.from.value, v.from.value
                    ),
                ));
            }
            _ => {}
        }
    }
    for v in variants {
        if let Build::Abliterate(a) = &v.build
            && let Some(j) = find(&v.from.value)
            && matches!(variants[j].build, Build::Train { .. })
        {
            return Err(invalid(
                a.line,
                format!(
                    "variant `{}` abliterates `{}`, a LoRA adapter: abliterate a model or an abliterated variant (fuse the adapter with `lem fuse` and name the result)",
                    v.name.value, v.from.value
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::eval::EvalConfig;
    use std::path::Path;

    const BASE: &str = "[models]\nit = \"local:a.gguf\"\n[[benchmarks]]\nname = \"gsm8k\"\n";

    fn parse(variants: &str) -> Result<EvalConfig, String> {
        EvalConfig::parse(&format!("{BASE}{variants}"), Path::new("cfg/e.toml"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_lek_curriculum_and_an_abliterated_variant_parse() {
        let c = parse(
            r#"
[variants.lek]
from = "it"
kernels = ["none"]
distill = { kernel = "sandwich", seeds = "../seeds", limit = 4, max_tokens = 64 }
train = [
  { data = "distilled", iters = 6, batch_size = 2, mask_prompt = true },
  { data = "../training/composure", iters = 2, resume = true },
]

[variants.abliterated]
from = "it"
abliterate = { harmful = "h.jsonl", harmless = "l.jsonl", layer = 3 }
"#,
        )
        .unwrap();
        assert_eq!(c.variants.len(), 2);
        let lek = &c.variants[0];
        assert_eq!((lek.name.value.as_str(), lek.name.line), ("lek", 6));
        let super::Build::Train { distill, stages } = &lek.build else {
            panic!("{lek:?}")
        };
        let d = distill.as_ref().unwrap();
        assert_eq!(d.seeds.value, Path::new("cfg/../seeds"));
        assert_eq!((d.limit, d.max_tokens, d.temperature), (Some(4), 64, 0.7));
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].data.value, super::TrainData::Distilled);
        assert_eq!((stages[0].iters, stages[0].learning_rate), (6, 1e-5));
        assert_eq!(
            stages[1].data.value,
            super::TrainData::Dir("cfg/../training/composure".into())
        );
        assert!(stages[1].resume && !stages[0].resume);
        let super::Build::Abliterate(a) = &c.variants[1].build else {
            panic!()
        };
        assert_eq!((a.layer.as_str(), a.max_tokens), ("3", 24));
    }

    #[test]
    fn bad_variants_are_refused_at_their_line() {
        let cases = [
            // resume before any stage
            (
                "[variants.lek]\nfrom = \"it\"\ntrain = [{ data = \"d\", resume = true }]\n",
                "e.toml:7:",
                "no adapter before it",
            ),
            // a cycle
            (
                "[variants.a]\nfrom = \"b\"\ntrain = [{ data = \"d\", resume = true }]\n[variants.b]\nfrom = \"a\"\ntrain = [{ data = \"d\", resume = true }]\n",
                "e.toml:6:",
                "cycle (a ← b ← a)",
            ),
            // distilled data without a distill step
            (
                "[variants.lek]\nfrom = \"it\"\ntrain = [{ data = \"distilled\" }]\n",
                "e.toml:7:",
                "needs a `distill` step",
            ),
            // no build at all
            (
                "[variants.lek]\nfrom = \"it\"\n",
                "e.toml:5:",
                "says how it is built",
            ),
            // a typo in a stage
            (
                "[variants.lek]\nfrom = \"it\"\ntrain = [{ data = \"d\", iter = 3 }]\n",
                "e.toml:7:",
                "iter",
            ),
            // a variant named like a model
            (
                "[variants.it]\nfrom = \"it\"\ntrain = [{ data = \"d\" }]\n",
                "e.toml:5:",
                "name of a [models] entry",
            ),
            // continuing an adapter without saying so
            (
                "[variants.a]\nfrom = \"it\"\ntrain = [{ data = \"d\" }]\n[variants.b]\nfrom = \"a\"\ntrain = [{ data = \"e\" }]\n",
                "e.toml:10:",
                "set `resume = true`",
            ),
            // abliterating an adapter
            (
                "[variants.a]\nfrom = \"it\"\ntrain = [{ data = \"d\" }]\n[variants.b]\nfrom = \"a\"\nabliterate = { harmful = \"h\", harmless = \"l\" }\n",
                "e.toml:10:",
                "abliterate a model",
            ),
            (
                "[variants.b]\nfrom = \"it\"\nabliterate = { harmful = \"h\", harmless = \"l\", layer = \"mid\" }\n",
                "e.toml:7:",
                "\"auto\" or a block number",
            ),
        ];
        for (text, at, what) in cases {
            let e = parse(text).unwrap_err();
            assert!(
                e.starts_with(&format!("cfg/{at}")) && e.contains(what),
                "{text}\n→ {e}"
            );
        }
    }
}
