//! A judge's calibration against a reference judge: for every field (a
//! metric both score), how far the two agree ([`crate::agreement`]) and how
//! often the judge could not score at all; rendered as a Markdown table, one
//! JSON object, and an HTML section (also as a small self-contained page).
//!
//! A field's statistics are computed on the items the judge scored; items it
//! failed on (no answer, or an answer its scorer could not read) are counted
//! by error kind and as a failure rate with its own bootstrap interval (the
//! 0/1 failure indicator over every judged item, [`crate::stats::bootstrap_ci`]),
//! and are never given a score.

use crate::ReportError;
use crate::agreement::{self, Agreement, Estimate};
use crate::stats;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;

/// What the judge made of one item that has a reference value.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    /// The judge's score and the reference's.
    Scored {
        /// The judge's score.
        judge: f64,
        /// The reference's score.
        reference: f64,
    },
    /// The judge could not score the item.
    Failed {
        /// Why, as a score record's error kind (`judge-unparsable`, ...).
        kind: String,
    },
}

/// One field's agreement and failures.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldAgreement {
    /// The field (metric) name.
    pub field: String,
    /// The statistics over the items the judge scored.
    pub agreement: Agreement,
    /// Items the judge failed on.
    pub failed: usize,
    /// Those failures by error kind.
    pub failures: BTreeMap<String, usize>,
    /// Failed items / judged items, with its interval.
    pub failed_rate: Estimate,
}

impl FieldAgreement {
    /// The agreement of `field` over `items` (in item order), with
    /// `resamples` bootstrap resamples from `seed`. A score that is not a
    /// finite number is an error, as are zero resamples.
    pub fn compute(
        field: &str,
        items: &[Judged],
        resamples: usize,
        seed: u64,
    ) -> Result<Self, ReportError> {
        if resamples == 0 {
            return Err(ReportError::NoResamples);
        }
        let mut pairs = Vec::with_capacity(items.len());
        let mut failures: BTreeMap<String, usize> = BTreeMap::new();
        let mut failed_flags = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Judged::Scored { judge, reference } => {
                    for value in [judge, reference] {
                        if !value.is_finite() {
                            return Err(ReportError::NotFiniteScore {
                                field: field.to_string(),
                                value: *value,
                            });
                        }
                    }
                    pairs.push((*judge, *reference));
                    failed_flags.push(0.0);
                }
                Judged::Failed { kind } => {
                    *failures.entry(kind.clone()).or_default() += 1;
                    failed_flags.push(1.0);
                }
            }
        }
        Ok(FieldAgreement {
            field: field.to_string(),
            agreement: agreement::agreement(&pairs, resamples, seed),
            failed: failed_flags.len() - pairs.len(),
            failures,
            failed_rate: Estimate {
                value: stats::mean(&failed_flags),
                ci95: stats::bootstrap_ci(&failed_flags, resamples, seed),
            },
        })
    }
}

/// A whole calibration: which judge, against what, and every field.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The benchmark.
    pub benchmark: String,
    /// The judge under test (its model spec).
    pub judge: String,
    /// The reference scores (the file, as given).
    pub reference: String,
    /// The model key read inside the reference.
    pub reference_model: String,
    /// The responses re-judged (the file, as given).
    pub responses: String,
    /// Responses judged.
    pub judged: usize,
    /// Responses skipped because the reference has no scores for their item.
    pub skipped: usize,
    /// At most this many responses were judged, if limited.
    pub limit: Option<usize>,
    /// Numeric reference fields that no scorer metric of the benchmark matches.
    pub unmatched_reference_fields: Vec<String>,
    /// Scorer metrics that the reference has no field for.
    pub unmatched_judge_metrics: Vec<String>,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
    /// The bootstrap generator's seed.
    pub seed: u64,
    /// One entry per matched field, in the scorers' metric order.
    pub fields: Vec<FieldAgreement>,
}

/// The statistics in words, for Markdown and HTML alike.
pub fn method(calibration: &Calibration) -> String {
    format!(
        "ρ: Spearman's rank correlation. τ-b: Kendall's tau-b (ties corrected). \
         κw: Cohen's kappa with quadratic weights, on scores rounded to whole points. \
         MAE: mean absolute difference, in points. Exact and ±1: share of items whose \
         rounded scores are equal, or at most one point apart. Bias: judge mean − \
         reference mean (positive: the judge scores higher). Failed: items the judge \
         could not score (no answer, or one its scorer could not read), by error kind; \
         they are left out of every other column and never given a score. \
         Brackets are 95% percentile-bootstrap intervals over items ({} resamples, \
         seed {:#x}): the range the statistic would plausibly take on another sample of \
         items like these. A wide interval means too few items; an interval of ρ, τ-b or \
         κw that includes 0 means agreement not distinguishable from chance, and a bias \
         interval that includes 0 means no detectable shift. \"—\": undefined (no items, \
         or one rater gave every item the same score).",
        calibration.resamples, calibration.seed
    )
}

