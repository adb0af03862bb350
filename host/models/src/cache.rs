//! Answers kept on disk, so a rerun asks a model only what it has not
//! answered before.
//!
//! One file per answer, named by the sha256 of (model identity, request):
//! writers never share a file, a write is atomic (temporary name, then
//! rename), and a damaged file is ignored as a miss rather than trusted.

use crate::{ChatRequest, Completion};
use lem_core::AtomicFile;
use std::path::{Path, PathBuf};

/// A directory of cached answers.
#[derive(Debug, Clone)]
pub struct AnswerCache {
    dir: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    model: String,
    request: ChatRequest,
    completion: Completion,
}

impl AnswerCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        AnswerCache { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `request` sent to `model`: a sha256 over both, hex.
    pub fn key(model: &str, request: &ChatRequest) -> String {
        let text = serde_json::json!({"model": model, "request": request}).to_string();
        lem_core::hash::sha256_hex(text.as_bytes())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.json"))
    }

    /// The cached answer of `model` to `request`, if there is one. The stored
    /// request must equal this one (a hash collision or a damaged file is a
    /// miss).
    pub fn get(&self, model: &str, request: &ChatRequest) -> Option<Completion> {
        let text = std::fs::read(self.path(&Self::key(model, request))).ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        (entry.model == model && &entry.request == request).then_some(entry.completion)
    }

    /// Stores `completion` as `model`'s answer to `request`.
    pub fn put(
        &self,
        model: &str,
        request: &ChatRequest,
        completion: &Completion,
    ) -> std::io::Result<()> {
        let path = self.path(&Self::key(model, request));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let entry = Entry {
            model: model.to_string(),
            request: request.clone(),
            completion: completion.clone(),
        };
        let mut file = AtomicFile::create(&path)?;
        file.write_json(&entry)?;
        file.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Usage;
    use lem_core::ChatMessage;

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![ChatMessage::new("user", text)],
            max_tokens: 8,
            temperature: 0.0,
            top_p: None,
            seed: Some(1),
            ..ChatRequest::default()
        }
    }

    #[test]
    fn stores_and_finds_answers_by_model_and_request() {
        let dir = tempfile::tempdir().unwrap();
        let cache = AnswerCache::new(dir.path());
        let done = Completion {
            text: "{\"x\": 3}".into(),
            finish_reason: "stop".into(),
            usage: Usage::default(),
            ..Completion::default()
        };
        assert_eq!(cache.get("m", &request("a")), None);
        cache.put("m", &request("a"), &done).unwrap();
        assert_eq!(cache.get("m", &request("a")), Some(done.clone()));
        assert_eq!(cache.get("other", &request("a")), None);
        assert_eq!(cache.get("m", &request("b")), None);
        let mut hotter = request("a");
        hotter.temperature = 0.5;
        assert_eq!(cache.get("m", &hotter), None);
    }

    #[test]
    fn a_damaged_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = AnswerCache::new(dir.path());
        let key = AnswerCache::key("m", &request("a"));
        std::fs::create_dir_all(dir.path().join(&key[..2])).unwrap();
        std::fs::write(cache.path(&key), "{\"model\": \"m\", \"requ").unwrap();
        assert_eq!(cache.get("m", &request("a")), None);
    }
}
