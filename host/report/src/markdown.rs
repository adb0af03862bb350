//! The report as Markdown: the summary table, the paired comparison with
//! the baseline, the difference of means and the per-domain breakdown, with
//! the method stated.

use crate::format;
use crate::table::{MetricKey, Report};
use std::fmt::Write;

/// How the numbers were made, in words; shared with the HTML report.
pub(crate) fn method(report: &Report) -> String {
    format!(
        "Each cell is the mean over scored items with its 95% percentile-bootstrap interval \
         ({} resamples, seed {:#x}), the number of scored items and the failures, which are \
         left out of the mean; \"if failed\" gives the mean with every failure counted at \
         the worse and at the better end of the metric's range. Against the baseline, items \
         are paired by id: the mean difference on items both scored, its 95% paired \
         bootstrap interval (items resampled, same seed), and a two-sided p-value: exact \
         McNemar for 0/1 metrics, otherwise a paired sign-flip permutation test (exact up \
         to {} non-zero differences, else {} seeded random sign patterns). The p-values of \
         all {} comparisons are Holm-adjusted together; a verdict is \"better\" or \"worse\" \
         when the adjusted p is below 0.05, else \"no detectable difference\". Where a \
         margin is configured, equivalence is tested by two one-sided sign-flip tests \
         (TOST, α 0.05, not adjusted). Flips count items that moved by at least the \
         metric's flip threshold (any change of a 0/1 metric, 2 points of a 1–10 score). \
         \"Detectable\" is the smallest difference this many pairs would find with 80% \
         power at α 0.05 (normal approximation from the paired SD); \"—\" below {} pairs, \
         where no exact paired test can reach p < 0.05, or when every difference is \
         equal. A percent change is shown only for metrics that cannot be negative, \
         against a positive baseline.",
        report.resamples(),
        report.seed(),
        crate::stats::EXACT_MAX,
        report.permutations(),
        report.tests(),
        crate::table::MIN_PAIRS
    )
}

/// The report as a Markdown document.
pub fn to_markdown(report: &Report) -> String {
    let mut out = String::new();
    let baseline = escape(report.baseline());
    let _ = writeln!(out, "# lem report\n");
    let _ = writeln!(out, "Baseline: **{baseline}**. {}\n", method(report));

    let metrics = report.metrics();
    let label = |k: &MetricKey| report.label(k);
    let _ = writeln!(out, "## Results\n");
    header(&mut out, &["Model"], metrics.iter().map(label));
    for model in report.models() {
        let cells = metrics.iter().map(|key| {
            let unit = report.descriptor(key).unit;
            report
                .cell(model, key)
                .map(|c| {
                    let mut text = format!("{} {}", format::estimate(unit, c), format::counts(c));
                    if let Some(b) = format::cell_bounds(unit, c) {
                        text.push_str(&format!(" ({b})"));
                    }
                    text
                })
                .unwrap_or_default()
        });
        row(&mut out, &[model.as_str()], cells);
    }

    let _ = writeln!(out, "\n## Paired against the baseline ({baseline})\n");
    let compared: Vec<&str> = report.compared().collect();
    if compared.is_empty() {
        let _ = writeln!(out, "Only the baseline was given; nothing to compare.");
    } else {
        header(
            &mut out,
            &[
                "Model",
                "Metric",
                "n",
                "Difference [95% CI]",
                "p (test)",
                "Holm p",
                "Verdict",
                "Flips up/down",
                "Detectable",
                "If failed",
                "Equivalence",
            ],
            std::iter::empty(),
        );
        for model in &compared {
            for key in metrics {
                let Some(p) = report.paired(model, key) else {
                    continue;
                };
                let unit = report.descriptor(key).unit;
                let cells = [
                    p.n.to_string(),
                    format::paired_difference(unit, p),
                    match (p.p, p.test) {
                        (Some(x), Some(t)) => format!("{} ({})", format::p(x), t.name()),
                        _ => "—".into(),
                    },
                    p.p_holm.map(format::p).unwrap_or_else(|| "—".into()),
                    p.verdict.text().to_string(),
                    format!("{}/{}", p.flips.up.len(), p.flips.down.len()),
                    format::mdd(unit, p),
                    format::paired_bounds(unit, p),
                    format::equivalence(unit, p),
                ];
                let name = label(key);
                row(&mut out, &[model, name.as_str()], cells.into_iter());
            }
        }
    }

    let _ = writeln!(out, "\n## Difference of means ({baseline})\n");
    let _ = writeln!(
        out,
        "Each model's mean minus the baseline's (percent metrics in points), with the \
         percent of the baseline's mean where the metric cannot be negative and the \
         baseline's mean is above 0.\n"
    );
    header(&mut out, &["Model"], metrics.iter().map(label));
    for model in report.compared() {
        let cells = metrics.iter().map(|key| {
            let unit = report.descriptor(key).unit;
            report
                .delta(model, key)
                .map(|d| format::delta_with_percent(unit, &d))
                .unwrap_or_default()
        });
        row(&mut out, &[model], cells);
    }

    if !report.domains().is_empty() {
        let _ = writeln!(out, "\n## By domain\n");
        let dm = report.domain_metrics();
        header(&mut out, &["Model", "Domain"], dm.iter().map(label));
        for model in report.models() {
            for domain in report.domains() {
                if dm
                    .iter()
                    .all(|k| report.domain_cell(model, domain, k).is_none())
                {
                    continue;
                }
                let cells = dm.iter().map(|key| {
                    let unit = report.descriptor(key).unit;
                    report
                        .domain_cell(model, domain, key)
                        .map(|c| format!("{} {}", format::estimate(unit, c), format::counts(c)))
                        .unwrap_or_default()
                });
                row(&mut out, &[model.as_str(), domain.as_str()], cells);
            }
        }
    }

    if !report.unscored().is_empty() {
        let _ = writeln!(out, "\n## Scorers that scored nothing\n");
        for u in report.unscored() {
            let _ = writeln!(
                out,
                "- {}: scorer {} failed on all {} items of {}",
                escape(&u.benchmark),
                escape(u.scorer.as_deref().unwrap_or("(unnamed)")),
                u.failures,
                escape(&u.model)
            );
        }
    }
    for c in report.judge_agreement() {
        let _ = write!(out, "\n{}", crate::calibration::to_markdown_section(c));
    }
    out
}

