//! `lem abliterate`: remove a model's refusal direction from its weights
//! (Arditi et al. 2024) and write a standalone model; the algorithm and the
//! measurements are `lem_train::abliterate`'s.

use super::engine_args::BaseModelArgs;
use anyhow::{Context, Result};
use lem_engine::DeviceKind;
use lem_train::abliterate::{
    AbliterateConfig, AbliterationReport, DEFAULT_MAX_TOKENS, LayerChoice, PromptFile, abliterate,
};
use lem_train::base::BaseModel;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `lem abliterate`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) base: BaseModelArgs,
    /// Harmful instructions, one {"id", "prompt"} per line.
    #[arg(long)]
    harmful: PathBuf,
    /// Harmless instructions, one {"id", "prompt"} per line.
    #[arg(long)]
    harmless: PathBuf,
    /// Where the abliterated model goes (must not exist, or be empty).
    #[arg(long)]
    save_path: PathBuf,
    /// The block whose incoming residual stream gives the direction, or
    /// `auto` (the best-separating of the middle 20-80% of blocks).
    #[arg(long, default_value = "auto")]
    layer: LayerChoice,
    /// Greedy tokens generated per held-out harmful prompt.
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS)]
    max_tokens: usize,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let harmful = PromptFile::read(&args.harmful)
        .with_context(|| format!("reading --harmful {}", args.harmful.display()))?;
    let harmless = PromptFile::read(&args.harmless)
        .with_context(|| format!("reading --harmless {}", args.harmless.display()))?;
    lem_train::fuse::check_save_path(&args.save_path)?;
    let path = lem_eval::resolve::model(&args.base.model)?;
    let base = BaseModel::load(&path, args.base.tokenizer.as_deref(), DeviceKind::Cpu)
        .with_context(|| format!("loading {}", path.display()))?;
    let tokenizer = base.tokenizer_files(args.base.tokenizer.as_deref())?;
    let config = AbliterateConfig {
        layer: args.layer,
        max_tokens: args.max_tokens,
    };
    let report = abliterate(
        base,
        &harmful,
        &harmless,
        tokenizer,
        &args.save_path,
        &config,
        &mut |msg| eprintln!("{msg}"),
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", markdown(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as Markdown tables: before/after, then the layer scores.
fn markdown(r: &AbliterationReport) -> String {
    let mut s = format!(
        "Abliterated {} ({}, {} blocks) at layer {} ({}; direction norm {:.3}); wrote {} ({:.0} s)\n\n",
        r.model,
        r.family,
        r.num_layers,
        r.layer,
        r.layer_choice,
        r.direction_norm,
        r.save_path,
        r.seconds
    );
    s.push_str("| model | refusals (held-out harmful) | refusal rate | mean KL vs original (held-out harmless) |\n");
    s.push_str("|---|---|---|---|\n");
    s.push_str(&format!(
        "| original | {}/{} | {:.2} | 0 |\n",
        r.refusals_before.refused, r.refusals_before.prompts, r.refusals_before.rate
    ));
    s.push_str(&format!(
        "| abliterated | {}/{} | {:.2} | {:.4} |\n\n",
        r.refusals_after.refused, r.refusals_after.prompts, r.refusals_after.rate, r.kl_mean
    ));
    s.push_str("| layer | separation (held-out) | direction norm |\n|---|---|---|\n");
    for l in &r.layer_scores {
        let mark = if l.layer == r.layer { " *" } else { "" };
        s.push_str(&format!(
            "| {}{mark} | {:.3} | {:.3} |\n",
            l.layer, l.score, l.direction_norm
        ));
    }
    s
}
