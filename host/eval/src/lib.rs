//! The evaluation as a library: what `lem run`, `lem generate` and
//! `lem score` do, callable without the `lem` binary (a notebook, a Python
//! binding, a service).
//!
//! Why it is shaped so: an evaluation is two passes over a benchmark —
//! [`generate`] (items → prompts → kernel → model → responses file, resumable)
//! and [`score`] (responses → scorer plugins, which may call the [`judge`])
//! — and a [`plan`] that resolves an eval config into checked work and runs
//! both passes for every (model, kernel, benchmark); [`calibrate()`] runs the
//! score pass on recorded responses to measure a judge against a reference
//! judge's scores of the same items. Where each file of a run
//! lives is known in one place, [`RunDir`]. Nothing here prints: progress
//! and per-item failures leave as [`Event`]s pushed into the caller's
//! [`Sink`], and errors are the typed [`Error`]. Models are opened through
//! the model clients ([`models`], over `lem-models`); plugins run in
//! `lem-plugin-host`'s sandbox; reports are built by `lem-report`.
//!
//! A whole evaluation, no CLI involved:
//!
//! ```no_run
//! use lem_eval::{Event, Plan, RunOptions};
//! use std::sync::Mutex;
//!
//! let config = lem_core::eval::EvalConfig::load("eval.toml".as_ref())?;
//! let plugins = lem_plugin_host::Runtime::new(Default::default())?;
//! let plan = Plan::resolve(config, &plugins)?;
//! let events: Mutex<Vec<Event>> = Mutex::new(Vec::new());
//! let outcome = plan.execute(&plugins, &RunOptions::default(), &events)?;
//! print!("{}", lem_eval::report::render(&outcome.report, lem_eval::Format::Md));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod calibrate;
pub mod data;
pub mod distill;
mod error;
mod event;
pub mod generate;
pub mod judge;
pub mod models;
pub mod plan;
pub mod report;
pub mod resolve;
mod run_dir;
pub mod score;
pub mod variants;

pub use calibrate::{CalibrateJob, CalibrationOutcome, calibrate};
pub use error::{Error, Result};
pub use event::{Discard, Event, Pass, Sink, Task};
pub use plan::{BuildRow, Plan, PlanRow, PluginRow, RunOptions, RunOutcome};
pub use report::Format;
pub use run_dir::RunDir;
