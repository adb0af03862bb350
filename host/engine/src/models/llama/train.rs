//! Training and fusing a Llama-architecture model (behind the `train`
//! feature): its [`TrainableModel`], whose differentiable forward candle's
//! autograd runs backward.

use super::Llama;
use crate::models::fused_ops::train::causal_softmax;
use crate::models::layers::mask;
use crate::models::linear::Linear;
use crate::train::TrainableModel;
use candle_core::{D, Device, Tensor};

/// Training and fusing (see [`TrainableModel`]); the backward is candle's
/// autograd, the hand-written one being Gemma 3's only so far.
impl TrainableModel for Llama {
    type Masks = Tensor;

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn num_layers(&self) -> usize {
        self.config.num_hidden_layers
    }

    fn device(&self) -> &Device {
        &self.device
    }

    /// The Hugging Face `config.json` of this model.
    fn hf_config(&self) -> serde_json::Value {
        self.config.to_hf(self.tied)
    }

    /// The output layer's weight `[vocab, hidden]` as dense f32.
    fn output_weight(&self) -> candle_core::Result<Tensor> {
        self.lm_head.dense_weight()
    }

    /// Training: the causal mask of a batch of `t` tokens.
    fn train_masks(&self, t: usize) -> candle_core::Result<Tensor> {
        mask(t, 0, None, &self.device)
    }

    /// Training: the embedded input `[b, t, hidden]` of `ids` `[b, t]`.
    fn embed_train(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        self.embed(ids)
    }

    /// Training: block `i` on `x` `[b, t, hidden]` from position 0, with
    /// differentiable norms, rope and softmax (candle's autograd computes the
    /// backward; the hand-written one is Gemma 3's only so far).
    fn layer_train(
        &self,
        i: usize,
        x: &Tensor,
        mask: &Self::Masks,
        dropout: bool,
    ) -> candle_core::Result<Tensor> {
        let layer = &self.layers[i];
        let a = &layer.self_attn;
        let (b, t, _) = x.dims3()?;
        let h = layer.input_layernorm.forward_train(x)?;
        let heads = |proj: &Linear, idx: usize, n: usize| -> candle_core::Result<Tensor> {
            let mut y = proj.forward_train(&h, dropout)?;
            if let Some(biases) = &a.biases {
                y = y.broadcast_add(&biases[idx])?;
            }
            y.reshape((b, t, n, a.head_dim))?.transpose(1, 2)
        };
        let q = self
            .rope
            .apply_train(&heads(&a.q_proj, 0, a.n_head)?.contiguous()?)?;
        let k = self
            .rope
            .apply_train(&heads(&a.k_proj, 1, a.n_kv)?.contiguous()?)?;
        let v = heads(&a.v_proj, 2, a.n_kv)?.contiguous()?;
        let group = a.n_head / a.n_kv;
        let q = q
            .contiguous()?
            .reshape((b, a.n_kv, group * t, a.head_dim))?;
        let scores = q.matmul(&k.t()?)?;
        let probs = if scores.device().is_cpu() {
            causal_softmax(&scores, t, a.scale, None)?
        } else {
            let mask = mask
                .unsqueeze(0)?
                .broadcast_as((group, t, t))?
                .reshape((group * t, t))?;
            candle_nn::ops::softmax(&(scores * a.scale)?.broadcast_add(&mask)?, D::Minus1)?
        };
        let out = probs
            .matmul(&v)?
            .reshape((b, a.n_head, t, a.head_dim))?
            .transpose(1, 2)?
            .reshape((b, t, a.n_head * a.head_dim))?;
        let x = (x + a.o_proj.forward_train(&out, dropout)?)?;
        let h = layer.post_attention_layernorm.forward_train(&x)?;
        let gated = (candle_nn::ops::silu(&layer.gate_proj.forward_train(&h, dropout)?)?
            * layer.up_proj.forward_train(&h, dropout)?)?;
        &x + layer.down_proj.forward_train(&gated, dropout)?
    }

    /// The embedding, and each block's `o_proj` and `down_proj` (added to
    /// the stream as they are: no post-norms).
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
                        scale: None,
                        linear: &mut l.self_attn.o_proj,
                    },
                    crate::train::ResidualWrite {
                        name: format!("{p}.mlp.down_proj"),
                        scale: None,
                        linear: &mut l.down_proj,
                    },
                ]
            })
            .collect();
        crate::train::ResidualWriters {
            embedding: &mut self.embed_tokens,
            projections,
        }
    }

    /// Training: the final norm, giving what the output layer reads.
    fn final_norm_train(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.norm.forward_train(x)
    }

    /// Every tensor in Hugging Face names and layout, projections dense f32
    /// with their adapters merged: what a fused model's safetensors hold.
    fn export_tensors(&self) -> candle_core::Result<Vec<(String, Tensor)>> {
        let mut out = vec![
            (
                "model.embed_tokens.weight".to_string(),
                self.embed_tokens.to_dtype(candle_core::DType::F32)?,
            ),
            ("model.norm.weight".to_string(), self.norm.weight.clone()),
        ];
        if !self.tied {
            out.push(("lm_head.weight".into(), self.lm_head.dense_weight()?));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            out.push((
                format!("{p}.input_layernorm.weight"),
                layer.input_layernorm.weight.clone(),
            ));
            out.push((
                format!("{p}.post_attention_layernorm.weight"),
                layer.post_attention_layernorm.weight.clone(),
            ));
            if let Some([q, k, v]) = &layer.self_attn.biases {
                for (name, bias) in [("q_proj", q), ("k_proj", k), ("v_proj", v)] {
                    out.push((format!("{p}.self_attn.{name}.bias"), bias.clone()));
                }
            }
        }
        let mut model = self.clone();
        for (name, lin) in model.linears_mut() {
            out.push((format!("{name}.weight"), lin.fused_weight()?));
        }
        Ok(out)
    }
}
