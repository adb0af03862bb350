//! What a trainer needs of the engine, in one place (behind the `train`
//! feature): the contract a model family implements to be trained and
//! fused ([`TrainableModel`]), Gemma 3's hand-written CPU backward
//! ([`Gemma3::layer_forward_taped`], [`Gemma3::layer_backward`]), the
//! adapter pair a trainer attaches to a projection ([`Lora`]), and the CPU
//! kernels of lem-train's fused output loss ([`matmul`], [`matmul_acc`],
//! [`exp_in_place`]).
//!
//! A family plugs in by implementing [`TrainableModel`]; the trainer then
//! trains it through candle's autograd and fuses it, without knowing which
//! family it is. The code behind this surface sits beside the inference
//! code it mirrors, each in a `train` submodule: a family's
//! (`models::gemma3`, `models::llama`), the projection's (`models::linear`)
//! and the fused ops' (`models::fused_ops`).

use crate::models::linear::Linear;
use crate::models::{Projections, gemma3};
use candle_core::{Device, IndexOp, Tensor};

pub use crate::models::fused_ops::train::exp_in_place;
pub use crate::models::gemma3::{AdapterGrads, Gemma3, LayerTape, TrainMasks};
pub use crate::models::linear::Lora;
pub use crate::models::matmul::{matmul, matmul_acc};

/// What the LoRA trainer and `lem fuse` need of a family: its projections
/// by name, a differentiable forward one block at a time, the output layer,
/// and its tensors in Hugging Face's names and layout. A family implements
/// this and trains; the trainer does not know which family it trains.
///
/// The trainer attaches adapters through [`Projections`] (by Hugging Face
/// name), runs [`TrainableModel::forward_train`] (or the blocks one by one,
/// when it checkpoints), and feeds the hidden states and
/// [`TrainableModel::output_weight`] to its fused loss; candle's autograd
/// takes the gradients to the adapters. `lem fuse` merges an adapter and
/// writes [`TrainableModel::export_tensors`] with
/// [`TrainableModel::hf_config`]. [`TrainableModel::as_gemma3`] is the one
/// family-specific hook: the hand-written CPU backward, Gemma 3's only.
pub trait TrainableModel: Projections + Clone {
    /// The masks of one training batch length.
    type Masks;
    /// Width of the residual stream.
    fn hidden_size(&self) -> usize;
    /// Vocabulary size.
    fn vocab_size(&self) -> usize;
    /// Number of blocks.
    fn num_layers(&self) -> usize;
    /// The device the weights are on.
    fn device(&self) -> &Device;
    /// The output layer's weight `[vocab, hidden]`, dense f32.
    fn output_weight(&self) -> candle_core::Result<Tensor>;
    /// Masks for a batch of `t` tokens.
    fn train_masks(&self, t: usize) -> candle_core::Result<Self::Masks>;
    /// The embedded input `[b, t, hidden]` of `ids` `[b, t]`.
    fn embed_train(&self, ids: &Tensor) -> candle_core::Result<Tensor>;
    /// Block `i` on `x`; gradients reach the adapters and `x`.
    fn layer_train(
        &self,
        i: usize,
        x: &Tensor,
        masks: &Self::Masks,
        dropout: bool,
    ) -> candle_core::Result<Tensor>;
    /// The final norm.
    fn final_norm_train(&self, x: &Tensor) -> candle_core::Result<Tensor>;
    /// Every tensor in Hugging Face names, adapters merged.
    fn export_tensors(&self) -> candle_core::Result<Vec<(String, Tensor)>>;
    /// The Hugging Face `config.json`.
    fn hf_config(&self) -> serde_json::Value;
    /// The model as Gemma 3, whose hand-written CPU backward the trainer
    /// uses when it can; `None` for families that train through autograd.
    fn as_gemma3(&self) -> Option<&gemma3::Gemma3> {
        None
    }

    /// Every matrix that writes into the residual stream, for editing them
    /// in place (abliteration): the token embedding and each block's
    /// attention output and MLP down projections, with the scale each
    /// projection's output gets before it is added (see [`ResidualWriters`]).
    fn residual_writers(&mut self) -> ResidualWriters<'_>;

    /// The residual stream of one sequence `ids` at its last token, at
    /// every block boundary: `num_layers() + 1` vectors `[hidden]`, the
    /// `i`-th the stream *entering* block `i` (the 0th is the embedded
    /// token, the last the output of the last block, before the final
    /// norm). The training forward, run without adapters' dropout.
    fn residuals(&self, ids: &[u32]) -> candle_core::Result<Vec<Tensor>> {
        let t = ids.len();
        if t == 0 {
            candle_core::bail!("residuals of an empty sequence");
        }
        let ids = Tensor::from_slice(ids, (1, t), self.device())?;
        let masks = self.train_masks(t)?;
        let mut x = self.embed_train(&ids)?;
        let mut out = Vec::with_capacity(self.num_layers() + 1);
        out.push(x.i((0, t - 1))?.detach());
        for i in 0..self.num_layers() {
            x = self.layer_train(i, &x, &masks, false)?;
            out.push(x.i((0, t - 1))?.detach());
        }
        Ok(out)
    }

    /// The whole model, hidden states after the final norm; blocks below
    /// `frozen_below` run without a graph.
    fn forward_train(
        &self,
        ids: &Tensor,
        frozen_below: usize,
        dropout: bool,
    ) -> candle_core::Result<Tensor> {
        let masks = self.train_masks(ids.dim(1)?)?;
        let mut x = self.embed_train(ids)?;
        for i in 0..self.num_layers() {
            if i < frozen_below {
                x = x.detach();
            }
            x = self.layer_train(i, &x, &masks, dropout)?;
        }
        self.final_norm_train(&x)
    }
}

/// The matrices that write into a model's residual stream
/// ([`TrainableModel::residual_writers`]).
///
/// A tied output layer is the embedding: editing [`Self::embedding`] edits
/// what an exported model's output layer is, but not the copy a loaded
/// model multiplies by, so export the model and load it again to run it.
pub struct ResidualWriters<'a> {
    /// The token embedding `[vocab, hidden]`: row `t` is written for token `t`.
    pub embedding: &'a mut Tensor,
    /// Each block's projections whose output joins the stream.
    pub projections: Vec<ResidualWrite<'a>>,
}

/// One projection `W` `[hidden, in]` whose output `y = W x` joins the
/// residual stream as `scale ⊙ y / rms(y)` when [`Self::scale`] is set
/// (Gemma 3's post-norms: the stream gets the normed output) or as `y`.
pub struct ResidualWrite<'a> {
    /// Hugging Face name (`model.layers.N.self_attn.o_proj`).
    pub name: String,
    /// The projection; replace its weight with [`Linear::set_weight`].
    pub linear: &'a mut Linear,
    /// The post-norm's weight as applied (`1 + w` for Gemma), `[hidden]`.
    pub scale: Option<Tensor>,
}
