//! `lem distill`: the LEK data step (`lem_eval::distill`): seed prompts
//! answered by a teacher under a kernel, written as a training set.

use super::engine_args::{ModelArgs, RemoteArgs};
use crate::progress::Bars;
use anyhow::{Result, bail};
use lem_eval::distill::{self, Distill};
use lem_eval::models::Models;
use lem_plugin_host::{Runtime, RuntimeConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `lem distill`.
#[derive(clap::Args)]
pub struct Args {
    /// The teacher: a local model or `openai:BASE_URL#MODEL`, `gemini:MODEL`.
    #[arg(long, default_value = lem_eval::resolve::DEFAULT_MODEL)]
    teacher: String,
    #[command(flatten)]
    remote: RemoteArgs,
    /// Kernel plugin: a shipped kernel (none, system, sandwich) or a .wasm file.
    #[arg(long, default_value = "sandwich")]
    kernel: String,
    /// The kernel text the plugin places.
    #[arg(long, default_value = "kernel/kernel.txt")]
    kernel_text: PathBuf,
    /// The axioms (JSON) the plugin may use.
    #[arg(long, default_value = "kernel/axioms.json")]
    axioms: PathBuf,
    /// Seed prompts: a directory of .json/.jsonl files or one file; each a
    /// JSON array (or JSON lines) of {"id", "prompt", ...}.
    #[arg(long, default_value = "seeds")]
    seeds: PathBuf,
    /// Output directory: responses.jsonl, train.jsonl, valid.jsonl, distill.json.
    #[arg(long)]
    out: PathBuf,
    /// Share of examples in valid.jsonl.
    #[arg(long, default_value_t = 0.1)]
    valid_fraction: f64,
    /// Seed of the train/valid split and of sampling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Only the first N seeds.
    #[arg(long)]
    limit: Option<usize>,
    /// Teacher sampling temperature.
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 512)]
    max_tokens: usize,
    /// Sequences a local teacher decodes together.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// CPU threads of a local teacher.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let job = Distill {
        kernel: args.kernel.clone(),
        kernel_text: args.kernel_text.clone(),
        axioms: args.axioms.clone(),
        seeds: args.seeds.clone(),
        out: args.out.clone(),
        valid_fraction: args.valid_fraction,
        seed: args.seed,
        limit: args.limit,
        temperature: args.temperature,
        max_tokens: args.max_tokens,
        held_out: Vec::new(),
    };
    let engine = ModelArgs::for_spec(&args.teacher);
    let teacher =
        Models::new(engine.model_options(&args.remote, args.batch_size)).get(&args.teacher)?;
    let plugins = Runtime::new(RuntimeConfig::with_default_cache())?;
    let done = distill::distill(&job, &teacher, &plugins, &Bars::titled("distilling"))?;
    eprintln!(
        "{}: {} train + {} valid examples ({} answered now, {} empty answers skipped)",
        args.out.display(),
        done.train,
        done.valid,
        done.answered,
        done.empty
    );
    if done.failed > 0 {
        bail!(
            "{} seeds could not be answered (see above); run again to fill them in",
            done.failed
        );
    }
    Ok(ExitCode::SUCCESS)
}
