//! Where a model's tensors come from: a GGUF file (quantized) or
//! safetensors shards (dense). Models ask by Hugging Face name
//! (`model.layers.3.self_attn.q_proj`); GGUF files are read through the
//! llama.cpp name map, so model code and LoRA adapters use one set of names.

use super::linear::Linear;
use crate::EngineError;
use candle_core::quantized::{QMatMul, gguf_file};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

enum Source {
    Gguf {
        content: gguf_file::Content,
        file: Mutex<std::fs::File>,
    },
    Safetensors(VarBuilder<'static>),
}

/// The tensors of one model.
pub struct Weights {
    source: Source,
    origin: PathBuf,
    device: Device,
    dense: bool,
    /// `general.architecture` of a GGUF: its tensor names differ by family.
    arch: String,
}

impl Weights {
    /// Opens a GGUF file and reads its header.
    pub fn gguf(path: &Path, device: &Device) -> Result<Self, EngineError> {
        let mut file =
            std::fs::File::open(path).map_err(|e| EngineError::Io(path.to_owned(), e))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| EngineError::BadFile {
            path: path.to_owned(),
            reason: format!("not a readable GGUF file: {e}"),
        })?;
        if device.is_cpu() {
            // The quantized products' prefetch distance is measured (once
            // per machine) here, at load, not inside the first product.
            let _ = super::quantized::kernel();
        }
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        Ok(Weights {
            source: Source::Gguf {
                content,
                file: Mutex::new(file),
            },
            origin: path.to_owned(),
            device: device.clone(),
            dense: false,
            arch,
        })
    }

    /// Memory-maps safetensors shards; dense weights are used as f32.
    pub fn safetensors(files: &[PathBuf], device: &Device) -> Result<Self, EngineError> {
        for f in files {
            check_safetensors_header(f)?;
        }
        // SAFETY: the files are opened read-only and must not change while mapped,
        // as with any memory-mapped model file.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(files, DType::F32, device) }
            .map_err(|e| EngineError::BadFile {
                path: files.first().cloned().unwrap_or_default(),
                reason: format!("cannot map safetensors: {e}"),
            })?;
        Ok(Weights {
            source: Source::Safetensors(vb),
            origin: files.first().cloned().unwrap_or_default(),
            device: device.clone(),
            dense: true,
            arch: String::new(),
        })
    }

    /// Projections are dequantized to dense f32 on load (the trainer's
    /// frozen base: autograd and LoRA fusing need dense weights).
    pub fn dequantized(mut self) -> Self {
        self.dense = true;
        self
    }

    /// Whether projections load dense (f32), for training and fusing.
    pub fn is_dense(&self) -> bool {
        self.dense
    }

    /// The device tensors are loaded to.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// GGUF metadata (empty for safetensors).
    pub fn gguf_metadata(&self) -> Option<&std::collections::HashMap<String, gguf_file::Value>> {
        match &self.source {
            Source::Gguf { content, .. } => Some(&content.metadata),
            Source::Safetensors(_) => None,
        }
    }

    fn missing(&self, name: &str, detail: impl std::fmt::Display) -> EngineError {
        EngineError::BadFile {
            path: self.origin.clone(),
            reason: format!("tensor `{name}`: {detail}"),
        }
    }

    /// The GGUF name of a Hugging Face tensor name, with its suffix.
    fn gguf_tensor(&self, hf_name: &str, suffix: &str) -> String {
        format!("{}.{suffix}", gguf_name_for(&self.arch, hf_name))
    }

    /// The GGUF tensor stored as `name`; `None` when the file has no such
    /// tensor, or the weights are not a GGUF.
    fn gguf_tensor_named(
        &self,
        name: &str,
    ) -> Result<Option<candle_core::quantized::QTensor>, EngineError> {
        let Source::Gguf { content, file } = &self.source else {
            return Ok(None);
        };
        if !content.tensor_infos.contains_key(name) {
            return Ok(None);
        }
        let mut file = file
            .lock()
            .map_err(|_| self.missing(name, "reader poisoned"))?;
        content
            .tensor(&mut *file, name, &self.device)
            .map(Some)
            .map_err(|e| self.missing(name, e))
    }

