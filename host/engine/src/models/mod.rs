//! Model families, one file each, behind one [`Model`] enum.
//!
//! Every family is lem's own, with batched decode over per-sequence caches:
//! Gemma 3 ([`gemma3`]) and the Llama architecture ([`llama`]: Llama 2/3.x,
//! Mistral, SmolLM2, Qwen 2/2.5). What the families share (norms, rope,
//! caches, masks) is in [`layers`].

pub mod decode_attention;
pub mod gemma3;
pub mod layers;
pub mod linear;
pub mod llama;
pub mod matmul;
pub mod q8_0;
pub mod repack;
pub mod train_ops;
pub mod weights;

use crate::EngineError;
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use layers::KvCache;
use std::path::{Path, PathBuf};
use weights::Weights;

/// Gemma 3 projections get contiguous f32 copies of `Wᵀ` for prompts and
/// training when these take at most this many bytes (1 GiB: the 270M
/// model, not the 1B).
pub const TRANSPOSED_COPY_LIMIT: usize = 1 << 30;

/// The families lem can load, for error messages.
pub const SUPPORTED: &str =
    "gemma3 (GGUF or safetensors), llama / mistral / smollm2 (GGUF), qwen2 / qwen2.5 (GGUF)";

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
                    gemma3_config_from_gguf(md).map_err(|reason| EngineError::BadFile {
                        path: path.to_owned(),
                        reason,
                    })?;
                let mut model = gemma3::Gemma3::load(config, &weights, context)?;
                model
                    .keep_transposed_copies(TRANSPOSED_COPY_LIMIT)
                    .map_err(EngineError::candle)?;
                Ok(Model::Gemma3(model))
            }
            "llama" | "qwen2" if dense => Err(EngineError::Unsupported(format!(
                "{}: training, adapters and fusing support gemma3 models; this is `{arch}`",
                path.display()
            ))),
            "llama" | "qwen2" => {
                let config =
                    llama::Config::from_gguf(&arch, md).map_err(|reason| EngineError::BadFile {
                        path: path.to_owned(),
                        reason,
                    })?;
                Ok(Model::Llama(llama::Llama::load(config, &weights, context)?))
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

/// Gemma 3 facts from GGUF metadata; what the file leaves out (local rope
/// base, layer pattern) takes the published values, as llama.cpp does.
fn gemma3_config_from_gguf(
    md: &std::collections::HashMap<String, gguf_file::Value>,
) -> Result<gemma3::Config, String> {
    let get = |key: &str| -> Result<u32, String> {
        md.get(&format!("gemma3.{key}"))
            .ok_or_else(|| format!("GGUF metadata lacks gemma3.{key}"))?
            .to_u32()
            .map_err(|e| format!("gemma3.{key}: {e}"))
    };
    let getf = |key: &str| {
        md.get(&format!("gemma3.{key}"))
            .and_then(|v| v.to_f32().ok())
    };
    let layers = get("block_count")? as usize;
    let hidden = get("embedding_length")? as usize;
    let heads = get("attention.head_count")? as usize;
    let head_dim = get("attention.key_length")? as usize;
    // llama.cpp: the 27B (62 layers) scales by hidden/heads, the others by head_dim.
    let pre_attn = if layers == 62 {
        hidden / heads
    } else {
        head_dim
    };
    let vocab = md
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .map(|v| v.len())
        .unwrap_or(262_144);
    Ok(gemma3::Config {
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: get("feed_forward_length")? as usize,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: get("attention.head_count_kv")? as usize,
        head_dim,
        rms_norm_eps: getf("attention.layer_norm_rms_epsilon").unwrap_or(1e-6) as f64,
        rope_theta: getf("rope.freq_base").unwrap_or(1_000_000.0) as f64,
        rope_local_base_freq: 10_000.0,
        sliding_window: get("attention.sliding_window").unwrap_or(512) as usize,
        sliding_window_pattern: 6,
        layer_types: None,
        query_pre_attn_scalar: pre_attn as f64,
        max_position_embeddings: get("context_length").unwrap_or(32_768) as usize,
        final_logit_softcapping: None,
        attn_logit_softcapping: None,
    })
}
