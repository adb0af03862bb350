//! Export (behind the `train` feature; `lem fuse` is its user): the model's
//! tensors in Hugging Face's names and conventions with every adapter
//! merged, and the `config.json` that loads them as `Gemma3ForCausalLM`.

use super::model::Gemma3;
use crate::models::layers::RmsNorm;
use candle_core::{DType, Tensor};

impl Gemma3 {
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

    /// The Hugging Face `config.json` of the exported model: this config
    /// with the fields transformers reads to load it as `Gemma3ForCausalLM`.
    pub(super) fn fused_config(&self) -> serde_json::Value {
        let mut config = serde_json::to_value(self.config()).expect("config serializes");
        if let Some(obj) = config.as_object_mut() {
            obj.insert("model_type".into(), "gemma3_text".into());
            obj.insert(
                "architectures".into(),
                serde_json::json!(["Gemma3ForCausalLM"]),
            );
            obj.insert("hidden_activation".into(), "gelu_pytorch_tanh".into());
            obj.insert("tie_word_embeddings".into(), true.into());
            obj.insert("torch_dtype".into(), "float32".into());
        }
        config
    }
}
