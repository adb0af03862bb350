//! Gemma 3, text part: [Gemma 3 Technical Report](https://arxiv.org/abs/2503.19786).
//!
//! lem owns this file rather than using candle-transformers' `quantized_gemma3`
//! because generation needs what that one lacks: GELU (tanh) in the MLP, rope
//! tables sized to the context and shared between layers, the sliding window
//! in the decode cache, per-sequence positions and KV caches so several
//! prompts decode in one batch, and weights that are either quantized
//! (`QMatMul` from GGUF) or dense f32 (safetensors), so the same code serves
//! inference and the LoRA trainer.
//!
//! Module paths are the Hugging Face tensor names
//! (`model.layers.N.self_attn.q_proj`); GGUF files are read through the
//! name map in [`super::weights`].

use super::layers::{self, KvCache, RmsNorm, Rope, mask};
use super::linear::Linear;
use super::weights::Weights;
use crate::EngineError;
use candle_core::{D, DType, Device, IndexOp, Tensor};
use serde::{Deserialize, Serialize};

mod tape;
pub use tape::{AdapterGrads, LayerTape};

/// A serde mirror of Gemma 3's `config.json` (the text config).
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    #[serde(default = "default_head_dim")]
    pub head_dim: usize,
    /// RMSNorm epsilon.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Rope base of the global layers.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// Rope base of the sliding-window layers.
    #[serde(default = "default_rope_local")]
    pub rope_local_base_freq: f64,
    /// Sliding window of the local layers.
    #[serde(default = "default_window")]
    pub sliding_window: usize,
    /// Every `sliding_window_pattern`-th layer is global (when `layer_types` is absent).
    #[serde(default = "default_pattern")]
    pub sliding_window_pattern: usize,
    /// `sliding_attention` / `full_attention` per layer, when given.
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// Attention scores are scaled by `1/sqrt(query_pre_attn_scalar)`.
    #[serde(default = "default_head_dim_f")]
    pub query_pre_attn_scalar: f64,
    /// Longest context the model was trained for.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Softcap of the final logits (Gemma 2 had one; Gemma 3 does not).
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    /// Softcap of attention scores.
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
}

fn default_head_dim() -> usize {
    256
}
fn default_head_dim_f() -> f64 {
    256.0
}
fn default_eps() -> f64 {
    1e-6
}
fn default_rope_theta() -> f64 {
    1_000_000.0
}
fn default_rope_local() -> f64 {
    10_000.0
}
fn default_window() -> usize {
    512
}
fn default_pattern() -> usize {
    6
}
fn default_max_pos() -> usize {
    32_768
}

impl Config {
    /// Whether layer `i` uses the sliding window (and the local rope base).
    pub fn is_sliding(&self, i: usize) -> bool {
        match &self.layer_types {
            Some(types) => types.get(i).is_some_and(|t| t == "sliding_attention"),
            None => (i + 1) % self.sliding_window_pattern != 0,
        }
    }

    /// The configs of the published sizes, for tests and for GGUF files
    /// whose metadata leaves facts out.
    pub fn preset(size: &str) -> Option<Config> {
        let (hidden, inter, layers, heads, kv, vocab) = match size {
            "270m" => (640, 2048, 18, 4, 1, 262_144),
            "1b" => (1152, 6912, 26, 4, 1, 262_144),
            "4b" => (2560, 10240, 34, 8, 4, 262_208),
            "12b" => (3840, 15360, 48, 16, 8, 262_208),
            "27b" => (5376, 21504, 62, 32, 16, 262_208),
            _ => return None,
        };
        Some(Config {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: inter,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: kv,
            head_dim: if size == "27b" { 128 } else { 256 },
            rms_norm_eps: 1e-6,
            rope_theta: 1_000_000.0,
            rope_local_base_freq: 10_000.0,
            sliding_window: if matches!(size, "270m" | "1b") {
                512
            } else {
                1024
            },
            sliding_window_pattern: 6,
            layer_types: None,
            query_pre_attn_scalar: if size == "27b" { 168.0 } else { 256.0 },
            max_position_embeddings: if matches!(size, "270m" | "1b") {
                32_768
            } else {
                131_072
            },
            final_logit_softcapping: None,
            attn_logit_softcapping: None,
        })
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    n_head: usize,
    n_kv: usize,
    head_dim: usize,
    scale: f64,
    softcap: Option<f64>,
    window: Option<usize>,
}

#[derive(Debug, Clone)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let gated =
            super::train_ops::gelu_mul(&self.gate_proj.forward(x)?, &self.up_proj.forward(x)?)?;
        self.down_proj.forward(&gated)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    self_attn: Attention,
    mlp: Mlp,
    input_layernorm: RmsNorm,
    post_attention_layernorm: RmsNorm,
    pre_feedforward_layernorm: RmsNorm,
    post_feedforward_layernorm: RmsNorm,
    sliding: bool,
}

