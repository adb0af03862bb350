//! The run directory: the one place that knows where a run's files live.
//!
//! ```text
//! OUT/responses/RUN/BENCH.jsonl           answers, appended as they come (resumable)
//! OUT/responses/RUN/BENCH.failures.jsonl  items that could not be generated, and why
//! OUT/scores/RUN/BENCH.jsonl              one score record per item × scorer
//! OUT/responses/RUN/identity.json         what made RUN's answers (model, kernel, settings)
//! OUT/superseded/RUN-N/                   answers and scores set aside when that changed
//! OUT/artifacts/KIND-KEY/                 built variants' data, adapters and models
//! OUT/run.json                            what produced it: models, hashes, settings
//! OUT/report.{md,html,json}               the report
//! ```

use crate::error::{Error, IoContext, Result};
use crate::report::Format;
use lem_core::{ResponseRecord, ScoreRecord};
use lem_report::Observation;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (created as files are written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    /// Its root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `run`'s answers to `benchmark` are appended.
    pub fn responses(&self, run: &str, benchmark: &str) -> PathBuf {
        self.root
            .join("responses")
            .join(run)
            .join(format!("{benchmark}.jsonl"))
    }

    /// Where `run`'s scores on `benchmark` are written.
    pub fn scores(&self, run: &str, benchmark: &str) -> PathBuf {
        self.root
            .join("scores")
            .join(run)
            .join(format!("{benchmark}.jsonl"))
    }

    /// Where built variants' artifacts go.
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// What made `run`'s answers.
    fn identity(&self, run: &str) -> PathBuf {
        self.root.join("responses").join(run).join("identity.json")
    }

    /// Whether `run` has answers on file made by something other than
    /// `identity` (another model, kernel or generation setting).
    pub fn made_by_other(&self, run: &str, identity: &serde_json::Value) -> bool {
        std::fs::read_to_string(self.identity(run))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|on_file| &on_file != identity)
    }

    /// Ties `run`'s answers to `identity`. Answers on file made by
    /// something else are not resumed from: they and their scores are moved
    /// to `superseded/RUN-N/` (kept, not deleted), which is returned.
    pub fn claim(&self, run: &str, identity: &serde_json::Value) -> Result<Option<PathBuf>> {
        let mut moved = None;
        if self.made_by_other(run, identity) {
            let mut n = 1;
            let target = loop {
                let t = self.root.join("superseded").join(format!("{run}-{n}"));
                if !t.exists() {
                    break t;
                }
                n += 1;
            };
            std::fs::create_dir_all(&target).at(&target)?;
            for kind in ["responses", "scores"] {
                let from = self.root.join(kind).join(run);
                if from.exists() {
                    let to = target.join(kind);
                    std::fs::rename(&from, &to).at(&from)?;
                }
            }
            moved = Some(target);
        }
        Self::write_atomic(&self.identity(run), &format!("{identity:#}"))?;
        Ok(moved)
    }

    /// What produced the run.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("run.json")
    }

    /// The report in `format`.
    pub fn report(&self, format: Format) -> PathBuf {
        let name = Format::FILES
            .iter()
            .find(|(f, _)| *f == format)
            .map_or("report", |(_, name)| name);
        self.root.join(name)
    }

    /// Writes `text` to `path` whole or not at all.
    pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let mut file = lem_core::AtomicFile::create(path).at(path)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).at(path)?;
        file.commit().at(path)
    }

    /// Writes `records` as `run`'s scores on `benchmark`, whole or not at all.
    pub fn write_scores<'a>(
        &self,
        run: &str,
        benchmark: &str,
        records: impl IntoIterator<Item = &'a ScoreRecord>,
    ) -> Result<()> {
        let path = self.scores(run, benchmark);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let mut file = lem_core::AtomicFile::create(&path).at(&path)?;
        for r in records {
            file.write_json(r).at(&path)?;
        }
        file.commit().at(&path)
    }

    /// Every score record under `scores/`, as observations, each with its
    /// response from `responses/` (prompt as sent, answer) for the item
    /// browser, and every item that could not be generated as a failed
    /// observation.
    pub fn observations(&self) -> Result<Vec<Observation>> {
        let scores = self.root.join("scores");
        if !scores.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: no scores/ here; is this a `lem run` output directory?",
                self.root.display()
            )));
        }
        let responses = responses(&self.root.join("responses"))?;
        let mut files = Vec::new();
        collect_jsonl(&scores, &mut files)?;
        files.sort();
        let mut observations = Vec::new();
        for file in files {
            for record in lem_core::jsonl::read::<ScoreRecord>(&file)? {
                let r = record.value;
                let mut o = Observation::from_record(&r, r.domain.clone());
                if let Some((prompt, response)) =
                    responses.get(&(r.benchmark.clone(), r.model.clone(), r.id.clone()))
                {
                    o.detail.prompt = Some(prompt.clone());
                    o.detail.response = Some(response.clone());
                }
                observations.push(o);
            }
        }
        observations.extend(generation_failures(&self.root.join("responses"))?);
        Ok(observations)
    }
}

