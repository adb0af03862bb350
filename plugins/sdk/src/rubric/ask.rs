//! Asking the judge, with one re-ask when the verdict is unreadable.
//!
//! The judge is called greedily (temperature 0) with [`JUDGE_SEED`] so that a
//! run grades the same way twice. If the answer is not a valid verdict, the
//! judge gets one more turn: its answer is appended, then a user message that
//! quotes the problem and asks for the JSON object alone. One re-ask fixes
//! the common slips (prose only, a missing field) without letting a confused
//! judge burn the item's budget; a second failure is `judge-unparsable`, with
//! the parse errors and the raw answers in the message for the audit trail.

use super::Rubric;
use crate::{Message, Metric, PluginError, ScoreCard};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The seed sent with every judge request.
pub const JUDGE_SEED: u64 = 42;

/// A readable verdict and the raw answers it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Metric name to score.
    pub scores: BTreeMap<String, f64>,
    /// The judge's raw answers in order: one, or two after a re-ask.
    pub answers: Vec<String>,
}

impl Verdict {
    /// Whether the judge had to be asked twice.
    pub fn reasked(&self) -> bool {
        self.answers.len() > 1
    }

    /// The answer the verdict was read from (the last one).
    pub fn answer(&self) -> &str {
        self.answers.last().map_or("", String::as_str)
    }

    /// Score-card details: `{"judge_answer": ..., "reasked": bool}`, plus
    /// `"first_answer"` after a re-ask.
    pub fn details(&self) -> Value {
        let mut details = json!({ "judge_answer": self.answer(), "reasked": self.reasked() });
        if let (true, Some(first)) = (self.reasked(), self.answers.first()) {
            details["first_answer"] = Value::String(first.clone());
        }
        details
    }
}

/// The host's judge as a closure for [`Rubric::ask_with`]: temperature 0,
/// seed [`JUDGE_SEED`], at most `max_tokens`. Only works inside a wasm guest.
pub fn host_judge(max_tokens: u32) -> impl FnMut(&[Message]) -> Result<String, String> {
    use crate::judge::{JudgeError, JudgeRequest, complete};
    move |messages: &[Message]| {
        complete(&JudgeRequest {
            messages: messages.to_vec(),
            max_tokens,
            temperature: Some(0.0),
            seed: Some(JUDGE_SEED),
        })
        .map_err(|e| match e {
            JudgeError::NotConfigured => "no judge is configured for this run".to_string(),
            JudgeError::Failed(reason) => format!("the judge failed: {reason}"),
            JudgeError::BudgetExhausted => "the judge budget for this item is spent".to_string(),
        })
    }
}

impl Rubric {
    /// Asks the host's judge (see [`host_judge`]) for a verdict on `messages`.
    pub fn ask(&self, messages: Vec<Message>, max_tokens: u32) -> Result<Verdict, PluginError> {
        self.ask_with(host_judge(max_tokens), messages)
    }

    /// Asks `judge` for a verdict, re-asking once if it is unreadable.
    ///
    /// A judge error is `judge-failed`; two unreadable answers are
    /// `judge-unparsable`, whose message holds both errors and both answers.
    pub fn ask_with(
        &self,
        mut judge: impl FnMut(&[Message]) -> Result<String, String>,
        mut messages: Vec<Message>,
    ) -> Result<Verdict, PluginError> {
        let first = judge(&messages).map_err(PluginError::JudgeFailed)?;
        let first_error = match self.parse_verdict(&first) {
            Ok(scores) => {
                return Ok(Verdict {
                    scores,
                    answers: vec![first],
                });
            }
            Err(e) => e,
        };
        messages.push(Message::new("assistant", first.clone()));
        messages.push(Message::new(
            "user",
            format!(
                "Your answer could not be read: {first_error}. Reply again with only the JSON \
                 object of the form {}, whole numbers from {} to {}, and no other text.",
                self.shape(),
                self.min,
                self.max
            ),
        ));
        let second = judge(&messages).map_err(PluginError::JudgeFailed)?;
        match self.parse_verdict(&second) {
            Ok(scores) => Ok(Verdict {
                scores,
                answers: vec![first, second],
            }),
            Err(second_error) => Err(PluginError::JudgeUnparsable(format!(
                "the judge's verdict could not be read, even after one re-ask: {second_error} \
                 (first answer: {first_error})\n\
                 --- first answer ---\n{first}\n--- second answer ---\n{second}"
            ))),
        }
    }

