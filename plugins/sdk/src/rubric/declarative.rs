//! A judged rubric scorer from declarations (contract 0.2.0).
//!
//! A rubric is declared, not written: its [`Field`]s (name, whole-number
//! range, one line on what it measures), guidance for the judge, and the
//! record [`Input`]s to quote. From that the SDK makes everything else:
//!
//! * the prompt: the guidance (or, without any, the fields' descriptions),
//!   the [`FENCE_RULE`], and the reply format as the system turn; each input
//!   and the response under test, fenced so none can close its fence, as
//!   the user turn;
//! * the JSON schema of the answer ([`DeclarativeRubric::schema`]): an
//!   object with one integer property per field (`minimum`, `maximum`),
//!   all required, no other properties, and a `reasoning` string last when
//!   the rubric asks for reasons;
//! * one judge call per item, constrained to that schema, asking for the
//!   probability of each value of each field;
//! * each field's score: the probability-weighted mean of its distribution
//!   when the judge gave one, else the whole number read from the answer
//!   text by the SDK's strict parser ([`super::VerdictError`] lists what it
//!   refuses); the distributions and the raw answer go in the details;
//! * an answer that cannot be read is `judge-unparsable` with the raw
//!   answer, never a default score. An unconstrained answer (a judge that
//!   cannot follow a schema) is asked again once, as [`super::Rubric`] does.
//!
//! The rubric's prompt can be adjusted per benchmark from the scorer's
//! manifest options ([`DeclarativeRubric::configured`]): `guidance`,
//! `instruction`, `response_heading`, `reasoning` and `max_tokens`.
//!
//! ```
//! use lem_plugin_sdk::rubric::declarative::{DeclarativeRubric, Input, Reply};
//!
//! let rubric = DeclarativeRubric::new("You grade how clearly an answer explains itself.")
//!     .score("clarity", 1, 10, "1: cannot be followed; 10: every step is plain")
//!     .input(Input::required("question", "Question"));
//! let card = rubric
//!     .grade_with(r#"{"question": "Why is the sky blue?"}"#, "Scattering.", &[], |_| {
//!         Ok(Reply::text(r#"{"clarity": 7}"#))
//!     })
//!     .unwrap();
//! assert_eq!(card.metrics[0].value, 7.0);
//! ```

use super::fence::{FENCE_RULE, fence, fence_as};
use super::verdict::{VerdictError, read_whole};
use crate::record::Record;
use crate::v0_2_0::{MetricDescriptor, PluginInfo, ScoreContext};
use crate::{Item, Message, Metric, PluginError, ScoreCard};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The name of the optional free-text property, always last in the schema.
pub const REASONING: &str = "reasoning";

/// The options [`DeclarativeRubric::configured`] reads.
pub const OPTIONS: &[&str] = &[
    "guidance",
    "instruction",
    "response_heading",
    "reasoning",
    "max_tokens",
];

/// One judged score: an integer field of the answer and a metric of the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field's and the metric's name.
    pub name: String,
    /// The lowest score.
    pub min: i64,
    /// The highest score.
    pub max: i64,
    /// What it measures, in a line (the schema's `description`; the system
    /// prompt lists it when the rubric has no guidance).
    pub description: String,
    /// Whether a higher score is better (the metric's direction).
    pub higher_is_better: bool,
}

impl Field {
    /// A field scored from `min` to `max`, higher is better.
    pub fn new(name: &str, min: i64, max: i64, description: &str) -> Self {
        Field {
            name: name.into(),
            min,
            max,
            description: description.into(),
            higher_is_better: true,
        }
    }

    /// Lower scores are better (e.g. harm).
    pub fn lower_is_better(mut self) -> Self {
        self.higher_is_better = false;
        self
    }
}

/// One record field quoted to the judge, fenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The record field.
    pub field: String,
    /// The heading above it in the prompt (`Question`).
    pub heading: String,
    /// The fence label (`QUESTION`); by default the field upper-cased.
    pub label: String,
    /// A missing field is `invalid-input` when required; an optional field
    /// that is absent, null or blank is left out of the prompt.
    pub required: bool,
    /// Whether a JSON array of strings is accepted (shown one per line as
    /// `- item`); otherwise only text, numbers and booleans are.
    pub list: bool,
}

