//! What a plugin may touch, and how much it may use per call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Per-call bounds. Every call starts with a full budget.
///
/// Everything a plugin hands the host is bounded here before it is kept,
/// printed or forwarded: a plugin is untrusted, and the host's memory, disk
/// and time must not grow with what it chooses to return.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Fuel (roughly, wasm instructions) per call; `None` for unlimited.
    /// Fuel is deterministic, so an audit replays the same verdicts.
    pub fuel: Option<u64>,
    /// Wall time per call in milliseconds, including time the plugin spends
    /// blocked in WASI calls (a granted clock's sleep, a granted socket);
    /// time waiting on the host's judge does not count (the judge client
    /// bounds that with its own timeouts).
    pub timeout_ms: u64,
    /// Linear-memory cap in bytes.
    pub memory_bytes: usize,
    /// Cap on the bytes a call may return.
    pub max_output_bytes: usize,
    /// Cap on the guest's captured stderr.
    pub max_stderr_bytes: usize,
    /// Cap on log lines per call (further lines are dropped).
    pub max_log_lines: usize,
    /// Bytes of an error message kept (the plugin's error payload, or a trap
    /// with its stderr); the rest is cut with a marker saying how much. An
    /// error is copied into every record that carries it.
    pub max_error_bytes: usize,
    /// Bytes of `describe()`'s description kept; cut with a marker.
    pub max_description_bytes: usize,
    /// Longest `describe()` name or version; longer is refused at load
    /// (they identify the plugin in every record, so they are never cut).
    pub max_name_bytes: usize,
    /// Most metrics `describe()` may declare; more is refused at load.
    pub max_metrics: usize,
    /// Longest metric name; longer is refused at load.
    pub max_metric_name_bytes: usize,
    /// Most messages a benchmark or kernel plugin may return for one item.
    pub max_messages: usize,
    /// Deepest nesting of a scorer's details JSON.
    pub max_details_depth: usize,
    /// Largest judge request (bytes of its messages); a larger one is refused
    /// without reaching the judge, and only its sha256 is kept.
    pub max_judge_request_bytes: usize,
    /// Messages per judge request.
    pub max_judge_messages: usize,
    /// A judge request's `max-tokens` is clamped to this.
    pub max_judge_tokens: u32,
    /// Largest `.wasm` file read.
    pub max_wasm_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: Some(2_000_000_000),
            timeout_ms: 10_000,
            memory_bytes: 64 << 20,
            max_output_bytes: 1 << 20,
            max_stderr_bytes: 16 << 10,
            max_log_lines: 100,
            max_error_bytes: 4 << 10,
            max_description_bytes: 1 << 10,
            max_name_bytes: 128,
            max_metrics: 256,
            max_metric_name_bytes: 128,
            max_messages: 64,
            max_details_depth: 32,
            max_judge_request_bytes: 256 << 10,
            max_judge_messages: 32,
            max_judge_tokens: 4096,
            max_wasm_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// The guest-time budget.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// A host directory a plugin may see.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The host path.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
    /// Whether the guest may write.
    #[serde(default)]
    pub writable: bool,
}

/// Ambient capabilities. The default grants nothing: no clocks, random,
/// environment, filesystem or network.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Real wall and monotonic clocks.
    pub clocks: bool,
    /// Real random numbers.
    pub random: bool,
    /// Environment variables the guest sees.
    pub env: BTreeMap<String, String>,
    /// Directories the guest sees.
    pub dirs: Vec<DirGrant>,
    /// Outgoing TCP/UDP.
    pub network: bool,
}

/// Everything the host enforces for one plugin.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Per-call bounds.
    pub limits: Limits,
    /// Ambient capabilities.
    pub grants: Grants,
    /// Pinned SHA-256 of the `.wasm`; a mismatch is refused before anything runs.
    pub sha256: Option<String>,
}
