//! `lem run EVAL.toml`: every variant of a config is built where missing,
//! every (model, kernel, benchmark) generated where missing (resumable),
//! scored, and reported — by `lem_eval::Plan`; this file is its flags and
//! its output.

use super::engine_args::{ModelArgs, RemoteArgs};
use crate::table;
use anyhow::Result;
use lem_core::eval::EvalConfig;
use lem_eval::variants::StepStatus;
use lem_eval::{Format, Plan, RunOptions};
use lem_plugin_host::{Runtime, RuntimeConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `lem run`.
#[derive(clap::Args)]
pub struct Args {
    /// The eval config (TOML).
    config: PathBuf,
    /// List what would be built and generated, and stop.
    #[arg(long)]
    dry_run: bool,
    /// Ask the judge again even for answers cached by earlier runs.
    #[arg(long)]
    no_judge_cache: bool,
    /// CPU threads for local models (default: the cores not already busy).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = EvalConfig::load(&args.config)?;
    let plugins = Runtime::new(RuntimeConfig::with_default_cache())?;
    let plan = Plan::resolve(config, &plugins)?;
    if args.dry_run {
        print_plan(&plan);
        return Ok(ExitCode::SUCCESS);
    }
    let options = RunOptions {
        // Local models (candidates and judge) load with the default device
        // and context; the config sets the batch size.
        models: ModelArgs::for_spec("").model_options(&args.remote, 1),
        judge_cache: (!args.no_judge_cache).then(|| lem_core::lem_home().join("judge-cache")),
    };
    let outcome = plan.execute(&plugins, &options, &crate::progress::Bars::new())?;
    print!("{}", lem_eval::report::render(&outcome.report, Format::Md));
    eprintln!(
        "{}: report.md, report.html, report.json",
        plan.run_dir().root().display()
    );
    if outcome.failed > 0 {
        eprintln!(
            "{} items could not be generated (see above, and responses/RUN/BENCHMARK.failures.jsonl); run again to fill them in",
            outcome.failed
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--dry-run`'s output: each step building a variant and where it stands,
/// each (run, benchmark) with what is done and left, then every plugin
/// loaded with its digest.
fn print_plan(plan: &Plan) {
    let builds: Vec<Vec<String>> = plan
        .builds()
        .into_iter()
        .map(|b| {
            vec![
                b.variant,
                b.step,
                match b.status {
                    StepStatus::Built => "built (reused)",
                    StepStatus::Partial => "interrupted (resumes)",
                    StepStatus::Missing => "to build",
                }
                .to_string(),
                b.artifact.display().to_string(),
            ]
        })
        .collect();
    if !builds.is_empty() {
        println!("variants:");
        print!(
            "{}",
            table::render(&["variant", "step", "status", "artifact"], &builds)
        );
    }
    let header = [
        "run",
        "model",
        "kernel",
        "benchmark",
        "items",
        "done",
        "to generate",
        "scorers",
    ];
    let rows: Vec<Vec<String>> = plan
        .rows()
        .into_iter()
        .map(|r| {
            vec![
                r.run,
                r.model,
                r.kernel,
                r.benchmark,
                r.items.to_string(),
                r.done.to_string(),
                if r.changed {
                    format!("{} (model or settings changed)", r.items - r.done)
                } else {
                    (r.items - r.done).to_string()
                },
                r.scorers.join(" "),
            ]
        })
        .collect();
    print!("{}", table::render(&header, &rows));
    let config = plan.config();
    println!(
        "judge: {}; output: {}",
        config.judge.as_ref().map_or("none", |j| j.value.as_str()),
        config.out.display()
    );
    let plugins: Vec<Vec<String>> = plan
        .plugins()
        .into_iter()
        .map(|p| vec![p.role, p.plugin, p.sha256])
        .collect();
    println!("plugins loaded and verified (pins checked):");
    print!("{}", table::render(&["role", "plugin", "sha256"], &plugins));
}
