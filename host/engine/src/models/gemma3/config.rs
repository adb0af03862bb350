//! What a Gemma 3 model is: a serde mirror of the text part of its
//! `config.json`, the published sizes' presets, and the same facts read
//! from GGUF metadata.

use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
            None => !(i + 1).is_multiple_of(self.sliding_window_pattern),
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

    /// Gemma 3 facts from GGUF metadata; what the file leaves out (local rope
    /// base, layer pattern) takes the published values, as llama.cpp does.
    pub fn from_gguf(md: &HashMap<String, gguf_file::Value>) -> Result<Config, String> {
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
        Ok(Config {
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
