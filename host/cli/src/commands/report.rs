//! `lem report`: the paper's tables with paired statistics against a
//! baseline, from a run directory or an upstream score file (built by
//! `lem_eval::report`). A run directory's report is presented as its run
//! recorded (`run.json`: described metrics, baseline, margins).

use anyhow::{Context, Result, bail};
use lem_eval::RunDir;
use lem_eval::report::Presentation;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Markdown tables.
    Md,
    /// One self-contained HTML file with the forest plot and the item browser.
    Html,
    /// One JSON object.
    Json,
}

impl From<Format> for lem_eval::Format {
    fn from(format: Format) -> Self {
        match format {
            Format::Md => lem_eval::Format::Md,
            Format::Html => lem_eval::Format::Html,
            Format::Json => lem_eval::Format::Json,
        }
    }
}

/// Arguments of `lem report`.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (its `scores/` and `responses/` are read).
    run_dir: Option<PathBuf>,
    /// An upstream score file instead: `{"scores": {benchmark: {model: {item: {metric: value}}}}}`.
    #[arg(long, conflicts_with = "run_dir")]
    scores: Option<PathBuf>,
    /// The model every other is compared with (default: the run's `baseline`,
    /// else `base`, `baseline`, else the first model).
    #[arg(long)]
    baseline: Option<String>,
    /// An equivalence margin, `BENCHMARK/METRIC=X` in the metric's own values
    /// (`gsm8k/accuracy=0.02` is 2 points); repeatable. The report then tests
    /// whether the difference lies within ±X (TOST). Added to a run's own margins.
    #[arg(long = "margin", value_name = "BENCHMARK/METRIC=X")]
    margins: Vec<String>,
    /// A judge calibration to show (the JSON `lem judge calibrate --out
    /// FILE.json` writes); repeatable. Added to a run's own.
    #[arg(long = "calibration", value_name = "FILE.json")]
    calibrations: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Md)]
    format: Format,
    /// Write here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let margins = parse_margins(&args.margins)?;
    let (observations, mut presentation) = match (&args.run_dir, &args.scores) {
        (_, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let observations = lem_report::parse_upstream_scores(&text)
                .with_context(|| format!("{}", file.display()))?;
            (observations, Presentation::default())
        }
        (Some(dir), None) => {
            let dir = RunDir::new(dir);
            (dir.observations()?, Presentation::of_run(&dir.manifest())?)
        }
        (None, None) => bail!("give a run directory, or --scores FILE.json"),
    };
    // The run's own baseline and margins, unless the flags say otherwise.
    if args.baseline.is_some() {
        presentation.baseline = args.baseline.clone();
    }
    presentation.margins.extend(margins);
    for file in &args.calibrations {
        presentation
            .judge_agreement
            .push(lem_eval::report::read_calibration(file).map_err(anyhow::Error::msg)?);
    }
    let report = presentation.build(&observations)?;
    let text = lem_eval::report::render(&report, args.format.into());
    match &args.out {
        Some(path) => RunDir::write_atomic(path, &text)?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `BENCHMARK/METRIC=X` flags as margins by metric id.
fn parse_margins(flags: &[String]) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for flag in flags {
        let Some((id, value)) = flag.rsplit_once('=') else {
            bail!("--margin {flag}: write BENCHMARK/METRIC=X, e.g. gsm8k/accuracy=0.02");
        };
        if !id.contains('/') {
            bail!("--margin {flag}: `{id}` is not BENCHMARK/METRIC");
        }
        let x: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x > 0.0)
            .with_context(|| format!("--margin {flag}: `{value}` is not a positive number"))?;
        out.insert(id.to_string(), x);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_parse_and_bad_ones_say_why() {
        let m = parse_margins(&["gsm8k/accuracy=0.02".into(), "seeds/lek_score=1".into()]).unwrap();
        assert_eq!(m["gsm8k/accuracy"], 0.02);
        assert_eq!(m["seeds/lek_score"], 1.0);
        for bad in [
            "gsm8k/accuracy",
            "accuracy=0.1",
            "gsm8k/accuracy=-1",
            "g/a=x",
        ] {
            let err = parse_margins(&[bad.into()]).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--margin {bad}")), "{err}");
        }
    }
}
