//! Training data: `train.jsonl` / `valid.jsonl` / `test.jsonl` in one of
//! three shapes per line, as mlx_lm reads them:
//!
//! - chat: `{"messages": [{"role": "user", "content": ...}, ..., {"role": "assistant", ...}]}`
//! - prompt/completion: `{"prompt": ..., "completion": ...}`
//! - text: `{"text": ...}`
//!
//! Chat and prompt/completion examples are rendered with the model's chat
//! template; with `mask_prompt` only the last (assistant) message's tokens
//! carry loss. Text examples carry loss on every token.
//!
//! Examples longer than `max_seq_length` are **truncated** (their end is
//! cut) and counted; an example left with no supervised token is dropped
//! and counted. Both counts are reported, never silent.

use crate::TrainError;
use lem_core::ChatMessage;
use lem_engine::tokenizer::Tokenizer;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One training example as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Example {
    /// A conversation whose last message is the one learned.
    Chat(Vec<ChatMessage>),
    /// Plain text, learned whole.
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatLine {
    messages: Vec<ChatMessage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptLine {
    prompt: String,
    completion: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextLine {
    text: String,
}

/// Reads one line; the error says what shape was expected.
pub fn parse_example(line: &str) -> Result<Example, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let obj = value
        .as_object()
        .ok_or("a training example is a JSON object")?;
    if obj.contains_key("messages") {
        let chat: ChatLine = serde_json::from_value(value.clone()).map_err(|e| {
            format!("not a chat example ({{\"messages\": [{{\"role\", \"content\"}}, ...]}}): {e}")
        })?;
        let Some(last) = chat.messages.last() else {
            return Err("`messages` is empty".into());
        };
        if last.role != "assistant" {
            return Err(format!(
                "the last message is from `{}`; a chat example ends with the assistant's answer",
                last.role
            ));
        }
        if let Some(m) = chat
            .messages
            .iter()
            .find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
        {
            return Err(format!(
                "role `{}` is not one of system, user, assistant",
                m.role
            ));
        }
        return Ok(Example::Chat(chat.messages));
    }
    if obj.contains_key("prompt") || obj.contains_key("completion") {
        let p: PromptLine = serde_json::from_value(value)
            .map_err(|e| format!("not a prompt/completion example: {e}"))?;
        return Ok(Example::Chat(vec![
            ChatMessage::new("user", p.prompt),
            ChatMessage::new("assistant", p.completion),
        ]));
    }
    if obj.contains_key("text") {
        let t: TextLine =
            serde_json::from_value(value).map_err(|e| format!("not a text example: {e}"))?;
        return Ok(Example::Text(t.text));
    }
    Err("expected {\"messages\": [...]}, {\"prompt\", \"completion\"} or {\"text\"}".into())
}

/// Reads a JSONL file of examples; blank lines are skipped.
pub fn read_examples(path: &Path) -> Result<Vec<Example>, TrainError> {
    let mut out = Vec::new();
    for line in lem_core::text::lines(path)? {
        let (number, line) = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            parse_example(&line).map_err(|reason| TrainError::BadExample {
                path: path.to_owned(),
                line: number,
                reason,
            })?,
        );
    }
    if out.is_empty() {
        return Err(TrainError::BadData {
            path: path.to_owned(),
            reason: "no examples".into(),
        });
    }
    Ok(out)
}

/// The files of a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    /// `train.jsonl`.
    pub train: PathBuf,
    /// `valid.jsonl`, if present.
    pub valid: Option<PathBuf>,
    /// `test.jsonl`, if present.
    pub test: Option<PathBuf>,
}

impl DataDir {
    /// Finds the files; `train.jsonl` is required.
    pub fn locate(dir: &Path) -> Result<Self, TrainError> {
        let train = dir.join("train.jsonl");
        if !train.is_file() {
            return Err(TrainError::BadData {
                path: dir.to_owned(),
                reason: "no train.jsonl here: --data names a directory with train.jsonl (and optionally valid.jsonl, test.jsonl)".into(),
            });
        }
        let opt = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        Ok(DataDir {
            train,
            valid: opt("valid.jsonl"),
            test: opt("test.jsonl"),
        })
    }
}

/// An example as token ids, with which positions carry loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    /// The ids.
    pub ids: Vec<u32>,
    /// `supervised[i]`: the loss includes predicting `ids[i]` (never for `i = 0`).
    pub supervised: Vec<bool>,
}

impl Tokenized {
    /// Tokens whose prediction carries loss.
    pub fn supervised_count(&self) -> usize {
        self.supervised.iter().filter(|s| **s).count()
    }
}

/// What tokenizing a data set did besides producing examples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenizeReport {
    /// Examples cut to `max_seq_length`.
    pub truncated: usize,
    /// Examples dropped because truncation left nothing to learn.
    pub dropped: usize,
}