fn number(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_string(), |x| format!("{:.3}", tidy(x)))
}

fn signed(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_string(), |x| format!("{:+.3}", tidy(x)))
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_string(), |x| format!("{:.1}%", tidy(x * 100.0)))
}

/// `-0.0` reads as a loss; show it as 0.
fn tidy(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x }
}

/// How one column shows a value and its interval.
#[derive(Clone, Copy)]
enum Style {
    Number,
    Signed,
    Percent,
}

impl Style {
    fn value(self, x: Option<f64>) -> String {
        match self {
            Style::Number => number(x),
            Style::Signed => signed(x),
            Style::Percent => percent(x),
        }
    }

    fn interval(self, ci: Option<(f64, f64)>) -> Option<String> {
        let (lo, hi) = ci?;
        Some(match self {
            Style::Number | Style::Signed => {
                format!("[{}, {}]", self.value(Some(lo)), self.value(Some(hi)))
            }
            Style::Percent => format!("[{:.1}, {:.1}]", tidy(lo * 100.0), tidy(hi * 100.0)),
        })
    }

    /// `0.812 [0.650, 0.930]`, or the value alone without an interval.
    fn estimate(self, e: &Estimate) -> String {
        match self.interval(e.ci95) {
            Some(ci) if e.value.is_some() => format!("{} {ci}", self.value(e.value)),
            _ => self.value(e.value),
        }
    }
}

/// The interval columns, in table order: heading, JSON key, style, getter.
type Column = (
    &'static str,
    &'static str,
    Style,
    fn(&Agreement) -> &Estimate,
);

const COLUMNS: [Column; 7] = [
    ("ρ", "spearman", Style::Number, |a| &a.spearman),
    ("τ-b", "kendall_tau_b", Style::Number, |a| &a.kendall_tau_b),
    ("κw", "qwk", Style::Number, |a| &a.qwk),
    ("MAE", "mae", Style::Number, |a| &a.mae),
    ("Exact", "exact", Style::Percent, |a| &a.exact),
    ("±1", "within_one", Style::Percent, |a| &a.within_one),
    ("Bias", "bias", Style::Signed, |a| &a.bias),
];

/// `0`, or `2 of 10 (20.0% [0.0, 50.0]): judge-unparsable 2`, the kinds
/// passed through `escape`.
fn failed_text(f: &FieldAgreement, escape: fn(&str) -> String) -> String {
    if f.failed == 0 {
        return "0".to_string();
    }
    let kinds: Vec<String> = f
        .failures
        .iter()
        .map(|(kind, count)| format!("{} {count}", escape(kind)))
        .collect();
    format!(
        "{} of {} ({}): {}",
        f.failed,
        f.failed + f.agreement.n,
        Style::Percent.estimate(&f.failed_rate),
        kinds.join(", ")
    )
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The calibration as Markdown: a heading, what was compared, the table
/// (one row per field) and the method.
pub fn to_markdown(c: &Calibration) -> String {
    markdown(c, "# Judge calibration")
}

/// [`to_markdown`] as a section of a report (`## Judge agreement: ...`).
pub fn to_markdown_section(c: &Calibration) -> String {
    markdown(c, "## Judge agreement")
}

fn markdown(c: &Calibration, heading: &str) -> String {
    use crate::markdown::escape;
    let mut out = String::new();
    let _ = writeln!(out, "{heading}: {}\n", escape(&c.benchmark));
    let _ = writeln!(
        out,
        "Judge **{}** against the reference scores of model **{}** in {}: {} responses of {} \
         judged{}; {} skipped (no reference for their item). Reference fields with no \
         matching metric: {}. Judge metrics with no reference field: {}.\n",
        escape(&c.judge),
        escape(&c.reference_model),
        escape(&c.reference),
        c.judged,
        escape(&c.responses),
        c.limit
            .map(|l| format!(" (--limit {l})"))
            .unwrap_or_default(),
        c.skipped,
        escape(&list_or_none(&c.unmatched_reference_fields)),
        escape(&list_or_none(&c.unmatched_judge_metrics)),
    );
    let mut heading = vec!["Field", "n", "Judge mean", "Ref. mean"];
    let with_ci: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ..)| format!("{name} [95% CI]"))
        .collect();
    heading.extend(with_ci.iter().map(String::as_str));
    heading.push("Failed");
    let _ = writeln!(out, "| {} |", heading.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(heading.len()));
    for f in &c.fields {
        let a = &f.agreement;
        let mut cells = vec![
            escape(&f.field),
            a.n.to_string(),
            number(a.judge_mean),
            number(a.reference_mean),
        ];
        cells.extend(
            COLUMNS
                .iter()
                .map(|(_, _, style, get)| style.estimate(get(a))),
        );
        cells.push(failed_text(f, escape));
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    if c.fields.is_empty() {
        let _ = writeln!(out, "\nNo field to compare.");
    }
    let _ = writeln!(out, "\n{}", method(c));
    out
}

