//! `lem fuse`: merge a LoRA adapter into its base model and write a
//! standalone safetensors model directory.

use super::engine_args::BaseModelArgs;
use anyhow::{Context, Result};
use lem_engine::DeviceKind;
use lem_engine::adapter::Adapter;
use lem_train::base::BaseModel;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `lem fuse`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) base: BaseModelArgs,
    /// The adapter directory (adapter_config.json, adapter_model.safetensors).
    #[arg(long, default_value = "adapters")]
    adapter_path: PathBuf,
    /// Where the fused model goes (must not exist, or be empty).
    #[arg(long, default_value = "fused_model")]
    save_path: PathBuf,
    /// Accepted for mlx_lm parity: lem always writes dense f32 safetensors
    /// (a quantized GGUF base is dequantized before merging).
    #[arg(long)]
    dequantize: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let _ = args.dequantize;
    let path = lem_eval::resolve::model(&args.base.model)?;
    let base = BaseModel::load(&path, args.base.tokenizer.as_deref(), DeviceKind::Cpu)?;
    let adapter = Adapter::load(&args.adapter_path, &DeviceKind::Cpu.open()?)
        .with_context(|| format!("reading adapter {}", args.adapter_path.display()))?;
    // A GGUF that carried its own tokenizer gets it written out.
    let tokenizer = base.tokenizer_files(args.base.tokenizer.as_deref())?;
    let report = base.fuse(&adapter, tokenizer, &args.save_path)?;
    eprintln!(
        "Fused {} adapters into {} ({} tensors, {:.1} MB of f32 weights)",
        report.fused_modules,
        args.save_path.display(),
        report.tensors,
        report.bytes as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}
