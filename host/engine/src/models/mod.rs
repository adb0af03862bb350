//! Model families behind one [`Model`] enum, and what they share.
//!
//! Every family is lem's own, with batched decode over per-sequence caches:
//! Gemma 3 ([`gemma3`], a module per job) and the Llama architecture
//! ([`llama`]: Llama 2/3.x, Mistral, SmolLM2, Qwen 2/2.5). What the families
//! share: norms, rope, caches, masks and prompt attention ([`layers`]), the
//! projection with its LoRA delta ([`linear`]), tensors by Hugging Face name
//! ([`weights`]), and CPU kernels: decode products ([`quantized`]: Q8_0 and Q4_1, [`repack`]),
//! decode attention ([`decode_attention`]) and the fused ops of the forward
//! pass ([`fused_ops`]).
//!
//! With the `train` feature, the families, [`linear`] and [`fused_ops`] each
//! gain a `train` submodule (the training forward, the backward, fusing),
//! `matmul` adds the f32 products of the hand-written backward and the
//! trainer's loss, and [`Projections`] gains its training counterpart,
//! `TrainableModel` (in `crate::train`).

pub mod decode_attention;
pub mod fused_ops;
pub mod gemma3;
pub mod layers;
pub mod linear;
pub mod llama;
#[cfg(feature = "train")]
pub mod matmul;
pub mod quantized;
pub mod repack;
pub mod weights;

/// The training contract of a family, also at this path (lem-cli names it
/// here); it is defined in [`crate::train`].
#[cfg(feature = "train")]
pub use crate::train::TrainableModel;

use crate::EngineError;
use candle_core::{Device, Tensor};
use layers::KvCache;
use std::path::{Path, PathBuf};
use weights::Weights;

/// Projections on the CPU get contiguous f32 copies of `Wᵀ` for prompts
/// and training when these take at most this many bytes (1.5 GiB: Gemma 3
/// 270M's take 0.4 GB, Qwen2.5 0.5B's 1.4 GB; not the 1B or 1.5B models,
/// whose prompts use the quantized products: dequantizing each projection
/// per prompt measured 3x slower than those on the 1.5B).
pub const TRANSPOSED_COPY_LIMIT: usize = 3 << 29;

/// Gives every projection of `model` a contiguous f32 copy of `Wᵀ` when all
/// of them take at most `limit` bytes; returns whether it did.
pub fn keep_transposed_copies(
    model: &mut impl Projections,
    limit: usize,
) -> candle_core::Result<bool> {
    let mut linears = model.linears_mut();
    let mut bytes = 0;
    for (_, lin) in &linears {
        let (out, inp) = lin.dims()?;
        bytes += out * inp * 4;
    }
    if bytes > limit {
        return Ok(false);
    }
    for (_, lin) in &mut linears {
        lin.add_transposed_copy()?;
    }
    Ok(true)
}

/// The families lem can load, for error messages.
pub const SUPPORTED: &str =
    "gemma3, llama / mistral / smollm2, qwen2 / qwen2.5 (GGUF or safetensors)";

/// A model whose projections carry Hugging Face names
/// (`model.layers.N.self_attn.q_proj`): what LoRA adapters attach to, by name.
pub trait Projections {
    /// Every projection, by name.
    fn linears_mut(&mut self) -> Vec<(String, &mut linear::Linear)>;
}

impl Projections for gemma3::Gemma3 {
    fn linears_mut(&mut self) -> Vec<(String, &mut linear::Linear)> {
        gemma3::Gemma3::linears_mut(self)
    }
}

impl Projections for llama::Llama {
    fn linears_mut(&mut self) -> Vec<(String, &mut linear::Linear)> {
        llama::Llama::linears_mut(self)
    }
}

impl Projections for Model {
    fn linears_mut(&mut self) -> Vec<(String, &mut linear::Linear)> {
        match self {
            Model::Gemma3(m) => m.linears_mut(),
            Model::Llama(m) => m.linears_mut(),
        }
    }
}

/// A loaded model.
pub enum Model {
    /// Gemma 3, lem's own implementation.
    Gemma3(gemma3::Gemma3),
    /// The Llama architecture (Llama, Mistral, SmolLM2, Qwen 2/2.5).
    Llama(llama::Llama),
}

/// Where a model's files are.
#[derive(Debug, Clone)]
pub enum ModelFiles {
    /// One GGUF file.
    Gguf(PathBuf),
    /// A Hugging Face directory: `config.json` and safetensors shards.
    Safetensors {
        /// The directory.
        dir: PathBuf,
        /// The shards.
        shards: Vec<PathBuf>,
    },
}

impl ModelFiles {
    /// Recognises a `.gguf` file or a directory with `config.json` + `*.safetensors`.
    pub fn locate(path: &Path) -> Result<Self, EngineError> {
        if path.is_file() {
            return Ok(ModelFiles::Gguf(path.to_owned()));
        }
        if path.is_dir() {
            let mut shards: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| EngineError::Io(path.to_owned(), e))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            shards.sort();
            if shards.is_empty() || !path.join("config.json").is_file() {
                return Err(EngineError::BadFile {
                    path: path.to_owned(),
                    reason: "a model directory needs config.json and *.safetensors".into(),
                });
            }
            return Ok(ModelFiles::Safetensors {
                dir: path.to_owned(),
                shards,
            });
        }
        Err(EngineError::Io(
            path.to_owned(),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such model file or directory",
            ),
        ))
    }

    /// The directory whose `tokenizer.json` belongs to this model.
    pub fn dir(&self) -> &Path {
        match self {
            ModelFiles::Gguf(p) => p.parent().unwrap_or(Path::new(".")),
            ModelFiles::Safetensors { dir, .. } => dir,
        }
    }
}

