//! Shared records and rules of lem.
//!
//! Why it is shaped so: every other part of lem (plugin host, engine, judge,
//! trainer, reports, CLI) speaks in these records, so they live in a crate
//! that depends on no other part. Nothing here knows about WebAssembly or
//! models; it knows what a benchmark item, a response and a score look like
//! on disk, how to read JSONL so that a bad line is reported by file and line,
//! and how to write output so that an interrupted run never leaves a file that
//! looks complete.
#![deny(missing_docs)]

pub mod eval;
pub mod hash;
pub mod jsonl;
pub mod manifest;
pub mod policy;
pub mod records;
pub mod store;
pub mod text;

pub use jsonl::{AtomicFile, JsonlError, Located};
pub use manifest::{BenchmarkManifest, ManifestError, MetricSpec, MetricUnit};
pub use policy::{Grants, Limits, Policy};
pub use records::{
    BenchmarkItem, ChatMessage, JudgeExchange, JudgeTrail, PluginIdentity, ResponseRecord,
    ScoreError, ScoreRecord, ScoreSummary,
};
pub use store::{AppendStore, OpenReport, StoreError};
pub use text::TextError;

/// Where lem keeps its caches and downloaded models: `$LEM_HOME`, else
/// `$XDG_CACHE_HOME/lem`, else `~/.cache/lem`.
pub fn lem_home() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("LEM_HOME") {
        return home.into();
    }
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME") {
        return std::path::PathBuf::from(cache).join("lem");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    std::path::PathBuf::from(home).join(".cache").join("lem")
}
