//! `lem report`: the paper's tables (with bootstrap CIs and the differential
//! against a baseline) from a run directory or an upstream score file.

use anyhow::{Context, Result, bail};
use lem_core::ScoreRecord;
use lem_report::{Observation, Report, ReportOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Markdown tables.
    Md,
    /// One self-contained HTML file with charts.
    Html,
    /// One JSON object.
    Json,
}

/// Arguments of `lem report`.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (its `scores/` are read).
    run_dir: Option<PathBuf>,
    /// An upstream score file instead: `{"scores": {benchmark: {model: {item: {metric: value}}}}}`.
    #[arg(long, conflicts_with = "run_dir")]
    scores: Option<PathBuf>,
    /// The model every other is compared with (default: `base`, `baseline`, else the first).
    #[arg(long)]
    baseline: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Md)]
    format: Format,
    /// Write here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let observations = match (&args.run_dir, &args.scores) {
        (_, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            lem_report::parse_upstream_scores(&text)
                .with_context(|| format!("{}", file.display()))?
        }
        (Some(dir), None) => run_observations(dir)?,
        (None, None) => bail!("give a run directory, or --scores FILE.json"),
    };
    let report = build(&observations, args.baseline.clone())?;
    let text = render(&report, args.format)?;
    match &args.out {
        Some(path) => {
            let mut file = lem_core::AtomicFile::create(path)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            file.commit()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The report of `observations`.
pub fn build(observations: &[Observation], baseline: Option<String>) -> Result<Report> {
    let options = ReportOptions {
        baseline,
        ..ReportOptions::default()
    };
    Ok(Report::build(observations, &options)?)
}

/// `report` as text in `format`.
pub fn render(report: &Report, format: Format) -> Result<String> {
    Ok(match format {
        Format::Md => lem_report::to_markdown(report),
        Format::Html => lem_report::to_html(report),
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&lem_report::to_json(report))?
        ),
    })
}

/// Every score record under `dir/scores/`, as observations.
pub fn run_observations(dir: &Path) -> Result<Vec<Observation>> {
    let scores = dir.join("scores");
    if !scores.is_dir() {
        bail!(
            "{}: no scores/ here; is this a `lem run` output directory?",
            dir.display()
        );
    }
    let mut files = Vec::new();
    collect_jsonl(&scores, &mut files)?;
    files.sort();
    let mut observations = Vec::new();
    for file in files {
        for record in lem_core::jsonl::read::<ScoreRecord>(&file)? {
            let r = record.value;
            observations.push(Observation::from_record(&r, r.domain.clone()));
        }
    }
    Ok(observations)
}

fn collect_jsonl(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_jsonl(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
    Ok(())
}