impl Model {
    /// Loads a model; `context` bounds prompt plus output length.
    pub fn load(files: &ModelFiles, device: &Device, context: usize) -> Result<Self, EngineError> {
        Self::load_with(files, device, context, false)
    }

    /// Loads a model with its projections dense f32 (`dense`: what the
    /// trainer and `lem fuse` need; only Gemma 3 supports it).
    pub fn load_with(
        files: &ModelFiles,
        device: &Device,
        context: usize,
        dense: bool,
    ) -> Result<Self, EngineError> {
        match files {
            ModelFiles::Gguf(path) => Self::load_gguf(path, device, context, dense),
            ModelFiles::Safetensors { dir, shards } => {
                let config_path = dir.join("config.json");
                let text = std::fs::read_to_string(&config_path)
                    .map_err(|e| EngineError::Io(config_path.clone(), e))?;
                let value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| EngineError::BadFile {
                        path: config_path.clone(),
                        reason: format!("not JSON: {e}"),
                    })?;
                let model_type = value
                    .get("model_type")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unknown");
                match model_type {
                    "gemma3_text" | "gemma3" => {
                        let text_config =
                            value.get("text_config").cloned().unwrap_or(value.clone());
                        let config: gemma3::Config =
                            serde_json::from_value(text_config).map_err(|e| {
                                EngineError::BadFile {
                                    path: config_path.clone(),
                                    reason: format!("not a Gemma 3 config: {e}"),
                                }
                            })?;
                        let weights = Weights::safetensors(shards, device)?;
                        let mut model = gemma3::Gemma3::load(config, &weights, context)?;
                        model
                            .keep_transposed_copies(TRANSPOSED_COPY_LIMIT)
                            .map_err(EngineError::candle)?;
                        Ok(Model::Gemma3(model))
                    }
                    "llama" | "mistral" | "qwen2" => {
                        let config = llama::Config::from_hf(&value).map_err(|reason| {
                            EngineError::BadFile {
                                path: config_path.clone(),
                                reason,
                            }
                        })?;
                        let weights = Weights::safetensors(shards, device)?;
                        Ok(Model::Llama(llama::Llama::load(config, &weights, context)?))
                    }
                    other => Err(EngineError::Unsupported(format!(
                        "safetensors model_type `{other}` ({}); lem loads {SUPPORTED}",
                        config_path.display()
                    ))),
                }
            }
        }
    }

    fn load_gguf(
        path: &Path,
        device: &Device,
        context: usize,
        dense: bool,
    ) -> Result<Self, EngineError> {
        let mut weights = Weights::gguf(path, device)?;
        if dense {
            weights = weights.dequantized();
        }
        let md = weights.gguf_metadata().expect("gguf");
        let arch = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        match arch.as_str() {
            "gemma3" => {
                let config =
                    gemma3::Config::from_gguf(md).map_err(|reason| EngineError::BadFile {
                        path: path.to_owned(),
                        reason,
                    })?;
                let mut model = gemma3::Gemma3::load(config, &weights, context)?;
                model
                    .keep_transposed_copies(TRANSPOSED_COPY_LIMIT)
                    .map_err(EngineError::candle)?;
                Ok(Model::Gemma3(model))
            }
            "llama" | "qwen2" => {
                let config =
                    llama::Config::from_gguf(&arch, md).map_err(|reason| EngineError::BadFile {
                        path: path.to_owned(),
                        reason,
                    })?;
                let mut model = llama::Llama::load(config, &weights, context)?;
                if device.is_cpu() {
                    keep_transposed_copies(&mut model, TRANSPOSED_COPY_LIMIT)
                        .map_err(EngineError::candle)?;
                }
                Ok(Model::Llama(model))
            }
            "" => Err(EngineError::BadFile {
                path: path.to_owned(),
                reason: "GGUF has no general.architecture".into(),
            }),
            other => Err(EngineError::Unsupported(format!(
                "{}: architecture `{other}`; lem loads {SUPPORTED}",
                path.display()
            ))),
        }
    }

    /// The family's name.
    pub fn family(&self) -> &str {
        match self {
            Model::Gemma3(_) => "gemma3",
            Model::Llama(m) => &m.config().model_type,
        }
    }

    /// Positions the model's rope tables cover, and its vocabulary size.
    pub fn context_and_vocab(&self) -> (usize, usize) {
        match self {
            Model::Gemma3(m) => (m.context(), m.config().vocab_size),
            Model::Llama(m) => (m.context(), m.config().vocab_size),
        }
    }

    /// An empty cache for one sequence of up to `capacity` tokens.
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache, EngineError> {
        match self {
            Model::Gemma3(m) => m.new_cache(capacity),
            Model::Llama(m) => m.new_cache(capacity),
        }
    }

    /// Runs one sequence's `tokens` through the model, appending them to its
    /// cache; the logits `[vocab]` of the last one.
    pub fn prefill(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor, EngineError> {
        match self {
            Model::Gemma3(m) => m.prefill(tokens, cache),
            Model::Llama(m) => m.prefill(tokens, cache),
        }
    }

    /// One token for each sequence, in one batch; logits `[batch, vocab]`.
    pub fn decode(
        &self,
        tokens: &[u32],
        caches: &mut [&mut KvCache],
    ) -> Result<Tensor, EngineError> {
        match self {
            Model::Gemma3(m) => m.decode(tokens, caches),
            Model::Llama(m) => m.decode(tokens, caches),
        }
    }
}