/// Tokenizes examples for training.
pub fn tokenize(
    examples: &[Example],
    tokenizer: &Tokenizer,
    mask_prompt: bool,
    max_seq_length: usize,
    vocab: usize,
    path: &Path,
) -> Result<(Vec<Tokenized>, TokenizeReport), TrainError> {
    let mut out = Vec::with_capacity(examples.len());
    let mut report = TokenizeReport::default();
    for (i, ex) in examples.iter().enumerate() {
        let bad = |reason: String| TrainError::BadExample {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        let (mut ids, prompt_len) = match ex {
            Example::Chat(messages) => {
                let (prompt, full) = tokenizer
                    .training_texts(messages)
                    .map_err(|e| bad(e.to_string()))?;
                let ids = tokenizer.encode(&full).map_err(|e| bad(e.to_string()))?;
                let prompt_ids = tokenizer.encode(&prompt).map_err(|e| bad(e.to_string()))?;
                // Tokens can merge across the boundary: learn from the first
                // position where the two encodings differ.
                let common = ids
                    .iter()
                    .zip(&prompt_ids)
                    .take_while(|(a, b)| a == b)
                    .count();
                (ids, if mask_prompt { common } else { 0 })
            }
            Example::Text(text) => {
                let mut ids = Vec::new();
                if let Some(bos) = tokenizer.bos() {
                    ids.extend(tokenizer.encode(bos).map_err(|e| bad(e.to_string()))?);
                }
                ids.extend(tokenizer.encode(text).map_err(|e| bad(e.to_string()))?);
                (ids, 0)
            }
        };
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(bad(format!(
                "token {id} is outside the model's vocabulary of {vocab}"
            )));
        }
        if ids.len() > max_seq_length {
            ids.truncate(max_seq_length);
            report.truncated += 1;
        }
        let supervised: Vec<bool> = (0..ids.len()).map(|p| p >= 1 && p >= prompt_len).collect();
        let t = Tokenized { ids, supervised };
        if t.supervised_count() == 0 {
            report.dropped += 1;
            continue;
        }
        out.push(t);
    }
    Ok((out, report))
}

/// A padded batch: `ids` `[rows, len]` row-major, and the flat positions
/// whose token is predicted (from the position before it).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Rows.
    pub rows: usize,
    /// Padded length.
    pub len: usize,
    /// `rows * len` ids, right-padded with 0.
    pub ids: Vec<u32>,
    /// Flat indices `row * len + p` of the hidden states that predict a supervised token.
    pub from: Vec<u32>,
    /// The predicted tokens, one per `from`.
    pub targets: Vec<u32>,
}

impl Batch {
    /// Pads `examples` into one batch. Padding sits after each example, so
    /// causal attention never lets a real token see it.
    pub fn new(examples: &[&Tokenized]) -> Batch {
        let len = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        let rows = examples.len();
        let mut ids = vec![0u32; rows * len];
        let (mut from, mut targets) = (Vec::new(), Vec::new());
        for (r, e) in examples.iter().enumerate() {
            ids[r * len..r * len + e.ids.len()].copy_from_slice(&e.ids);
            for (p, &s) in e.supervised.iter().enumerate() {
                if s {
                    from.push((r * len + p - 1) as u32);
                    targets.push(e.ids[p]);
                }
            }
        }
        Batch {
            rows,
            len,
            ids,
            from,
            targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_shapes_parse_and_bad_lines_say_why() {
        assert!(matches!(
            parse_example(r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}"#),
            Ok(Example::Chat(m)) if m.len() == 2
        ));
        assert!(matches!(
            parse_example(r#"{"prompt":"a","completion":"b"}"#),
            Ok(Example::Chat(m)) if m[1].content == "b"
        ));
        assert_eq!(
            parse_example(r#"{"text":"t"}"#),
            Ok(Example::Text("t".into()))
        );
        let e = parse_example("{not json").unwrap_err();
        assert!(e.starts_with("not JSON"), "{e}");
        let e = parse_example(r#"{"messages":[{"role":"user","content":"hi"}]}"#).unwrap_err();
        assert!(e.contains("ends with the assistant"), "{e}");
        let e = parse_example(r#"{"question":"x"}"#).unwrap_err();
        assert!(e.contains("expected"), "{e}");
        let e = parse_example(r#"{"prompt":"a"}"#).unwrap_err();
        assert!(e.contains("completion"), "{e}");
        let e = parse_example(
            r#"{"messages":[{"role":"bot","content":"x"},{"role":"assistant","content":"y"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("role `bot`"), "{e}");
    }

    #[test]
    fn read_examples_names_a_line_that_is_not_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train.jsonl");
        std::fs::write(&p, b"{\"text\":\"a\"}\n{\"text\":\"\xe9\"}\n").unwrap();
        let e = read_examples(&p).unwrap_err().to_string();
        assert!(
            e.contains("train.jsonl:2: not valid UTF-8 at byte 10"),
            "{e}"
        );
    }

    #[test]
    fn read_examples_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train.jsonl");
        std::fs::write(&p, "{\"text\":\"a\"}\n\n{\"text\": 3}\n").unwrap();
        let e = read_examples(&p).unwrap_err().to_string();
        assert!(e.contains("train.jsonl:3:"), "{e}");
    }

    #[test]
    fn batches_pad_right_and_predict_from_the_previous_position() {
        let a = Tokenized {
            ids: vec![5, 6, 7],
            supervised: vec![false, false, true],
        };
        let b = Tokenized {
            ids: vec![8, 9],
            supervised: vec![false, true],
        };
        let batch = Batch::new(&[&a, &b]);
        assert_eq!(batch.len, 3);
        assert_eq!(batch.ids, [5, 6, 7, 8, 9, 0]);
        assert_eq!(batch.from, [1, 3]);
        assert_eq!(batch.targets, [7, 9]);
    }
}
