//! Opening the models named by specs (`local:`, `openai:`, `gemini:`) as
//! clients, one per spec, shared by whoever names it (candidates and the
//! judge alike).

use crate::error::{Error, IoContext, Result};
use lem_engine::{Engine, LoadOptions};
use lem_models::{
    Backend, Client, GeminiBackend, LocalBackend, ModelSpec, OpenAiBackend, RetryPolicy,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How remote models are asked.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Environment variable holding the key for `openai:` models (unset: no key is sent).
    pub api_key_env: String,
    /// Requests in flight at once per remote model.
    pub concurrency: usize,
    /// How long one attempt at a request may take.
    pub request_timeout: Duration,
    /// Attempts per request (timeouts, 429 and 5xx are retried with backoff).
    pub attempts: u32,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            api_key_env: "OPENAI_API_KEY".into(),
            concurrency: 8,
            request_timeout: Duration::from_secs(300),
            attempts: 4,
        }
    }
}

/// How models are opened.
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    /// How local models load (device, context, tokenizer, adapter, template).
    /// Their CPU thread count is the process's, set once by the caller.
    pub load: LoadOptions,
    /// Sequences a local model decodes together (at least 1).
    pub batch_size: usize,
    /// How remote models are asked.
    pub remote: RemoteOptions,
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
pub struct Models {
    options: ModelOptions,
    open: HashMap<String, Arc<OpenModel>>,
}

impl Models {
    /// Models opened with `options`.
    pub fn new(options: ModelOptions) -> Self {
        Models {
            options,
            open: HashMap::new(),
        }
    }

    /// The model named by `spec`, opened once.
    pub fn get(&mut self, spec: &str) -> Result<Arc<OpenModel>> {
        let parsed: ModelSpec = spec
            .parse()
            .map_err(|e: lem_models::SpecError| Error::Invalid(e.to_string()))?;
        let key = parsed.to_string();
        if !matches!(parsed, ModelSpec::Local(_))
            && let Some(model) = self.open.get(&key)
        {
            return Ok(model.clone());
        }
        let remote = &self.options.remote;
        let (backend, name): (Arc<dyn Backend>, String) = match parsed {
            ModelSpec::Local(reference) => {
                let path = crate::resolve::model(&reference)?;
                let adapter = self.options.load.adapter.clone();
                return self.get_local(&path, &reference, adapter.as_deref());
            }
            ModelSpec::OpenAi { base_url, model } => {
                let key = std::env::var(&remote.api_key_env).ok();
                let backend =
                    OpenAiBackend::new(&base_url, &model, key).map_err(|e| Error::Model {
                        context: format!("model `{model}` at {base_url}"),
                        message: e.to_string(),
                    })?;
                (Arc::new(backend), model)
            }
            ModelSpec::Gemini(model) => {
                let backend = GeminiBackend::from_env(&model).map_err(|e| Error::Model {
                    context: format!("Gemini model `{model}`"),
                    message: e.to_string(),
                })?;
                (Arc::new(backend), model)
            }
        };
        let policy = RetryPolicy {
            max_attempts: remote.attempts.max(1),
            timeout: remote.request_timeout.max(Duration::from_secs(1)),
            ..RetryPolicy::default()
        };
        let model = Arc::new(OpenModel {
            spec: backend.identity(),
            name,
            sha256: None,
            client: Arc::new(Client::new(backend, remote.concurrency, policy)),
        });
        self.open.insert(key, model.clone());
        Ok(model)
    }

    /// The local model at `path` (called `reference` in records), with
    /// `adapter` applied when given, opened once.
    pub fn get_local(
        &mut self,
        path: &Path,
        reference: &str,
        adapter: Option<&Path>,
    ) -> Result<Arc<OpenModel>> {
        let key = match adapter {
            Some(dir) => format!("local:{}+adapter:{}", path.display(), dir.display()),
            None => format!("local:{}", path.display()),
        };
        if let Some(model) = self.open.get(&key) {
            return Ok(model.clone());
        }
        let model = Arc::new(self.open_local(path, reference, adapter)?);
        self.open.insert(key, model.clone());
        Ok(model)
    }

    fn open_local(
        &self,
        path: &Path,
        reference: &str,
        adapter: Option<&Path>,
    ) -> Result<OpenModel> {
        let batch = self.options.batch_size.max(1);
        let load = LoadOptions {
            adapter: adapter.map(Path::to_path_buf),
            ..self.options.load.clone()
        };
        let engine = load_engine(path, &load)?;
        let sha256 = if path.is_file() {
            Some(lem_core::hash::sha256_file(path).at(path)?)
        } else {
            None
        };
        // An adapter changes the model: records and the judge cache say so.
        let spec = match adapter {
            Some(dir) => format!("local:{reference}+adapter:{}", dir.display()),
            None => format!("local:{reference}"),
        };
        let local = LocalBackend::start(engine, spec.clone(), batch);
        // The engine never times out or retries: its errors are final,
        // and a slow machine is not a failure.
        let policy = RetryPolicy {
            max_attempts: 1,
            timeout: Duration::from_secs(7 * 24 * 3600),
            ..RetryPolicy::default()
        };
        let client = Client::new(Arc::new(local) as Arc<dyn Backend>, batch, policy);
        Ok(OpenModel {
            name: path.file_stem().map_or_else(
                || reference.to_string(),
                |s| s.to_string_lossy().into_owned(),
            ),
            spec,
            sha256,
            client: Arc::new(client),
        })
    }
}

/// The engine of the local model at `path`.
pub fn load_engine(path: &std::path::Path, options: &LoadOptions) -> Result<Engine> {
    Engine::load(path, options).map_err(|e| Error::Model {
        context: format!("loading model {}", path.display()),
        message: e.to_string(),
    })
}

/// A tokio runtime for the clients (two workers: the work is waiting).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("starting the async runtime: {e}")))
}
