//! `lem bench kernels`: measures again how far ahead this CPU's quantized
//! products should prefetch the weight, and keeps the result where every
//! later run reads it (`$LEM_HOME/tuning/`).

use anyhow::{Context, Result};
use lem_engine::tuning;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// CPU threads to measure on, as decoding will run (default: the cores
    /// not already busy).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let threads = crate::threads::count();
    // The kernel the engine runs (`LEM_KERNEL`'s, else the fastest), so the
    // calibration kept is the one it reads.
    let kernel = lem_engine::models::quantized::chosen_kernel();
    let calibration = tuning::calibrate(kernel, threads);
    let path = tuning::cache_path(&lem_core::lem_home(), kernel, threads);
    tuning::write(&path, &calibration)
        .with_context(|| format!("keeping the calibration at {}", path.display()))?;
    if args.json {
        let mut out = serde_json::to_value(&calibration)?;
        out["path"] = path.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}, {} kernel, {threads} thread(s); a {} MB weight streamed through the \
         decode product at each distance (median of {} rounds):",
        calibration.cpu,
        calibration.kernel,
        calibration.weight_bytes >> 20,
        calibration.rounds,
    );
    for m in &calibration.measured {
        let distance = match m.prefetch_bytes {
            0 => "none".to_string(),
            b => format!("{b} B"),
        };
        let chosen = if m.prefetch_bytes == calibration.prefetch_bytes {
            "  <- chosen"
        } else {
            ""
        };
        println!("  {distance:>8}  {:6.1} GB/s{chosen}", m.gb_s);
    }
    println!("kept in {}", path.display());
    Ok(ExitCode::SUCCESS)
}
