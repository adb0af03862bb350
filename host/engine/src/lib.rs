//! The lem model engine, on candle.
//!
//! Why it is shaped so: the model families are under [`models`], all lem's
//! own (Gemma 3, a module per job; the Llama architecture), with tensor
//! names that follow Hugging Face so adapters map by name; the kernels they
//! share sit beside them. The tokenizer and its chat template
//! ([`tokenizer`], [`chat_template`]), sampling ([`sampling`]) and
//! continuous batching ([`generate`]), with generation held to a JSON schema
//! ([`constraint`]), are separate modules, and [`Engine`]
//! ties them together for callers that just want text for prompts. LoRA
//! adapters ([`adapter`]) map onto the projections by those names. The
//! per-instruction-set inner loops live in `lem-kernels`, which has no
//! candle and is tested on aarch64 under qemu; [`cpu_kernels`] says which
//! ones this CPU runs, and [`tuning`] how far ahead they prefetch here.
//!
//! Inference is all that builds by default. The `train` feature adds what
//! only training and fusing need, each part beside the inference code it
//! mirrors (a `train` submodule of a family, of the projection, of the
//! fused ops): the differentiable forward, Gemma 3's hand-written backward,
//! the export of a fused model; and the `train` module, the one surface the
//! trainer (lem-train) uses: the `TrainableModel` contract a family
//! implements, and the kernels of the trainer's loss.
#![deny(missing_docs)]

pub mod adapter;
pub mod chat_template;
pub mod constraint;
mod engine;
mod error;
pub mod generate;
mod gguf_tokenizer;
pub mod models;
pub mod sampling;
pub mod testing;
pub mod tokenizer;
#[cfg(feature = "train")]
pub mod train;
pub mod tuning;

pub use engine::{DeviceKind, Engine, LoadOptions};
pub use error::EngineError;
pub use generate::{Completion, Event, FinishReason, Request, RequestSource, TokenLogprob};
pub use sampling::SamplingParams;

/// The CPU kernels this process runs, for speed figures to say where they
/// came from: e.g. `q8_0 avx512-vnni, q4_k/q6_k avx512-vnni, prefetch 6144
/// B (calibrated), vector math avx512f` (the Q4_1 products take the same
/// path as the Q8_0 ones; the K-quant ones are candle's where lem has no
/// vector kernel).
pub fn cpu_kernels() -> String {
    let kernel = models::quantized::kernel();
    let k_quants = match lem_kernels::q4_k::vectorised(kernel) {
        true => kernel.name(),
        false => "candle",
    };
    format!(
        "q8_0 {}, q4_k/q6_k {k_quants}, {}, vector math {}",
        kernel.name(),
        models::quantized::prefetch(),
        lem_kernels::math::path()
    )
}

/// The CPU's model name, where the system says it ([`lem_kernels::cpu_model`]).
pub fn cpu_model() -> Option<String> {
    lem_kernels::cpu_model()
}
