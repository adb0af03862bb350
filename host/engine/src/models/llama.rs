//! Llama-architecture decoders: [LLaMA](https://arxiv.org/abs/2302.13971)
//! (Llama 2 and 3.x, Mistral, SmolLM2) and [Qwen 2](https://arxiv.org/abs/2407.10671)
//! / Qwen 2.5, which is the same block with biases on the query, key and
//! value projections and its own rope base.
//!
//! A block is `x + attn(norm(x))`, then `x + down(silu(gate(h)) · up(h))`
//! with `h = norm(x)`; grouped-query attention with rotary positions; no
//! embedding scale, softcaps or sliding windows. lem runs these families on
//! its own engine, like Gemma 3, for what candle-transformers' versions lack:
//! per-sequence caches so that prompts decode in one batch, the quantized
//! projections with lem's decode kernels, and the fused decode attention.
//!
//! Module paths are the Hugging Face tensor names
//! (`model.layers.N.self_attn.q_proj`), read from GGUF files through the
//! llama.cpp name map in [`super::weights`].
//!
//! Training and fusing (the family's `TrainableModel`) are in the `train`
//! submodule, behind the `train` feature.

use super::layers::{self, KvCache, RmsNorm, Rope, mask};
use super::linear::Linear;
use super::weights::Weights;
use crate::EngineError;
use candle_core::quantized::gguf_file;
use candle_core::{D, Device, IndexOp, Tensor};
use std::collections::HashMap;

#[cfg(feature = "train")]
mod train;

/// What a Llama-architecture model is made of (the facts of its
/// `config.json`, or of its GGUF metadata).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Vocabulary size of the embedding and output layer.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rope base.
    pub rope_theta: f64,
    /// Longest context the model was trained for.
    pub max_position_embeddings: usize,
    /// Rotate adjacent pairs (Llama GGUFs, converted for llama.cpp's
    /// "normal" rope) rather than halves (Qwen 2, Hugging Face weights).
    pub rope_interleaved: bool,
    /// `llama` or `qwen2`.
    pub model_type: String,
}

