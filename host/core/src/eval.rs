//! Eval configs (`lem run EVAL.toml`): which models, kernels, judge and
//! benchmarks make one evaluation, and where its results go.
//!
//! Every name and path keeps the line it was written on, so whoever resolves
//! them (the CLI knows the shipped plugins and benchmarks) can point an error
//! at `eval.toml:LINE` before any generation starts.
//!
//! ```toml
//! out = "../runs/quickstart"        # relative to this file
//! kernels = ["none", "sandwich"]    # shipped kernels, or paths to kernel .wasm
//! kernel_text = "../kernel/kernel.txt"
//! axioms = "../kernel/axioms.json"
//! judge = "local:gemma-3-270m"      # any model spec
//! judge_calibration = ["cal.json"]  # `lem judge calibrate --out` files: the judge's agreement, in the report
//! baseline = "gemma"                # report baseline (a run label)
//!
//! [models]                          # label → model spec, in report order
//! gemma = "local:gemma-3-270m"
//!
//! [[benchmarks]]
//! name = "gsm8k"                    # shipped name or manifest path
//! limit = 3
//!
//! [generation]
//! max_tokens = 96
//!
//! [kernel_sha256]                   # optional pins, by the name in `kernels`
//! sandwich = "3f5a..."
//!
//! [limits]                          # optional: every plugin of the run (a
//! fuel = 2000000000                 # scorer's own manifest limits win)
//! ```

mod variants;

pub use variants::{AbliterateStep, Build, DISTILLED, DistillStep, TrainData, TrainStage, Variant};

use crate::manifest::line_of;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A value and the 1-based line it was written on.
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Its line in the config.
    pub line: usize,
}

/// One benchmark of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkRun {
    /// Shipped benchmark name or manifest path.
    pub name: At<String>,
    /// Data file overriding the manifest's (relative to the config).
    pub data: Option<At<PathBuf>>,
    /// Only the first N items.
    pub limit: Option<usize>,
}

/// Generation settings shared by every (model, kernel, benchmark).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationSettings {
    /// Sequences a local model decodes together.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Caps every benchmark's `max_tokens`.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Overrides every benchmark's temperature.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Sampling seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_batch() -> usize {
    8
}
fn default_seed() -> u64 {
    42
}

impl Default for GenerationSettings {
    fn default() -> Self {
        GenerationSettings {
            batch_size: default_batch(),
            max_tokens: None,
            temperature: None,
            seed: default_seed(),
        }
    }
}

/// A parsed eval config. Paths are resolved against the config's directory.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    /// The config file.
    pub path: PathBuf,
    /// Where responses, scores and reports go.
    pub out: PathBuf,
    /// Label → model spec, in the order written.
    pub models: Vec<(At<String>, At<String>)>,
    /// Kernels to run every model under.
    pub kernels: Vec<At<String>>,
    /// Kernel text file.
    pub kernel_text: Option<At<PathBuf>>,
    /// Axioms JSON file.
    pub axioms: Option<At<PathBuf>>,
    /// The judge's model spec.
    pub judge: Option<At<String>>,
    /// Cap on judge answers' tokens.
    pub judge_max_tokens: Option<u32>,
    /// Items judged at once.
    pub judge_concurrency: usize,
    /// Judge calibrations to show in the report (JSON files that `lem
    /// judge calibrate --out FILE.json` writes), relative to the config.
    pub judge_calibration: Vec<At<PathBuf>>,
    /// The report's baseline label.
    pub baseline: Option<At<String>>,
    /// The benchmarks.
    pub benchmarks: Vec<BenchmarkRun>,
    /// Generation settings.
    pub generation: GenerationSettings,
    /// Kernel name (as written in `kernels`) → pinned sha256.
    pub kernel_sha256: Vec<(At<String>, String)>,
    /// Limits for every plugin of the run (kernels, prompt plugins, and
    /// scorers whose manifest entry sets none).
    pub limits: crate::policy::Limits,
    /// Equivalence margins for the report, `BENCHMARK/METRIC` → the largest
    /// difference from the baseline that counts as "no cost", in the
    /// metric's own unit (0.02 is two points of a 0-1 accuracy).
    pub margins: Vec<(At<String>, f64)>,
    /// Models built before they are evaluated (`[variants.NAME]`), in the
    /// order written; see [`Variant`].
    pub variants: Vec<Variant>,
}