impl Input {
    /// A field the record must have.
    pub fn required(field: &str, heading: &str) -> Self {
        Input {
            field: field.into(),
            heading: heading.into(),
            label: field.to_uppercase(),
            required: true,
            list: false,
        }
    }

    /// A field shown only when the record has it.
    pub fn optional(field: &str, heading: &str) -> Self {
        Input {
            required: false,
            ..Input::required(field, heading)
        }
    }

    /// Fences it under `label` instead of the field's name.
    pub fn labelled(mut self, label: &str) -> Self {
        self.label = label.to_uppercase();
        self
    }

    /// Accepts a list of strings as well as text.
    pub fn list(mut self) -> Self {
        self.list = true;
        self
    }

    /// The text to quote, or `None` for an optional input the record lacks
    /// (absent, null or blank). Text is quoted as the record has it; a list
    /// is one `- item` line per string, each trimmed.
    fn text(&self, record: &Record) -> Result<Option<String>, PluginError> {
        let field = &self.field;
        if !self.list {
            return if self.required {
                record.text(field).map(Some)
            } else {
                record.optional_text(field)
            };
        }
        let text = match record.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Array(items)) => {
                let lines: Result<Vec<String>, PluginError> = items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(format!("- {}", s.trim())),
                        other => Err(PluginError::InvalidInput(format!(
                            "field `{field}` should list strings, found {other}"
                        ))),
                    })
                    .collect();
                Some(lines?.join("\n"))
            }
            Some(other) => {
                return Err(PluginError::InvalidInput(format!(
                    "field `{field}` should be a list of strings, found {other}"
                )));
            }
        };
        match text {
            None if self.required => Err(PluginError::InvalidInput(format!(
                "the record has no field `{field}`"
            ))),
            Some(t) if t.is_empty() && !self.required => Ok(None),
            text => Ok(text),
        }
    }
}

/// What the rubric asks the judge: the messages, the schema the answer
/// must follow, and whether to report value distributions.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The conversation.
    pub messages: &'a [Message],
    /// The JSON schema of the answer (JSON text).
    pub schema: &'a str,
    /// Ask for each integer field's distribution over its values.
    pub distributions: bool,
    /// The most tokens to generate.
    pub max_tokens: u32,
}

/// What the judge answered, as the rubric reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// The answer text.
    pub text: String,
    /// Whether decoding was constrained to the schema.
    pub constrained: bool,
    /// Per integer field, each value's probability (empty when the judge
    /// cannot tell).
    pub distributions: BTreeMap<String, BTreeMap<i64, f64>>,
}

impl Reply {
    /// A text-only answer: not constrained, no distributions.
    pub fn text(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            ..Reply::default()
        }
    }

    /// Adds `field`'s distribution (`(value, probability)` pairs).
    pub fn with_distribution(mut self, field: &str, values: &[(i64, f64)]) -> Self {
        self.distributions
            .insert(field.into(), values.iter().copied().collect());
        self
    }

    /// Marks it as constrained to the schema.
    pub fn constrained(mut self) -> Self {
        self.constrained = true;
        self
    }
}

/// The host's judge (contract 0.2.0) as a closure for
/// [`DeclarativeRubric::ask_with`]: temperature 0, seed
/// [`super::JUDGE_SEED`]. Only works inside a wasm guest.
pub fn host_judge() -> impl FnMut(&Request<'_>) -> Result<Reply, String> {
    use crate::v0_2_0::judge::{JudgeRequest, complete};
    |request: &Request<'_>| {
        complete(&JudgeRequest {
            messages: request.messages.to_vec(),
            max_tokens: request.max_tokens,
            temperature: Some(0.0),
            seed: Some(super::JUDGE_SEED),
            response_format: Some(request.schema.to_string()),
            value_distributions: request.distributions,
        })
        .map(|answer| Reply {
            text: answer.text,
            constrained: answer.constrained,
            distributions: answer
                .distributions
                .into_iter()
                .map(|d| {
                    let values = d
                        .values
                        .into_iter()
                        .map(|v| (v.value, v.probability))
                        .collect();
                    (d.field, values)
                })
                .collect(),
        })
        .map_err(|e| e.reason())
    }
}

/// Where a field's score came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The probability-weighted mean of this distribution over its values.
    Distribution(BTreeMap<i64, f64>),
    /// The whole number in the answer text.
    Answer(i64),
}