impl Config {
    /// The facts of a GGUF of architecture `arch` (`llama` or `qwen2`).
    pub fn from_gguf(arch: &str, md: &HashMap<String, gguf_file::Value>) -> Result<Self, String> {
        let get = |key: &str| -> Result<usize, String> {
            md.get(&format!("{arch}.{key}"))
                .ok_or_else(|| format!("GGUF metadata lacks {arch}.{key}"))?
                .to_u32()
                .map(|v| v as usize)
                .map_err(|e| format!("{arch}.{key}: {e}"))
        };
        let getf = |key: &str| {
            md.get(&format!("{arch}.{key}"))
                .and_then(|v| v.to_f32().ok())
        };
        let hidden = get("embedding_length")?;
        let heads = get("attention.head_count")?;
        let vocab = match md.get("tokenizer.ggml.tokens") {
            Some(gguf_file::Value::Array(tokens)) => tokens.len(),
            _ => get("vocab_size")?,
        };
        Ok(Config {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: get("feed_forward_length")?,
            num_hidden_layers: get("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: get("attention.head_count_kv").unwrap_or(heads),
            head_dim: get("attention.key_length").unwrap_or(hidden / heads),
            rms_norm_eps: getf("attention.layer_norm_rms_epsilon").unwrap_or(1e-5) as f64,
            rope_theta: getf("rope.freq_base").unwrap_or(10_000.0) as f64,
            max_position_embeddings: get("context_length").unwrap_or(4096),
            rope_interleaved: arch == "llama",
            model_type: arch.to_string(),
        })
    }
}

impl Config {
    /// The facts of a Hugging Face `config.json` (`model_type` `llama`,
    /// `mistral` or `qwen2`).
    pub fn from_hf(value: &serde_json::Value) -> Result<Self, String> {
        let get = |key: &str| -> Result<usize, String> {
            value
                .get(key)
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
                .ok_or_else(|| format!("config.json lacks `{key}`"))
        };
        let getf =
            |key: &str, default: f64| value.get(key).and_then(|v| v.as_f64()).unwrap_or(default);
        let hidden = get("hidden_size")?;
        let heads = get("num_attention_heads")?;
        Ok(Config {
            vocab_size: get("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: get("intermediate_size")?,
            num_hidden_layers: get("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: get("num_key_value_heads").unwrap_or(heads),
            head_dim: get("head_dim").unwrap_or(hidden / heads),
            rms_norm_eps: getf("rms_norm_eps", 1e-6),
            rope_theta: getf("rope_theta", 10_000.0),
            max_position_embeddings: get("max_position_embeddings").unwrap_or(4096),
            rope_interleaved: false,
            model_type: value
                .get("model_type")
                .and_then(|v| v.as_str())
                .unwrap_or("llama")
                .to_string(),
        })
    }

    /// The Hugging Face `config.json` of a model with this config.
    pub fn to_hf(&self, tied: bool) -> serde_json::Value {
        let architecture = match self.model_type.as_str() {
            "qwen2" => "Qwen2ForCausalLM",
            "mistral" => "MistralForCausalLM",
            _ => "LlamaForCausalLM",
        };
        serde_json::json!({
            "model_type": self.model_type,
            "architectures": [architecture],
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "hidden_act": "silu",
            "tie_word_embeddings": tied,
            "torch_dtype": "float32",
        })
    }
}

/// llama.cpp's conversion permutes a Llama's query and key rows so that its
/// pairwise rope equals Hugging Face's rotation of halves; this undoes it
/// (`[heads·d, in]`: per head, rows `(j, p)` back to `(p, j)`).
fn unpermute_rows(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let half = rows / heads / 2;
    w.reshape((heads, half, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))
}

#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    /// Qwen 2's biases of q, k and v.
    biases: Option<[Tensor; 3]>,
    n_head: usize,
    n_kv: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    /// What the shared attention needs of this layer's (no softcap, no window).
    fn shape(&self) -> layers::AttentionShape {
        layers::AttentionShape {
            n_head: self.n_head,
            n_kv: self.n_kv,
            head_dim: self.head_dim,
            scale: self.scale,
            softcap: None,
            window: None,
        }
    }

    /// Projects `h` [b, t, hidden] to q [b, heads, t, d] and k, v [b, kv, t, d].
    fn project(
        &self,
        h: &Tensor,
        b: usize,
        t: usize,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let heads = |proj: &Linear, i: usize, n: usize| -> candle_core::Result<Tensor> {
            let mut y = proj.forward(h)?;
            if let Some(biases) = &self.biases {
                y = y.broadcast_add(&biases[i])?;
            }
            y.reshape((b, t, n, self.head_dim))?.transpose(1, 2)
        };
        Ok((
            heads(&self.q_proj, 0, self.n_head)?,
            heads(&self.k_proj, 1, self.n_kv)?,
            heads(&self.v_proj, 2, self.n_kv)?,
        ))
    }
}

#[derive(Debug, Clone)]
struct Layer {
    self_attn: Attention,
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
    input_layernorm: RmsNorm,
    post_attention_layernorm: RmsNorm,
}

impl Layer {
    /// The rest of the block after attention: residual, the MLP on the
    /// normed stream, residual.
    fn finish(&self, x: &Tensor, attn_out: &Tensor) -> candle_core::Result<Tensor> {
        let x = (x + attn_out)?;
        let h = self.post_attention_layernorm.forward(&x)?;
        let gated =
            super::fused_ops::silu_mul(&self.gate_proj.forward(&h)?, &self.up_proj.forward(&h)?)?;
        &x + self.down_proj.forward(&gated)?
    }
}

/// A Llama-architecture model.
#[derive(Debug, Clone)]
pub struct Llama {
    config: Config,
    embed_tokens: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: Rope,
    device: Device,
    context: usize,
    /// The output layer is the embedding (no `lm_head` tensor).
    #[cfg_attr(
        not(feature = "train"),
        expect(dead_code, reason = "read by fusing, behind `train`")
    )]
    tied: bool,
}

