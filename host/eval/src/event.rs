//! What an evaluation reports while it runs, pushed into a caller's [`Sink`].
//!
//! The library never prints and never draws a progress bar: the CLI turns
//! events into bars and lines, a notebook might collect them, a service might
//! forward them. (ripgrep's `Sink` is the model; unlike it, a sink here takes
//! `&self` and is `Sync`, because the passes of a run work on many threads
//! at once — one per model × benchmark, and a pool of scoring workers.)

use std::sync::Mutex;

/// Which pass of which run over which benchmark an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Task {
    /// Building, generating or scoring.
    pub pass: Pass,
    /// The run's label (`base`, `lek+sandwich`; empty when there is one),
    /// or the variant being built.
    pub run: String,
    /// The benchmark, or the build step.
    pub benchmark: String,
}

/// The passes of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pass {
    /// Building a variant: distilling, training, abliterating.
    Build,
    /// Answering items with a model.
    Generate,
    /// Scoring answers with the benchmark's scorers.
    Score,
}

impl Task {
    /// The generate pass of `run` over `benchmark`.
    pub fn generate(run: impl Into<String>, benchmark: impl Into<String>) -> Self {
        Task {
            pass: Pass::Generate,
            run: run.into(),
            benchmark: benchmark.into(),
        }
    }

    /// Building `variant`: `step` is `distill`, `train (stage 1 of 2)`...
    pub fn build(variant: impl Into<String>, step: impl Into<String>) -> Self {
        Task {
            pass: Pass::Build,
            run: variant.into(),
            benchmark: step.into(),
        }
    }

    /// The score pass over `benchmark` (every run of it scores together).
    pub fn score(benchmark: impl Into<String>) -> Self {
        Task {
            pass: Pass::Score,
            run: String::new(),
            benchmark: benchmark.into(),
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pass {
            Pass::Generate if self.run.is_empty() => write!(f, "{}", self.benchmark),
            Pass::Generate => write!(f, "{} {}", self.run, self.benchmark),
            Pass::Score => write!(f, "scoring {}", self.benchmark),
            Pass::Build => write!(f, "{}: {}", self.run, self.benchmark),
        }
    }
}

/// One thing that happened. Text from plugins and models is passed as it
/// came: whoever shows it escapes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A task begins with `total` steps to do (items, or item × scorer pairs).
    Started {
        /// The task.
        task: Task,
        /// Its steps.
        total: u64,
    },
    /// One step of a task is done.
    Advanced {
        /// The task.
        task: Task,
        /// A short status: generation speed so far, for instance.
        status: Option<String>,
    },
    /// A task has nothing more to do.
    Finished {
        /// The task.
        task: Task,
    },
    /// One item could not be done; it is also in the failures file, and a
    /// rerun tries it again.
    ItemFailed {
        /// The task.
        task: Task,
        /// The item.
        id: String,
        /// Its line in the benchmark data, when known.
        line: Option<usize>,
        /// `prompt`, ``kernel `NAME` ``, or `model`.
        stage: String,
        /// Why.
        message: String,
    },
    /// Something the user should know that is not a failure (a torn last
    /// line cut off a results file, judge cache counts).
    Notice(String),
}

/// Where events go.
pub trait Sink: Sync {
    /// Takes one event. Called from the threads doing the work: keep it short.
    fn event(&self, event: Event);
}

/// Collects every event, in the order they arrived.
impl Sink for Mutex<Vec<Event>> {
    fn event(&self, event: Event) {
        self.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl Sink for Discard {
    fn event(&self, _event: Event) {}
}
