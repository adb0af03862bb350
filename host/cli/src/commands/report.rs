//! `lem report`: the paper's tables with paired statistics against a
//! baseline, from a run directory or an upstream score file.
//!
//! The statistics live in `lem-report`, which knows no benchmark by name.
//! This command adds how the shipped benchmarks' manifests describe their
//! metrics (`[[metrics]]`: label, range, direction, unit), in the paper's
//! column order (see [`shipped_presentation`]). Every other metric is
//! presented by the rule in `lem_report::MetricDescriptor::derived`.

use anyhow::{Context, Result, bail};
use lem_core::{ResponseRecord, ScoreRecord};
use lem_report::{MetricDescriptor, Observation, Report, ReportOptions, Unit};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
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

/// Arguments of `lem report`.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (its `scores/` and `responses/` are read).
    run_dir: Option<PathBuf>,
    /// An upstream score file instead: `{"scores": {benchmark: {model: {item: {metric: value}}}}}`.
    #[arg(long, conflicts_with = "run_dir")]
    scores: Option<PathBuf>,
    /// The model every other is compared with (default: `base`, `baseline`, else the first).
    #[arg(long)]
    baseline: Option<String>,
    /// An equivalence margin, `BENCHMARK/METRIC=X` in the metric's own values
    /// (`gsm8k/accuracy=0.02` is 2 points); repeatable. The report then tests
    /// whether the difference lies within ±X (TOST).
    #[arg(long = "margin", value_name = "BENCHMARK/METRIC=X")]
    margins: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Md)]
    format: Format,
    /// Write here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let margins = parse_margins(&args.margins)?;
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
    let report = build_with(&observations, args.baseline.clone(), margins)?;
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

/// The report of `observations` with equivalence `margins` by metric id.
pub fn build_with(
    observations: &[Observation],
    baseline: Option<String>,
    margins: BTreeMap<String, f64>,
) -> Result<Report> {
    let (order, descriptors) = shipped_presentation();
    let options = ReportOptions {
        baseline,
        order,
        descriptors,
        margins,
        ..ReportOptions::default()
    };
    Ok(Report::build(observations, &options)?)
}

/// The shipped benchmarks in the LEK paper's column order (GSM8K, TruthfulQA,
/// Do Not Answer, ToxiGen, then the seeds); any other shipped benchmark
/// follows by name.
const PAPER_ORDER: [&str; 5] = ["gsm8k", "truthfulqa", "do_not_answer", "toxigen", "seeds"];

/// How reports present the shipped benchmarks' metrics: each manifest's
/// `[[metrics]]` (label, range, direction, unit), benchmarks in the paper's
/// order, supplementary metrics after all the main ones. It lives here, not
/// in `lem-report`, so the statistics stay free of benchmark names.
pub fn shipped_presentation() -> (Vec<String>, BTreeMap<String, MetricDescriptor>) {
    let mut names: Vec<&str> = lem_bundled::manifest_names().collect();
    names.sort_by_key(|n| {
        let rank = PAPER_ORDER
            .iter()
            .position(|p| p == n)
            .unwrap_or(usize::MAX);
        (rank, *n)
    });
    presentation(
        names
            .iter()
            .filter_map(|name| crate::resolve::benchmark(name).ok()),
    )
}