impl Llama {
    /// Builds the model from weights; rope tables cover `context` positions.
    pub fn load(config: Config, weights: &Weights, context: usize) -> Result<Self, EngineError> {
        let device = weights.device().clone();
        let context = context.min(config.max_position_embeddings).max(1);
        let eps = config.rms_norm_eps;
        let embed_tokens = weights.embedding("model.embed_tokens")?;
        let (_, hidden) = embed_tokens.dims2().map_err(EngineError::candle)?;
        if hidden != config.hidden_size {
            return Err(EngineError::BadModel(format!(
                "embedding width is {hidden}, the config says {}",
                config.hidden_size
            )));
        }
        let norm = |name: &str| -> Result<RmsNorm, EngineError> {
            Ok(RmsNorm::new(weights.tensor(name)?, eps))
        };
        // Dense weights (training, fusing) are kept in Hugging Face's layout:
        // a Llama GGUF's query and key rows are put back, and rope rotates halves.
        let mut config = config;
        let unpermute = weights.is_dense() && config.rope_interleaved;
        if unpermute {
            config.rope_interleaved = false;
        }
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let proj = |name: &str| weights.linear(&format!("{p}.{name}"));
            let rope_proj = |name: &str, heads: usize| -> Result<Linear, EngineError> {
                if !unpermute {
                    return proj(name);
                }
                let w = proj(name)?.dense_weight().map_err(EngineError::candle)?;
                let w = unpermute_rows(&w, heads).map_err(EngineError::candle)?;
                Ok(Linear::new(candle_core::quantized::QMatMul::Tensor(w)))
            };
            let bias = |name: &str| weights.bias(&format!("{p}.self_attn.{name}"));
            let biases = match (bias("q_proj")?, bias("k_proj")?, bias("v_proj")?) {
                (Some(q), Some(k), Some(v)) => Some([q, k, v]),
                (None, None, None) => None,
                _ => {
                    return Err(EngineError::BadModel(format!(
                        "layer {i} has biases on some of q, k and v but not all"
                    )));
                }
            };
            layers.push(Layer {
                self_attn: Attention {
                    q_proj: rope_proj("self_attn.q_proj", config.num_attention_heads)?,
                    k_proj: rope_proj("self_attn.k_proj", config.num_key_value_heads)?,
                    v_proj: proj("self_attn.v_proj")?,
                    o_proj: proj("self_attn.o_proj")?,
                    biases,
                    n_head: config.num_attention_heads,
                    n_kv: config.num_key_value_heads,
                    head_dim: config.head_dim,
                    scale: 1.0 / (config.head_dim as f64).sqrt(),
                },
                gate_proj: proj("mlp.gate_proj")?,
                up_proj: proj("mlp.up_proj")?,
                down_proj: proj("mlp.down_proj")?,
                input_layernorm: norm(&format!("{p}.input_layernorm"))?,
                post_attention_layernorm: norm(&format!("{p}.post_attention_layernorm"))?,
            });
        }
        let tied = !weights.contains("lm_head");
        let lm_head = weights.lm_head("lm_head", "model.embed_tokens", &embed_tokens)?;
        // Llama 3.1 divides its rope frequencies by per-frequency factors.
        let factors = weights
            .gguf_raw("rope_freqs.weight")?
            .map(|t| t.to_vec1::<f32>())
            .transpose()
            .map_err(EngineError::candle)?;
        let rope = Rope::with_factors(
            config.head_dim,
            config.rope_theta,
            context,
            factors.as_deref(),
            config.rope_interleaved,
            &device,
        )
        .map_err(EngineError::candle)?;
        Ok(Llama {
            tied,
            norm: norm("model.norm")?,
            config,
            embed_tokens,
            layers,
            lm_head,
            rope,
            device,
            context,
        })
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The device the weights are on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Positions the rope tables cover.
    pub fn context(&self) -> usize {
        self.context
    }

