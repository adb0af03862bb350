//! Grading with an LLM judge against a rubric: fence the material, ask for
//! one JSON object of integer scores, read it back strictly.
//!
//! Why it is shaped so: every judge scorer does the same three things, and
//! each is easy to get subtly wrong.
//!
//! * [`fence`] quotes untrusted text (the response under test, the question)
//!   so that it cannot pose as instructions to the judge.
//! * [`Rubric::parse_verdict`] reads the judge's answer and refuses anything
//!   that is not a whole number in range for every metric, naming the field
//!   and the problem, so that a sloppy judge never becomes a silent score.
//! * [`Rubric::ask`] calls the host's judge greedily with a fixed seed, re-asks
//!   once when the answer is unreadable, and otherwise fails with
//!   `judge-unparsable` carrying the raw answers.
//!
//! The judge call sits behind a closure ([`Rubric::ask_with`]) because WIT
//! imports cannot run natively: the logic is unit tested with a fake judge.
//!
//! [`Rubric`] asks in text, over contract 0.1.0. [`declarative`] is the same
//! idea over contract 0.2.0, declared rather than written: fields with
//! their ranges, inputs to fence, and one schema-constrained judge call
//! that scores each field by the probabilities of its values when the judge
//! can give them.

mod ask;
pub mod declarative;
mod fence;
mod verdict;

pub use ask::{JUDGE_SEED, Verdict, host_judge};
pub use fence::{FENCE_RULE, fence, fence_as};
pub use verdict::VerdictError;

/// What a judge is asked to score: the metric names and the integer range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rubric {
    /// The metrics the judge must return, each an integer field.
    pub metrics: &'static [&'static str],
    /// The lowest allowed score.
    pub min: i64,
    /// The highest allowed score.
    pub max: i64,
}

impl Rubric {
    /// A rubric scoring `metrics` from 1 to 10.
    pub const fn new(metrics: &'static [&'static str]) -> Self {
        Rubric {
            metrics,
            min: 1,
            max: 10,
        }
    }

    /// The instruction that closes a system prompt: the exact reply format.
    ///
    /// ```
    /// let r = lem_plugin_sdk::rubric::Rubric::new(&["a", "b"]);
    /// assert!(r.reply_format().contains(r#"{"a": <integer 1-10>, "b": <integer 1-10>}"#));
    /// ```
    pub fn reply_format(&self) -> String {
        format!(
            "Reply with exactly one JSON object and nothing after it, of the form {}. \
             Every field is required and must be a whole number from {} to {}.",
            self.shape(),
            self.min,
            self.max
        )
    }

    /// The JSON shape asked for, e.g. `{"a": <integer 1-10>}`.
    fn shape(&self) -> String {
        let fields: Vec<String> = self
            .metrics
            .iter()
            .map(|m| format!("\"{m}\": <integer {}-{}>", self.min, self.max))
            .collect();
        format!("{{{}}}", fields.join(", "))
    }
}