/// The column order and descriptors the `[[metrics]]` of `manifests` declare.
pub fn presentation(
    manifests: impl IntoIterator<Item = lem_core::BenchmarkManifest>,
) -> (Vec<String>, BTreeMap<String, MetricDescriptor>) {
    let (mut main, mut supplementary, mut descriptors) = (Vec::new(), Vec::new(), BTreeMap::new());
    for manifest in manifests {
        for spec in &manifest.metrics {
            let id = format!("{}/{}", manifest.name, spec.name);
            descriptors.insert(
                id.clone(),
                MetricDescriptor {
                    range: spec.range.map(|[lo, hi]| (lo, hi)),
                    higher_is_better: spec.higher_is_better,
                    unit: match spec.unit {
                        lem_core::MetricUnit::Percent => Unit::Percent,
                        lem_core::MetricUnit::Number => Unit::Number,
                    },
                    label: spec.label.clone(),
                    declared: true,
                },
            );
            match spec.supplementary {
                true => supplementary.push(id),
                false => main.push(id),
            }
        }
    }
    main.extend(supplementary);
    (main, descriptors)
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

/// Every score record under `dir/scores/`, as observations, each with its
/// response from `dir/responses/` (prompt as sent, answer) for the item
/// browser.
pub fn run_observations(dir: &Path) -> Result<Vec<Observation>> {
    let scores = dir.join("scores");
    if !scores.is_dir() {
        bail!(
            "{}: no scores/ here; is this a `lem run` output directory?",
            dir.display()
        );
    }
    let responses = responses(&dir.join("responses"))?;
    let mut files = Vec::new();
    collect_jsonl(&scores, &mut files)?;
    files.sort();
    let mut observations = Vec::new();
    for file in files {
        for record in lem_core::jsonl::read::<ScoreRecord>(&file)? {
            let r = record.value;
            let mut o = Observation::from_record(&r, r.domain.clone());
            if let Some((prompt, response)) =
                responses.get(&(r.benchmark.clone(), r.model.clone(), r.id.clone()))
            {
                o.detail.prompt = Some(prompt.clone());
                o.detail.response = Some(response.clone());
            }
            observations.push(o);
        }
    }
    observations.extend(generation_failures(&dir.join("responses"))?);
    Ok(observations)
}

/// One line of `responses/RUN/BENCH.failures.jsonl`: an item that could not
/// be generated.
#[derive(serde::Deserialize)]
struct GenerationFailure {
    id: String,
    stage: String,
    kind: String,
    message: String,
}

/// The items under `dir` that could not be generated, as failed
/// observations of no particular scorer: they count against every metric of
/// their benchmark, and the item browser shows why.
fn generation_failures(dir: &Path) -> Result<Vec<Observation>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut files = Vec::new();
    collect_jsonl(dir, &mut files)?;
    files.sort();
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(benchmark) = name
            .as_deref()
            .and_then(|n| n.strip_suffix(".failures.jsonl"))
        else {
            continue;
        };
        let model = file
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for record in lem_core::jsonl::read::<GenerationFailure>(&file)? {
            let f = record.value;
            out.push(Observation {
                benchmark: benchmark.to_string(),
                model: model.clone(),
                item_id: f.id,
                domain: None,
                metrics: BTreeMap::new(),
                failed: true,
                scorer: None,
                detail: lem_report::Detail {
                    error: Some((
                        format!("not generated ({}: {})", f.stage, f.kind),
                        f.message,
                    )),
                    ..lem_report::Detail::default()
                },
            });
        }
    }
    Ok(out)
}

/// (benchmark, model, item) → (prompt as sent, response) of every response
/// record under `dir` (none when there is no such directory). The lists of
/// items that could not be generated (`BENCH.failures.jsonl`) are not
/// responses and are skipped.
fn responses(dir: &Path) -> Result<HashMap<(String, String, String), (String, String)>> {
    let mut out = HashMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut files = Vec::new();
    collect_jsonl(dir, &mut files)?;
    files.retain(|f| {
        !f.file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".failures.jsonl"))
    });
    for file in files {
        for record in lem_core::jsonl::read::<ResponseRecord>(&file)? {
            let r = record.value;
            let prompt = sent(&r);
            out.insert((r.benchmark, r.model, r.id), (prompt, r.response));
        }
    }
    Ok(out)
}

/// Every message as sent (`role:` then the text), when the record has them;
/// else its `prompt`.
fn sent(record: &ResponseRecord) -> String {
    let Some(serde_json::Value::Array(messages)) = record.extra.get("messages") else {
        return record.prompt.clone();
    };
    let parts: Vec<String> = messages
        .iter()
        .filter_map(|m| {
            let role = m.get("role")?.as_str()?;
            let content = m.get("content")?.as_str()?;
            Some(format!("{role}:\n{content}"))
        })
        .collect();
    if parts.is_empty() {
        record.prompt.clone()
    } else {
        parts.join("\n\n")
    }
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
