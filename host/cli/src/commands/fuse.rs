//! `lem fuse`: merge a LoRA adapter into its base model and write a
//! standalone safetensors model directory.

use super::engine_args::{BaseModelArgs, fix_threads};
use anyhow::{Context, Result};
use lem_engine::DeviceKind;
use lem_engine::adapter::Adapter;
use lem_engine::models::Model;
use lem_train::fuse::{TokenizerFiles, fuse};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `lem fuse`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    base: BaseModelArgs,
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
    fix_threads(args.base.threads);
    let path = crate::resolve::model(&args.base.model)?;
    let (model, tokenizer, files) =
        super::train::load_dense(&path, args.base.tokenizer.as_deref(), DeviceKind::Cpu)?;
    let adapter = Adapter::load(&args.adapter_path, &DeviceKind::Cpu.open()?)
        .with_context(|| format!("reading adapter {}", args.adapter_path.display()))?;
    let tokenizer_dir = args
        .base
        .tokenizer
        .clone()
        .unwrap_or(files.dir().to_owned());
    // A GGUF that carried its own tokenizer gets it written out.
    let tokenizer_files = if tokenizer_dir.join("tokenizer.json").is_file() {
        TokenizerFiles::Dir(tokenizer_dir)
    } else {
        let (json, config) = tokenizer.hf_files()?;
        TokenizerFiles::Written { json, config }
    };
    let report = match model {
        Model::Gemma3(mut m) => fuse(&mut m, &adapter, tokenizer_files, &args.save_path)?,
        Model::Llama(mut m) => fuse(&mut m, &adapter, tokenizer_files, &args.save_path)?,
    };
    eprintln!(
        "Fused {} adapters into {} ({} tensors, {:.1} MB of f32 weights)",
        report.fused_modules,
        args.save_path.display(),
        report.tensors,
        report.bytes as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}
