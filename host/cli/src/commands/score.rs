//! `lem score`: score recorded responses with a benchmark's scorer plugins.

use crate::{resolve, table};
use anyhow::{Context, Result, bail};
use lem_core::jsonl::{self, Located};
use lem_core::{AtomicFile, BenchmarkItem, ResponseRecord, ScoreRecord, ScoreSummary};
use lem_plugin_host::scorer::PluginItem;
use lem_plugin_host::{NoJudge, Runtime, RuntimeConfig, Scorer};
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
}

pub fn run(args: Args) -> Result<ExitCode> {
    let manifest = resolve::benchmark(&args.benchmark)?;
    let items: HashMap<String, Located<BenchmarkItem>> =
        crate::data::load_items(&manifest, args.data.as_deref())?
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

    let runtime = Runtime::new(if args.no_cache {
        RuntimeConfig::default()
    } else {
        RuntimeConfig::with_default_cache()
    })?;
    let mut scorers = Vec::new();
    for reference in &manifest.scorers {
        let mut policy = reference.policy();
        if let Some(fuel) = args.fuel {
            policy.limits.fuel = Some(fuel);
        }
        if let Some(ms) = args.timeout_ms {
            policy.limits.timeout_ms = ms;
        }
        let source = resolve::plugin(&reference.plugin, &manifest.base_dir)?;
        let scorer =
            Scorer::load(&runtime, &source, policy, Arc::new(NoJudge)).with_context(|| {
                format!(
                    "loading scorer `{}` of benchmark `{}`",
                    reference.plugin, manifest.name
                )
            })?;
        scorers.push(scorer);
    }

    let progress = indicatif::ProgressBar::new((responses.len() * scorers.len()) as u64)
        .with_style(
            indicatif::ProgressStyle::with_template(
                "scoring {bar:30} {pos}/{len} {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    let mut records = Vec::with_capacity(responses.len() * scorers.len());
    for response in &responses {
        let item = PluginItem::new(&manifest.name, &items[&response.value.id].value);
        for scorer in &scorers {
            let outcome = scorer.score(&item, &response.value.response);
            let (metrics, details, error) = match outcome.result {
                Ok(scored) => (scored.metrics, scored.details, None),
                Err(e) => (Default::default(), None, Some(e.into())),
            };
            records.push(ScoreRecord {
                id: response.value.id.clone(),
                model: response.value.model.clone(),
                benchmark: manifest.name.clone(),
                plugin: scorer.identity(),
                metrics,
                details,
                error,
            });
            progress.inc(1);
        }
    }
    progress.finish_and_clear();

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

fn print_table(summaries: &[ScoreSummary], scorers: &[Scorer]) {
    let metric_names: Vec<&str> = scorers
        .iter()
        .flat_map(|s| s.info().metrics.iter().map(String::as_str))
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