impl Layer {
    /// The rest of the block after attention: residual, then the MLP with its
    /// pre- and post-norms, then residual.
    fn finish(&self, x: &Tensor, attn_out: &Tensor) -> candle_core::Result<Tensor> {
        let x = (x + self.post_attention_layernorm.forward(attn_out)?)?;
        let h = self.pre_feedforward_layernorm.forward(&x)?;
        &x + self
            .post_feedforward_layernorm
            .forward(&self.mlp.forward(&h)?)?
    }

    /// The projections with their Hugging Face names (below `model.layers.N.`).
    fn linears_mut(&mut self) -> [(&'static str, &mut Linear); 7] {
        let (a, m) = (&mut self.self_attn, &mut self.mlp);
        [
            ("self_attn.q_proj", &mut a.q_proj),
            ("self_attn.k_proj", &mut a.k_proj),
            ("self_attn.v_proj", &mut a.v_proj),
            ("self_attn.o_proj", &mut a.o_proj),
            ("mlp.gate_proj", &mut m.gate_proj),
            ("mlp.up_proj", &mut m.up_proj),
            ("mlp.down_proj", &mut m.down_proj),
        ]
    }

    /// One block for training: `x` [b, t, hidden] from position 0, with
    /// differentiable norms, rope and softmax.
    fn forward_train(
        &self,
        x: &Tensor,
        rope: &Rope,
        mask: &Tensor,
        dropout: bool,
    ) -> candle_core::Result<Tensor> {
        let a = &self.self_attn;
        let (b, t, _) = x.dims3()?;
        let h = self.input_layernorm.forward_train(x)?;
        let heads = |proj: &Linear, n: usize| -> candle_core::Result<Tensor> {
            proj.forward_train(&h, dropout)?
                .reshape((b, t, n, a.head_dim))?
                .transpose(1, 2)
        };
        let q = a.q_norm.forward_train(&heads(&a.q_proj, a.n_head)?)?;
        let k = a.k_norm.forward_train(&heads(&a.k_proj, a.n_kv)?)?;
        let v = heads(&a.v_proj, a.n_kv)?.contiguous()?;
        let (q, k) = (rope.apply_train(&q)?, rope.apply_train(&k)?);
        let group = a.n_head / a.n_kv;
        let q = q.reshape((b, a.n_kv, group * t, a.head_dim))?;
        let scores = q.matmul(&k.t()?)?;
        let probs = if a.softcap.is_none() && scores.device().is_cpu() {
            super::train_ops::causal_softmax(&scores, t, a.scale, a.window)?
        } else {
            let mut scores = (scores * a.scale)?;
            if let Some(cap) = a.softcap {
                scores = ((scores / cap)?.tanh()? * cap)?;
            }
            let mask = mask
                .unsqueeze(0)?
                .broadcast_as((group, t, t))?
                .reshape((group * t, t))?;
            candle_nn::ops::softmax(&scores.broadcast_add(&mask)?, D::Minus1)?
        };
        let out = probs
            .matmul(&v)?
            .reshape((b, a.n_head, t, a.head_dim))?
            .transpose(1, 2)?
            .reshape((b, t, a.n_head * a.head_dim))?;
        let out = a.o_proj.forward_train(&out, dropout)?;
        let x = (x + self.post_attention_layernorm.forward_train(&out)?)?;
        let h = self.pre_feedforward_layernorm.forward_train(&x)?;
        let m = &self.mlp;
        let gated = super::train_ops::gelu_mul(
            &m.gate_proj.forward_train(&h, dropout)?,
            &m.up_proj.forward_train(&h, dropout)?,
        )?;
        let mlp = m.down_proj.forward_train(&gated, dropout)?;
        &x + self.post_feedforward_layernorm.forward_train(&mlp)?
    }
}

/// The causal masks of one training batch length (global and sliding window).
#[derive(Debug)]
pub struct TrainMasks {
    causal: Tensor,
    windowed: Tensor,
}

/// The Gemma 3 text model.
#[derive(Debug, Clone)]
pub struct Gemma3 {
    config: Config,
    embed_tokens: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Linear,
    rope_local: Rope,
    rope_global: Rope,
    device: Device,
    context: usize,
}

impl Gemma3 {
    /// Builds the model from weights; rope tables cover `context` positions.
    pub fn load(config: Config, weights: &Weights, context: usize) -> Result<Self, EngineError> {
        let device = weights.device().clone();
        let context = context.min(config.max_position_embeddings).max(1);
        let eps = config.rms_norm_eps;
        let model = "model";
        let embed_tokens = weights.embedding(&format!("{model}.embed_tokens"))?;
        let (vocab, hidden) = embed_tokens.dims2().map_err(EngineError::candle)?;
        if hidden != config.hidden_size || vocab < config.vocab_size.min(vocab) {
            return Err(EngineError::BadModel(format!(
                "embedding is {vocab}x{hidden}, config says {}x{}",
                config.vocab_size, config.hidden_size
            )));
        }
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("{model}.layers.{i}");
            let sliding = config.is_sliding(i);
            let self_attn = Attention {
                q_proj: weights.linear(&format!("{p}.self_attn.q_proj"))?,
                k_proj: weights.linear(&format!("{p}.self_attn.k_proj"))?,
                v_proj: weights.linear(&format!("{p}.self_attn.v_proj"))?,
                o_proj: weights.linear(&format!("{p}.self_attn.o_proj"))?,
                q_norm: RmsNorm::new(weights.norm(&format!("{p}.self_attn.q_norm"))?, eps),
                k_norm: RmsNorm::new(weights.norm(&format!("{p}.self_attn.k_norm"))?, eps),
                n_head: config.num_attention_heads,
                n_kv: config.num_key_value_heads,
                head_dim: config.head_dim,
                scale: 1.0 / config.query_pre_attn_scalar.sqrt(),
                softcap: config.attn_logit_softcapping,
                window: sliding.then_some(config.sliding_window),
            };
            let mlp = Mlp {
                gate_proj: weights.linear(&format!("{p}.mlp.gate_proj"))?,
                up_proj: weights.linear(&format!("{p}.mlp.up_proj"))?,
                down_proj: weights.linear(&format!("{p}.mlp.down_proj"))?,
            };
            let norm = |name: &str| -> Result<RmsNorm, EngineError> {
                Ok(RmsNorm::new(weights.norm(&format!("{p}.{name}"))?, eps))
            };
            layers.push(Layer {
                self_attn,
                mlp,
                input_layernorm: norm("input_layernorm")?,
                post_attention_layernorm: norm("post_attention_layernorm")?,
                pre_feedforward_layernorm: norm("pre_feedforward_layernorm")?,
                post_feedforward_layernorm: norm("post_feedforward_layernorm")?,
                sliding,
            });
        }
        let norm = RmsNorm::new(weights.norm(&format!("{model}.norm"))?, eps);
        let lm_head =
            weights.lm_head("lm_head", &format!("{model}.embed_tokens"), &embed_tokens)?;
        let rope =
            |base| Rope::new(config.head_dim, base, context, &device).map_err(EngineError::candle);
        Ok(Gemma3 {
            rope_local: rope(config.rope_local_base_freq)?,
            rope_global: rope(config.rope_theta)?,
            config,
            embed_tokens,
            layers,
            norm,
            lm_head,
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
            .flat_map(|(i, layer)| {
                layer
                    .linears_mut()
                    .into_iter()
                    .map(move |(name, lin)| (format!("model.layers.{i}.{name}"), lin))
            })
            .collect()
    }

    /// On the CPU, keeps a contiguous f32 copy of every projection's `Wᵀ`
    /// for many-row inputs (prompts and training) when they fit in `limit`
    /// bytes (the 270M model's take 400 MB); returns whether it did.
    /// Decoding keeps using the quantized weights.
    pub fn keep_transposed_copies(&mut self, limit: usize) -> candle_core::Result<bool> {
        if !self.device.is_cpu() {
            return Ok(false);
        }
        super::keep_transposed_copies(self, limit)
    }

    /// The output layer's weight `[vocab, hidden]` as dense f32 (the tied
    /// embedding for Gemma 3), for the trainer's loss.
    pub fn output_weight(&self) -> candle_core::Result<Tensor> {
        self.lm_head.dense_weight()
    }

    /// Masks for a training batch of `t` tokens.
    pub fn train_masks(&self, t: usize) -> candle_core::Result<TrainMasks> {
        Ok(TrainMasks {
            causal: mask(t, 0, None, &self.device)?,
            windowed: mask(t, 0, Some(self.config.sliding_window), &self.device)?,
        })
    }

    /// Training: the embedded input `[b, t, hidden]` of right-padded `ids` `[b, t]`.
    pub fn embed_train(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        self.embed(ids)
    }

    /// Training: block `i` on `x` `[b, t, hidden]`; gradients reach the
    /// adapters and `x`, never the frozen weights.
    pub fn layer_train(
        &self,
        i: usize,
        x: &Tensor,
        masks: &TrainMasks,
        dropout: bool,
    ) -> candle_core::Result<Tensor> {
        let layer = &self.layers[i];
        let (rope, mask) = if layer.sliding {
            (&self.rope_local, &masks.windowed)
        } else {
            (&self.rope_global, &masks.causal)
        };
        layer.forward_train(x, rope, mask, dropout)
    }

    /// Training: the final norm, giving what the output layer reads.
    pub fn final_norm_train(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.norm.forward_train(x)
    }

    /// Training: the whole model, hidden states after the final norm. The
    /// blocks below `frozen_below` run without a graph (no gradient is
    /// wanted there).
    pub fn forward_train(
        &self,
        ids: &Tensor,
        frozen_below: usize,
        dropout: bool,
    ) -> candle_core::Result<Tensor> {
        let masks = self.train_masks(ids.dim(1)?)?;
        let mut x = self.embed_train(ids)?;
        for i in 0..self.layers.len() {
            if i < frozen_below {
                x = x.detach();
            }
            x = self.layer_train(i, &x, &masks, dropout)?;
        }
        self.final_norm_train(&x)
    }

    /// Every tensor in Hugging Face names and conventions (norms as `w`, not
    /// `1 + w`), projections dense f32 with their adapters merged: what a
    /// fused model's safetensors hold. The output layer is tied, not listed.
    pub fn export_tensors(&self) -> candle_core::Result<Vec<(String, Tensor)>> {
        let mut out = vec![(
            "model.embed_tokens.weight".to_string(),
            self.embed_tokens.to_dtype(DType::F32)?,
        )];
        let norm = |name: String, n: &RmsNorm| -> candle_core::Result<(String, Tensor)> {
            Ok((format!("{name}.weight"), (&n.weight - 1.0)?))
        };
        out.push(norm("model.norm".into(), &self.norm)?);
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            let a = &layer.self_attn;
            out.push(norm(format!("{p}.self_attn.q_norm"), &a.q_norm)?);
            out.push(norm(format!("{p}.self_attn.k_norm"), &a.k_norm)?);
            out.push(norm(
                format!("{p}.input_layernorm"),
                &layer.input_layernorm,
            )?);
            out.push(norm(
                format!("{p}.post_attention_layernorm"),
                &layer.post_attention_layernorm,
            )?);
            out.push(norm(
                format!("{p}.pre_feedforward_layernorm"),
                &layer.pre_feedforward_layernorm,
            )?);
            out.push(norm(
                format!("{p}.post_feedforward_layernorm"),
                &layer.post_feedforward_layernorm,
            )?);
        }
        let mut layers = self.layers.clone();
        for (i, layer) in layers.iter_mut().enumerate() {
            for (name, lin) in layer.linears_mut() {
                out.push((
                    format!("model.layers.{i}.{name}.weight"),
                    lin.fused_weight()?,
                ));
            }
        }
        Ok(out)
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
        let shape = tokens.dims().to_vec();
        let flat = tokens.flatten_all()?;
        let rows = self
            .embed_tokens
            .index_select(&flat, 0)?
            .to_dtype(DType::F32)?;
        let mut dims = shape;
        dims.push(self.config.hidden_size);
        rows.reshape(dims)? * (self.config.hidden_size as f64).sqrt()
    }