fn estimate_json(e: &Estimate) -> Value {
    json!({"value": e.value, "ci95": e.ci95.map(|(lo, hi)| [lo, hi])})
}

/// The calibration as one JSON object:
///
/// ```text
/// {"benchmark", "judge", "reference": {"file", "model"}, "responses",
///  "judged", "skipped_no_reference", "limit",
///  "unmatched_reference_fields": [FIELD], "unmatched_judge_metrics": [METRIC],
///  "method": {"interval": "percentile bootstrap 95%", "resamples", "seed",
///             "rounding": "nearest whole number, halves away from zero"},
///  "fields": [{"field", "n", "judge_mean", "reference_mean",
///              "spearman", "kendall_tau_b", "qwk", "mae", "exact", "within_one",
///              "bias": {"value", "ci95": [lo, hi]|null},
///              "failed": {"count", "of", "rate": {"value", "ci95"}, "by_kind": {KIND: N}}}]}
/// ```
///
/// Fields are in the scorers' metric order; an undefined number is `null`.
pub fn to_json(c: &Calibration) -> Value {
    let fields: Vec<Value> = c
        .fields
        .iter()
        .map(|f| {
            let a = &f.agreement;
            let mut object = json!({
                "field": f.field,
                "n": a.n,
                "judge_mean": a.judge_mean,
                "reference_mean": a.reference_mean,
                "failed": {
                    "count": f.failed,
                    "of": f.failed + a.n,
                    "rate": estimate_json(&f.failed_rate),
                    "by_kind": f.failures,
                },
            });
            for (_, key, _, get) in COLUMNS {
                object[key] = estimate_json(get(a));
            }
            object
        })
        .collect();
    json!({
        "benchmark": c.benchmark,
        "judge": c.judge,
        "reference": {"file": c.reference, "model": c.reference_model},
        "responses": c.responses,
        "judged": c.judged,
        "skipped_no_reference": c.skipped,
        "limit": c.limit,
        "unmatched_reference_fields": c.unmatched_reference_fields,
        "unmatched_judge_metrics": c.unmatched_judge_metrics,
        "method": {
            "interval": "percentile bootstrap 95%",
            "resamples": c.resamples,
            "seed": c.seed,
            "rounding": "nearest whole number, halves away from zero",
        },
        "fields": fields,
    })
}

