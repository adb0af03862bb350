//! `lem bench`: speed measured against peers, in the same run.

mod generate;
mod kernels;
mod machine;
mod train;

use anyhow::Result;
use std::process::ExitCode;

/// `lem bench` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Generation speed against llama.cpp.
    Generate(generate::GenerateArgs),
    /// LoRA training speed and memory against PyTorch + PEFT.
    Train(train::Args),
    /// How far ahead the quantized products should prefetch the weight on
    /// this CPU: measured again, and kept for every later run.
    Kernels(kernels::Args),
}

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Generate(args) => generate::run(args),
        Command::Train(args) => train::run(args),
        Command::Kernels(args) => kernels::run(args),
    }
}
