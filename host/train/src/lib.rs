//! LoRA fine-tuning for lem: `lem train`, `lem fuse` and the dataset side
//! of `lem distill`.
//!
//! Why it is shaped so: the model is any engine family that implements
//! `lem_engine::train::TrainableModel` (Gemma 3 by default), loaded with
//! dense frozen weights; this crate adds only what training needs, and
//! reaches the engine's training side through that one module
//! (`lem_engine::train`, the engine's `train` feature). LoRA pairs
//! ([`lora`]) sit on the engine's projections by Hugging Face name, so the
//! same adapter file serves training, `lem generate --adapter` and fusing. Data ([`data`]) turns mlx_lm-style JSONL into token batches with
//! a loss mask; [`loss`] fuses the 262k-row output layer with the
//! cross-entropy so its logits never exist all at once; [`trainer`] runs the
//! loop on mlx_lm's flags and reports through a callback, so the CLI decides
//! how to show progress; [`fuse`] merges an adapter and writes a standalone
//! model; [`dataset`] writes distilled examples as a train/valid split;
//! [`abliterate`] removes a model's refusal direction (the paper's
//! abliterated baseline) and writes the model as [`fuse`] does.
#![deny(missing_docs)]

pub mod abliterate;
pub mod base;
pub mod checkpoint;
pub mod data;
pub mod dataset;
mod error;
pub mod fuse;
pub mod lora;
pub mod loss;
pub mod optim;
pub mod trainer;

pub use error::TrainError;
pub use trainer::{Backward, TrainConfig, TrainEvent, TrainSummary, Trainer};