/// A calibration back from [`to_json`]'s object, so a report can carry
/// one (`lem report --calibration FILE.json`). Every statistic is read as
/// written; nothing is recomputed.
pub fn from_json(v: &Value) -> Result<Calibration, ReportError> {
    let bad = |what: &str| ReportError::Calibration(what.to_string());
    let text = |v: &Value, key: &str| -> Result<String, ReportError> {
        v[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| bad(&format!("`{key}` is not text")))
    };
    let count = |v: &Value, key: &str| -> Result<usize, ReportError> {
        v[key]
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| bad(&format!("`{key}` is not a whole number")))
    };
    let number = |v: &Value, key: &str| -> Result<Option<f64>, ReportError> {
        match &v[key] {
            Value::Null => Ok(None),
            x => x
                .as_f64()
                .map(Some)
                .ok_or_else(|| bad(&format!("`{key}` is not a number"))),
        }
    };
    let estimate = |v: &Value, key: &str| -> Result<Estimate, ReportError> {
        let e = &v[key];
        if !e.is_object() {
            return Err(bad(&format!("`{key}` is not {{\"value\", \"ci95\"}}")));
        }
        let ci95 = match &e["ci95"] {
            Value::Null => None,
            ci => match (ci[0].as_f64(), ci[1].as_f64()) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => return Err(bad(&format!("`{key}.ci95` is not [lo, hi]"))),
            },
        };
        Ok(Estimate {
            value: number(e, "value")?,
            ci95,
        })
    };
    let texts = |key: &str| -> Result<Vec<String>, ReportError> {
        v[key]
            .as_array()
            .ok_or_else(|| bad(&format!("`{key}` is not a list")))?
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(&format!("`{key}` holds a non-text")))
            })
            .collect()
    };
    let mut fields = Vec::new();
    for f in v["fields"]
        .as_array()
        .ok_or_else(|| bad("`fields` is not a list"))?
    {
        let failed = &f["failed"];
        let mut failures = BTreeMap::new();
        for (kind, n) in failed["by_kind"]
            .as_object()
            .ok_or_else(|| bad("`failed.by_kind` is not an object"))?
        {
            let n = n
                .as_u64()
                .ok_or_else(|| bad("`failed.by_kind` holds a non-count"))?;
            failures.insert(kind.clone(), n as usize);
        }
        fields.push(FieldAgreement {
            field: text(f, "field")?,
            agreement: Agreement {
                n: count(f, "n")?,
                judge_mean: number(f, "judge_mean")?,
                reference_mean: number(f, "reference_mean")?,
                spearman: estimate(f, "spearman")?,
                kendall_tau_b: estimate(f, "kendall_tau_b")?,
                qwk: estimate(f, "qwk")?,
                mae: estimate(f, "mae")?,
                exact: estimate(f, "exact")?,
                within_one: estimate(f, "within_one")?,
                bias: estimate(f, "bias")?,
            },
            failed: count(failed, "count")?,
            failures,
            failed_rate: estimate(failed, "rate")?,
        });
    }
    Ok(Calibration {
        benchmark: text(v, "benchmark")?,
        judge: text(v, "judge")?,
        reference: text(&v["reference"], "file")?,
        reference_model: text(&v["reference"], "model")?,
        responses: text(v, "responses")?,
        judged: count(v, "judged")?,
        skipped: count(v, "skipped_no_reference")?,
        limit: match &v["limit"] {
            Value::Null => None,
            _ => Some(count(v, "limit")?),
        },
        unmatched_reference_fields: texts("unmatched_reference_fields")?,
        unmatched_judge_metrics: texts("unmatched_judge_metrics")?,
        resamples: count(&v["method"], "resamples")?,
        seed: v["method"]["seed"]
            .as_u64()
            .ok_or_else(|| bad("`method.seed` is not a whole number"))?,
        fields,
    })
}

/// The calibration as an HTML fragment for a report: `<section
/// class="agreement">` with a heading, what was compared, `<table
/// class="agreement">` (one row per field, intervals in `<span
/// class="ci">`) and the method. Every text is escaped; no script, no
/// reference outside the page.
pub fn to_html_section(c: &Calibration) -> String {
    use crate::html::escape;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<section class=\"agreement\">\n<h2>Judge agreement: {}</h2>",
        escape(&c.benchmark)
    );
    let _ = writeln!(
        out,
        "<p>Judge <strong>{}</strong> against the reference scores of model <strong>{}</strong> \
         in <code>{}</code>: {} responses of <code>{}</code> judged{}; {} skipped (no reference \
         for their item). Reference fields with no matching metric: {}. Judge metrics with no \
         reference field: {}.</p>",
        escape(&c.judge),
        escape(&c.reference_model),
        escape(&c.reference),
        c.judged,
        escape(&c.responses),
        c.limit.map(|l| format!(" (limit {l})")).unwrap_or_default(),
        c.skipped,
        escape(&list_or_none(&c.unmatched_reference_fields)),
        escape(&list_or_none(&c.unmatched_judge_metrics)),
    );
    let _ = write!(
        out,
        "<div class=\"scroll\">\n<table class=\"agreement\">\n<thead><tr>\
         <th scope=\"col\">Field</th><th scope=\"col\">n</th>\
         <th scope=\"col\">Judge mean</th><th scope=\"col\">Ref. mean</th>"
    );
    for (name, ..) in COLUMNS {
        let _ = write!(out, "<th scope=\"col\">{name} [95% CI]</th>");
    }
    let _ = writeln!(out, "<th scope=\"col\">Failed</th></tr></thead>\n<tbody>");
    for f in &c.fields {
        let a = &f.agreement;
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td>",
            escape(&f.field),
            a.n,
            number(a.judge_mean),
            number(a.reference_mean)
        );
        for (_, key, style, get) in COLUMNS {
            let e = get(a);
            let ci = style
                .interval(e.ci95)
                .filter(|_| e.value.is_some())
                .map(|ci| format!(" <span class=\"ci\">{ci}</span>"))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<td class=\"{key}\">{}{ci}</td>",
                escape(&style.value(e.value))
            );
        }
        let _ = writeln!(
            out,
            "<td class=\"failed\">{}</td></tr>",
            failed_text(f, escape)
        );
    }
    if c.fields.is_empty() {
        let _ = writeln!(
            out,
            "<tr><td colspan=\"{}\">No field to compare.</td></tr>",
            COLUMNS.len() + 5
        );
    }
    let _ = writeln!(
        out,
        "</tbody>\n</table>\n</div>\n<p class=\"method\">{}</p>\n</section>",
        escape(&method(c))
    );
    out
}

