//! [`Engine`]: a model on its device and its tokenizer, ready to generate.

use crate::EngineError;
use crate::constraint::Grammars;
use crate::generate::{self, Event, Request, RequestSource};
use crate::models::{Model, ModelFiles};
use crate::tokenizer::Tokenizer;
use candle_core::Device;
use lem_core::ChatMessage;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Which device runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKind {
    /// The CPU (always available).
    #[default]
    Cpu,
    /// An NVIDIA GPU (the `cuda` feature).
    Cuda,
    /// An Apple GPU (the `metal` feature).
    Metal,
}

impl std::str::FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda),
            "metal" => Ok(DeviceKind::Metal),
            other => Err(format!("unknown device `{other}` (cpu, cuda, metal)")),
        }
    }
}

impl DeviceKind {
    /// Opens the device.
    pub fn open(self) -> Result<Device, EngineError> {
        match self {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda => Device::new_cuda(0).map_err(|e| {
                EngineError::Device(format!("cannot open CUDA device 0 ({e}); build with `--features cuda` on a machine with a GPU"))
            }),
            DeviceKind::Metal => Device::new_metal(0).map_err(|e| {
                EngineError::Device(format!("cannot open Metal device 0 ({e}); build with `--features metal` on a Mac"))
            }),
        }
    }
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The device.
    pub device: DeviceKind,
    /// Longest prompt plus output, in tokens.
    pub context: usize,
    /// Where `tokenizer.json` is, if not beside the model.
    pub tokenizer_dir: Option<PathBuf>,
    /// A LoRA adapter directory (PEFT layout) to apply, unfused.
    pub adapter: Option<PathBuf>,
    /// A Jinja chat template file to use instead of the tokenizer config's.
    pub chat_template: Option<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: DeviceKind::Cpu,
            context: 4096,
            tokenizer_dir: None,
            adapter: None,
            chat_template: None,
        }
    }
}

/// A loaded model with its tokenizer.
pub struct Engine {
    model: Model,
    tokenizer: Tokenizer,
    context: usize,
    vocab: usize,
    /// The vocabulary as constrained decoding sees it, built on first use
    /// (a second or so for a 150k vocabulary); its error kept as text.
    grammars: std::sync::OnceLock<Result<Grammars, String>>,
}

impl Engine {
    /// Loads a `.gguf` file or a safetensors model directory, and its tokenizer.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self, EngineError> {
        let files = ModelFiles::locate(path)?;
        let tokenizer = Tokenizer::for_model(
            &files,
            options.tokenizer_dir.as_deref(),
            options.chat_template.as_deref(),
        )?;
        let device = options.device.open()?;
        let mut model = Model::load(&files, &device, options.context)?;
        if let Some(dir) = &options.adapter {
            crate::adapter::Adapter::load(dir, &device)?.apply(&mut model)?;
        }
        let (context, vocab) = model.context_and_vocab();
        // Tokenizers may carry a few ids the model has no row for (Gemma's
        // `<image_soft_token>`); one of another size belongs to another model.
        let size = tokenizer.vocab_size();
        if size.abs_diff(vocab) > 1024 {
            return Err(EngineError::BadFile {
                path: options
                    .tokenizer_dir
                    .clone()
                    .unwrap_or(files.dir().to_owned())
                    .join("tokenizer.json"),
                reason: format!(
                    "this tokenizer has {size} tokens but the model has {vocab}: it belongs to another model"
                ),
            });
        }
        Ok(Engine {
            model,
            tokenizer,
            context,
            vocab,
            grammars: std::sync::OnceLock::new(),
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Longest prompt plus output, in tokens.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Renders and encodes a conversation, refusing ids the model cannot take.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, EngineError> {
        let ids = self.tokenizer.encode_chat(messages)?;
        self.check_ids(&ids)?;
        Ok(ids)
    }

    /// Refuses token ids outside the model's vocabulary (such as Gemma's
    /// `<image_soft_token>`, which the tokenizer has and the model does not).
    pub fn check_ids(&self, ids: &[u32]) -> Result<(), EngineError> {
        let vocab = self.vocab;
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            let text = self.tokenizer.id_to_token(bad).unwrap_or_default();
            return Err(EngineError::BadInput(format!(
                "the prompt contains token {bad} (`{text}`), which is outside the model's vocabulary of {vocab}"
            )));
        }
        Ok(())
    }

    /// The vocabulary as constrained decoding sees it.
    pub fn grammars(&self) -> Result<&Grammars, EngineError> {
        self.grammars
            .get_or_init(|| Grammars::new(&self.tokenizer, self.vocab).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| EngineError::BadInput(e.clone()))
    }

    /// The log-probability of each of `continuations` after `prompt`: the
    /// prompt is run once and each continuation from its cache (what
    /// lm-eval calls loglikelihood requests).
    pub fn score_continuations(
        &self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
    ) -> Result<Vec<f64>, EngineError> {
        self.check_ids(prompt)?;
        let longest = continuations.iter().map(Vec::len).max().unwrap_or(0);
        let mut cache = self
            .model
            .new_cache((prompt.len() + longest).min(self.context))?;
        let first = self.model.prefill(prompt, &mut cache)?;
        let first = generate::to_vec(&first)?;
        continuations
            .iter()
            .map(|c| {
                self.check_ids(c)?;
                generate::continuation_logprob(&self.model, &mut cache, &first, c)
            })
            .collect()
    }

    /// Generates for every request, up to `batch_size` at a time.
    pub fn generate(
        &self,
        requests: Vec<Request>,
        batch_size: usize,
        stream: bool,
        sink: &mut dyn FnMut(Event),
    ) -> Result<(), EngineError> {
        self.generate_from(&mut VecDeque::from(requests), batch_size, stream, sink)
    }

    /// Generates for requests as `source` hands them out (a server's queue),
    /// up to `batch_size` at a time; returns when the source is finished.
    pub fn generate_from(
        &self,
        source: &mut dyn RequestSource,
        batch_size: usize,
        stream: bool,
        sink: &mut dyn FnMut(Event),
    ) -> Result<(), EngineError> {
        generate::generate(
            &self.model,
            &self.tokenizer,
            &|| self.grammars(),
            self.context,
            source,
            batch_size,
            stream,
            sink,
        )
    }
}