fn header(out: &mut String, first: &[&str], rest: impl Iterator<Item = String>) {
    let names: Vec<String> = first
        .iter()
        .map(|s| escape(s))
        .chain(rest.map(|s| escape(&s)))
        .collect();
    let _ = writeln!(out, "| {} |", names.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(names.len()));
}

/// A row: `first` are names (escaped), `rest` are cells this module wrote.
fn row(out: &mut String, first: &[&str], rest: impl Iterator<Item = String>) {
    let cells: Vec<String> = first.iter().map(|s| escape(s)).chain(rest).collect();
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

/// Text that cannot break a table row or start markup.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' | '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn has_the_tables_in_the_given_order() {
        let md = to_markdown(&fixture::report());
        assert!(md.contains("Baseline: **base**"), "{md}");
        assert!(md.contains("Holm-adjusted together"), "{md}");
        let header = "| Model | gsm8k/correct % | truthfulqa/truthfulness | \
                      truthfulqa/informativeness | toxigen/kindness % | lem\\_only/x | seeds/safety |";
        assert_eq!(md.matches(header).count(), 2, "{md}");
        assert!(md.contains("| lem | 75.0 ["), "{md}");
        assert!(
            md.contains("9.000 [9.000, 9.000] (n=1, 1 failed) (if failed: 7.500–9.000)"),
            "{md}"
        );
        assert!(md.contains("| base | 50.0 ["), "{md}");
        // Means: no percent where the baseline's mean is 0 (kindness) or missing.
        assert!(
            md.contains(
                "| lem | +25.0 pts (+50.0%) | +2.000 (+28.6%) | +0.000 (+0.0%) | +50.0 pts | — | +0.250 (+33.3%) |"
            ),
            "{md}"
        );
        // Paired: q2 went 0 → 1, nothing else changed: McNemar p = 1.
        assert!(
            md.contains(
                "| lem | gsm8k/correct % | 4 | +25.0 pts [+0.0, +75.0] | 1.000 (mcnemar-exact) | 1.000 | no detectable difference | 1/0 | — |  |  |"
            ),
            "{md}"
        );
        // t2 failed for lem: at the range's ends (6 and 9, as observed) the
        // difference is (3 + (6 − 8)) / 2 = 0.5 or (3 + (9 − 8)) / 2 = 2.
        assert!(md.contains("| +0.500 to +2.000 |"), "{md}");
        assert!(
            md.contains("| lem | lem\\_only/x | 0 | — | — | — | not compared |"),
            "{md}"
        );
        assert!(md.contains("| Model | Domain | seeds/safety |"), "{md}");
        assert!(
            md.contains("| lem | Identity \\<&\\> | — (n=0, 1 failed) |"),
            "{md}"
        );
        assert!(
            md.contains("| base | Privacy | 0.500 [0.500, 0.500] (n=1) |"),
            "{md}"
        );
    }

    #[test]
    fn escapes_table_breaking_text() {
        assert_eq!(escape("a|b\nc_d"), "a\\|b c\\_d");
    }
}
