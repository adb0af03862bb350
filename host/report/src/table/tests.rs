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
        detail: Default::default(),
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
fn the_given_order_comes_first_then_input_order() {
    let names = [
        ("zzz", "a"),
        ("toxigen", "awareness"),
        ("aaa", "z"),
        ("toxigen", "kindness"),
        ("gsm8k", "accuracy"),
        ("aaa", "b"),
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
            detail: Default::default(),
        })
        .collect();
    let options = ReportOptions {
        order: vec!["gsm8k/accuracy".into(), "toxigen/kindness".into()],
        ..ReportOptions::default()
    };
    let r = Report::build(&input, &options).unwrap();
    let ids: Vec<String> = r.metrics().iter().map(MetricKey::id).collect();
    assert_eq!(
        ids,
        [
            "gsm8k/accuracy",
            "toxigen/kindness",
            "zzz/a",
            "toxigen/awareness",
            "aaa/b",
            "aaa/z",
        ]
    );
    // No benchmark is special: a 0/1 metric is a percent by its values.
    assert_eq!(r.label(&key("gsm8k", "accuracy")), "gsm8k/accuracy %");
    assert_eq!(r.label(&key("zzz", "a")), "zzz/a %");
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
    // No column named after the scorer: its failures are listed apart.
    assert!(r.metrics().is_empty());
    assert_eq!(
        r.unscored(),
        [Unscored {
            benchmark: "b".into(),
            scorer: Some("judge".into()),
            model: "m".into(),
            failures: 2,
        }]
    );
}

/// `base` and `lem` on items 0..n of metric `v`, from two value lists.
fn paired_input(base: &[f64], lem: &[f64]) -> Vec<Observation> {
    let mut out = Vec::new();
    for (i, v) in base.iter().enumerate() {
        out.push(obs("base", &i.to_string(), &[("v", *v)]));
    }
    for (i, v) in lem.iter().enumerate() {
        out.push(obs("lem", &i.to_string(), &[("v", *v)]));
    }
    out
}

#[test]
fn a_signed_metric_shows_its_difference_and_no_percent() {
    // A lek_score-like metric moving from a mean of −2 to +3.
    let input = paired_input(&[-2.0, -3.0, -1.0], &[3.0, 2.0, 4.0]);
    let r = Report::build(&input, &ReportOptions::default()).unwrap();
    let k = key("b", "v");
    assert!(r.descriptor(&k).can_be_negative());
    let d = r.delta("lem", &k).unwrap();
    assert_eq!((d.delta, d.percent), (Some(5.0), None));
    let md = crate::to_markdown(&r);
    assert!(md.contains("| lem | +5.000 |"), "{md}");
    assert!(!md.contains("-250"), "{md}");
    let json = crate::to_json(&r);
    assert!(json["differential"]["lem"]["b/v"]["percent"].is_null());
    // The chart plots the difference in the metric's own unit.
    let html = crate::to_html(&r);
    let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    assert!(svg.contains("+5.000 [+5.000, +5.000]"), "{svg}");
    assert!(!svg.replace("(95% CI)", "").contains('%'), "{svg}");
    // Declared as not negative with a positive baseline: the percent is back.
    let options = ReportOptions {
        descriptors: BTreeMap::from([(
            "b/v".to_string(),
            MetricDescriptor {
                range: Some((0.0, 10.0)),
                higher_is_better: true,
                unit: Unit::Number,
                label: Some("V".into()),
                declared: true,
            },
        )]),
        ..ReportOptions::default()
    };
    let input = paired_input(&[2.0, 2.0], &[3.0, 3.0]);
    let r = Report::build(&input, &options).unwrap();
    assert_eq!(r.delta("lem", &k).unwrap().percent, Some(50.0));
    assert_eq!(r.label(&k), "V");
}