/// The items under `dir` that could not be generated, as failed
/// observations of no particular scorer: they count against every metric of
/// their benchmark, and the item browser shows why.
fn generation_failures(dir: &Path) -> Result<Vec<Observation>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut files = Vec::new();
    collect_jsonl(dir, &mut files)?;
    files.sort();
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(benchmark) = name
            .as_deref()
            .and_then(|n| n.strip_suffix(".failures.jsonl"))
        else {
            continue;
        };
        let model = file
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for record in lem_core::jsonl::read::<crate::generate::Failure>(&file)? {
            let f = record.value;
            out.push(Observation {
                benchmark: benchmark.to_string(),
                model: model.clone(),
                item_id: f.id,
                domain: None,
                metrics: BTreeMap::new(),
                failed: true,
                scorer: None,
                detail: lem_report::Detail {
                    error: Some((
                        format!("not generated ({}: {})", f.stage, f.kind),
                        f.message,
                    )),
                    ..lem_report::Detail::default()
                },
            });
        }
    }
    Ok(out)
}

/// (benchmark, model, item id).
type ItemKey = (String, String, String);

/// (benchmark, model, item) → (prompt as sent, response) of every response
/// record under `dir` (none when there is no such directory). The lists of
/// items that could not be generated (`BENCH.failures.jsonl`) are not
/// responses and are skipped.
fn responses(dir: &Path) -> Result<HashMap<ItemKey, (String, String)>> {
    let mut out = HashMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut files = Vec::new();
    collect_jsonl(dir, &mut files)?;
    files.retain(|f| {
        !f.file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".failures.jsonl"))
    });
    for file in files {
        for record in lem_core::jsonl::read::<ResponseRecord>(&file)? {
            let r = record.value;
            let prompt = sent(&r);
            out.insert((r.benchmark, r.model, r.id), (prompt, r.response));
        }
    }
    Ok(out)
}

/// Every message as sent (`role:` then the text), when the record has them;
/// else its `prompt`.
fn sent(record: &ResponseRecord) -> String {
    let Some(serde_json::Value::Array(messages)) = record.extra.get("messages") else {
        return record.prompt.clone();
    };
    let parts: Vec<String> = messages
        .iter()
        .filter_map(|m| {
            let role = m.get("role")?.as_str()?;
            let content = m.get("content")?.as_str()?;
            Some(format!("{role}:\n{content}"))
        })
        .collect();
    if parts.is_empty() {
        record.prompt.clone()
    } else {
        parts.join("\n\n")
    }
}

fn collect_jsonl(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.is_dir() {
            collect_jsonl(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_a_run_has_one_place() {
        let dir = RunDir::new("/out");
        assert_eq!(
            dir.responses("lek+sandwich", "gsm8k"),
            Path::new("/out/responses/lek+sandwich/gsm8k.jsonl")
        );
        assert_eq!(
            crate::generate::failures_path(&dir.responses("base", "toxigen")),
            Path::new("/out/responses/base/toxigen.failures.jsonl")
        );
        assert_eq!(
            dir.scores("base", "gsm8k"),
            Path::new("/out/scores/base/gsm8k.jsonl")
        );
        assert_eq!(dir.manifest(), Path::new("/out/run.json"));
        assert_eq!(dir.report(Format::Html), Path::new("/out/report.html"));
    }

    #[test]
    fn answers_made_by_something_else_are_set_aside_not_resumed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path());
        let first = serde_json::json!({"model": "a"});
        assert_eq!(dir.claim("lek", &first).unwrap(), None);
        std::fs::write(dir.responses("lek", "gsm8k"), "{}\n").unwrap();
        // The same maker again: nothing moves.
        assert_eq!(dir.claim("lek", &first).unwrap(), None);
        assert!(dir.responses("lek", "gsm8k").is_file());
        // Another maker: the old answers are kept aside.
        let second = serde_json::json!({"model": "b"});
        assert!(dir.made_by_other("lek", &second));
        let moved = dir.claim("lek", &second).unwrap().unwrap();
        assert_eq!(moved, tmp.path().join("superseded/lek-1"));
        assert!(moved.join("responses/gsm8k.jsonl").is_file());
        assert!(!dir.responses("lek", "gsm8k").exists());
        assert!(!dir.made_by_other("lek", &second));
    }

    #[test]
    fn a_directory_without_scores_is_not_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunDir::new(dir.path()).observations().unwrap_err();
        assert!(err.to_string().contains("no scores/ here"), "{err}");
    }
}