/// One self-contained HTML page holding [`to_html_section`], styled like the
/// report.
pub fn to_html(c: &Calibration) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>lem judge calibration: {}</title>\n<style>{}</style>\n</head>\n<body>\n\
         <h1>lem judge calibration</h1>\n{}</body>\n</html>\n",
        crate::html::escape(&c.benchmark),
        crate::html::STYLE,
        to_html_section(c)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes() {
        let mut failing = field();
        failing.failed = 2;
        failing.failures.insert("judge-unparsable".into(), 2);
        let mut c = calibration(vec![field(), failing]);
        c.limit = Some(50);
        assert_eq!(from_json(&to_json(&c)).unwrap(), c);
        c.limit = None;
        assert_eq!(from_json(&to_json(&c)).unwrap(), c);
        let mut broken = to_json(&c);
        broken["fields"][0]["qwk"] = json!(0.5);
        let err = from_json(&broken).unwrap_err().to_string();
        assert!(err.contains("`qwk`"), "{err}");
    }

    fn scored(judge: f64, reference: f64) -> Judged {
        Judged::Scored { judge, reference }
    }

    fn failed(kind: &str) -> Judged {
        Judged::Failed { kind: kind.into() }
    }

    fn calibration(fields: Vec<FieldAgreement>) -> Calibration {
        Calibration {
            benchmark: "truthfulqa".into(),
            judge: "openai:http://127.0.0.1:1/v1#j<b>".into(),
            reference: "ref.json".into(),
            reference_model: "m|x".into(),
            responses: "r.jsonl".into(),
            judged: 6,
            skipped: 2,
            limit: None,
            unmatched_reference_fields: vec!["helpfulness".into()],
            unmatched_judge_metrics: vec![],
            resamples: 500,
            seed: stats::DEFAULT_SEED,
            fields,
        }
    }

    fn field() -> FieldAgreement {
        let items = [
            scored(8.0, 8.0),
            scored(3.0, 2.0),
            failed("judge-unparsable"),
            scored(10.0, 9.0),
            failed("judge-failed"),
            scored(5.0, 6.0),
            failed("judge-unparsable"),
            scored(1.0, 1.0),
        ];
        FieldAgreement::compute("truthfulness", &items, 500, stats::DEFAULT_SEED).unwrap()
    }

    #[test]
    fn failures_are_counted_by_kind_and_never_scored() {
        let f = field();
        assert_eq!(f.agreement.n, 5);
        assert_eq!(f.failed, 3);
        assert_eq!(
            f.failures,
            BTreeMap::from([("judge-failed".into(), 1), ("judge-unparsable".into(), 2)])
        );
        assert_eq!(f.failed_rate.value, Some(3.0 / 8.0));
        let (lo, hi) = f.failed_rate.ci95.unwrap();
        assert!(lo < 3.0 / 8.0 && 3.0 / 8.0 < hi);
        // Means over the scored items only: judge 27/5, reference 26/5.
        assert!((f.agreement.judge_mean.unwrap() - 5.4).abs() < 1e-12);
        assert!((f.agreement.reference_mean.unwrap() - 5.2).abs() < 1e-12);
        assert!((f.agreement.bias.value.unwrap() - 0.2).abs() < 1e-12);
        // Exact: 8/8 and 1/1 of 5.
        assert_eq!(f.agreement.exact.value, Some(0.4));
        assert_eq!(f.agreement.within_one.value, Some(1.0));
    }

    #[test]
    fn bad_input_is_an_error() {
        let err = FieldAgreement::compute("f", &[scored(f64::NAN, 1.0)], 10, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `f`: a score is NaN, not a finite number"
        );
        assert!(matches!(
            FieldAgreement::compute("f", &[], 0, 1),
            Err(ReportError::NoResamples)
        ));
        // No items at all: nothing defined, nothing failed.
        let f = FieldAgreement::compute("f", &[], 10, 1).unwrap();
        assert_eq!((f.agreement.n, f.failed, f.failed_rate.value), (0, 0, None));
    }

    #[test]
    fn markdown_has_one_row_per_field_and_says_what_was_compared() {
        let md = to_markdown(&calibration(vec![field()]));
        assert!(md.starts_with("# Judge calibration: truthfulqa\n"), "{md}");
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 2, "{md}");
        assert!(rows[0].starts_with("| Field | n | Judge mean | Ref. mean | ρ [95% CI] |"));
        assert!(rows[0].ends_with("| Bias [95% CI] | Failed |"));
        let cells: Vec<&str> = rows[1].split(" | ").collect();
        assert_eq!(cells.len(), 12, "{}", rows[1]);
        assert_eq!(&cells[..4], ["| truthfulness", "5", "5.400", "5.200"]);
        assert!(cells[8].starts_with("40.0% ["), "{}", cells[8]);
        assert!(cells[10].starts_with("+0.200 ["), "{}", cells[10]);
        assert!(
            cells[11].starts_with("3 of 8 (37.5% [")
                && cells[11].ends_with("judge-failed 1, judge-unparsable 2 |"),
            "{}",
            cells[11]
        );
        // Names are escaped; the unmatched fields are named.
        assert!(md.contains("model **m\\|x**"), "{md}");
        assert!(md.contains("Reference fields with no matching metric: helpfulness."));
        assert!(md.contains("Judge metrics with no reference field: none."));
        assert!(md.contains("500 resamples"));
    }

    #[test]
    fn json_is_one_object_with_every_statistic() {
        let v = to_json(&calibration(vec![field()]));
        assert_eq!(v["benchmark"], "truthfulqa");
        assert_eq!(v["skipped_no_reference"], 2);
        assert_eq!(v["reference"]["model"], "m|x");
        let f = &v["fields"][0];
        assert_eq!(f["field"], "truthfulness");
        assert_eq!(f["n"], 5);
        for key in [
            "spearman",
            "kendall_tau_b",
            "qwk",
            "mae",
            "exact",
            "within_one",
            "bias",
        ] {
            assert!(f[key]["value"].is_number(), "{key}: {f}");
            assert_eq!(f[key]["ci95"].as_array().map(Vec::len), Some(2), "{key}");
        }
        assert_eq!(f["exact"]["value"], 0.4);
        assert_eq!(f["failed"]["count"], 3);
        assert_eq!(f["failed"]["of"], 8);
        assert_eq!(f["failed"]["by_kind"]["judge-unparsable"], 2);
        // Undefined statistics are null.
        let flat = FieldAgreement::compute("f", &[scored(5.0, 5.0)], 10, 1).unwrap();
        let v = to_json(&calibration(vec![flat]));
        assert!(v["fields"][0]["spearman"]["value"].is_null());
        assert!(v["fields"][0]["spearman"]["ci95"].is_null());
    }

    #[test]
    fn html_section_and_page_are_escaped_and_self_contained() {
        let c = calibration(vec![field()]);
        let section = to_html_section(&c);
        assert!(section.starts_with("<section class=\"agreement\">"));
        assert!(section.trim_end().ends_with("</section>"));
        assert_eq!(section.matches("<table class=\"agreement\">").count(), 1);
        assert_eq!(section.matches("<tr><th scope=\"row\">").count(), 1);
        assert!(section.contains("<td class=\"exact\">40.0% <span class=\"ci\">["));
        assert!(section.contains("#j&lt;b&gt;"), "{section}");
        assert!(!section.contains("<b>"));
        let page = to_html(&c);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains(&section));
        let lower = page.to_ascii_lowercase();
        assert!(!lower.contains("<script") && !lower.contains("src=") && !lower.contains("href="));
        assert!(!lower.contains("url(") && !lower.contains("@import"));
    }
}
