//! A base model opened for training or fusing, whatever its family.
//!
//! The trainer and [`crate::fuse`] are generic over the engine's
//! `TrainableModel`; this module is the one place that matches on the
//! family, so callers (the CLI, the evaluation library building a LEK
//! variant) hold one [`BaseModel`] and one [`AnyTrainer`].

use crate::fuse::{FuseReport, TokenizerFiles};
use crate::{TrainConfig, TrainError, TrainEvent, TrainSummary, Trainer};
use lem_engine::DeviceKind;
use lem_engine::adapter::Adapter;
use lem_engine::models::llama::Llama;
use lem_engine::models::{Model, ModelFiles};
use lem_engine::tokenizer::Tokenizer;
use lem_engine::train::{Gemma3, TrainableModel};
use std::path::Path;

/// A model with dense f32 weights, its tokenizer, and where it came from.
pub struct BaseModel {
    /// The model.
    pub model: Model,
    /// Its tokenizer (beside it, in a given directory, or the GGUF's own).
    pub tokenizer: Tokenizer,
    /// Its files.
    pub files: ModelFiles,
}

/// Longest sequence a base model is opened for.
const CONTEXT: usize = 8192;

impl BaseModel {
    /// Opens the model at `path` (a `.gguf`, dequantized, or a safetensors
    /// directory) with its tokenizer from `tokenizer_dir`, beside it, or the
    /// GGUF's own.
    pub fn load(
        path: &Path,
        tokenizer_dir: Option<&Path>,
        device: DeviceKind,
    ) -> Result<Self, TrainError> {
        let files = ModelFiles::locate(path)?;
        let tokenizer = Tokenizer::for_model(&files, tokenizer_dir, None)?;
        let device = device.open()?;
        let model = Model::load_with(&files, &device, CONTEXT, true)
            .map_err(|e| TrainError::BadConfig(format!("loading model {}: {e}", path.display())))?;
        Ok(BaseModel {
            model,
            tokenizer,
            files,
        })
    }

    /// Its transformer blocks.
    pub fn num_layers(&self) -> usize {
        match &self.model {
            Model::Gemma3(m) => m.num_layers(),
            Model::Llama(m) => m.num_layers(),
        }
    }

    /// The sha256 of its GGUF file, or of its safetensors shards in order.
    pub fn sha256(&self) -> Result<String, TrainError> {
        let hash = |p: &Path| lem_core::hash::sha256_file(p).map_err(|e| TrainError::io(p, e));
        match &self.files {
            ModelFiles::Gguf(p) => hash(p),
            ModelFiles::Safetensors { shards, .. } => {
                let parts: Vec<String> =
                    shards.iter().map(|s| hash(s)).collect::<Result<_, _>>()?;
                Ok(lem_core::hash::sha256_hex(parts.join("\n").as_bytes()))
            }
        }
    }

    /// The tokenizer files a fused model gets: copied from `tokenizer_dir`
    /// (else the model's directory) when they are there, else written from
    /// the tokenizer a GGUF carried.
    pub fn tokenizer_files(
        &self,
        tokenizer_dir: Option<&Path>,
    ) -> Result<TokenizerFiles, TrainError> {
        let dir = tokenizer_dir.unwrap_or(self.files.dir()).to_owned();
        if dir.join("tokenizer.json").is_file() {
            return Ok(TokenizerFiles::Dir(dir));
        }
        let (json, config) = self.tokenizer.hf_files()?;
        Ok(TokenizerFiles::Written { json, config })
    }

    /// A trainer of `config` on this model.
    pub fn trainer(self, config: TrainConfig) -> Result<AnyTrainer, TrainError> {
        Ok(match self.model {
            Model::Gemma3(m) => AnyTrainer::Gemma3(Trainer::new(m, self.tokenizer, config)?),
            Model::Llama(m) => AnyTrainer::Llama(Trainer::new(m, self.tokenizer, config)?),
        })
    }

    /// Merges `adapter` into the model and writes a standalone model to
    /// `out`, with `tokenizer` files.
    pub fn fuse(
        mut self,
        adapter: &Adapter,
        tokenizer: TokenizerFiles,
        out: &Path,
    ) -> Result<FuseReport, TrainError> {
        match &mut self.model {
            Model::Gemma3(m) => crate::fuse::fuse(m, adapter, tokenizer, out),
            Model::Llama(m) => crate::fuse::fuse(m, adapter, tokenizer, out),
        }
    }

    /// The Gemma 3 model, for what only Gemma 3 supports (the hand-written
    /// backward that `lem bench train` compares).
    pub fn into_gemma3(self) -> Result<(Gemma3, Tokenizer, ModelFiles), TrainError> {
        match self.model {
            Model::Gemma3(m) => Ok((m, self.tokenizer, self.files)),
            other => Err(TrainError::BadConfig(format!(
                "{}: this needs a gemma3 model; this is {}",
                self.files.dir().display(),
                other.family()
            ))),
        }
    }
}

/// A trainer of any family.
pub enum AnyTrainer {
    /// On Gemma 3.
    Gemma3(Trainer<Gemma3>),
    /// On the Llama architecture (Llama, Mistral, SmolLM2, Qwen 2/2.5).
    Llama(Trainer<Llama>),
}

impl AnyTrainer {
    /// Runs the configured training, calling `events` as it goes.
    pub fn train(
        &mut self,
        events: &mut dyn FnMut(TrainEvent),
    ) -> Result<TrainSummary, TrainError> {
        match self {
            AnyTrainer::Gemma3(t) => t.train(events),
            AnyTrainer::Llama(t) => t.train(events),
        }
    }

    /// The loss on the data's test split.
    pub fn test_loss(&self) -> Result<f32, TrainError> {
        match self {
            AnyTrainer::Gemma3(t) => t.test_loss(),
            AnyTrainer::Llama(t) => t.test_loss(),
        }
    }
}
