//! Model and sampling flags shared by the commands that run a model.

use anyhow::{Context, Result};
use lem_engine::{DeviceKind, Engine, LoadOptions, SamplingParams};
use std::path::PathBuf;

/// Which model, where, and on what.
#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// The model: a .gguf file, a safetensors directory or `gemma-3-270m` (installed by
    /// scripts/setup), optionally as `local:...`; or `openai:BASE_URL#MODEL`, `gemini:MODEL`.
    #[arg(long, default_value = crate::resolve::DEFAULT_MODEL)]
    pub model: String,
    /// Directory of tokenizer.json / tokenizer_config.json, if not beside the model.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// cpu, cuda or metal.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceKind,
    /// CPU threads (default: the cores not already busy, see `default_threads`).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Longest prompt plus output, in tokens.
    #[arg(long, default_value_t = 4096)]
    pub context: usize,
    /// A LoRA adapter directory (PEFT layout, as `lem train` writes) applied
    /// without fusing, on a local model of any family.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// A Jinja chat template file to render conversations with, instead of
    /// the one in tokenizer_config.json (Hugging Face's template syntax).
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,
}

/// The base model of `lem train`, `lem fuse` and `lem bench train`.
#[derive(clap::Args, Debug)]
pub struct BaseModelArgs {
    /// The base model: a .gguf file (dequantized to f32), a safetensors
    /// directory, or `gemma-3-270m`.
    #[arg(long, default_value = crate::resolve::DEFAULT_MODEL)]
    pub model: String,
    /// Directory of tokenizer.json / tokenizer_config.json, if not beside the model.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// CPU threads (default: the idle cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ModelArgs {
    /// The defaults of every flag, for the model `spec`.
    pub fn for_spec(spec: &str) -> Self {
        ModelArgs {
            model: spec.to_string(),
            tokenizer: None,
            device: DeviceKind::Cpu,
            threads: None,
            context: 4096,
            adapter: None,
            chat_template: None,
        }
    }

    /// Loads the engine of `--model` (after fixing the thread count).
    pub fn load(&self) -> Result<(Engine, PathBuf)> {
        let path = crate::resolve::model(&self.model)?;
        Ok((self.load_path(&path)?, path))
    }

    /// Loads the engine of the model at `path` (after fixing the thread count).
    pub fn load_path(&self, path: &std::path::Path) -> Result<Engine> {
        fix_threads(self.threads);
        let options = LoadOptions {
            device: self.device,
            context: self.context,
            tokenizer_dir: self.tokenizer.clone(),
            adapter: self.adapter.clone(),
            chat_template: self.chat_template.clone(),
        };
        Engine::load(path, &options).with_context(|| format!("loading model {}", path.display()))
    }
}

/// Sets candle's CPU thread count: `threads`, else `RAYON_NUM_THREADS` if
/// set, else [`default_threads`]. Call before any model work starts.
pub fn fix_threads(threads: Option<usize>) {
    let n = threads.unwrap_or_else(default_threads);
    if std::env::var_os("RAYON_NUM_THREADS").is_none() || threads.is_some() {
        // SAFETY: called before any other thread exists or reads the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}

/// The cores not already busy: all cores minus the 1-minute load average.
///
/// candle's CPU thread pool waits at its barriers by spinning. When another
/// process holds one of the cores, a spinning thread burns its time slice
/// waiting for a peer that is not running, and 2 threads decode at a third of
/// the speed of 1. Using only the idle cores avoids that.
pub(super) fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .next()
                .and_then(|l| l.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    (cores as f64 - load).round().clamp(1.0, cores as f64) as usize
}

/// Sampling flags; unset ones come from the benchmark manifest or defaults.
#[derive(clap::Args, Debug)]
pub struct SamplingArgs {
    /// Sampling temperature (0 = greedy).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Keep only the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Repetition penalty (1 = none).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Maximum new tokens.
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Sampling seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl SamplingArgs {
    /// The settings, with `temperature` and `max_tokens` defaulting as given.
    pub fn params(&self, temperature: f32, max_tokens: usize) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature.unwrap_or(temperature),
            top_p: self.top_p,
            top_k: self.top_k,
            repetition_penalty: self.repetition_penalty,
            max_tokens: self.max_tokens.unwrap_or(max_tokens),
            seed: self.seed,
        }
    }
}
