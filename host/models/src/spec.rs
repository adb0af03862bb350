//! Model specs: the one-line names of models in configs and on the command line.

use std::fmt;
use std::str::FromStr;

/// Where a model runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// The candle engine on this machine: `local:PATH` (a `.gguf` file, a
    /// safetensors directory, or an installed model's name).
    Local(String),
    /// Any OpenAI-compatible server: `openai:BASE_URL#MODEL`, e.g.
    /// `openai:http://127.0.0.1:8080/v1#gemma-3-270m`.
    OpenAi {
        /// The API root, up to and including `/v1`.
        base_url: String,
        /// The model name the server knows.
        model: String,
    },
    /// The Gemini API: `gemini:MODEL`.
    Gemini(String),
}

/// A spec that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad model spec `{spec}`: {problem} (expected `local:PATH`, `openai:BASE_URL#MODEL` or `gemini:MODEL`)"
)]
pub struct SpecError {
    spec: String,
    problem: &'static str,
}

impl FromStr for ModelSpec {
    type Err = SpecError;

    /// Parses a spec. A string with no known prefix is a local model, so
    /// `--model gemma-3-270m` and `--model ./m.gguf` keep working.
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let bad = |problem| SpecError {
            spec: spec.to_string(),
            problem,
        };
        if let Some(rest) = spec.strip_prefix("openai:") {
            let (base_url, model) = rest.rsplit_once('#').ok_or_else(|| bad("no `#MODEL`"))?;
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err(bad("the base URL must start with http:// or https://"));
            }
            if model.is_empty() {
                return Err(bad("the model name after `#` is empty"));
            }
            return Ok(ModelSpec::OpenAi {
                base_url: base_url.trim_end_matches('/').to_string(),
                model: model.to_string(),
            });
        }
        if let Some(model) = spec.strip_prefix("gemini:") {
            if model.is_empty() || model.contains('/') {
                return Err(bad("the Gemini model name is empty or has a `/`"));
            }
            return Ok(ModelSpec::Gemini(model.to_string()));
        }
        let path = spec.strip_prefix("local:").unwrap_or(spec);
        if path.is_empty() {
            return Err(bad("empty"));
        }
        Ok(ModelSpec::Local(path.to_string()))
    }
}

impl fmt::Display for ModelSpec {
    /// The canonical spec: what records and cache keys name the model by.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Local(path) => write!(f, "local:{path}"),
            ModelSpec::OpenAi { base_url, model } => write!(f, "openai:{base_url}#{model}"),
            ModelSpec::Gemini(model) => write!(f, "gemini:{model}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_and_prints_it_back() {
        for (text, canonical) in [
            ("local:/m/x.gguf", "local:/m/x.gguf"),
            ("gemma-3-270m", "local:gemma-3-270m"),
            (
                "openai:http://127.0.0.1:8080/v1/#gemma",
                "openai:http://127.0.0.1:8080/v1#gemma",
            ),
            ("gemini:gemini-2.5-flash", "gemini:gemini-2.5-flash"),
        ] {
            let spec: ModelSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), canonical);
            assert_eq!(canonical.parse::<ModelSpec>().unwrap(), spec);
        }
    }

    #[test]
    fn refuses_malformed_remote_specs() {
        for text in [
            "openai:http://host/v1",
            "openai:host/v1#m",
            "openai:http://host/v1#",
            "gemini:",
            "local:",
        ] {
            let err = text.parse::<ModelSpec>().unwrap_err().to_string();
            assert!(err.contains(text), "{err}");
        }
    }
}
