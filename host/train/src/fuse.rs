//! `lem fuse`: merge an adapter into the weights (`W + scale·B·A`, in f32)
//! and write a standalone Hugging Face-style model directory
//! (`config.json`, `model.safetensors`, the tokenizer files) that lem loads
//! like any other safetensors model.

use crate::TrainError;
use lem_engine::adapter::Adapter;
use lem_engine::train::TrainableModel;
use std::collections::HashMap;
use std::path::Path;

/// Tokenizer files copied beside the fused weights when present.
const TOKENIZER_FILES: [&str; 4] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
];

/// Where a fused model's tokenizer files come from.
#[derive(Debug, Clone)]
pub enum TokenizerFiles {
    /// Copied from a directory (the files of [`TOKENIZER_FILES`] present there).
    Dir(std::path::PathBuf),
    /// Written: `tokenizer.json` text and `tokenizer_config.json`, for a base
    /// GGUF that carried its own tokenizer.
    Written {
        /// `tokenizer.json`.
        json: String,
        /// `tokenizer_config.json`.
        config: serde_json::Value,
    },
}

impl From<&Path> for TokenizerFiles {
    fn from(dir: &Path) -> Self {
        TokenizerFiles::Dir(dir.to_owned())
    }
}

impl From<&std::path::PathBuf> for TokenizerFiles {
    fn from(dir: &std::path::PathBuf) -> Self {
        TokenizerFiles::Dir(dir.clone())
    }
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FuseReport {
    /// Projections that had an adapter merged.
    pub fused_modules: usize,
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of `model.safetensors`.
    pub bytes: u64,
}

/// Merges `adapter` into `model` (dense, as loaded for training) and writes
/// the result to `out`, which must not exist or be empty. The files are
/// written into `out.partial` and renamed at the end, so an interrupted
/// fuse leaves no half model behind.
pub fn fuse(
    model: &mut impl TrainableModel,
    adapter: &Adapter,
    tokenizer: impl Into<TokenizerFiles>,
    out: &Path,
) -> Result<FuseReport, TrainError> {
    check_save_path(out)?;
    adapter.apply(model)?;
    let (tensors, bytes) = write_model(model, tokenizer, out)?;
    Ok(FuseReport {
        fused_modules: adapter.modules.len(),
        tensors,
        bytes,
    })
}

/// Refuses a `--save-path` that exists and is not empty (nothing is
/// overwritten).
pub fn check_save_path(out: &Path) -> Result<(), TrainError> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| TrainError::io(out, e))?
            .next()
            .is_some()
    {
        return Err(TrainError::BadConfig(format!(
            "{} already exists and is not empty: choose another --save-path (nothing was overwritten)",
            out.display()
        )));
    }
    Ok(())
}

/// Writes `model` (its [`TrainableModel::export_tensors`], adapters merged,
/// and [`TrainableModel::hf_config`]) with `tokenizer` files as a standalone
/// model directory `out`; returns the tensors written and the bytes of
/// `model.safetensors`. The files are written into `out.partial` and
/// renamed at the end, so an interrupted write leaves no half model behind.
pub fn write_model(
    model: &impl TrainableModel,
    tokenizer: impl Into<TokenizerFiles>,
    out: &Path,
) -> Result<(usize, u64), TrainError> {
    check_save_path(out)?;
    let tensors = model.export_tensors()?;
    let count = tensors.len();
    let map: HashMap<String, candle_core::Tensor> = tensors.into_iter().collect();
    let partial = out.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| TrainError::io(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| TrainError::io(&partial, e))?;
    let weights = partial.join("model.safetensors");
    candle_core::safetensors::save(&map, &weights)?;
    let config = model.hf_config();
    let config_path = partial.join("config.json");
    std::fs::write(
        &config_path,
        serde_json::to_string_pretty(&config).expect("json"),
    )
    .map_err(|e| TrainError::io(&config_path, e))?;
    match tokenizer.into() {
        TokenizerFiles::Dir(dir) => {
            for name in TOKENIZER_FILES {
                let src = dir.join(name);
                if src.is_file() {
                    std::fs::copy(&src, partial.join(name)).map_err(|e| TrainError::io(&src, e))?;
                }
            }
        }
        TokenizerFiles::Written { json, config } => {
            let path = partial.join("tokenizer.json");
            std::fs::write(&path, json).map_err(|e| TrainError::io(&path, e))?;
            let path = partial.join("tokenizer_config.json");
            std::fs::write(&path, serde_json::to_string_pretty(&config).expect("json"))
                .map_err(|e| TrainError::io(&path, e))?;
        }
    }
    let bytes = std::fs::metadata(&weights)
        .map_err(|e| TrainError::io(&weights, e))?
        .len();
    if out.exists() {
        std::fs::remove_dir(out).map_err(|e| TrainError::io(out, e))?;
    }
    std::fs::rename(&partial, out).map_err(|e| TrainError::io(out, e))?;
    Ok((count, bytes))
}
