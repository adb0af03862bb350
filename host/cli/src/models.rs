//! Opening the models named by specs (`local:`, `openai:`, `gemini:`) as
//! clients, one per spec, shared by whoever names it.

use crate::commands::engine_args::ModelArgs;
use anyhow::{Context, Result};
use lem_models::{
    Backend, Client, GeminiBackend, LocalBackend, ModelSpec, OpenAiBackend, RetryPolicy,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Flags for remote models.
#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArgs {
    /// Environment variable holding the key for `openai:` models (unset: no key is sent).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Requests in flight at once per remote model.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds one attempt at a remote request may take.
    #[arg(long, default_value_t = 300)]
    pub request_timeout: u64,
    /// Attempts per remote request (timeouts, 429 and 5xx are retried with backoff).
    #[arg(long, default_value_t = 4)]
    pub attempts: u32,
}

/// A model ready to answer.
pub struct OpenModel {
    /// The canonical spec (`local:PATH`, `openai:URL#MODEL`, ...).
    pub spec: String,
    /// The short name records use by default.
    pub name: String,
    /// SHA-256 of the weights, for local models kept in one file.
    pub sha256: Option<String>,
    /// The client.
    pub client: Arc<Client>,
}

/// Opens models on first use and hands out the same one after.
pub struct Models<'a> {
    engine: &'a ModelArgs,
    remote: &'a RemoteArgs,
    batch_size: usize,
    open: HashMap<String, Arc<OpenModel>>,
}

impl<'a> Models<'a> {
    /// Local models load with `engine`'s device, threads and context and
    /// decode `batch_size` sequences together; remote ones use `remote`.
    pub fn new(engine: &'a ModelArgs, remote: &'a RemoteArgs, batch_size: usize) -> Self {
        Models {
            engine,
            remote,
            batch_size: batch_size.max(1),
            open: HashMap::new(),
        }
    }

    /// The model named by `spec`, opened once.
    pub fn get(&mut self, spec: &str) -> Result<Arc<OpenModel>> {
        let parsed: ModelSpec = spec.parse()?;
        let key = parsed.to_string();
        if let Some(model) = self.open.get(&key) {
            return Ok(model.clone());
        }
        let model = Arc::new(self.open_spec(parsed)?);
        self.open.insert(key, model.clone());
        Ok(model)
    }

    fn open_spec(&self, spec: ModelSpec) -> Result<OpenModel> {
        let remote_policy = RetryPolicy {
            max_attempts: self.remote.attempts.max(1),
            timeout: Duration::from_secs(self.remote.request_timeout.max(1)),
            ..RetryPolicy::default()
        };
        match spec {
            ModelSpec::Local(reference) => {
                let path = crate::resolve::model(&reference)?;
                let engine = self.engine.load_path(&path)?;
                let sha256 = if path.is_file() {
                    Some(
                        lem_core::hash::sha256_file(&path)
                            .with_context(|| format!("hashing {}", path.display()))?,
                    )
                } else {
                    None
                };
                // An adapter changes the model: records and the judge cache say so.
                let spec = match &self.engine.adapter {
                    Some(dir) => format!("local:{reference}+adapter:{}", dir.display()),
                    None => format!("local:{reference}"),
                };
                let local = LocalBackend::start(engine, spec.clone(), self.batch_size);
                // The engine never times out or retries: its errors are final,
                // and a slow machine is not a failure.
                let policy = RetryPolicy {
                    max_attempts: 1,
                    timeout: Duration::from_secs(7 * 24 * 3600),
                    ..RetryPolicy::default()
                };
                let client =
                    Client::new(Arc::new(local) as Arc<dyn Backend>, self.batch_size, policy);
                Ok(OpenModel {
                    name: path
                        .file_stem()
                        .map_or_else(|| reference.clone(), |s| s.to_string_lossy().into_owned()),
                    spec,
                    sha256,
                    client: Arc::new(client),
                })
            }
            ModelSpec::OpenAi { base_url, model } => {
                let key = std::env::var(&self.remote.api_key_env).ok();
                let backend = OpenAiBackend::new(&base_url, &model, key)?;
                Ok(self.remote_model(Arc::new(backend), model, remote_policy))
            }
            ModelSpec::Gemini(model) => {
                let backend = GeminiBackend::from_env(&model)?;
                Ok(self.remote_model(Arc::new(backend), model, remote_policy))
            }
        }
    }

    fn remote_model(
        &self,
        backend: Arc<dyn Backend>,
        name: String,
        policy: RetryPolicy,
    ) -> OpenModel {
        OpenModel {
            spec: backend.identity(),
            name,
            sha256: None,
            client: Arc::new(Client::new(backend, self.remote.concurrency, policy)),
        }
    }
}

/// A tokio runtime for the clients (two workers: the work is waiting).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