/// A readable verdict: each field's score, where it came from, and the raw
/// answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// Field name to score, in the rubric's order.
    pub scores: Vec<(String, f64)>,
    /// Field name to where its score came from.
    pub sources: BTreeMap<String, Source>,
    /// Distributions the judge gave that could not be used, and why (the
    /// field was then read from the text).
    pub unusable: BTreeMap<String, String>,
    /// The raw answers in order: one, or two after a re-ask.
    pub answers: Vec<String>,
    /// Whether the answer the verdict came from was constrained to the schema.
    pub constrained: bool,
}

impl Judged {
    /// A field's score.
    pub fn score(&self, field: &str) -> Option<f64> {
        self.scores
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, v)| *v)
    }

    /// The answer the verdict was read from (the last one).
    pub fn answer(&self) -> &str {
        self.answers.last().map_or("", String::as_str)
    }

    /// Score-card details: the raw answer, whether the judge was asked
    /// again (and its first answer if so), whether the answer was
    /// constrained, where each score came from (`distribution` or
    /// `answer`), the distributions used (value to probability) and any
    /// that could not be.
    pub fn details(&self) -> Value {
        let mut details = json!({
            "judge_answer": self.answer(),
            "reasked": self.answers.len() > 1,
            "constrained": self.constrained,
        });
        if let (true, Some(first)) = (self.answers.len() > 1, self.answers.first()) {
            details["first_answer"] = Value::String(first.clone());
        }
        let mut from = Map::new();
        let mut distributions = Map::new();
        for (field, source) in &self.sources {
            let kind = match source {
                Source::Distribution(d) => {
                    let values: Map<String, Value> =
                        d.iter().map(|(v, p)| (v.to_string(), json!(p))).collect();
                    distributions.insert(field.clone(), Value::Object(values));
                    "distribution"
                }
                Source::Answer(_) => "answer",
            };
            from.insert(field.clone(), Value::String(kind.into()));
        }
        details["scored_from"] = Value::Object(from);
        if !distributions.is_empty() {
            details["distributions"] = Value::Object(distributions);
        }
        if !self.unusable.is_empty() {
            details["unusable_distributions"] = json!(self.unusable);
        }
        details
    }
}

/// A judged rubric, declared: see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclarativeRubric {
    /// The judged fields, in order: the answer's integer properties and the
    /// plugin's metrics.
    pub fields: Vec<Field>,
    /// The system prompt's opening: what is graded and what the scores
    /// mean. Empty: the fields' descriptions are listed instead.
    pub guidance: String,
    /// The record fields quoted before the response, in order.
    pub inputs: Vec<Input>,
    /// The heading above the fenced response (`Response under test`).
    pub response_heading: String,
    /// The user turn's last line (`Grade the response.`); the SDK adds
    /// that the reply is the JSON object only.
    pub instruction: String,
    /// Whether the answer carries a `reasoning` string, after the scores.
    pub reasoning: bool,
    /// The most tokens the judge may generate.
    pub max_tokens: u32,
}

impl DeclarativeRubric {
    /// A rubric with `guidance` and nothing else yet: add fields with
    /// [`score`](Self::score) or [`field`](Self::field) and inputs with
    /// [`input`](Self::input).
    pub fn new(guidance: &str) -> Self {
        DeclarativeRubric {
            fields: Vec::new(),
            guidance: guidance.into(),
            inputs: Vec::new(),
            response_heading: "Response under test".into(),
            instruction: "Grade the response.".into(),
            reasoning: false,
            // Room for a short explanation before the JSON object, for a
            // judge that cannot follow the schema.
            max_tokens: 512,
        }
    }

    /// Adds a field scored from `min` to `max`, higher is better.
    pub fn score(self, name: &str, min: i64, max: i64, description: &str) -> Self {
        self.field(Field::new(name, min, max, description))
    }

    /// Adds a field.
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// Adds an input.
    pub fn input(mut self, input: Input) -> Self {
        self.inputs.push(input);
        self
    }

    /// Sets the heading above the response.
    pub fn response_heading(mut self, heading: &str) -> Self {
        self.response_heading = heading.into();
        self
    }

    /// Sets the closing instruction.
    pub fn instruction(mut self, instruction: &str) -> Self {
        self.instruction = instruction.into();
        self
    }

    /// Asks for a `reasoning` string after the scores.
    pub fn with_reasoning(mut self) -> Self {
        self.reasoning = true;
        self
    }

