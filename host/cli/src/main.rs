//! `lem`: train, evaluate and compare language models with the LEK method.
//!
//! This binary only parses arguments and wires the library crates together;
//! each subcommand lives in its own file under `commands/`.

mod allocator;
mod commands;
mod progress;
mod table;
mod text;
mod threads;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lem",
    version,
    about = "Fine-tune with the LEK method and measure what it gained and lost"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score recorded responses with a benchmark's scorer plugins.
    Score(commands::score::Args),
    /// Answer every item of a benchmark with a model (resumable).
    Generate(commands::generate::Args),
    /// One prompt to a model, the answer streamed.
    Chat(commands::chat::Args),
    /// Run a whole evaluation from a config: generate, score, report (resumable).
    Run(commands::run::Args),
    /// Tables, CIs and the differential from a run directory or a score file.
    Report(commands::report::Args),
    /// Serve the local model over an OpenAI-compatible HTTP API.
    Serve(commands::serve::Args),
    /// Fine-tune a LoRA adapter (mlx_lm's flags; PEFT adapter files).
    Train(commands::train::Args),
    /// Merge an adapter into its base model and write a standalone model.
    Fuse(commands::fuse::Args),
    /// Remove a model's refusal direction from its weights and write a standalone model.
    Abliterate(commands::abliterate::Args),
    /// Make a training set: seed prompts answered by a teacher under a kernel.
    Distill(commands::distill::Args),
    /// Measure speed against peers.
    #[command(subcommand)]
    Bench(commands::bench::Command),
    /// Work with plugins.
    #[command(subcommand)]
    Plugin(commands::plugin::Command),
    /// Work with judges: calibrate one against a reference judge's scores.
    #[command(subcommand)]
    Judge(commands::judge::Command),
}

impl Command {
    /// The `--threads` of a command that runs a local model.
    fn threads(&self) -> Option<usize> {
        match self {
            Command::Generate(a) => a.model.threads,
            Command::Chat(a) => a.model.threads,
            Command::Serve(a) => a.model.threads,
            Command::Run(a) => a.threads,
            Command::Distill(a) => a.threads,
            Command::Train(a) => a.base.threads,
            Command::Fuse(a) => a.base.threads,
            Command::Abliterate(a) => a.base.threads,
            Command::Bench(commands::bench::Command::Generate(a)) => a.model.threads,
            Command::Bench(commands::bench::Command::Train(a)) => a.base.threads,
            Command::Bench(commands::bench::Command::Kernels(a)) => a.threads,
            Command::Judge(commands::judge::Command::Calibrate(a)) => a.threads,
            Command::Score(_) | Command::Report(_) | Command::Plugin(_) => None,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // SAFETY: nothing has started a thread yet (argument parsing does not).
    unsafe { threads::set(cli.command.threads()) };
    allocator::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Score(args) => commands::score::run(args),
        Command::Plugin(cmd) => commands::plugin::run(cmd),
        Command::Generate(args) => commands::generate::run(args),
        Command::Chat(args) => commands::chat::run(args),
        Command::Bench(cmd) => commands::bench::run(cmd),
        Command::Serve(args) => commands::serve::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Fuse(args) => commands::fuse::run(args),
        Command::Abliterate(args) => commands::abliterate::run(args),
        Command::Distill(args) => commands::distill::run(args),
        Command::Judge(cmd) => commands::judge::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Errors carry plugin text (messages, names): escaped.
            eprintln!("error: {}", text::escape_keep_newlines(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
