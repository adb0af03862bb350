//! Load-time and call-time errors.

use lem_core::ScoreError;

/// Why a plugin was refused at load time. Nothing of it ran.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{label}: cannot read plugin: {source}")]
    Io {
        /// The plugin.
        label: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Larger than `max_wasm_bytes`; refused before it is read.
    #[error("{label}: {size} bytes, more than the {limit} a plugin may have (`max_wasm_bytes`)")]
    TooLarge {
        /// The plugin.
        label: String,
        /// Its size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// Not WebAssembly at all.
    #[error(
        "{label}: not a WebAssembly file (a plugin is a .wasm component built with `cargo build --target wasm32-wasip2`)"
    )]
    NotWasm {
        /// The plugin.
        label: String,
    },
    /// A precompiled artifact: lem only runs what it compiled itself.
    #[error(
        "{label}: this is a precompiled (.cwasm) artifact; lem only accepts .wasm components and compiles them itself"
    )]
    Precompiled {
        /// The plugin.
        label: String,
    },
    /// A core module rather than a component.
    #[error(
        "{label}: a core WebAssembly module, not a component; build it with `--target wasm32-wasip2` (or `wasm-tools component new`)"
    )]
    CoreModule {
        /// The plugin.
        label: String,
    },
    /// Malformed or not loadable.
    #[error("{label}: invalid component: {reason}")]
    Invalid {
        /// The plugin.
        label: String,
        /// What the parser or compiler said.
        reason: String,
    },
    /// The digest does not match the pin in the config.
    #[error(
        "{label}: sha256 {actual} does not match the pinned {expected}; refusing to run it (update the pin only if you trust the new file)"
    )]
    HashMismatch {
        /// The plugin.
        label: String,
        /// The pin.
        expected: String,
        /// The file's digest.
        actual: String,
    },
    /// It exports no lem world.
    #[error(
        "{label}: exports no lem plugin interface (found exports: {exports}); is it a lem plugin?"
    )]
    NoWorld {
        /// The plugin.
        label: String,
        /// What it exports.
        exports: String,
    },
    /// A world other than the one this slot needs.
    #[error("{label}: is a `{found}` plugin, but a `{expected}` plugin is needed here")]
    WrongWorld {
        /// The plugin.
        label: String,
        /// The world needed.
        expected: String,
        /// The world found.
        found: String,
    },
    /// Built against a contract version this host does not load.
    #[error(
        "{label}: built against lem:plugin@{found}; this lem loads {supported}. Rebuild the plugin against a supported version, or upgrade lem"
    )]
    UnsupportedVersion {
        /// The plugin.
        label: String,
        /// Its version.
        found: String,
        /// Ours.
        supported: String,
    },
    /// It imports what its policy does not grant.
    #[error("{label}: imports what its policy does not allow: {}", denied.iter().map(|(i, h)| format!("`{i}` ({h})")).collect::<Vec<_>>().join("; "))]
    ForbiddenImport {
        /// The plugin.
        label: String,
        /// Each refused import, with how to allow it or why it cannot be.
        denied: Vec<(String, String)>,
    },
    /// Linking, instantiation or `describe` failed.
    #[error("{label}: {reason}")]
    Instantiate {
        /// The plugin.
        label: String,
        /// The cause.
        reason: String,
    },
}

/// What kind of failure a call ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The guest trapped (a panic shows up as this, with its message).
    Trap,
    /// The fuel budget ran out.
    OutOfFuel,
    /// The guest-time budget ran out.
    Timeout,
    /// The memory cap was hit.
    MemoryLimit,
    /// The guest overflowed its stack.
    StackOverflow,
    /// The returned value is larger than allowed.
    OutputTooLarge,
    /// The returned value breaks the contract (NaN, undeclared metric, ...).
    BadOutput,
    /// The plugin reported `invalid-input`.
    InvalidInput,
    /// The plugin reported `judge-failed`.
    JudgeFailed,
    /// The plugin reported `judge-unparsable`.
    JudgeUnparsable,
    /// The plugin reported `internal`, or the host failed.
    Internal,
}

impl CallErrorKind {
    /// The kind's name in score records.
    pub fn as_str(self) -> &'static str {
        match self {
            CallErrorKind::Trap => "trap",
            CallErrorKind::OutOfFuel => "out-of-fuel",
            CallErrorKind::Timeout => "timeout",
            CallErrorKind::MemoryLimit => "memory-limit",
            CallErrorKind::StackOverflow => "stack-overflow",
            CallErrorKind::OutputTooLarge => "output-too-large",
            CallErrorKind::BadOutput => "bad-output",
            CallErrorKind::InvalidInput => "invalid-input",
            CallErrorKind::JudgeFailed => "judge-failed",
            CallErrorKind::JudgeUnparsable => "judge-unparsable",
            CallErrorKind::Internal => "internal",
        }
    }
}

/// Why one call produced no result. The plugin stays usable: the next call
/// gets a fresh store.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct CallError {
    /// The kind.
    pub kind: CallErrorKind,
    /// What happened, including the guest's stderr (e.g. a panic message).
    pub message: String,
}

impl CallError {
    pub(crate) fn new(kind: CallErrorKind, message: impl Into<String>) -> Self {
        CallError {
            kind,
            message: message.into(),
        }
    }
}

impl From<CallError> for ScoreError {
    fn from(e: CallError) -> Self {
        ScoreError {
            kind: e.kind.as_str().to_string(),
            message: e.message,
        }
    }
}