    /// A weight by Hugging Face name from a GGUF (which must have it);
    /// `None` for safetensors.
    fn qtensor(
        &self,
        hf_name: &str,
    ) -> Result<Option<candle_core::quantized::QTensor>, EngineError> {
        if !matches!(self.source, Source::Gguf { .. }) {
            return Ok(None);
        }
        let name = self.gguf_tensor(hf_name, "weight");
        match self.gguf_tensor_named(&name)? {
            Some(q) => Ok(Some(q)),
            None => Err(self.missing(&name, "not in the GGUF file")),
        }
    }

    fn dense(&self, hf_name: &str) -> Result<Tensor, EngineError> {
        match &self.source {
            Source::Safetensors(vb) => {
                let name = format!("{hf_name}.weight");
                vb.get_unchecked(&name).map_err(|e| self.missing(&name, e))
            }
            Source::Gguf { .. } => {
                let q = self.qtensor(hf_name)?.expect("gguf source");
                q.dequantize(&self.device)
                    .map_err(|e| self.missing(hf_name, e))
            }
        }
    }

    /// Whether the model has a tensor (by Hugging Face name, without `.weight`).
    pub fn contains(&self, hf_name: &str) -> bool {
        match &self.source {
            Source::Gguf { content, .. } => content
                .tensor_infos
                .contains_key(&self.gguf_tensor(hf_name, "weight")),
            Source::Safetensors(vb) => vb.contains_tensor(&format!("{hf_name}.weight")),
        }
    }

    /// A projection `[out, in]`.
    pub fn linear(&self, hf_name: &str) -> Result<Linear, EngineError> {
        if self.dense {
            return Ok(Linear::new(QMatMul::Tensor(self.dense(hf_name)?)));
        }
        match self.qtensor(hf_name)? {
            Some(q) => super::repack::for_cpu_decode(q)
                .and_then(|q| QMatMul::from_arc(Arc::new(q)))
                .map(Linear::new)
                .map_err(|e| self.missing(hf_name, e)),
            None => Ok(Linear::new(QMatMul::Tensor(self.dense(hf_name)?))),
        }
    }

    /// A Gemma RMSNorm weight as the model multiplies by it: GGUF files store
    /// `1 + w` already; Hugging Face files store `w`.
    pub fn norm(&self, hf_name: &str) -> Result<Tensor, EngineError> {
        let w = self.dense(hf_name)?;
        match &self.source {
            Source::Gguf { .. } => Ok(w),
            Source::Safetensors(_) => (w + 1.0).map_err(|e| self.missing(hf_name, e)),
        }
    }

    /// A vector or matrix used as stored, dense f32 (a Llama RMSNorm weight).
    pub fn tensor(&self, hf_name: &str) -> Result<Tensor, EngineError> {
        self.dense(hf_name)
    }

    /// A projection's bias, if the model has one (`...q_proj.bias`).
    pub fn bias(&self, hf_name: &str) -> Result<Option<Tensor>, EngineError> {
        match &self.source {
            Source::Safetensors(vb) => {
                let name = format!("{hf_name}.bias");
                if !vb.contains_tensor(&name) {
                    return Ok(None);
                }
                vb.get_unchecked(&name)
                    .map(Some)
                    .map_err(|e| self.missing(&name, e))
            }
            Source::Gguf { .. } => self.gguf_raw(&self.gguf_tensor(hf_name, "bias")),
        }
    }

    /// A GGUF tensor by its own name (`rope_freqs.weight`), dequantized, if present.
    pub fn gguf_raw(&self, name: &str) -> Result<Option<Tensor>, EngineError> {
        self.gguf_tensor_named(name)?
            .map(|q| q.dequantize(&self.device))
            .transpose()
            .map_err(|e| self.missing(name, e))
    }

    /// The token embedding `[vocab, hidden]`, dequantized to f32 (f16 would
    /// halve its memory but rounds Q8_0 rows enough to change greedy output).
    pub fn embedding(&self, hf_name: &str) -> Result<Tensor, EngineError> {
        match self.qtensor(hf_name)? {
            Some(q) => q
                .dequantize(&self.device)
                .map_err(|e| self.missing(hf_name, e)),
            None => self.dense(hf_name),
        }
    }

