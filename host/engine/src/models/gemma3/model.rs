//! What a Gemma 3 model is made of, and loading it: the blocks (attention
//! with its per-head norms, the GELU-gated MLP, four norms per block) and
//! the model around them (embedding, final norm, tied output layer, the
//! local and global rope tables), read from [`Weights`] by Hugging Face
//! name. The passes over these parts are in the sibling modules.

use super::Config;
use crate::EngineError;
use crate::models::layers::{RmsNorm, Rope};
use crate::models::linear::Linear;
use crate::models::weights::Weights;
use candle_core::{Device, Tensor};

/// A block's attention: projections, per-head norms of queries and keys,
/// and its shape (sliding window on the local layers).
#[derive(Debug, Clone)]
pub(super) struct Attention {
    pub(super) q_proj: Linear,
    pub(super) k_proj: Linear,
    pub(super) v_proj: Linear,
    pub(super) o_proj: Linear,
    pub(super) q_norm: RmsNorm,
    pub(super) k_norm: RmsNorm,
    pub(super) n_head: usize,
    pub(super) n_kv: usize,
    pub(super) head_dim: usize,
    pub(super) scale: f64,
    pub(super) softcap: Option<f64>,
    pub(super) window: Option<usize>,
}

/// A block's MLP: `down(gelu_tanh(gate(h)) · up(h))`.
#[derive(Debug, Clone)]
pub(super) struct Mlp {
    pub(super) gate_proj: Linear,
    pub(super) up_proj: Linear,
    pub(super) down_proj: Linear,
}

/// One decoder block: attention and MLP, each between a pre- and a post-norm.
#[derive(Debug, Clone)]
pub(super) struct Layer {
    pub(super) self_attn: Attention,
    pub(super) mlp: Mlp,
    pub(super) input_layernorm: RmsNorm,
    pub(super) post_attention_layernorm: RmsNorm,
    pub(super) pre_feedforward_layernorm: RmsNorm,
    pub(super) post_feedforward_layernorm: RmsNorm,
    pub(super) sliding: bool,
}

impl Layer {
    /// The projections with their Hugging Face names (below `model.layers.N.`).
    pub(super) fn linears_mut(&mut self) -> [(&'static str, &mut Linear); 7] {
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
}

/// The Gemma 3 text model.
#[derive(Debug, Clone)]
pub struct Gemma3 {
    pub(super) config: Config,
    pub(super) embed_tokens: Tensor,
    pub(super) layers: Vec<Layer>,
    pub(super) norm: RmsNorm,
    pub(super) lm_head: Linear,
    pub(super) rope_local: Rope,
    pub(super) rope_global: Rope,
    pub(super) device: Device,
    pub(super) context: usize,
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
        crate::models::keep_transposed_copies(self, limit)
    }
}
