//! `lem serve`: an OpenAI-compatible server over the local engine.

use super::engine_args::ModelArgs;
use anyhow::{Context, Result};
use lem_models::LocalBackend;
use std::process::ExitCode;

/// Arguments of `lem serve`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Sequences decoded together across concurrent requests.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// The model name clients use (default: `--model` as given).
    #[arg(long)]
    served_name: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let (engine, path) = args.model.load()?;
    let name = args.served_name.unwrap_or_else(|| args.model.model.clone());
    let backend = LocalBackend::start(engine, format!("local:{}", path.display()), args.batch_size);
    let server = lem_serve::Server::new(backend, name.clone());
    let rt = lem_eval::models::runtime()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        // Tests and scripts read this line to find the port.
        println!("lem serve: model `{name}` at http://{addr}/v1");
        lem_serve::serve(listener, server).await.context("serving")
    })?;
    Ok(ExitCode::SUCCESS)
}