    /// The output layer: `lm_name` if present, else the tied embedding
    /// (shared with `embedding` when weights are dense, not copied).
    pub fn lm_head(
        &self,
        lm_name: &str,
        tied: &str,
        embedding: &Tensor,
    ) -> Result<Linear, EngineError> {
        if self.contains(lm_name) {
            self.linear(lm_name)
        } else if self.dense {
            Ok(Linear::new(QMatMul::Tensor(embedding.clone())))
        } else {
            self.linear(tied)
        }
    }
}

/// The llama.cpp name of a Hugging Face tensor (without `.weight`) in a
/// GGUF of architecture `arch`: Llama-family blocks have one norm before the
/// MLP, which Hugging Face calls `post_attention_layernorm` and llama.cpp
/// `ffn_norm` (Gemma 3's `post_attention_norm` is a different, extra norm).
pub fn gguf_name_for(arch: &str, hf_name: &str) -> String {
    if arch != "gemma3"
        && let Some(layer) = hf_name
            .strip_prefix("model.layers.")
            .and_then(|rest| rest.strip_suffix(".post_attention_layernorm"))
    {
        return format!("blk.{layer}.ffn_norm");
    }
    gguf_name(hf_name)
}

/// The llama.cpp name of a Hugging Face tensor (without `.weight`), Gemma 3's map.
pub fn gguf_name(hf_name: &str) -> String {
    let name = hf_name.strip_prefix("model.").unwrap_or(hf_name);
    match name {
        "embed_tokens" => return "token_embd".into(),
        "norm" => return "output_norm".into(),
        "lm_head" => return "output".into(),
        _ => {}
    }
    let Some(rest) = name.strip_prefix("layers.") else {
        return name.to_string();
    };
    let (index, part) = rest.split_once('.').unwrap_or((rest, ""));
    let part = match part {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "post_attention_norm",
        "pre_feedforward_layernorm" => "ffn_norm",
        "post_feedforward_layernorm" => "post_ffw_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        other => other,
    };
    format!("blk.{index}.{part}")
}

/// Refuses a file that is not safetensors before it is mapped.
fn check_safetensors_header(path: &Path) -> Result<(), EngineError> {
    use std::io::Read;
    let bad = |reason: String| EngineError::BadFile {
        path: path.to_owned(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(|e| EngineError::Io(path.to_owned(), e))?;
    let size = file
        .metadata()
        .map_err(|e| EngineError::Io(path.to_owned(), e))?
        .len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("too short to be a safetensors file".into()))?;
    let n = u64::from_le_bytes(len);
    if n == 0 || n > size.saturating_sub(8) || n > 100 << 20 {
        return Err(bad(format!(
            "header length {n} does not fit a {size}-byte file: not a safetensors file, or truncated"
        )));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)
        .map_err(|_| bad("truncated header".into()))?;
    serde_json::from_slice::<serde_json::Value>(&header)
        .map_err(|e| bad(format!("header is not JSON: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_follow_llama_cpp() {
        assert_eq!(gguf_name("model.embed_tokens"), "token_embd");
        assert_eq!(gguf_name("model.layers.7.self_attn.q_proj"), "blk.7.attn_q");
        assert_eq!(
            gguf_name("model.layers.0.pre_feedforward_layernorm"),
            "blk.0.ffn_norm"
        );
        assert_eq!(
            gguf_name("model.layers.17.post_feedforward_layernorm"),
            "blk.17.post_ffw_norm"
        );
        assert_eq!(gguf_name("model.layers.2.mlp.down_proj"), "blk.2.ffn_down");
        assert_eq!(gguf_name("model.norm"), "output_norm");
        assert_eq!(
            gguf_name_for("qwen2", "model.layers.3.post_attention_layernorm"),
            "blk.3.ffn_norm"
        );
        assert_eq!(
            gguf_name_for("gemma3", "model.layers.3.post_attention_layernorm"),
            "blk.3.post_attention_norm"
        );
    }
}