/// Why a config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Could not read the file.
    #[error("{path}: {source}")]
    Io {
        /// The config.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a valid config.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The config.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what to do.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    out: Option<Spanned<String>>,
    models: Spanned<indexmap::IndexMap<Spanned<String>, Spanned<String>>>,
    #[serde(default)]
    kernels: Option<Vec<Spanned<String>>>,
    kernel_text: Option<Spanned<String>>,
    axioms: Option<Spanned<String>>,
    judge: Option<Spanned<String>>,
    judge_max_tokens: Option<u32>,
    judge_concurrency: Option<usize>,
    #[serde(default)]
    judge_calibration: Vec<Spanned<String>>,
    baseline: Option<Spanned<String>>,
    benchmarks: Spanned<Vec<RawBenchmark>>,
    #[serde(default)]
    generation: GenerationSettings,
    #[serde(default)]
    kernel_sha256: indexmap::IndexMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    limits: crate::policy::Limits,
    #[serde(default)]
    margins: indexmap::IndexMap<Spanned<String>, Spanned<f64>>,
    #[serde(default)]
    variants: indexmap::IndexMap<Spanned<String>, Spanned<variants::RawVariant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBenchmark {
    name: Spanned<String>,
    data: Option<Spanned<String>>,
    limit: Option<usize>,
}

impl EvalConfig {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Self, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` names it in errors and anchors its paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, EvalError> {
        let invalid = |line, message: String| EvalError::Invalid {
            path: path.to_owned(),
            line,
            message,
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            invalid(line, e.message().to_string())
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let at = |s: Spanned<String>| At {
            line: line_of(text, s.span().start),
            value: s.into_inner(),
        };
        let at_path = |s: Spanned<String>| At {
            line: line_of(text, s.span().start),
            value: base.join(s.into_inner()),
        };
        let models_line = line_of(text, raw.models.span().start);
        let models: Vec<_> = raw
            .models
            .into_inner()
            .into_iter()
            .map(|(k, v)| (at(k), at(v)))
            .collect();
        if models.is_empty() {
            return Err(invalid(
                models_line,
                "[models] is empty: name at least one model, e.g. `base = \"local:gemma-3-270m\"`"
                    .into(),
            ));
        }
        let benchmarks_line = line_of(text, raw.benchmarks.span().start);
        let benchmarks: Vec<_> = raw
            .benchmarks
            .into_inner()
            .into_iter()
            .map(|b| BenchmarkRun {
                name: at(b.name),
                data: b.data.map(at_path),
                limit: b.limit,
            })
            .collect();
        if benchmarks.is_empty() {
            return Err(invalid(
                benchmarks_line,
                "no benchmarks: add a [[benchmarks]] table with a `name`".into(),
            ));
        }
        let kernels = raw
            .kernels
            .map(|k| k.into_iter().map(at).collect())
            .unwrap_or_else(|| {
                vec![At {
                    value: "none".into(),
                    line: 1,
                }]
            });
        let mut kernel_sha256 = Vec::new();
        for (name, pin) in raw.kernel_sha256 {
            let (name, pin) = (at(name), at(pin));
            if !kernels.iter().any(|k: &At<String>| k.value == name.value) {
                return Err(invalid(
                    name.line,
                    format!(
                        "`kernel_sha256` pins `{}`, which is not in `kernels`",
                        name.value
                    ),
                ));
            }
            if !crate::hash::is_sha256_hex(&pin.value) {
                return Err(invalid(
                    pin.line,
                    format!("a kernel pin must be 64 hex digits, found `{}`", pin.value),
                ));
            }
            kernel_sha256.push((name, pin.value));
        }
        let mut margins = Vec::new();
        for (metric, margin) in raw.margins {
            let line = line_of(text, margin.span().start);
            let (metric, margin) = (at(metric), margin.into_inner());
            if !metric.value.contains('/') {
                return Err(invalid(
                    metric.line,
                    format!(
                        "margin `{}`: name a metric as BENCHMARK/METRIC, e.g. \"gsm8k/accuracy\" = 0.02",
                        metric.value
                    ),
                ));
            }
            if !(margin.is_finite() && margin > 0.0) {
                return Err(invalid(
                    line,
                    format!("margin of `{}` must be a positive number", metric.value),
                ));
            }
            margins.push((metric, margin));
        }
        let variants = variants::parse(raw.variants, &models, text, path)?;
        for v in &variants {
            for k in v.kernels.iter().flatten() {
                if !kernels.iter().any(|c| c.value == k.value) {
                    return Err(invalid(
                        k.line,
                        format!(
                            "variant `{}`: kernel `{}` is not in the config's `kernels`: add it there",
                            v.name.value, k.value
                        ),
                    ));
                }
            }
        }
        let stem = path
            .file_stem()
            .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
        Ok(EvalConfig {
            out: raw
                .out
                .map(|o| base.join(o.into_inner()))
                .unwrap_or_else(|| PathBuf::from("runs").join(stem)),
            models,
            kernels,
            kernel_text: raw.kernel_text.map(at_path),
            axioms: raw.axioms.map(at_path),
            judge: raw.judge.map(at),
            judge_max_tokens: raw.judge_max_tokens,
            judge_concurrency: raw.judge_concurrency.unwrap_or(8),
            judge_calibration: raw.judge_calibration.into_iter().map(at_path).collect(),
            baseline: raw.baseline.map(at),
            benchmarks,
            generation: raw.generation,
            kernel_sha256,
            limits: raw.limits,
            margins,
            variants,
            path: path.to_owned(),
        })
    }

    /// The pin of kernel `name`, if the config sets one.
    pub fn kernel_pin(&self, name: &str) -> Option<&str> {
        self.kernel_sha256
            .iter()
            .find(|(k, _)| k.value == name)
            .map(|(_, pin)| pin.as_str())
    }

    /// An error at `line` of this config.
    pub fn error(&self, line: usize, message: impl Into<String>) -> EvalError {
        EvalError::Invalid {
            path: self.path.clone(),
            line,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_name_a_metric_and_are_positive() {
        let base = "[models]\na = \"local:a.gguf\"\n[[benchmarks]]\nname = \"gsm8k\"\n";
        let c = EvalConfig::parse(
            &format!("{base}[margins]\n\"gsm8k/accuracy\" = 0.02\n"),
            Path::new("e.toml"),
        )
        .unwrap();
        assert_eq!(c.margins.len(), 1);
        assert_eq!(
            (c.margins[0].0.value.as_str(), c.margins[0].1),
            ("gsm8k/accuracy", 0.02)
        );
        let e = EvalConfig::parse(
            &format!("{base}[margins]\naccuracy = 0.02\n"),
            Path::new("e.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("e.toml:6:") && e.contains("BENCHMARK/METRIC"),
            "{e}"
        );
        let e = EvalConfig::parse(
            &format!("{base}[margins]\n\"gsm8k/accuracy\" = -1.0\n"),
            Path::new("e.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("positive"), "{e}");
    }

    const CONFIG: &str = r#"out = "out/q"
kernels = ["none", "sandwich"]
kernel_text = "k.txt"
judge = "openai:http://127.0.0.1:8080/v1#judge"

[models]
zeta = "local:a.gguf"
alpha = "local:b.gguf"

[[benchmarks]]
name = "gsm8k"
limit = 2

[[benchmarks]]
name = "seeds"
data = "s.jsonl"
"#;

    #[test]
    fn keeps_order_lines_and_resolves_paths() {
        let c = EvalConfig::parse(CONFIG, Path::new("cfg/eval.toml")).unwrap();
        assert_eq!(c.out, Path::new("cfg/out/q"));
        let labels: Vec<_> = c.models.iter().map(|(l, _)| l.value.as_str()).collect();
        assert_eq!(labels, ["zeta", "alpha"]);
        assert_eq!(c.models[1].1.line, 8);
        assert_eq!(c.kernels[1].value, "sandwich");
        assert_eq!(c.kernels[1].line, 2);
        assert_eq!(
            c.kernel_text.as_ref().unwrap().value,
            Path::new("cfg/k.txt")
        );
        assert_eq!(c.benchmarks[1].name.line, 15);
        assert_eq!(
            c.benchmarks[1].data.as_ref().unwrap().value,
            Path::new("cfg/s.jsonl")
        );
        assert_eq!(c.benchmarks[0].limit, Some(2));
        assert_eq!(c.generation.batch_size, 8);
    }

    #[test]
    fn kernels_can_be_pinned_and_limits_set() {
        let pin = "ab".repeat(32);
        let text = format!(
            "{CONFIG}\n[kernel_sha256]\nsandwich = \"{pin}\"\n\n[limits]\nfuel = 5\nmax_messages = 3\n"
        );
        let c = EvalConfig::parse(&text, Path::new("e.toml")).unwrap();
        assert_eq!(c.kernel_pin("sandwich"), Some(pin.as_str()));
        assert_eq!(c.kernel_pin("none"), None);
        assert_eq!((c.limits.fuel, c.limits.max_messages), (Some(5), 3));
        assert_eq!(
            c.limits.max_error_bytes,
            crate::Limits::default().max_error_bytes
        );

        let bad = format!("{CONFIG}\n[kernel_sha256]\nsystem = \"{pin}\"\n");
        let err = EvalConfig::parse(&bad, Path::new("e.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("e.toml:19:") && err.contains("not in `kernels`"),
            "{err}"
        );
        let bad = format!("{CONFIG}\n[kernel_sha256]\nsandwich = \"beef\"\n");
        let err = EvalConfig::parse(&bad, Path::new("e.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("e.toml:19:") && err.contains("64 hex"),
            "{err}"
        );
        let bad = format!("{CONFIG}\n[limits]\nfuell = 1\n");
        let err = EvalConfig::parse(&bad, Path::new("e.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("fuell"), "{err}");
    }

    #[test]
    fn errors_name_the_line() {
        let bad = CONFIG.replace("limit = 2", "limit = \"two\"");
        let err = EvalConfig::parse(&bad, Path::new("e.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("e.toml:12:"), "{err}");
        let bad = CONFIG.replace("judge =", "jduge =");
        let err = EvalConfig::parse(&bad, Path::new("e.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("e.toml:4:") && err.contains("jduge"),
            "{err}"
        );
    }
}
