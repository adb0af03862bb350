//! Reports of lem: what a fine-tune gained and lost, with how sure we are.
//!
//! Why it is shaped so: a report is computed once, into a plain model
//! ([`Report`]), and then rendered three ways (Markdown for a terminal or a
//! pull request, JSON for other programs, one self-contained HTML file for
//! people). Renderers only read the model, so the three can never disagree on
//! a number. Input is a flat list of [`Observation`]s (one scored or failed
//! item), which both lem's own score records and the upstream score files are
//! turned into, so the statistics do not care where the scores came from.
//!
//! The statistics are deliberately simple and fully specified, so that anyone
//! can recompute them: means over scored items (failures are counted, never
//! averaged in), 95% percentile-bootstrap intervals from a seeded splitmix64
//! generator, and, against one baseline model, a paired comparison on the
//! items both scored: paired bootstrap interval, exact McNemar or sign-flip
//! permutation p-value, Holm's adjustment across the whole table, a verdict,
//! TOST equivalence where a margin is given, flips, failure bounds and the
//! smallest detectable difference (see [`stats`] and [`table`] for the exact
//! procedures). Why paired: the same items answered by two models are not
//! independent samples, and per-model intervals overstate the uncertainty of
//! their difference; why Holm: a table of 21 cells at α 0.05 otherwise
//! "finds" a difference by chance about two times in three.
//!
//! This crate knows no benchmark by name: how a metric is shown (range,
//! direction, unit, label) comes from a [`MetricDescriptor`] the caller
//! declares, or else from a documented rule over the values
//! ([`MetricDescriptor::derived`]). A percent change is shown only on a
//! ratio scale (a metric that cannot be negative) with a positive baseline.
//!
//! A judge can also be held against a reference judge on the same items
//! ([`calibration`]): per field, rank and chance-corrected agreement, error,
//! bias and failures, each with a bootstrap interval ([`agreement`]),
//! rendered as Markdown, JSON and an HTML section.
//!
//! The HTML carries one chart (a forest plot of the paired differences,
//! inline SVG drawn by plotters' SVG backend), a per-item browser with one
//! small inline script for its filters, and no reference to anything outside
//! the file, so a report can be mailed or archived as it is.
#![deny(missing_docs)]

pub mod agreement;
pub mod calibration;
mod chart;
pub mod error;
#[cfg(test)]
mod fixture;
mod format;
pub mod html;
pub mod input;
pub mod json;
pub mod markdown;
pub mod stats;
pub mod table;

pub use agreement::{Agreement, Estimate};
pub use calibration::{Calibration, FieldAgreement, Judged};
pub use error::ReportError;
pub use html::to_html;
pub use input::{Detail, Observation, assign_domains, parse_upstream_scores};
pub use json::to_json;
pub use markdown::to_markdown;
pub use table::{
    Cell, Delta, Equivalence, FailureBounds, Flips, Item, ItemRow, ItemScore, MetricDescriptor,
    MetricKey, Paired, Report, ReportOptions, Test, Unit, Unscored, Verdict,
};