    fn logits(&self, last_hidden: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.norm.forward(last_hidden)?;
        let logits = self.lm_head.forward(&x)?;
        let logits = match self.config.final_logit_softcapping {
            Some(cap) => ((logits / cap)?.tanh()? * cap)?,
            None => logits,
        };
        // Never predict ids beyond the configured vocabulary (padding rows).
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
        let windowed = mask(t, start, Some(self.config.sliding_window), &self.device)?;
        for (li, layer) in self.layers.iter().enumerate() {
            let a = &layer.self_attn;
            let h = layer.input_layernorm.forward(&x)?;
            let (q, k, v) = a.project(&h, 1, t)?;
            let rope = if layer.sliding {
                &self.rope_local
            } else {
                &self.rope_global
            };
            let q = rope.apply(&q, start)?;
            let k = rope.apply(&k, start)?;
            let m = if layer.sliding { &windowed } else { &causal };
            let out = layers::prompt_attention(cache, li, &q, &k, &v, start, m, &a.shape())?;
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
            let rope = if layer.sliding {
                &self.rope_local
            } else {
                &self.rope_global
            };
            let q = rope.apply_each(&q, &positions)?;
            let k = rope.apply_each(&k, &positions)?;
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

impl Attention {
    /// Projects `h` [b, t, hidden] to q [b, heads, t, d] and k, v [b, kv, t, d], normed.
    fn project(
        &self,
        h: &Tensor,
        b: usize,
        t: usize,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let q = self
            .q_proj
            .forward(h)?
            .reshape((b, t, self.n_head, self.head_dim))?
            .transpose(1, 2)?;
        let k = self
            .k_proj
            .forward(h)?
            .reshape((b, t, self.n_kv, self.head_dim))?
            .transpose(1, 2)?;
        let v = self
            .v_proj
            .forward(h)?
            .reshape((b, t, self.n_kv, self.head_dim))?
            .transpose(1, 2)?;
        Ok((self.q_norm.forward(&q)?, self.k_norm.forward(&k)?, v))
    }

    /// What the shared attention needs of this layer's.
    fn shape(&self) -> layers::AttentionShape {
        layers::AttentionShape {
            n_head: self.n_head,
            n_kv: self.n_kv,
            head_dim: self.head_dim,
            scale: self.scale,
            softcap: self.softcap,
            window: self.window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_pattern_follows_the_config() {
        let c = Config::preset("270m").unwrap();
        let global: Vec<usize> = (0..c.num_hidden_layers)
            .filter(|&i| !c.is_sliding(i))
            .collect();
        assert_eq!(global, [5, 11, 17]);
    }
}
