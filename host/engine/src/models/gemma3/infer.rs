//! Inference: a prompt through the model into its sequence's cache
//! ([`Gemma3::prefill`]), and one token for each of several sequences in one
//! batch ([`Gemma3::decode`]), each against its own cache and position.
//! Norms and rope are candle's fused kernels, attention is the families'
//! shared prompt and token attention ([`crate::models::layers`]), and the
//! MLP's gated product is [`crate::models::fused_ops::gelu_mul`].

use super::model::{Attention, Gemma3, Layer, Mlp};
use crate::EngineError;
use crate::models::fused_ops::gelu_mul;
use crate::models::layers::{self, KvCache, mask};
use candle_core::{D, DType, IndexOp, Tensor};

impl Mlp {
    /// `down(gelu_tanh(gate(x)) · up(x))`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let gated = gelu_mul(&self.gate_proj.forward(x)?, &self.up_proj.forward(x)?)?;
        self.down_proj.forward(&gated)
    }
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
}

impl Gemma3 {
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

    pub(super) fn embed(&self, tokens: &Tensor) -> candle_core::Result<Tensor> {
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