    /// The projections by Hugging Face name (`model.layers.N.self_attn.q_proj`).
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        self.layers
            .iter_mut()
            .enumerate()
            .flat_map(|(i, l)| {
                let a = &mut l.self_attn;
                [
                    ("self_attn.q_proj", &mut a.q_proj),
                    ("self_attn.k_proj", &mut a.k_proj),
                    ("self_attn.v_proj", &mut a.v_proj),
                    ("self_attn.o_proj", &mut a.o_proj),
                    ("mlp.gate_proj", &mut l.gate_proj),
                    ("mlp.up_proj", &mut l.up_proj),
                    ("mlp.down_proj", &mut l.down_proj),
                ]
                .into_iter()
                .map(move |(name, lin)| (format!("model.layers.{i}.{name}"), lin))
            })
            .collect()
    }

    /// An empty cache for one sequence of up to `capacity` tokens.
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache, EngineError> {
        let c = &self.config;
        KvCache::new(
            c.num_hidden_layers,
            c.num_key_value_heads,
            c.head_dim,
            capacity.min(self.context),
            &self.device,
        )
        .map_err(EngineError::candle)
    }

    fn embed(&self, tokens: &Tensor) -> candle_core::Result<Tensor> {
        let mut dims = tokens.dims().to_vec();
        dims.push(self.config.hidden_size);
        self.embed_tokens
            .index_select(&tokens.flatten_all()?, 0)?
            .reshape(dims)
    }

    fn logits(&self, last_hidden: &Tensor) -> candle_core::Result<Tensor> {
        let logits = self.lm_head.forward(&self.norm.forward(last_hidden)?)?;
        let v = logits.dim(D::Minus1)?;
        if v > self.config.vocab_size {
            logits.narrow(D::Minus1, 0, self.config.vocab_size)
        } else {
            Ok(logits)
        }
    }

    /// Runs `tokens` of one sequence through the model, appending them to its
    /// cache, and returns the logits `[vocab]` of the last one.
    pub fn prefill(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor, EngineError> {
        cache.check_prefill(tokens)?;
        self.prefill_inner(tokens, cache)
            .map_err(EngineError::candle)
    }

    fn prefill_inner(&self, tokens: &[u32], cache: &mut KvCache) -> candle_core::Result<Tensor> {
        let t = tokens.len();
        let start = cache.len;
        let ids = Tensor::from_slice(tokens, (1, t), &self.device)?;
        let mut x = self.embed(&ids)?;
        let causal = mask(t, start, None, &self.device)?;
        for (li, layer) in self.layers.iter().enumerate() {
            let a = &layer.self_attn;
            let h = layer.input_layernorm.forward(&x)?;
            let (q, k, v) = a.project(&h, 1, t)?;
            let q = self.rope.apply(&q, start)?;
            let k = self.rope.apply(&k, start)?;
            let out = layers::prompt_attention(cache, li, &q, &k, &v, start, &causal, &a.shape())?;
            let out = a.o_proj.forward(&out)?;
            x = layer.finish(&x, &out)?;
        }
        cache.len += t;
        self.logits(&x.i((.., t - 1, ..))?)?.squeeze(0)
    }

    /// Decodes one token for each sequence, all in one batch: matmuls run
    /// once for the batch; attention runs per sequence against its own cache
    /// and position. Returns logits `[batch, vocab]`.
    pub fn decode(
        &self,
        tokens: &[u32],
        caches: &mut [&mut KvCache],
    ) -> Result<Tensor, EngineError> {
        KvCache::check_decode(tokens, caches)?;
        self.decode_inner(tokens, caches)
            .map_err(EngineError::candle)
    }

    fn decode_inner(
        &self,
        tokens: &[u32],
        caches: &mut [&mut KvCache],
    ) -> candle_core::Result<Tensor> {
        let b = tokens.len();
        let positions: Vec<u32> = caches.iter().map(|c| c.len as u32).collect();
        let positions = Tensor::from_vec(positions, b, &self.device)?;
        let ids = Tensor::from_slice(tokens, (b, 1), &self.device)?;
        let mut x = self.embed(&ids)?;
        for (li, layer) in self.layers.iter().enumerate() {
            let a = &layer.self_attn;
            let h = layer.input_layernorm.forward(&x)?;
            let (q, k, v) = a.project(&h, b, 1)?;
            let q = self.rope.apply_each(&q, &positions)?;
            let k = self.rope.apply_each(&k, &positions)?;
            let out = layers::token_attention(caches, li, &q, &k, &v, &a.shape())?;
            let out = a.o_proj.forward(&out)?;
            x = layer.finish(&x, &out)?;
        }
        for cache in caches.iter_mut() {
            cache.len += 1;
        }
        self.logits(&x.squeeze(1)?)
    }
}