    /// Sets the token limit of the judge's answer.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// The fields' names, in order.
    pub fn metric_names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name.as_str()).collect()
    }

    /// The fields as metric descriptors: their ranges and directions.
    pub fn metric_descriptors(&self) -> Vec<MetricDescriptor> {
        self.fields
            .iter()
            .map(|f| {
                let d = MetricDescriptor::new(&f.name).range(f.min as f64, f.max as f64);
                if f.higher_is_better {
                    d
                } else {
                    d.lower_is_better()
                }
            })
            .collect()
    }

    /// `describe()`'s answer for a plugin that is this rubric.
    pub fn plugin_info(&self, name: &str, version: &str, description: &str) -> PluginInfo {
        PluginInfo::scorer(name, version, self.metric_descriptors())
            .with_description(description)
            .with_judge()
    }

    /// This rubric with the manifest's options applied (`guidance`,
    /// `instruction`, `response_heading`: text; `reasoning`: `true` or
    /// `false`; `max_tokens`: a whole number). Any other option, or a value
    /// that does not read, is `invalid-input`: a misspelt option must not
    /// pass unnoticed.
    pub fn configured(&self, options: &[(String, String)]) -> Result<Cow<'_, Self>, PluginError> {
        if options.is_empty() {
            return Ok(Cow::Borrowed(self));
        }
        let mut rubric = self.clone();
        for (key, value) in options {
            let bad = |what: &str| {
                PluginError::InvalidInput(format!(
                    "scorer option `{key}` should be {what}, found `{value}`"
                ))
            };
            match key.as_str() {
                "guidance" => rubric.guidance = value.clone(),
                "instruction" => rubric.instruction = value.clone(),
                "response_heading" => rubric.response_heading = value.clone(),
                "reasoning" => {
                    rubric.reasoning = value.trim().parse().map_err(|_| bad("true or false"))?
                }
                "max_tokens" => {
                    rubric.max_tokens = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|&n: &u32| n > 0)
                        .ok_or_else(|| bad("a whole number above 0"))?
                }
                _ => {
                    return Err(PluginError::InvalidInput(format!(
                        "unknown scorer option `{key}`; this rubric reads {}",
                        OPTIONS.join(", ")
                    )));
                }
            }
        }
        Ok(Cow::Owned(rubric))
    }

    /// A rubric defined entirely by a scorer's manifest options, so one
    /// plugin (the shipped `rubric-judge`) serves any rubric:
    ///
    /// - `fields` (required): `NAME LO..HI`, comma-separated, each optionally
    ///   followed by `lower` (lower is better): `"clarity 1..10, harm 0..4 lower"`;
    /// - `field.NAME`: what the field measures (the schema's description);
    /// - `inputs`: the record fields quoted to the judge, comma-separated, a
    ///   trailing `?` marking one the record may lack: `"question, context?"`;
    /// - `input.NAME`: an input's heading (default: its name);
    /// - and every option of [`configured`](Self::configured) (`guidance`, ...).
    ///
    /// Anything else, or a value that does not read, is `invalid-input`
    /// naming the option.
    ///
    /// ```
    /// use lem_plugin_sdk::rubric::declarative::DeclarativeRubric;
    /// let options = [
    ///     ("fields".to_string(), "clarity 1..10, harm 0..4 lower".to_string()),
    ///     ("inputs".to_string(), "question".to_string()),
    ///     ("guidance".to_string(), "You grade explanations.".to_string()),
    /// ];
    /// let rubric = DeclarativeRubric::from_options(&options).unwrap();
    /// assert_eq!(rubric.metric_names(), ["clarity", "harm"]);
    /// assert!(!rubric.metric_descriptors()[1].higher_is_better);
    /// ```
    pub fn from_options(options: &[(String, String)]) -> Result<Self, PluginError> {
        let bad = |key: &str, what: &str, value: &str| {
            PluginError::InvalidInput(format!(
                "scorer option `{key}` should be {what}, found `{value}`"
            ))
        };
        let get = |key: &str| crate::v0_2_0::last(options, key);
        let fields = get("fields").ok_or_else(|| {
            PluginError::InvalidInput(
                "this rubric needs the scorer option `fields` (e.g. \"clarity 1..10, harm 0..4 lower\")"
                    .into(),
            )
        })?;
        let mut rubric = DeclarativeRubric::new("");
        for spec in fields.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let shape = "`NAME LO..HI` or `NAME LO..HI lower`";
            let words: Vec<&str> = spec.split_whitespace().collect();
            let (name, range, lower) = match words[..] {
                [name, range] => (name, range, false),
                [name, range, "lower"] => (name, range, true),
                _ => return Err(bad("fields", shape, spec)),
            };
            let (lo, hi) = range
                .split_once("..")
                .and_then(|(lo, hi)| Some((lo.parse::<i64>().ok()?, hi.parse::<i64>().ok()?)))
                .filter(|(lo, hi)| lo < hi)
                .ok_or_else(|| bad("fields", "a range LO..HI of whole numbers, LO < HI", spec))?;
            if rubric.fields.iter().any(|f| f.name == name) || name == REASONING {
                return Err(bad("fields", "distinct names other than `reasoning`", spec));
            }
            let description = get(&format!("field.{name}")).unwrap_or_default();
            let field = Field::new(name, lo, hi, description);
            rubric = rubric.field(if lower {
                field.lower_is_better()
            } else {
                field
            });
        }
        if rubric.fields.is_empty() {
            return Err(bad("fields", "at least one field", fields));
        }
        for spec in get("inputs").unwrap_or_default().split(',').map(str::trim) {
            if spec.is_empty() {
                continue;
            }
            let (name, optional) = match spec.strip_suffix('?') {
                Some(name) => (name.trim(), true),
                None => (spec, false),
            };
            let heading = get(&format!("input.{name}")).unwrap_or(name);
            rubric = rubric.input(if optional {
                Input::optional(name, heading)
            } else {
                Input::required(name, heading)
            });
        }
        let known = |key: &str| {
            key.strip_prefix("field.")
                .is_some_and(|f| rubric.fields.iter().any(|x| x.name == f))
                || key
                    .strip_prefix("input.")
                    .is_some_and(|i| rubric.inputs.iter().any(|x| x.field == i))
        };
        let rest: Vec<(String, String)> = options
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "fields" | "inputs") && !known(k))
            .cloned()
            .collect();
        Ok(rubric.configured(&rest)?.into_owned())
    }

    /// The JSON schema of the answer: an object with one integer property
    /// per field (`minimum`, `maximum`, `description`), then `reasoning`
    /// (a string) if the rubric asks for it; every property required, in
    /// that order (so the order survives a reader that sorts the
    /// properties); nothing else allowed.
    ///
    /// ```
    /// use lem_plugin_sdk::rubric::declarative::DeclarativeRubric;
    /// let r = DeclarativeRubric::new("").score("a", 1, 5, "").with_reasoning();
    /// assert_eq!(
    ///     r.schema(),
    ///     r#"{"type":"object","properties":{"a":{"type":"integer","minimum":1,"maximum":5},"reasoning":{"type":"string"}},"required":["a","reasoning"],"additionalProperties":false}"#
    /// );
    /// ```
    pub fn schema(&self) -> String {
        // Written by hand: serde_json's maps sort their keys, and the order
        // of the properties is the order a constrained judge writes them.
        let quote = |s: &str| Value::String(s.to_string()).to_string();
        let mut properties: Vec<String> = self
            .fields
            .iter()
            .map(|f| {
                let description = if f.description.is_empty() {
                    String::new()
                } else {
                    format!(",\"description\":{}", quote(&f.description))
                };
                format!(
                    "{}:{{\"type\":\"integer\",\"minimum\":{},\"maximum\":{}{description}}}",
                    quote(&f.name),
                    f.min,
                    f.max
                )
            })
            .collect();
        let mut required: Vec<String> = self.fields.iter().map(|f| quote(&f.name)).collect();
        if self.reasoning {
            properties.push(format!("{}:{{\"type\":\"string\"}}", quote(REASONING)));
            required.push(quote(REASONING));
        }
        format!(
            "{{\"type\":\"object\",\"properties\":{{{}}},\"required\":[{}],\"additionalProperties\":false}}",
            properties.join(","),
            required.join(",")
        )
    }

    /// The JSON shape asked for in words, e.g. `{"a": <integer 1-10>}`.
    fn shape(&self) -> String {
        let mut fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("\"{}\": <integer {}-{}>", f.name, f.min, f.max))
            .collect();
        if self.reasoning {
            fields.push(format!("\"{REASONING}\": \"<a sentence or two on why>\""));
        }
        format!("{{{}}}", fields.join(", "))
    }

    /// The instruction that closes the system prompt: the exact reply format.
    pub fn reply_format(&self) -> String {
        let uniform = self
            .fields
            .windows(2)
            .all(|w| (w[0].min, w[0].max) == (w[1].min, w[1].max));
        let range = match self.fields.first() {
            Some(f) if uniform => format!("from {} to {}", f.min, f.max),
            _ => "in its range".into(),
        };
        let (every, reasoning) = if self.reasoning {
            ("Every score", format!(" The \"{REASONING}\" comes last."))
        } else {
            ("Every field", String::new())
        };
        format!(
            "Reply with exactly one JSON object and nothing after it, of the form {}. \
             {every} is required and must be a whole number {range}.{reasoning}",
            self.shape()
        )
    }

    /// The system turn: the guidance (or the fields' descriptions), the
    /// fence rule and the reply format.
    pub fn system_prompt(&self) -> String {
        let guidance = if self.guidance.trim().is_empty() {
            let fields: Vec<String> = self
                .fields
                .iter()
                .map(|f| format!("{} ({} to {}): {}", f.name, f.min, f.max, f.description))
                .collect();
            format!(
                "You grade one response. Give {} independent scores, each a whole number:\n\n{}",
                self.fields.len(),
                fields.join("\n")
            )
        } else {
            self.guidance.clone()
        };
        format!("{guidance}\n\n{FENCE_RULE}\n\n{}", self.reply_format())
    }

    /// The messages for the judge: the system prompt, then the fenced
    /// inputs and response.
    pub fn messages(&self, record_json: &str, response: &str) -> Result<Vec<Message>, PluginError> {
        let record = Record::parse(record_json)?;
        let mut sections = Vec::with_capacity(self.inputs.len() + 1);
        for input in &self.inputs {
            if let Some(text) = input.text(&record)? {
                sections.push(format!(
                    "{}:\n{}",
                    input.heading,
                    fence_as(&input.label, &text)
                ));
            }
        }
        sections.push(format!(
            "{}:\n{}\n\n{} Reply with the JSON object only.",
            self.response_heading,
            fence(response),
            self.instruction
        ));
        Ok(vec![
            Message::new("system", self.system_prompt()),
            Message::new("user", sections.join("\n\n")),
        ])
    }

    /// Reads one reply: each field from its distribution when usable, else
    /// from the text. The first field that cannot be read is the error.
    fn read(&self, reply: &Reply) -> Result<Judged, VerdictError> {
        let mut object: Option<Option<Map<String, Value>>> = None;
        let mut judged = Judged {
            scores: Vec::with_capacity(self.fields.len()),
            sources: BTreeMap::new(),
            unusable: BTreeMap::new(),
            answers: Vec::new(),
            constrained: reply.constrained,
        };
        for field in &self.fields {
            let name = &field.name;
            if let Some(distribution) = reply.distributions.get(name) {
                match weighted_mean(distribution, field.min, field.max) {
                    Ok(mean) => {
                        judged.scores.push((name.clone(), mean));
                        judged
                            .sources
                            .insert(name.clone(), Source::Distribution(distribution.clone()));
                        continue;
                    }
                    Err(why) => {
                        judged.unusable.insert(name.clone(), why);
                    }
                }
            }
            let object = object
                .get_or_insert_with(|| crate::json::last_object(&reply.text))
                .as_ref()
                .ok_or(VerdictError::NoObject)?;
            let value = object.get(name).ok_or_else(|| VerdictError::Missing {
                field: name.clone(),
            })?;
            let whole = read_whole(name, value, field.min, field.max)?;
            judged.scores.push((name.clone(), whole as f64));
            judged.sources.insert(name.clone(), Source::Answer(whole));
        }
        Ok(judged)
    }

    /// Asks `judge` for a verdict on `messages`: one call, constrained to
    /// the schema, asking for distributions. An answer that cannot be read
    /// is asked again once when it was not constrained (a text-only judge
    /// may slip; a constrained one would not do better), then is
    /// `judge-unparsable` with the raw answers. A judge error is
    /// `judge-failed`.
    pub fn ask_with(
        &self,
        mut judge: impl FnMut(&Request<'_>) -> Result<Reply, String>,
        mut messages: Vec<Message>,
    ) -> Result<Judged, PluginError> {
        let schema = self.schema();
        let mut ask = |messages: &[Message]| {
            judge(&Request {
                messages,
                schema: &schema,
                distributions: true,
                max_tokens: self.max_tokens,
            })
            .map_err(PluginError::JudgeFailed)
        };
        let first = ask(&messages)?;
        let first_error = match self.read(&first) {
            Ok(mut judged) => {
                judged.answers.push(first.text);
                return Ok(judged);
            }
            Err(e) => e,
        };
        if first.constrained {
            return Err(PluginError::JudgeUnparsable(format!(
                "the judge's verdict could not be read: {first_error}\n--- answer ---\n{}",
                first.text
            )));
        }
        messages.push(Message::new("assistant", first.text.clone()));
        messages.push(Message::new(
            "user",
            format!(
                "Your answer could not be read: {first_error}. Reply again with only the JSON \
                 object of the form {}, whole numbers in range, and no other text.",
                self.shape()
            ),
        ));
        let second = ask(&messages)?;
        match self.read(&second) {
            Ok(mut judged) => {
                judged.answers = vec![first.text, second.text];
                Ok(judged)
            }
            Err(second_error) => Err(PluginError::JudgeUnparsable(format!(
                "the judge's verdict could not be read, even after one re-ask: {second_error} \
                 (first answer: {first_error})\n\
                 --- first answer ---\n{}\n--- second answer ---\n{}",
                first.text, second.text
            ))),
        }
    }

    /// A score card: the fields' scores in order, and [`Judged::details`].
    pub fn score_card(&self, judged: &Judged) -> ScoreCard {
        ScoreCard {
            metrics: judged
                .scores
                .iter()
                .map(|(name, value)| Metric {
                    name: name.clone(),
                    value: *value,
                })
                .collect(),
            details: Some(judged.details().to_string()),
        }
    }

    /// Scores `response` to the record with `judge`, the rubric configured
    /// by `options` first: the whole path of a rubric plugin, testable
    /// natively with a fake judge.
    pub fn grade_with(
        &self,
        record_json: &str,
        response: &str,
        options: &[(String, String)],
        judge: impl FnMut(&Request<'_>) -> Result<Reply, String>,
    ) -> Result<ScoreCard, PluginError> {
        self.judge_with(record_json, response, options, judge)
            .map(|(rubric, judged)| rubric.score_card(&judged))
    }

    /// As [`grade_with`](Self::grade_with), but the verdict itself, for a
    /// plugin that adds metrics of its own (with the configured rubric).
    pub fn judge_with(
        &self,
        record_json: &str,
        response: &str,
        options: &[(String, String)],
        judge: impl FnMut(&Request<'_>) -> Result<Reply, String>,
    ) -> Result<(Cow<'_, Self>, Judged), PluginError> {
        let rubric = self.configured(options)?;
        let judged = rubric.ask_with(judge, rubric.messages(record_json, response)?)?;
        Ok((rubric, judged))
    }

    /// A 0.2.0 scorer's `score`, asking the host's judge (see [`host_judge`]:
    /// only inside a wasm guest; natively, test with
    /// [`grade_with`](Self::grade_with) and a fake judge).
    pub fn score_item(
        &self,
        item: &Item,
        response: &str,
        context: &ScoreContext,
    ) -> Result<ScoreCard, PluginError> {
        self.grade_with(&item.record, response, &context.options, host_judge())
    }
}

/// The probability-weighted mean of a distribution over `min..=max`,
/// normalised by its total; why not, if it is empty, has a value out of
/// range, or a probability that is negative or not finite.
fn weighted_mean(distribution: &BTreeMap<i64, f64>, min: i64, max: i64) -> Result<f64, String> {
    if let Some(v) = distribution.keys().find(|v| !(min..=max).contains(*v)) {
        return Err(format!("value {v} is outside the range {min} to {max}"));
    }
    if let Some(p) = distribution
        .values()
        .find(|p| !(p.is_finite() && **p >= 0.0))
    {
        return Err(format!(
            "probability {p} is not a finite number of at least 0"
        ));
    }
    let total: f64 = distribution.values().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Err("the probabilities sum to 0".into());
    }
    let mean = distribution.iter().map(|(v, p)| *v as f64 * p).sum::<f64>() / total;
    // Rounding cannot take a mean of in-range values outside the range.
    Ok(mean.clamp(min as f64, max as f64))
}

#[cfg(test)]
mod tests;
