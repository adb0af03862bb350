//! What a plugin may touch, and how much it may use per call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Per-call bounds. Every call starts with a full budget.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Fuel (roughly, wasm instructions) per call; `None` for unlimited.
    /// Fuel is deterministic, so an audit replays the same verdicts.
    pub fuel: Option<u64>,
    /// Guest time per call in milliseconds (time spent waiting on the host's
    /// judge does not count).
    pub timeout_ms: u64,
    /// Linear-memory cap in bytes.
    pub memory_bytes: usize,
    /// Cap on the bytes a call may return.
    pub max_output_bytes: usize,
    /// Cap on the guest's captured stderr.
    pub max_stderr_bytes: usize,
    /// Cap on log lines per call (further lines are dropped).
    pub max_log_lines: usize,
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