#[test]
fn paired_statistics_match_hand_values() {
    // 0/1 metric, 12 items: 7 went 0 → 1, none 1 → 0, 5 unchanged.
    let base = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0];
    let lem = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0];
    let r = Report::build(&paired_input(&base, &lem), &ReportOptions::default()).unwrap();
    let p = r.paired("lem", &key("b", "v")).unwrap();
    assert_eq!(p.n, 12);
    assert!(close(p.mean.unwrap(), 7.0 / 12.0));
    assert_eq!(p.test, Some(Test::McNemar));
    // McNemar: 2 · (1/2)^7 = 1/64.
    assert!(close(p.p.unwrap(), 1.0 / 64.0));
    // One test in the table: Holm changes nothing.
    assert_eq!(p.p_holm, p.p);
    assert_eq!(p.verdict, Verdict::Better);
    assert_eq!(p.flips.up, ["0", "1", "2", "3", "4", "5", "6"]);
    assert!(p.flips.down.is_empty());
    // The paired bootstrap resamples the differences.
    let d: Vec<f64> = base.iter().zip(&lem).map(|(b, l)| l - b).collect();
    assert_eq!(
        p.ci95,
        Some(independent_bootstrap(&d, 2000, stats::DEFAULT_SEED))
    );
    // MDD: (1.959964 + 0.841621) · sd(d) / √12.
    let sd = stats::sd(&d).unwrap();
    assert!(close(
        p.mdd.unwrap(),
        2.801_585_218_112_968 * sd / 12f64.sqrt()
    ));
    // A lower-is-better metric reads the same difference as worse.
    let options = ReportOptions {
        descriptors: BTreeMap::from([(
            "b/v".to_string(),
            MetricDescriptor {
                range: Some((0.0, 1.0)),
                higher_is_better: false,
                unit: Unit::Percent,
                label: None,
                declared: true,
            },
        )]),
        ..ReportOptions::default()
    };
    let r = Report::build(&paired_input(&base, &lem), &options).unwrap();
    assert_eq!(
        r.paired("lem", &key("b", "v")).unwrap().verdict,
        Verdict::Worse
    );
}

#[test]
fn holm_runs_across_the_whole_table() {
    // Two metrics: `v` with p = 1/64 (as above), `w` with p = 1/32 (5 up).
    let mut input = Vec::new();
    for i in 0..7 {
        input.push(obs("base", &i.to_string(), &[("v", 0.0), ("w", 0.0)]));
        let w = if i < 5 { 1.0 } else { 0.0 };
        input.push(obs("lem", &i.to_string(), &[("v", 1.0), ("w", w)]));
    }
    let r = Report::build(&input, &ReportOptions::default()).unwrap();
    assert_eq!(r.tests(), 2);
    let v = r.paired("lem", &key("b", "v")).unwrap();
    let w = r.paired("lem", &key("b", "w")).unwrap();
    assert!(close(v.p.unwrap(), 1.0 / 64.0) && close(w.p.unwrap(), 1.0 / 16.0));
    // Sorted: 1/64 × 2 = 1/32; 1/16 × 1 = 1/16.
    assert!(close(v.p_holm.unwrap(), 1.0 / 32.0));
    assert!(close(w.p_holm.unwrap(), 1.0 / 16.0));
    assert_eq!(
        (v.verdict, w.verdict),
        (Verdict::Better, Verdict::NoDifference)
    );
}

