//! The report's numbers, checked against values worked out by hand.

use super::*;
use crate::fixture;
use std::collections::BTreeMap;

fn key(b: &str, m: &str) -> MetricKey {
    MetricKey::new(b, m)
}

fn obs(model: &str, item: &str, metrics: &[(&str, f64)]) -> Observation {
    Observation {
        benchmark: "b".into(),
        model: model.into(),
        item_id: item.into(),
        domain: None,
        metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        failed: false,
        scorer: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// The bootstrap as `crate::stats` documents it, written out again here so
/// that a change to the implementation shows.
fn independent_bootstrap(values: &[f64], b: usize, seed: u64) -> (f64, f64) {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    };
    let n = values.len();
    let mut means = Vec::with_capacity(b);
    for _ in 0..b {
        let mut sum = 0.0;
        for _ in 0..n {
            let i = ((next() as u128 * n as u128) >> 64) as usize;
            sum += values[i];
        }
        means.push(sum / n as f64);
    }
    means.sort_by(|x, y| x.partial_cmp(y).expect("finite"));
    let q = |p: f64| {
        let h = (b - 1) as f64 * p;
        let f = h.floor() as usize;
        let c = (f + 1).min(b - 1);
        means[f] + (h - f as f64) * (means[c] - means[f])
    };
    (q(0.025), q(0.975))
}

#[test]
fn means_counts_and_order_match_the_fixture() {
    let r = fixture::report();
    assert_eq!(r.models(), ["lem", "base"]);
    assert_eq!(
        r.baseline(),
        "base",
        "a model named base is the default baseline"
    );
    assert_eq!(r.compared().collect::<Vec<_>>(), ["lem"]);
    let ids: Vec<String> = r.metrics().iter().map(MetricKey::id).collect();
    assert_eq!(
        ids,
        [
            "gsm8k/correct",
            "truthfulqa/truthfulness",
            "truthfulqa/informativeness",
            "toxigen/kindness",
            "lem_only/x",
            "seeds/safety",
        ]
    );

    let c = r.cell("lem", &key("gsm8k", "correct")).unwrap();
    assert_eq!((c.mean, c.n, c.failures), (Some(0.75), 4, 0));
    let c = r.cell("base", &key("gsm8k", "correct")).unwrap();
    assert_eq!((c.mean, c.n, c.failures), (Some(0.5), 4, 0));
    // lem's t2 has no values: one failure of each truthfulqa metric.
    let c = r.cell("lem", &key("truthfulqa", "truthfulness")).unwrap();
    assert_eq!((c.mean, c.n, c.failures), (Some(9.0), 1, 1));
    let c = r
        .cell("lem", &key("truthfulqa", "informativeness"))
        .unwrap();
    assert_eq!((c.mean, c.n, c.failures), (Some(6.0), 1, 1));
    let c = r.cell("base", &key("truthfulqa", "truthfulness")).unwrap();
    assert_eq!((c.mean, c.n, c.failures), (Some(7.0), 2, 0));
    // base has no lem_only scores at all: an empty cell, not a missing one.
    let c = r.cell("base", &key("lem_only", "x")).unwrap();
    assert_eq!((c.mean, c.ci95, c.n, c.failures), (None, None, 0, 0));
    // The failed seeds record of lem counts, and is not averaged in.
    let c = r.cell("lem", &key("seeds", "safety")).unwrap();
    assert_eq!((c.mean, c.n, c.failures), (Some(1.0), 1, 1));
    let c = r.cell("base", &key("seeds", "safety")).unwrap();
    assert_eq!((c.mean, c.n, c.failures), (Some(0.75), 2, 0));
    assert!(r.cell("nobody", &key("gsm8k", "correct")).is_none());
}

#[test]
fn deltas_and_percents_match_hand_values() {
    let r = fixture::report();
    let d = r.delta("lem", &key("gsm8k", "correct")).unwrap();
    assert!(close(d.delta.unwrap(), 0.25) && close(d.percent.unwrap(), 50.0));
    let d = r.delta("lem", &key("truthfulqa", "truthfulness")).unwrap();
    assert!(close(d.delta.unwrap(), 2.0));
    assert!(close(d.percent.unwrap(), 200.0 / 7.0));
    let d = r
        .delta("lem", &key("truthfulqa", "informativeness"))
        .unwrap();
    assert_eq!((d.delta, d.percent), (Some(0.0), Some(0.0)));
    // The baseline's mean is 0: a delta, but no percent.
    let d = r.delta("lem", &key("toxigen", "kindness")).unwrap();
    assert_eq!((d.delta, d.percent), (Some(0.5), None));
    // The baseline has no mean: neither.
    let d = r.delta("lem", &key("lem_only", "x")).unwrap();
    assert_eq!((d.delta, d.percent), (None, None));
    let d = r.delta("lem", &key("seeds", "safety")).unwrap();
    assert!(close(d.delta.unwrap(), 0.25) && close(d.percent.unwrap(), 100.0 / 3.0));
    assert_eq!(r.delta("base", &key("gsm8k", "correct")), None);
}

#[test]
fn intervals_follow_the_documented_bootstrap() {
    let r = fixture::report();
    // lem's GSM8K items in input order: q1..q4 = 1, 1, 1, 0.
    let c = r.cell("lem", &key("gsm8k", "correct")).unwrap();
    let expected = independent_bootstrap(&[1.0, 1.0, 1.0, 0.0], 2000, stats::DEFAULT_SEED);
    assert_eq!(c.ci95, Some(expected));
    let c = r.cell("base", &key("truthfulqa", "truthfulness")).unwrap();
    assert_eq!(
        c.ci95,
        Some(independent_bootstrap(
            &[6.0, 8.0],
            2000,
            stats::DEFAULT_SEED
        ))
    );

    // All values equal: the interval is the point.
    let c = r.cell("base", &key("toxigen", "kindness")).unwrap();
    assert_eq!(c.ci95, Some((0.0, 0.0)));
    let c = r.cell("lem", &key("truthfulqa", "truthfulness")).unwrap();
    assert_eq!(c.ci95, Some((9.0, 9.0)));

    // Every interval brackets its mean.
    for model in r.models() {
        for k in r.metrics() {
            let c = r.cell(model, k).unwrap();
            if let (Some(m), Some((lo, hi))) = (c.mean, c.ci95) {
                assert!(lo <= m && m <= hi, "{model} {k}: {lo} {m} {hi}");
            }
        }
    }
}

#[test]
fn intervals_are_deterministic_and_follow_the_options() {
    let values: Vec<Observation> = (0..30)
        .map(|i| obs("m", &i.to_string(), &[("v", ((i * 7) % 10) as f64)]))
        .collect();
    let a = Report::build(&values, &ReportOptions::default()).unwrap();
    let b = Report::build(&values, &ReportOptions::default()).unwrap();
    let k = key("b", "v");
    assert_eq!(a.cell("m", &k), b.cell("m", &k));
    let options = ReportOptions {
        resamples: 500,
        seed: 42,
        ..ReportOptions::default()
    };
    let c = Report::build(&values, &options).unwrap();
    let raw: Vec<f64> = (0..30).map(|i| ((i * 7) % 10) as f64).collect();
    assert_eq!(
        c.cell("m", &k).unwrap().ci95,
        Some(independent_bootstrap(&raw, 500, 42))
    );
    assert_ne!(c.cell("m", &k), a.cell("m", &k));
    assert_eq!((c.resamples(), c.seed()), (500, 42));
}

#[test]
fn baseline_rule() {
    let two = [obs("x", "1", &[("v", 1.0)]), obs("y", "1", &[("v", 2.0)])];
    let r = Report::build(&two, &ReportOptions::default()).unwrap();
    assert_eq!(r.baseline(), "x", "no base or baseline: the first model");

    let named = [
        obs("x", "1", &[("v", 1.0)]),
        obs("baseline", "1", &[("v", 2.0)]),
        obs("base", "1", &[("v", 3.0)]),
    ];
    let r = Report::build(&named, &ReportOptions::default()).unwrap();
    assert_eq!(r.baseline(), "base", "base wins over baseline");
    let r = Report::build(&named[..2], &ReportOptions::default()).unwrap();
    assert_eq!(r.baseline(), "baseline");

    let asked = ReportOptions {
        baseline: Some("y".into()),
        ..ReportOptions::default()
    };
    let r = Report::build(&two, &asked).unwrap();
    assert_eq!(r.baseline(), "y");
    assert_eq!(r.compared().collect::<Vec<_>>(), ["x"]);
    let d = r.delta("x", &key("b", "v")).unwrap();
    assert_eq!((d.delta, d.percent), (Some(-1.0), Some(-50.0)));

    let missing = ReportOptions {
        baseline: Some("z".into()),
        ..ReportOptions::default()
    };
    let err = Report::build(&two, &missing).unwrap_err();
    assert_eq!(
        err.to_string(),
        "baseline model `z` is not in the input; models are: x, y"
    );
}

#[test]
fn bad_input_is_refused() {
    assert!(matches!(
        Report::build(&[], &ReportOptions::default()),
        Err(ReportError::Empty)
    ));
    let dup = [obs("m", "1", &[("v", 1.0)]), obs("m", "1", &[("v", 0.0)])];
    assert!(matches!(
        Report::build(&dup, &ReportOptions::default()),
        Err(ReportError::DuplicateItem { item, .. }) if item == "1"
    ));
    let nan = [obs("m", "1", &[("v", f64::NAN)])];
    assert!(matches!(
        Report::build(&nan, &ReportOptions::default()),
        Err(ReportError::NotFinite { metric, .. }) if metric == "v"
    ));
    let none = ReportOptions {
        resamples: 0,
        ..ReportOptions::default()
    };
    assert!(matches!(
        Report::build(&[obs("m", "1", &[("v", 1.0)])], &none),
        Err(ReportError::NoResamples)
    ));
}

#[test]
fn a_model_with_only_failures_has_empty_cells() {
    let mut failed = obs("lem", "1", &[]);
    failed.failed = true;
    let input = [obs("base", "1", &[("v", 1.0), ("w", 0.0)]), failed];
    let r = Report::build(&input, &ReportOptions::default()).unwrap();
    for m in ["v", "w"] {
        let c = r.cell("lem", &key("b", m)).unwrap();
        assert_eq!((c.mean, c.ci95, c.n, c.failures), (None, None, 0, 1));
    }
    let d = r.delta("lem", &key("b", "v")).unwrap();
    assert_eq!((d.delta, d.percent), (None, None));
}

#[test]
fn domains_break_down_by_model_and_domain() {
    let r = fixture::report();
    assert_eq!(r.domains(), ["Identity <&>", "Privacy"]);
    assert_eq!(r.domain_metrics(), [key("seeds", "safety")]);
    let k = key("seeds", "safety");
    let c = r.domain_cell("base", "Privacy", &k).unwrap();
    assert_eq!((c.mean, c.n, c.failures), (Some(0.5), 1, 0));
    let c = r.domain_cell("lem", "Identity <&>", &k).unwrap();
    assert_eq!((c.mean, c.n, c.failures), (None, 0, 1));
    let c = r.domain_cell("lem", "Privacy", &k).unwrap();
    assert_eq!(c.mean, Some(1.0));
    assert!(r.domain_cell("lem", "Nowhere", &k).is_none());
    assert!(
        r.domain_cell("lem", "Privacy", &key("gsm8k", "correct"))
            .is_none()
    );
}

#[test]
fn paper_metrics_come_first_in_paper_order() {
    let names = [
        ("zzz", "a"),
        ("toxigen", "awareness"),
        ("aaa", "z"),
        ("toxigen", "kindness"),
        ("do_not_answer", "nuance"),
        ("do_not_answer", "safety"),
        ("truthfulqa", "informativeness"),
        ("truthfulqa", "truthfulness"),
        ("gsm8k", "accuracy"),
    ];
    let input: Vec<Observation> = names
        .iter()
        .enumerate()
        .map(|(i, (b, m))| Observation {
            benchmark: b.to_string(),
            model: "m".into(),
            item_id: i.to_string(),
            domain: None,
            metrics: BTreeMap::from([(m.to_string(), 1.0)]),
            failed: false,
            scorer: None,
        })
        .collect();
    let r = Report::build(&input, &ReportOptions::default()).unwrap();
    let labels: Vec<String> = r.metrics().iter().map(MetricKey::label).collect();
    assert_eq!(
        labels,
        [
            "GSM8K %",
            "truthfulqa/truthfulness",
            "truthfulqa/informativeness",
            "do_not_answer/safety",
            "do_not_answer/nuance",
            "toxigen/kindness",
            "toxigen/awareness",
            "aaa/z",
            "zzz/a",
        ]
    );
}

#[test]
fn a_failed_scorer_counts_only_against_its_own_metrics() {
    // Two scorers on one benchmark: the judge fails on item 2, the heuristic scores it.
    let with = |item: &str, scorer: &str, metrics: &[(&str, f64)], failed: bool| Observation {
        scorer: Some(scorer.into()),
        failed,
        ..obs("m", item, metrics)
    };
    let input = vec![
        with("1", "judge", &[("safety", 8.0)], false),
        with("1", "heuristic", &[("lek_score", 2.0)], false),
        with("2", "judge", &[], true),
        with("2", "heuristic", &[("lek_score", 4.0)], false),
    ];
    let r = Report::build(&input, &ReportOptions::default()).unwrap();
    let safety = r.cell("m", &key("b", "safety")).unwrap();
    assert_eq!((safety.n, safety.failures), (1, 1));
    let lek = r.cell("m", &key("b", "lek_score")).unwrap();
    assert_eq!((lek.n, lek.failures), (2, 0));
    assert!(close(lek.mean.unwrap(), 3.0));
}

#[test]
fn a_scorer_that_always_failed_still_shows_its_failures() {
    let failed = |item: &str| Observation {
        scorer: Some("judge".into()),
        failed: true,
        ..obs("m", item, &[])
    };
    let r = Report::build(&[failed("1"), failed("2")], &ReportOptions::default()).unwrap();
    let cell = r.cell("m", &key("b", "judge")).unwrap();
    assert_eq!((cell.n, cell.failures, cell.mean), (0, 2, None));
}
