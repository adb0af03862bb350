//! `lem generate`: answer every item of a benchmark with a model; resumable.

use super::engine_args::{ModelArgs, RemoteArgs, SamplingArgs};
use anyhow::{Result, bail};
use lem_eval::generate::{self, GenerateJob, KernelStep, PromptMaker};
use lem_eval::models::Models;
use lem_plugin_host::{Runtime, RuntimeConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `lem generate`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Shipped benchmark name or manifest path.
    #[arg(long)]
    benchmark: String,
    /// Benchmark data (JSONL); defaults to the manifest's data file.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Only the first N items.
    #[arg(long)]
    limit: Option<usize>,
    /// Responses file; appended to and resumed (items already there are skipped).
    #[arg(long)]
    out: PathBuf,
    /// Sequences a local model decodes together.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// The model's name in the records (default: the model file's or remote model's name).
    #[arg(long)]
    model_name: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let manifest = lem_eval::resolve::benchmark(&args.benchmark)?;
    let mut items = lem_eval::data::load_items(&manifest, args.data.as_deref())?;
    if let Some(limit) = args.limit {
        items.truncate(limit);
    }
    let runtime = Runtime::new(RuntimeConfig::with_default_cache())?;
    let prompts = PromptMaker::load(&runtime, &manifest, &lem_core::Limits::default())?;
    let mut models = Models::new(args.model.model_options(&args.remote, args.batch_size));
    let model = models.get(&args.model.model)?;
    let params = args.sampling.params(
        manifest.generation.temperature,
        manifest.generation.max_tokens as usize,
    );
    let rt = lem_eval::models::runtime()?;
    let done = generate::generate(
        GenerateJob {
            manifest: &manifest,
            items: &items,
            prompts: &prompts,
            kernel: KernelStep::none(),
            model: &model,
            model_name: args
                .model_name
                .clone()
                .unwrap_or_else(|| model.name.clone()),
            params,
            out: args.out.clone(),
            task: lem_eval::Task::generate("", &manifest.name),
        },
        &rt,
        &crate::progress::Bars::titled("generating"),
    )?;
    let total = items.len();
    if done.answered + done.failed == 0 {
        eprintln!("{}: all {total} items already done", args.out.display());
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{}: {} of {total} items answered now ({} tokens in {:.1}s, {:.1} tok/s)",
        args.out.display(),
        done.answered,
        done.tokens,
        done.seconds,
        done.tokens as f64 / done.seconds.max(1e-9),
    );
    if done.failed > 0 {
        bail!(
            "{} items could not be generated (see above, and {}); run again to fill them in",
            done.failed,
            generate::failures_path(&args.out).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
