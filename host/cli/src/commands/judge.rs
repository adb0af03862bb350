//! `lem judge`: work with judges. `lem judge calibrate` re-judges recorded
//! responses and reports how far the judge agrees with a reference judge
//! (built by `lem_eval::calibrate`, rendered by `lem_report::calibration`).

use super::engine_args::{ModelArgs, RemoteArgs};
use crate::progress::Bars;
use anyhow::{Context, Result, bail};
use lem_eval::calibrate::CalibrateJob;
use lem_eval::judge::BackendJudge;
use lem_eval::models::Models;
use lem_models::AnswerCache;
use lem_plugin_host::{Runtime, RuntimeConfig};
use lem_report::calibration;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// `lem judge` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Re-judge recorded responses and report agreement with a reference judge's scores.
    Calibrate(CalibrateArgs),
}

/// Arguments of `lem judge calibrate`.
#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// The judge to calibrate (`openai:URL#MODEL`, `gemini:MODEL`, `local:PATH` or an installed name).
    #[arg(long)]
    judge: String,
    /// Shipped benchmark name (e.g. truthfulqa) or path to a manifest (.toml).
    #[arg(long)]
    benchmark: String,
    /// Benchmark data (JSONL); defaults to the manifest's data file. The
    /// judges' prompts need the items the responses answer.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Recorded responses of one model (JSONL: id, benchmark, model, prompt, response, elapsed_seconds).
    #[arg(long)]
    responses: PathBuf,
    /// Reference scores: `{"scores": {benchmark: {model: {item_id: {field: value}}}}}`.
    #[arg(long)]
    reference: PathBuf,
    /// The model key inside the reference (default: the responses' `model`).
    #[arg(long)]
    model: Option<String>,
    /// Judge at most N responses (the first that have a reference).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print one JSON object instead of the Markdown table.
    #[arg(long)]
    json: bool,
    /// Also write the report here; the extension picks the format (.md, .html, .json).
    #[arg(long, value_name = "REPORT")]
    out: Option<PathBuf>,
    /// Cap on the tokens of every judge answer (plugins ask for up to 512).
    #[arg(long)]
    judge_max_tokens: Option<u32>,
    /// Items judged at once.
    #[arg(long, default_value_t = 8)]
    judge_concurrency: usize,
    /// Ask the judge again even for answers cached by earlier runs.
    #[arg(long)]
    no_judge_cache: bool,
    /// CPU threads of a local judge (default: the cores not already busy).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Bootstrap resamples per interval.
    #[arg(long, default_value_t = lem_report::stats::DEFAULT_RESAMPLES)]
    resamples: usize,
    #[command(flatten)]
    remote: RemoteArgs,
}

/// Output formats of `--out`, by extension.
#[derive(Clone, Copy)]
enum OutFormat {
    Md,
    Html,
    Json,
}

fn out_format(path: &Path) -> Result<OutFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        Some("md") | Some("markdown") => OutFormat::Md,
        Some("html") | Some("htm") => OutFormat::Html,
        Some("json") => OutFormat::Json,
        _ => bail!(
            "--out {}: name a .md, .html or .json file (the extension picks the format)",
            path.display()
        ),
    })
}

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Calibrate(args) => calibrate(args),
    }
}

fn calibrate(args: CalibrateArgs) -> Result<ExitCode> {
    // Checked before a model is loaded or a judge asked.
    let out_format = args.out.as_deref().map(out_format).transpose()?;
    if args.resamples == 0 {
        bail!("--resamples must be at least 1");
    }
    let rt = lem_eval::models::runtime()?;
    // A `local:` judge runs on the CPU with the default context; --threads
    // was applied in main.
    let engine = ModelArgs::for_spec(&args.judge);
    let mut models = Models::new(engine.model_options(&args.remote, args.judge_concurrency));
    let judge = Arc::new(BackendJudge::new(
        models
            .get(&args.judge)
            .with_context(|| format!("opening the judge `{}`", args.judge))?
            .client
            .clone(),
        (!args.no_judge_cache).then(|| AnswerCache::new(lem_core::lem_home().join("judge-cache"))),
        rt.handle().clone(),
        args.judge_max_tokens,
    ));
    let runtime = Runtime::new(RuntimeConfig::with_default_cache())?;
    let outcome = lem_eval::calibrate(
        &CalibrateJob {
            benchmark: &args.benchmark,
            data: args.data.as_deref(),
            responses: &args.responses,
            reference: &args.reference,
            model: args.model.as_deref(),
            limit: args.limit,
            judge: &judge,
            concurrency: args.judge_concurrency,
            resamples: args.resamples,
            seed: lem_report::stats::DEFAULT_SEED,
        },
        &runtime,
        &Bars::titled("judging"),
    )?;
    let c = &outcome.calibration;
    if args.json {
        println!("{}", calibration::to_json(c));
    } else {
        print!("{}", calibration::to_markdown(c));
    }
    if let (Some(path), Some(format)) = (&args.out, out_format) {
        let text = match format {
            OutFormat::Md => calibration::to_markdown(c),
            OutFormat::Html => calibration::to_html(c),
            OutFormat::Json => format!("{:#}\n", calibration::to_json(c)),
        };
        lem_eval::RunDir::write_atomic(path, &text)?;
    }
    Ok(ExitCode::SUCCESS)
}
