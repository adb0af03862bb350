//! Model and sampling flags shared by the commands that run a model.

use anyhow::Result;
use lem_engine::{DeviceKind, Engine, LoadOptions, SamplingParams};
use lem_eval::models::{ModelOptions, RemoteOptions};
use std::path::PathBuf;

/// Which model, where, and on what.
#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// The model: a .gguf file, a safetensors directory or `gemma-3-270m` (installed by
    /// scripts/setup), optionally as `local:...`; or `openai:BASE_URL#MODEL`, `gemini:MODEL`.
    #[arg(long, default_value = lem_eval::resolve::DEFAULT_MODEL)]
    pub model: String,
    /// Directory of tokenizer.json / tokenizer_config.json, if not beside the model.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// cpu, cuda or metal.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceKind,
    /// CPU threads (default: the cores not already busy).
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
    #[arg(long, default_value = lem_eval::resolve::DEFAULT_MODEL)]
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

    /// How the flags say to load a local model.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            device: self.device,
            context: self.context,
            tokenizer_dir: self.tokenizer.clone(),
            adapter: self.adapter.clone(),
            chat_template: self.chat_template.clone(),
        }
    }

    /// Loads the engine of `--model`.
    pub fn load(&self) -> Result<(Engine, PathBuf)> {
        let path = lem_eval::resolve::model(&self.model)?;
        let engine = lem_eval::models::load_engine(&path, &self.load_options())?;
        Ok((engine, path))
    }

    /// How models named by spec open: these flags for local ones, `remote`
    /// for remote ones, `batch_size` sequences decoded together.
    pub fn model_options(&self, remote: &RemoteArgs, batch_size: usize) -> ModelOptions {
        ModelOptions {
            load: self.load_options(),
            batch_size,
            remote: remote.options(),
        }
    }
}

/// Flags for remote models.
#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArgs {
    /// Environment variable holding the key for `openai:` models (unset: no key is sent).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Requests in flight at once per remote model.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds one attempt at a remote request may take.
    #[arg(long, default_value_t = 300)]
    pub request_timeout: u64,
    /// Attempts per remote request (timeouts, 429 and 5xx are retried with backoff).
    #[arg(long, default_value_t = 4)]
    pub attempts: u32,
}

impl RemoteArgs {
    /// The flags as the library takes them.
    pub fn options(&self) -> RemoteOptions {
        RemoteOptions {
            api_key_env: self.api_key_env.clone(),
            concurrency: self.concurrency,
            request_timeout: std::time::Duration::from_secs(self.request_timeout),
            attempts: self.attempts,
        }
    }
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