    /// A score card with the verdict's scores in rubric order and its
    /// [`Verdict::details`].
    pub fn score_card(&self, verdict: &Verdict) -> ScoreCard {
        ScoreCard {
            metrics: self
                .metrics
                .iter()
                .filter_map(|&m| {
                    verdict.scores.get(m).map(|&value| Metric {
                        name: m.into(),
                        value,
                    })
                })
                .collect(),
            details: Some(verdict.details().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rubric = Rubric::new(&["truth", "help"]);

    fn question() -> Vec<Message> {
        vec![Message::new("system", "grade"), Message::new("user", "q")]
    }

    /// A judge that plays back `answers` and records what it was sent.
    fn scripted<'a>(
        answers: Vec<Result<&'static str, &'static str>>,
        seen: &'a mut Vec<Vec<Message>>,
    ) -> impl FnMut(&[Message]) -> Result<String, String> + 'a {
        let mut answers = answers.into_iter();
        move |messages| {
            seen.push(messages.to_vec());
            answers
                .next()
                .expect("judge asked too often")
                .map(String::from)
                .map_err(String::from)
        }
    }

    #[test]
    fn a_good_first_answer_is_used_as_is() {
        let mut seen = Vec::new();
        let judge = scripted(vec![Ok(r#"{"truth": 9, "help": 4}"#)], &mut seen);
        let v = R.ask_with(judge, question()).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!((v.scores["truth"], v.scores["help"]), (9.0, 4.0));
        assert!(!v.reasked());
        let card = R.score_card(&v);
        let names: Vec<&str> = card.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["truth", "help"]);
        let details: Value = serde_json::from_str(card.details.as_deref().unwrap()).unwrap();
        assert_eq!(details["judge_answer"], r#"{"truth": 9, "help": 4}"#);
        assert_eq!(details["reasked"], false);
        assert!(details.get("first_answer").is_none());
    }

    #[test]
    fn an_unreadable_answer_is_reasked_once_quoting_the_error() {
        let mut seen = Vec::new();
        let judge = scripted(
            vec![
                Ok("It is quite truthful."),
                Ok(r#"{"truth": 8, "help": 6}"#),
            ],
            &mut seen,
        );
        let v = R.ask_with(judge, question()).unwrap();
        assert!(v.reasked());
        assert_eq!(v.scores["help"], 6.0);
        assert_eq!(v.details()["first_answer"], "It is quite truthful.");
        assert_eq!(seen.len(), 2);
        let reask = &seen[1];
        assert_eq!(reask.len(), 4);
        assert_eq!(reask[2].role, "assistant");
        assert_eq!(reask[2].content, "It is quite truthful.");
        assert_eq!(reask[3].role, "user");
        assert!(reask[3].content.contains("contains no JSON object"));
        assert!(reask[3].content.contains(r#""truth": <integer 1-10>"#));
    }

    #[test]
    fn two_unreadable_answers_are_unparsable_with_both_answers() {
        let mut seen = Vec::new();
        let judge = scripted(
            vec![Ok(r#"{"truth": 11, "help": 2}"#), Ok("truth: 8/10")],
            &mut seen,
        );
        let Err(PluginError::JudgeUnparsable(msg)) = R.ask_with(judge, question()) else {
            panic!("expected judge-unparsable");
        };
        assert!(msg.contains("contains no JSON object"), "{msg}");
        assert!(msg.contains("field `truth` is 11"), "{msg}");
        assert!(msg.contains(r#"{"truth": 11, "help": 2}"#), "{msg}");
        assert!(msg.contains("truth: 8/10"), "{msg}");
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn judge_errors_are_judge_failed_on_either_call() {
        let mut seen = Vec::new();
        let judge = scripted(vec![Err("HTTP 503")], &mut seen);
        let result = R.ask_with(judge, question());
        assert!(matches!(result, Err(PluginError::JudgeFailed(m)) if m == "HTTP 503"));

        let mut seen = Vec::new();
        let judge = scripted(vec![Ok("?"), Err("budget")], &mut seen);
        let result = R.ask_with(judge, question());
        assert!(matches!(result, Err(PluginError::JudgeFailed(m)) if m == "budget"));
    }
}
