//! The tokenizer (`tokenizer.json`) with what `tokenizer_config.json` adds:
//! the chat template, BOS/EOS and end-of-turn tokens; or all of it from a
//! GGUF's metadata ([`crate::gguf_tokenizer`]).

use crate::EngineError;
use crate::chat_template::{ChatTemplate, SpecialTokens, TokenizerConfig};
use lem_core::ChatMessage;
use std::path::Path;

/// A tokenizer bound to one model.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    template: Option<ChatTemplate>,
    stop_ids: Vec<u32>,
    bos: Option<String>,
    eos: Option<String>,
}

impl Tokenizer {
    /// Loads `tokenizer.json` and, when present, `tokenizer_config.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EngineError> {
        Self::load_with_template(dir, None)
    }

    /// [`load`](Self::load), with the chat template read from `chat_template`
    /// (a Jinja file) instead of the config when one is given.
    pub fn load_with_template(
        dir: &Path,
        chat_template: Option<&Path>,
    ) -> Result<Self, EngineError> {
        let json = dir.join("tokenizer.json");
        if !json.is_file() {
            return Err(EngineError::BadFile {
                path: json,
                reason: "missing: a model needs its tokenizer.json beside it (or pass \
                         --tokenizer DIR), unless it is a GGUF that carries its tokenizer"
                    .into(),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(&json).map_err(|e| EngineError::BadFile {
            path: json.clone(),
            reason: format!("not a valid tokenizer.json: {e}"),
        })?;
        let config = TokenizerConfig::load(&dir.join("tokenizer_config.json"))?;
        let template = match chat_template {
            Some(file) => Some(ChatTemplate::from_file(file, &config.special_tokens())?),
            None => config.chat_template()?,
        };
        Ok(Self::assemble(
            inner,
            template,
            config.token("bos_token"),
            config.token("eos_token"),
        ))
    }

    /// The tokenizer of a model: `tokenizer.json` (and its config) in
    /// `tokenizer_dir` or beside the model, else the GGUF's own; a
    /// `chat_template` file replaces the template either way.
    pub fn for_model(
        files: &crate::models::ModelFiles,
        tokenizer_dir: Option<&Path>,
        chat_template: Option<&Path>,
    ) -> Result<Self, EngineError> {
        match (tokenizer_dir, files) {
            (Some(dir), _) => Self::load_with_template(dir, chat_template),
            (None, crate::models::ModelFiles::Gguf(gguf))
                if !files.dir().join("tokenizer.json").is_file() =>
            {
                Self::from_gguf(gguf, chat_template)
            }
            (None, _) => Self::load_with_template(files.dir(), chat_template),
        }
    }

    /// `tokenizer.json` and `tokenizer_config.json` for this tokenizer, as
    /// Hugging Face writes them (what a fused model directory needs when its
    /// base GGUF carried its own tokenizer).
    pub fn hf_files(&self) -> Result<(String, serde_json::Value), EngineError> {
        let json = self
            .inner
            .to_string(false)
            .map_err(|e| EngineError::BadInput(format!("cannot write the tokenizer: {e}")))?;
        let mut config = serde_json::json!({
            "bos_token": self.bos,
            "eos_token": self.eos,
            "add_bos_token": self.bos.is_some(),
        });
        if let Some(template) = &self.template {
            config["chat_template"] = template.source().into();
        }
        Ok((json, config))
    }

    /// The tokenizer and chat template a GGUF carries in its metadata; a
    /// `chat_template` file, when given, replaces the GGUF's template.
    pub fn from_gguf(path: &Path, chat_template: Option<&Path>) -> Result<Self, EngineError> {
        let bad = |reason: String| EngineError::BadFile {
            path: path.to_owned(),
            reason,
        };
        let mut file =
            std::fs::File::open(path).map_err(|e| EngineError::Io(path.to_owned(), e))?;
        let content = candle_core::quantized::gguf_file::Content::read(&mut file)
            .map_err(|e| bad(format!("not a readable GGUF: {e}")))?;
        let gguf = crate::gguf_tokenizer::read(&content.metadata).map_err(bad)?;
        let inner = tokenizers::Tokenizer::from_bytes(
            serde_json::to_vec(&gguf.json).map_err(|e| bad(e.to_string()))?,
        )
        .map_err(|e| {
            bad(format!(
                "its tokenizer metadata does not make a tokenizer: {e}"
            ))
        })?;
        let special: SpecialTokens = gguf
            .special
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let template = match (chat_template, &gguf.chat_template) {
            (Some(file), _) => Some(ChatTemplate::from_file(file, &special)?),
            (None, Some(source)) => Some(ChatTemplate::new(
                source,
                &format!("{} (tokenizer.chat_template)", path.display()),
                &special,
            )?),
            (None, None) => None,
        };
        let bos = gguf
            .add_bos
            .then(|| gguf.special.get("bos_token").cloned())
            .flatten();
        let eos = gguf.special.get("eos_token").cloned();
        Ok(Self::assemble(inner, template, bos, eos))
    }

    fn assemble(
        inner: tokenizers::Tokenizer,
        template: Option<ChatTemplate>,
        bos: Option<String>,
        eos: Option<String>,
    ) -> Self {
        let mut stop_ids = Vec::new();
        for text in [
            eos.as_deref(),
            Some("<eos>"),
            Some("<end_of_turn>"),
            Some("<|eot_id|>"),
            Some("<|im_end|>"),
            Some("</s>"),
            Some("<|end_of_text|>"),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(id) = inner.token_to_id(text)
                && !stop_ids.contains(&id)
            {
                stop_ids.push(id);
            }
        }
        Tokenizer {
            inner,
            template,
            stop_ids,
            bos,
            eos,
        }
    }

    /// Whether the model has a chat template (else it is treated as a base model).
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// The beginning-of-sequence token's text, if the model has one.
    pub fn bos(&self) -> Option<&str> {
        self.bos.as_deref()
    }

    /// Token ids that end generation.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// Renders messages to prompt text: the chat template with a generation
    /// prompt, or the base-model layout when there is no template.
    pub fn prompt_text(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        match &self.template {
            Some(t) => t.render(messages, true),
            None => Ok(format!(
                "{}{}",
                self.bos.as_deref().unwrap_or(""),
                crate::chat_template::base_prompt(messages)
            )),
        }
    }

    /// For training on a conversation's last message: the text before it
    /// (with the generation prompt) and the whole conversation. Without a
    /// chat template the base-model layout is used and the answer ends with
    /// the EOS token.
    pub fn training_texts(
        &self,
        messages: &[ChatMessage],
    ) -> Result<(String, String), EngineError> {
        let Some((last, before)) = messages.split_last() else {
            return Err(EngineError::BadInput("an empty conversation".into()));
        };
        let prompt = self.prompt_text(before)?;
        let full = match &self.template {
            Some(t) => t.render(messages, false)?,
            None => format!(
                "{prompt} {}{}",
                last.content,
                self.eos.as_deref().unwrap_or("")
            ),
        };
        Ok((prompt, full))
    }

    /// Encodes text exactly as written (special tokens in the text are
    /// recognised; none are added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| EngineError::BadInput(format!("cannot tokenize: {e}")))
    }

    /// Decodes ids to text, skipping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| EngineError::BadInput(format!("cannot decode: {e}")))
    }

    /// The `tokenizers` tokenizer underneath.
    pub(crate) fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Number of ids, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The text of one token id, if any.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Renders and encodes a conversation.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, EngineError> {
        self.encode(&self.prompt_text(messages)?)
    }
}
