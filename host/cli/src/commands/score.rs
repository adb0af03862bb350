//! `lem score`: score recorded responses with a benchmark's scorer plugins.

use super::engine_args::{ModelArgs, RemoteArgs};
use crate::progress::Bars;
use crate::table;
use anyhow::{Context, Result, bail};
use lem_core::jsonl::{self, Located};
use lem_core::{AtomicFile, BenchmarkItem, ResponseRecord, ScoreRecord, ScoreSummary};
use lem_eval::Task;
use lem_eval::judge::BackendJudge;
use lem_eval::models::Models;
use lem_eval::score::{self, ManifestScorer, ScoreJob};
use lem_models::AnswerCache;
use lem_plugin_host::{Judge, Runtime, RuntimeConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `lem score`.
#[derive(clap::Args)]
pub struct Args {
    /// Shipped benchmark name (e.g. gsm8k) or path to a manifest (.toml).
    #[arg(long)]
    benchmark: String,
    /// Benchmark data (JSONL); defaults to the manifest's data file.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Responses to score (JSONL: id, benchmark, model, prompt, response, elapsed_seconds).
    #[arg(long)]
    responses: PathBuf,
    /// Write one score record per item here (JSONL). Written whole or not at all.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON summary object per model instead of a table.
    #[arg(long)]
    json: bool,
    /// Exit non-zero when any item could not be scored.
    #[arg(long)]
    strict: bool,
    /// Fuel per call for every scorer (overrides the manifest).
    #[arg(long)]
    fuel: Option<u64>,
    /// Guest time per call in milliseconds (overrides the manifest).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Compile plugins without the on-disk cache.
    #[arg(long)]
    no_cache: bool,
    /// The judge model for scorers that ask one (`openai:URL#MODEL`, `gemini:MODEL`, `local:PATH`).
    #[arg(long)]
    judge: Option<String>,
    /// Items judged at once.
    #[arg(long, default_value_t = 8)]
    judge_concurrency: usize,
    /// Cap on the tokens of every judge answer (plugins ask for up to 512).
    #[arg(long)]
    judge_max_tokens: Option<u32>,
    /// Ask the judge again even for answers cached by earlier runs.
    #[arg(long)]
    no_judge_cache: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let manifest = lem_eval::resolve::benchmark(&args.benchmark)?;
    let items: HashMap<String, Located<BenchmarkItem>> =
        lem_eval::data::load_items(&manifest, args.data.as_deref())?
            .into_iter()
            .map(|item| (item.value.id.clone(), item))
            .collect();
    let responses = load_responses(&args.responses, &manifest.name, &items)?;
    if manifest.scorers.is_empty() {
        bail!(
            "benchmark `{}` names no scorer plugin (add a [[scorers]] entry to its manifest)",
            manifest.name
        );
    }

    let rt = lem_eval::models::runtime()?;
    // A `local:` judge runs on the CPU with the default threads and context.
    let engine = ModelArgs::for_spec(args.judge.as_deref().unwrap_or_default());
    let mut models = Models::new(engine.model_options(&args.remote, args.judge_concurrency));
    let judge = match &args.judge {
        Some(spec) => Some(Arc::new(BackendJudge::new(
            models.get(spec)?.client.clone(),
            (!args.no_judge_cache)
                .then(|| AnswerCache::new(lem_core::lem_home().join("judge-cache"))),
            rt.handle().clone(),
            args.judge_max_tokens,
        ))),
        None => None,
    };
    let runtime = Runtime::new(if args.no_cache {
        RuntimeConfig::default()
    } else {
        RuntimeConfig::with_default_cache()
    })?;
    let scorers = load_scorers(&runtime, &manifest, &args, judge.clone())?;
    let records = score::score(
        &ScoreJob {
            benchmark: &manifest.name,
            items: &items,
            responses: &responses,
            scorers: &scorers,
            judge: judge.as_ref(),
            concurrency: args.judge_concurrency,
            task: Task::score(&manifest.name),
        },
        &Bars::titled("scoring"),
    )?;
    if let Some(judge) = &judge {
        let (hits, asked) = judge.counts();
        eprintln!(
            "judge {}: {asked} requests sent, {hits} answers from the cache",
            judge.identity()
        );
    }

    if let Some(out) = &args.out {
        write_records(out, &records)?;
    }
    let summaries = ScoreSummary::of(&records);
    if args.json {
        for s in &summaries {
            println!("{}", serde_json::to_string(s)?);
        }
    } else {
        print_table(&summaries, &scorers);
    }
    let failures: usize = summaries.iter().map(|s| s.failures).sum();
    Ok(if args.strict && failures > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// Loads the manifest's scorers with their policies (and the flags' overrides).
fn load_scorers(
    runtime: &Runtime,
    manifest: &lem_core::BenchmarkManifest,
    args: &Args,
    judge: Option<Arc<BackendJudge>>,
) -> Result<Vec<ManifestScorer>> {
    let limits = lem_core::Limits::default();
    let scorers = score::load_scorers(runtime, manifest, judge, &limits, &|policy| {
        if let Some(fuel) = args.fuel {
            policy.limits.fuel = Some(fuel);
        }
        if let Some(ms) = args.timeout_ms {
            policy.limits.timeout_ms = ms;
        }
    })?;
    if let Err(lem_eval::Error::NeedsJudge { benchmark, scorer }) =
        score::check_judge(&manifest.name, &scorers, args.judge.is_some())
    {
        bail!(
            "scorer `{scorer}` of benchmark `{benchmark}` asks a judge model: pass --judge (e.g. --judge openai:http://127.0.0.1:8080/v1#gemma-3-270m)"
        );
    }
    Ok(scorers)
}

/// Reads the responses; every id must be in the data, once.
fn load_responses(
    path: &Path,
    benchmark: &str,
    items: &HashMap<String, Located<BenchmarkItem>>,
) -> Result<Vec<Located<ResponseRecord>>> {
    let responses = jsonl::read::<ResponseRecord>(path)?;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in &responses {
        let at = format!("{}:{}", path.display(), r.line);
        if let Some(first) = seen.insert(&r.value.id, r.line) {
            bail!(
                "{at}: duplicate response for id `{}` (first on line {first}); remove one",
                r.value.id
            );
        }
        if r.value.benchmark != benchmark {
            bail!(
                "{at}: response is for benchmark `{}`, but scoring `{benchmark}`",
                r.value.benchmark
            );
        }
        if !items.contains_key(&r.value.id) {
            bail!(
                "{at}: id `{}` is not in the benchmark data; check that --data is the file these responses answer",
                r.value.id
            );
        }
    }
    Ok(responses)
}

fn write_records(out: &Path, records: &[ScoreRecord]) -> Result<()> {
    let context = || format!("writing {}", out.display());
    let mut file = AtomicFile::create(out).with_context(context)?;
    for record in records {
        file.write_json(record).with_context(context)?;
    }
    file.commit().with_context(context)
}

fn print_table(summaries: &[ScoreSummary], scorers: &[ManifestScorer]) {
    let metric_names: Vec<&str> = scorers
        .iter()
        .flat_map(|s| s.plugin.info().metric_names())
        .collect();
    let mut header = vec!["benchmark", "model", "n", "failures"];
    header.extend(&metric_names);
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            let mut row = vec![
                s.benchmark.clone(),
                s.model.clone(),
                s.n.to_string(),
                s.failures.to_string(),
            ];
            row.extend(
                metric_names
                    .iter()
                    .map(|m| s.metrics.get(*m).map_or("-".into(), |v| format!("{v:.4}"))),
            );
            row
        })
        .collect();
    print!("{}", table::render(&header, &rows));
}