#[test]
fn rubric_scores_use_the_sign_flip_test_and_count_flips_of_two() {
    // 1–10 scores; differences 3, 2, 1, −2, 0.
    let base = [5.0, 5.0, 5.0, 7.0, 4.0];
    let lem = [8.0, 7.0, 6.0, 5.0, 4.0];
    let options = ReportOptions {
        descriptors: BTreeMap::from([(
            "b/v".to_string(),
            MetricDescriptor {
                range: Some((1.0, 10.0)),
                higher_is_better: true,
                unit: Unit::Number,
                label: None,
                declared: true,
            },
        )]),
        margins: BTreeMap::from([("b/v".to_string(), 5.0)]),
        ..ReportOptions::default()
    };
    let r = Report::build(&paired_input(&base, &lem), &options).unwrap();
    let p = r.paired("lem", &key("b", "v")).unwrap();
    assert_eq!(p.test, Some(Test::SignFlipExact));
    // Non-zero d = [3, 2, 1, −2], S = 4. The 8 sums of ±2±1±2 are
    // 5, 1, 3, −1, 1, −3, −1, −5; adding +3 gives 8, 4, 6, 2, 4, 0, 2, −2
    // (4 with |S*| ≥ 4), adding −3 gives 2, −2, 0, −4, −2, −6, −4, −8
    // (4 more): p = 8/16.
    assert_eq!(p.p, Some(0.5));
    assert_eq!(p.flips.threshold, 2.0);
    assert_eq!(p.flips.up, ["0", "1"]);
    assert_eq!(p.flips.down, ["3"]);
    // TOST with margin 5 on d = [3, 2, 1, −2, 0]: d + 5 all positive →
    // p₁ = 1/32; d − 5 all negative → p₂ = 1/32.
    let e = p.equivalence.unwrap();
    assert_eq!((e.margin, e.p, e.equivalent), (5.0, 1.0 / 32.0, true));
}

#[test]
fn failure_bounds_say_when_the_verdict_could_change() {
    // 0/1 metric: lem is right on 8 items where base was wrong (p = 2/256),
    // and 6 of lem's items failed where base was right. With the failures
    // counted as wrong, 8 up and 6 down: no detectable difference.
    let mut input = Vec::new();
    for i in 0..8 {
        input.push(obs("base", &i.to_string(), &[("v", 0.0)]));
        input.push(obs("lem", &i.to_string(), &[("v", 1.0)]));
    }
    for i in 8..14 {
        input.push(obs("base", &i.to_string(), &[("v", 1.0)]));
        let mut failed = obs("lem", &i.to_string(), &[]);
        failed.failed = true;
        input.push(failed);
    }
    let r = Report::build(&input, &ReportOptions::default()).unwrap();
    let k = key("b", "v");
    let p = r.paired("lem", &k).unwrap();
    assert_eq!(p.n, 8);
    assert_eq!(p.verdict, Verdict::Better);
    let b = p.bounds.unwrap();
    assert_eq!(b.n, 14);
    // Best: failures right → d = 8 ones, 6 zeros: 8/14. Worst: 8 − 6 = 2/14.
    assert!(close(b.best, 8.0 / 14.0) && close(b.worst, 2.0 / 14.0));
    assert!(b.verdict_could_change);
    // The cell's own bounds: lem's mean with failures at 0 and at 1.
    let c = r.cell("lem", &k).unwrap();
    assert_eq!(c.bounds, Some((8.0 / 14.0, 1.0)));
}

#[test]
fn nothing_is_detectable_below_six_pairs_or_without_spread() {
    let mdd = |base: &[f64], lem: &[f64]| {
        let r = Report::build(&paired_input(base, lem), &ReportOptions::default()).unwrap();
        r.paired("lem", &key("b", "v")).unwrap().mdd
    };
    // Five pairs: the smallest exact p is 2/32 > 0.05.
    assert_eq!(
        mdd(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 2.0, 5.0, 4.0, 9.0]),
        None
    );
    // Six equal differences: no spread to estimate from.
    assert_eq!(mdd(&[1.0; 6], &[2.0; 6]), None);
    // Six with spread: (z.975 + z.8) · sd / √6; d = [1, 0, 2, 0, 4, 5].
    let d = [1.0, 0.0, 2.0, 0.0, 4.0, 5.0];
    let got = mdd(&[1.0; 6], &d.map(|x| x + 1.0)).unwrap();
    let sd = stats::sd(&d).unwrap();
    assert!(close(got, (stats::Z_975 + stats::Z_80) * sd / 6f64.sqrt()));
}
