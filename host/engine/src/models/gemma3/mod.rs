//! Gemma 3, text part: [Gemma 3 Technical Report](https://arxiv.org/abs/2503.19786).
//!
//! lem owns this family rather than using candle-transformers'
//! `quantized_gemma3` because generation needs what that one lacks: GELU
//! (tanh) in the MLP, rope tables sized to the context and shared between
//! layers, the sliding window in the decode cache, per-sequence positions
//! and KV caches so several prompts decode in one batch, and weights that
//! are either quantized (`QMatMul` from GGUF) or dense f32 (safetensors), so
//! the same model serves inference and the LoRA trainer.
//!
//! Module paths are the Hugging Face tensor names
//! (`model.layers.N.self_attn.q_proj`); GGUF files are read through the
//! name map in [`super::weights`].
//!
//! One module per job, each adding its own `impl` blocks to the one model
//! ([`Gemma3`]):
//!
//! - `config`: what a model is: the mirror of `config.json`, presets, GGUF
//!   metadata.
//! - `model`: what it is made of (blocks, norms, rope tables) and loading it
//!   from weights.
//! - `infer`: inference: a prompt into its cache, and batched decode.
//!
//! Behind the `train` feature, what only the trainer and `lem fuse` need:
//!
//! - `train`: the differentiable forward (for candle's autograd) and
//!   Gemma 3's `TrainableModel` (`crate::train`).
//! - `tape`: the hand-written CPU backward, one block at a time.
//! - `export`: the tensors and `config.json` of a fused model.

mod config;
#[cfg(feature = "train")]
mod export;
mod infer;
mod model;
#[cfg(feature = "train")]
mod tape;
#[cfg(feature = "train")]
mod train;

pub use config::Config;
pub use model::Gemma3;
#[cfg(feature = "train")]
pub use tape::{AdapterGrads, LayerTape};
#[cfg(feature = "train")]
pub use train::TrainMasks;
