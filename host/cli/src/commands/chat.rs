//! `lem chat`: one prompt, the answer streamed to the terminal.

use super::engine_args::{ModelArgs, SamplingArgs};
use anyhow::Result;
use lem_core::ChatMessage;
use lem_engine::{Event, Request};
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `lem chat`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// System text.
    #[arg(long)]
    system: Option<String>,
    /// The prompt.
    prompt: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let (engine, _) = args.model.load()?;
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(ChatMessage {
            role: "system".into(),
            content: system,
        });
    }
    messages.push(ChatMessage {
        role: "user".into(),
        content: args.prompt,
    });
    let prompt = engine.encode_chat(&messages)?;
    let request = Request {
        key: "chat".into(),
        prompt,
        params: args.sampling.params(0.3, 512),
        ..Request::default()
    };
    let mut failure = None;
    let mut stdout = std::io::stdout();
    engine.generate(vec![request], 1, true, &mut |event| match event {
        Event::Text { piece, .. } => {
            let _ = write!(stdout, "{piece}");
            let _ = stdout.flush();
        }
        Event::Done(done) => {
            let _ = writeln!(stdout);
            eprintln!(
                "[{} prompt tokens, {} generated, {:.1} tok/s, {}]",
                done.prompt_tokens,
                done.tokens.len(),
                done.tokens.len() as f64 / done.elapsed.as_secs_f64().max(1e-9),
                done.finish.as_str()
            );
        }
        Event::Failed { error, .. } => failure = Some(error),
    })?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(ExitCode::SUCCESS),
    }
}
