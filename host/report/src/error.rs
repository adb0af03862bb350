//! Why a report could not be made.

/// Everything that can go wrong between input and a finished [`crate::Report`].
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The score file is not JSON at all.
    #[error("score file is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The score file is JSON, but not shaped like
    /// `{"scores": {benchmark: {model: {item: {metric: value}}}}}`.
    #[error("score file at {}: expected {expected}, found {found}", place(path))]
    Shape {
        /// Where, as a JSON Pointer (RFC 6901), e.g. `/scores/gsm8k/base`.
        path: String,
        /// What should be there.
        expected: &'static str,
        /// What is there.
        found: &'static str,
    },
    /// The same key twice in one JSON object of a score file.
    #[error(
        "score file at {}: key `{key}` appears twice in one object",
        place(path)
    )]
    DuplicateKey {
        /// The object, as a JSON Pointer.
        path: String,
        /// The repeated key.
        key: String,
    },
    /// There is nothing to report on.
    #[error("no observations: nothing to report")]
    Empty,
    /// A judge calibration (the JSON `lem judge calibrate` writes) that does
    /// not read.
    #[error("judge calibration: {0}; give the JSON `lem judge calibrate --out FILE.json` writes")]
    Calibration(String),
    /// The requested baseline model has no observations.
    #[error("baseline model `{baseline}` is not in the input; models are: {}", models.join(", "))]
    UnknownBaseline {
        /// The model asked for.
        baseline: String,
        /// The models there are, in input order.
        models: Vec<String>,
    },
    /// One item of one model and benchmark was given twice.
    #[error(
        "{benchmark}: model `{model}` has item `{item}` twice; \
         merge the inputs so that each item is scored once"
    )]
    DuplicateItem {
        /// The benchmark.
        benchmark: String,
        /// The model.
        model: String,
        /// The item id.
        item: String,
    },
    /// A metric value is NaN or infinite.
    #[error(
        "{benchmark}: model `{model}`, item `{item}`: metric `{metric}` is {value}, not a finite number"
    )]
    NotFinite {
        /// The benchmark.
        benchmark: String,
        /// The model.
        model: String,
        /// The item id.
        item: String,
        /// The metric.
        metric: String,
        /// The value found.
        value: f64,
    },
    /// A judge's or reference's score is NaN or infinite.
    #[error("field `{field}`: a score is {value}, not a finite number")]
    NotFiniteScore {
        /// The field.
        field: String,
        /// The value found.
        value: f64,
    },
    /// The options ask for a bootstrap with no resamples.
    #[error("the bootstrap needs at least one resample")]
    NoResamples,
}

/// A JSON Pointer for people: the empty pointer is the whole document.
fn place(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}
