//! The one error type of the evaluation library.
//!
//! Each variant says what was wrong and, where the user can act, what to do.
//! A cause is written into the message rather than also returned by
//! `source()`, so that error chains print it once.

use std::path::PathBuf;

/// Why an evaluation step could not be done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The eval config is wrong at a line.
    #[error(transparent)]
    Config(#[from] lem_core::eval::EvalError),
    /// A benchmark manifest is wrong.
    #[error(transparent)]
    Manifest(#[from] lem_core::ManifestError),
    /// A JSONL file could not be read, or a line is not a record.
    #[error(transparent)]
    Jsonl(#[from] lem_core::jsonl::JsonlError),
    /// A text file is not UTF-8 or could not be read.
    #[error(transparent)]
    Text(#[from] lem_core::TextError),
    /// A results file could not be opened or appended to.
    #[error(transparent)]
    Store(#[from] lem_core::StoreError),
    /// Observations a report cannot be built from.
    #[error(transparent)]
    Report(#[from] lem_report::ReportError),
    /// A name that is neither shipped nor a file.
    #[error("unknown {kind} `{name}`: {hint}")]
    Unknown {
        /// `benchmark`, `plugin`, `kernel`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// What exists instead.
        hint: String,
    },
    /// A model name `scripts/setup` installs, not installed.
    #[error("{name} is not installed at {path}: run scripts/setup")]
    NotInstalled {
        /// The model's name.
        name: String,
        /// Where it should be.
        path: PathBuf,
    },
    /// A model spec names no model.
    #[error(
        "no model at `{spec}`: pass a .gguf file, a safetensors directory, or one of {installed}"
    )]
    NoModel {
        /// The spec.
        spec: String,
        /// The installable names.
        installed: String,
    },
    /// A model could not be opened.
    #[error("{context}: {message}")]
    Model {
        /// Which model, doing what.
        context: String,
        /// The backend's or engine's error.
        message: String,
    },
    /// A plugin could not be loaded.
    #[error("{context}: {cause}")]
    Plugin {
        /// Which plugin, for what.
        context: String,
        /// The plugin host's error.
        cause: lem_plugin_host::LoadError,
    },
    /// A data file is wrong at a line.
    #[error("{}:{line}: {message}", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// Its 1-based line (or the seed's position in a JSON array).
        line: usize,
        /// What is wrong and what to do.
        message: String,
    },
    /// A response answers an item the benchmark data does not have.
    #[error(
        "item `{id}` is not in the data of benchmark `{benchmark}`; check that the data file is the one these responses answer"
    )]
    UnknownItem {
        /// The benchmark.
        benchmark: String,
        /// The response's item id.
        id: String,
    },
    /// A benchmark is scored by a plugin that asks a judge, and there is none.
    #[error("scorer `{scorer}` of benchmark `{benchmark}` asks a judge model, and no judge is set")]
    NeedsJudge {
        /// The benchmark.
        benchmark: String,
        /// The scorer plugin's name.
        scorer: String,
    },
    /// A reference score file is unreadable, not the upstream layout, or
    /// holds nothing for the calibration asked for.
    #[error("{}: {message}", path.display())]
    Reference {
        /// The reference file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// No response to calibrate on has a reference score.
    #[error(
        "no response in {} has reference scores in {} (benchmark `{benchmark}`, model `{model}`): {hint}",
        responses.display(),
        reference.display()
    )]
    NoOverlap {
        /// The responses file.
        responses: PathBuf,
        /// The reference file.
        reference: PathBuf,
        /// The benchmark.
        benchmark: String,
        /// The model key read in the reference.
        model: String,
        /// What differs, and what to check.
        hint: String,
    },
    /// A step building a variant failed.
    #[error("building variant `{variant}` ({step}): {message}")]
    Build {
        /// The variant.
        variant: String,
        /// `distill`, `train (stage 1 of 2)`, `abliterate`.
        step: String,
        /// Why, and what to do.
        message: String,
    },
    /// Anything else the input gets wrong, said in full.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A worker thread panicked (a bug: please report it).
    #[error("a {0} thread panicked")]
    Panicked(&'static str),
}

/// The library's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause,
        }
    }
}

/// `result`'s I/O error, attributed to `path`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
