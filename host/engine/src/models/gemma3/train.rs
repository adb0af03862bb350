//! Training (behind the `train` feature): the differentiable forward that
//! candle's autograd runs backward, one block at a time, and Gemma 3's
//! [`TrainableModel`]. Norms, rope and the causal softmax are the fused
//! differentiable ops of [`crate::models::fused_ops::train`]; the
//! projections give gradients to their adapters and inputs, never to the
//! frozen weights. The hand-written CPU backward, which the trainer prefers
//! where it serves, is in [`super::tape`].

use super::model::{Gemma3, Layer};
use crate::models::fused_ops::gelu_mul;
use crate::models::fused_ops::train::causal_softmax;
use crate::models::layers::{Rope, mask};
use crate::models::linear::Linear;
use crate::train::TrainableModel;
use candle_core::{D, Device, Tensor};

impl Layer {
    /// One block for training: `x` [b, t, hidden] from position 0, with
    /// differentiable norms, rope and softmax.
    pub(super) fn forward_train(
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
            causal_softmax(&scores, t, a.scale, a.window)?
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
        let gated = gelu_mul(
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

impl Gemma3 {
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
}

/// Training and fusing (see [`TrainableModel`]); on the CPU the trainer
/// uses the hand-written backward ([`TrainableModel::as_gemma3`]).
impl TrainableModel for Gemma3 {
    type Masks = TrainMasks;
    fn hidden_size(&self) -> usize {
        self.config().hidden_size
    }
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }
    fn num_layers(&self) -> usize {
        self.config().num_hidden_layers
    }
    fn device(&self) -> &Device {
        Gemma3::device(self)
    }
    fn output_weight(&self) -> candle_core::Result<Tensor> {
        Gemma3::output_weight(self)
    }
    fn train_masks(&self, t: usize) -> candle_core::Result<Self::Masks> {
        Gemma3::train_masks(self, t)
    }
    fn embed_train(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        Gemma3::embed_train(self, ids)
    }
    fn layer_train(
        &self,
        i: usize,
        x: &Tensor,
        masks: &Self::Masks,
        dropout: bool,
    ) -> candle_core::Result<Tensor> {
        Gemma3::layer_train(self, i, x, masks, dropout)
    }
    fn final_norm_train(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Gemma3::final_norm_train(self, x)
    }
    fn export_tensors(&self) -> candle_core::Result<Vec<(String, Tensor)>> {
        Gemma3::export_tensors(self)
    }
    fn hf_config(&self) -> serde_json::Value {
        self.fused_config()
    }
    /// The embedding, and each block's `o_proj` and `down_proj` with the
    /// weight of the post-norm its output passes through before the
    /// residual add (`post_attention_layernorm`, `post_feedforward_layernorm`).
    fn residual_writers(&mut self) -> crate::train::ResidualWriters<'_> {
        let projections = self
            .layers
            .iter_mut()
            .enumerate()
            .flat_map(|(i, l)| {
                let p = format!("model.layers.{i}");
                [
                    crate::train::ResidualWrite {
                        name: format!("{p}.self_attn.o_proj"),
                        scale: Some(l.post_attention_layernorm.weight.clone()),
                        linear: &mut l.self_attn.o_proj,
                    },
                    crate::train::ResidualWrite {
                        name: format!("{p}.mlp.down_proj"),
                        scale: Some(l.post_feedforward_layernorm.weight.clone()),
                        linear: &mut l.mlp.down_proj,
                    },
                ]
            })
            .collect();
        crate::train::ResidualWriters {
            embedding: &mut self.embed_tokens,
            projections,
        }
    }
    fn as_gemma3(&self) -> Option<&Gemma3> {
        Some(self)
    }
}
