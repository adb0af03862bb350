//! `lem report --scores` on a fixture written here in the upstream layout
//! (`tests/fixtures/paired_scores.json`): the paired table, its tests and
//! verdicts against values worked out by hand, the flips, a signed metric
//! shown without a percent, an equivalence margin; and the HTML report in
//! headless Chromium, its summary, forest plot and filtered item browser
//! screenshotted (to `/tmp/lem-report-shots/`) and their elements checked
//! in the rendered DOM.
//!
//! The fixture: three models. GSM8K (24 items, 0/1): `base` right on
//! q01–q12; `lek` also right on q13–q22 (10 up, 0 down); `lek_sandwich`
//! wrong on q01–q03 and right on q13 (1 up, 3 down). TruthfulQA (10 items,
//! 1–10): `base` 8 and 6; `lek` 5 on truthfulness, informativeness 7 on t01
//! and 5 on t02, and no scores at all on t10 (a failure); `lek_sandwich` as
//! `base`. Seeds (6 items, signed `lek_score`): `base` mean −2, `lek` +3,
//! `lek_sandwich` with one item up and one down by 1.

mod chromium;
use chromium::{chromium, headless};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/paired_scores.json")
}

fn report(format: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["report", "--format", format])
        .args(extra)
        .arg("--scores")
        .arg(fixture())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn close(a: &Value, b: f64) {
    let a = a.as_f64().unwrap_or_else(|| panic!("not a number: {a}"));
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn paired_table_tests_verdicts_and_flips_match_hand_values() {
    let r: Value = serde_json::from_str(&report("json", &[])).unwrap();
    assert_eq!(r["baseline"], "base");
    // 2 compared models × 4 metrics, all with items in common.
    assert_eq!(r["method"]["tests"], 8);
    assert_eq!(r["method"]["adjustment"], "holm");
    let lek = &r["paired"]["lek"];
    let sandwich = &r["paired"]["lek_sandwich"];

    // GSM8K, lek: 10 discordant pairs, all 0 → 1. McNemar: 2 · 2^-10.
    let g = &lek["gsm8k/correct"];
    assert_eq!(g["n"], 24);
    close(&g["mean"], 10.0 / 24.0);
    assert_eq!(g["test"], "mcnemar-exact");
    close(&g["p"], 2.0 / 1024.0);
    let up: Vec<String> = (13..=22).map(|i| format!("q{i}")).collect();
    assert_eq!(g["flips"]["up"], serde_json::json!(up));
    assert_eq!(g["flips"]["down"], serde_json::json!([]));
    // lek_sandwich: 1 up, 3 down: 2 · (1 + 4) / 16.
    let gs = &sandwich["gsm8k/correct"];
    close(&gs["p"], 0.625);
    assert_eq!(
        gs["flips"]["down"],
        serde_json::json!(["q01", "q02", "q03"])
    );
    assert_eq!(gs["flips"]["up"], serde_json::json!(["q13"]));

    // Truthfulness, lek: 9 pairs (t10 failed), each −3: sign-flip exact,
    // only the two all-same-sign patterns reach |S| = 27: 2 / 2^9.
    let t = &lek["truthfulqa/truthfulness"];
    assert_eq!(t["n"], 9);
    close(&t["mean"], -3.0);
    assert_eq!(t["test"], "sign-flip-exact");
    close(&t["p"], 2.0 / 512.0);
    assert_eq!(t["flips"]["down"].as_array().unwrap().len(), 9);
    // Failure bounds on the 1–10 scale: t10 at 10 → (−27 + 2) / 10, at 1 →
    // (−27 − 7) / 10; worse either way.
    close(&t["bounds"]["best"], -2.5);
    close(&t["bounds"]["worst"], -3.4);
    assert_eq!(t["bounds"]["verdict_could_change"], false);
    close(
        &r["models"]["lek"]["truthfulqa/truthfulness"]["bounds"][0],
        46.0 / 10.0,
    );
    close(
        &r["models"]["lek"]["truthfulqa/truthfulness"]["bounds"][1],
        55.0 / 10.0,
    );

    // Seeds, lek: 6 differences of +5: 2 / 2^6.
    let s = &lek["seeds/lek_score"];
    close(&s["p"], 2.0 / 64.0);
    close(&s["mean"], 5.0);

    // Holm over the 8 p-values: 2/1024 (×8), 2/512 (×7), 2/64 (×6),
    // 0.625 (×5, capped at 1), then four 1s.
    close(&g["p_holm"], 16.0 / 1024.0);
    close(&t["p_holm"], 14.0 / 512.0);
    close(&s["p_holm"], 12.0 / 64.0);
    close(&gs["p_holm"], 1.0);
    assert_eq!(g["verdict"], "better");
    assert_eq!(t["verdict"], "worse");
    // All six seeds items improved, but 6 items and 8 tests cannot show it.
    assert_eq!(s["verdict"], "no detectable difference");
    assert_eq!(gs["verdict"], "no detectable difference");
    assert_eq!(
        lek["truthfulqa/informativeness"]["verdict"],
        "no detectable difference"
    );

    // The signed metric: +5, no percent.
    close(&r["differential"]["lek"]["seeds/lek_score"]["delta"], 5.0);
    assert!(r["differential"]["lek"]["seeds/lek_score"]["percent"].is_null());
    close(
        &r["differential"]["lek"]["gsm8k/correct"]["percent"],
        100.0 * (22.0 - 12.0) / 12.0,
    );

    // Smallest detectable difference: 2.8015852 · sd / √n; for lek's GSM8K
    // the differences are ten 1s and fourteen 0s.
    let m = 10.0 / 24.0;
    let sd = ((10.0 * (1.0f64 - m).powi(2) + 14.0 * m * m) / 23.0).sqrt();
    close(&g["mdd"], 2.801_585_218_112_968 * sd / 24f64.sqrt());
}

#[test]
fn markdown_has_the_paired_table_and_no_percent_of_a_signed_metric() {
    let md = report("md", &[]);
    assert!(
        md.contains("| Model | GSM8K % | Truthful | Info | seeds/lek\\_score |"),
        "{md}"
    );
    assert!(md.contains("| lek | GSM8K % | 24 | +41.7 pts ["), "{md}");
    assert!(
        md.contains("| 0.002 (mcnemar-exact) | 0.016 | better | 10/0 |"),
        "{md}"
    );
    assert!(md.contains("| worse | 0/9 |"), "{md}");
    assert!(
        md.contains("| lek | seeds/lek\\_score | 6 | +5.000 [+5.000, +5.000] |"),
        "{md}"
    );
    // Means: +5.000 and nothing after it.
    assert!(md.contains("| +5.000 |\n"), "{md}");
    assert!(!md.contains("-250"), "{md}");
}

#[test]
fn an_equivalence_margin_gives_a_tost_verdict() {
    let r: Value = serde_json::from_str(&report(
        "json",
        &["--margin", "truthfulqa/informativeness=2"],
    ))
    .unwrap();
    // lek: d = [1, −1, 0 × 7]; d + 2 and d − 2 have one sign throughout,
    // so each one-sided p is 1 / 2^9.
    let e = &r["paired"]["lek"]["truthfulqa/informativeness"]["equivalence"];
    close(&e["margin"], 2.0);
    close(&e["p"], 1.0 / 512.0);
    assert_eq!(e["equivalent"], true);
    assert!(r["paired"]["lek"]["gsm8k/correct"]["equivalence"].is_null());
    let out = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["report", "--margin", "informativeness=2", "--scores"])
        .arg(fixture())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not BENCHMARK/METRIC"));
}

/// The DOM of `url` after Chromium has run the page's script.
fn dom(chromium: &Path, profile: &Path, url: &str) -> String {
    let out = headless(chromium, profile)
        .arg("--virtual-time-budget=2000")
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A screenshot of `url`, kept in /tmp/lem-report-shots/NAME.png.
fn screenshot(chromium: &Path, profile: &Path, url: &str, name: &str, size: &str) {
    let shots = Path::new("/tmp/lem-report-shots");
    std::fs::create_dir_all(shots).unwrap();
    let png = shots.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let out = headless(chromium, profile)
        .arg("--virtual-time-budget=2000")
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={size}"))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(&bytes[1..4], b"PNG");
    assert!(
        bytes.len() > 15_000,
        "{name}: a blank page compresses to a few KB: {} bytes",
        bytes.len()
    );
}

/// The `<details class="item" ...>` opening tags of a DOM.
fn item_tags(dom: &str) -> Vec<&str> {
    dom.match_indices("<details class=\"item\"")
        .map(|(i, _)| &dom[i..i + dom[i..].find('>').unwrap()])
        .collect()
}

#[test]
#[ignore = "needs chromium (scripts/test installs it)"]
fn the_html_report_renders_summary_forest_plot_and_filtered_items_in_chromium() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    std::fs::write(&html, report("html", &[])).unwrap();
    let url = |query: &str| format!("file://{}?{query}", html.display());

    // The summary: one row per model, the paper's columns first.
    let summary = url("show=summary");
    let d = dom(&chromium, &dir.path().join("p1"), &summary);
    let main = &d[d.find("<table id=\"main\"").expect("summary table")..];
    let main = &main[..main.find("</table>").unwrap()];
    assert_eq!(main.matches("<tr").count(), 4, "a header and three models");
    let heads: Vec<usize> = ["GSM8K %", "Truthful", "Info", "seeds/lek_score"]
        .iter()
        .map(|h| {
            main.find(&format!(">{h}<"))
                .unwrap_or_else(|| panic!("{h}"))
        })
        .collect();
    assert!(heads.windows(2).all(|w| w[0] < w[1]), "paper order");
    assert!(
        d.contains("<section id=\"paired\" hidden=\"\""),
        "other sections hidden"
    );
    screenshot(
        &chromium,
        &dir.path().join("p2"),
        &summary,
        "summary",
        "1400,600",
    );

    // The forest plot: one SVG, a row per model and metric, in units.
    let forest = url("show=forest");
    let d = dom(&chromium, &dir.path().join("p3"), &forest);
    assert!(d.contains("<section id=\"forest\">"), "forest shown");
    assert!(d.contains("<section id=\"summary\" hidden=\"\""));
    let svg = &d[d
        .find("<svg class=\"chart\" id=\"chart-forest\"")
        .expect("forest plot")..];
    let svg = &svg[..svg.find("</svg>").unwrap()];
    assert_eq!(d.matches("<svg").count(), 1, "one chart");
    assert_eq!(
        svg.matches("<circle").count(),
        8,
        "a point per model and metric"
    );
    assert!(svg.contains("+5.000 [+5.000, +5.000]"));
    assert!(svg.contains("+41.7 pts"));
    assert!(svg.contains("better") && svg.contains("worse"));
    screenshot(
        &chromium,
        &dir.path().join("p4"),
        &forest,
        "forest",
        "1100,720",
    );

    // The item browser, filtered to GSM8K items that flipped: q01–q03
    // (lek_sandwich down) and q13–q22 (lek up).
    let items = url("show=items&benchmark=gsm8k&flips=1");
    let d = dom(&chromium, &dir.path().join("p5"), &items);
    let tags = item_tags(&d);
    assert_eq!(tags.len(), 24 + 10 + 6, "every item is in the page");
    let shown: Vec<&&str> = tags.iter().filter(|t| !t.contains("hidden")).collect();
    assert_eq!(shown.len(), 13, "{shown:#?}");
    assert!(shown.iter().all(|t| t.contains("data-benchmark=\"gsm8k\"")));
    assert!(
        shown
            .iter()
            .all(|t| t.contains("data-flips=\"gsm8k/correct\""))
    );
    assert!(d.contains(">13 shown<"), "the count follows the filter");
    assert!(d.contains("<span class=\"badge better\">lek up: gsm8k/correct</span>"));
    screenshot(
        &chromium,
        &dir.path().join("p6"),
        &items,
        "items-gsm8k-flips",
        "1400,900",
    );

    // Failures only, expanded: lek's t10, with every model's scores.
    let failures = url("show=items&failures=1&open=1");
    let d = dom(&chromium, &dir.path().join("p7"), &failures);
    let shown: Vec<&str> = item_tags(&d)
        .into_iter()
        .filter(|t| !t.contains("hidden"))
        .collect();
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(shown[0].contains("data-benchmark=\"truthfulqa\""));
    assert!(shown[0].contains(" open=\"\""), "{}", shown[0]);
    let t10 = &d[d.find(shown[0]).unwrap()..];
    let t10 = &t10[..t10.find("</details>\n").unwrap_or(t10.len())];
    assert_eq!(t10.matches("<div class=\"row\">").count(), 3, "{t10}");
    assert!(
        t10.contains("<p class=\"error\">scorer: not scored</p>"),
        "{t10}"
    );
    screenshot(
        &chromium,
        &dir.path().join("p8"),
        &failures,
        "items-failures-open",
        "1400,700",
    );
}

/// A run directory written here: two runs of one judged benchmark, each
/// item's response with the messages as sent, one judge failure.
fn run_dir(dir: &Path) {
    let response = |model: &str, id: &str, system: &str, text: &str| {
        serde_json::json!({
            "id": id, "benchmark": "ethics", "model": model,
            "prompt": format!("Question {id}?"), "response": text, "elapsed_seconds": 0.5,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": format!("Question {id}?")}],
        })
    };
    let score = |model: &str, id: &str, value: Option<f64>, answer: &str| {
        let (metrics, error) = match value {
            Some(v) => (serde_json::json!({"care": v}), Value::Null),
            None => (
                serde_json::json!({}),
                serde_json::json!({"kind": "judge-unparsable", "message": "no JSON object in the answer"}),
            ),
        };
        serde_json::json!({
            "id": id, "model": model, "benchmark": "ethics",
            "plugin": {"name": "ethics-judge", "version": "0.1.0", "sha256": "00"},
            "metrics": metrics, "details": null, "error": error,
            "judge": {"model": "local:judge", "calls": [
                {"request_sha256": "ab", "answer": answer, "cached": false}]},
        })
    };
    let write = |path: PathBuf, lines: Vec<Value>| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(path, text).unwrap();
    };
    write(
        dir.join("responses/base/ethics.jsonl"),
        vec![
            response("base", "e1", "Be brief.", "Plain answer one."),
            response("base", "e2", "Be brief.", "Plain answer two."),
        ],
    );
    write(
        dir.join("responses/base+kernel/ethics.jsonl"),
        vec![
            response("base+kernel", "e1", "KERNEL TEXT", "Kernel answer one."),
            response("base+kernel", "e2", "KERNEL TEXT", "Kernel answer two."),
        ],
    );
    // Items that could not be generated are listed beside the responses, in
    // another shape: not responses, but failures of every metric.
    write(
        dir.join("responses/base+kernel/ethics.failures.jsonl"),
        vec![serde_json::json!({"id": "e3", "stage": "model", "kind": "model", "message": "x"})],
    );
    write(
        dir.join("scores/base/ethics.jsonl"),
        vec![
            score("base", "e1", Some(3.0), "{\"care\": 3}"),
            score("base", "e2", Some(4.0), "{\"care\": 4}"),
        ],
    );
    write(
        dir.join("scores/base+kernel/ethics.jsonl"),
        vec![
            score("base+kernel", "e1", Some(8.0), "{\"care\": 8}"),
            score("base+kernel", "e2", None, "I would rate it highly."),
        ],
    );
}

#[test]
fn a_run_directory_gives_the_item_browser_its_prompts_responses_and_judge_answers() {
    let dir = tempfile::tempdir().unwrap();
    run_dir(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["report", "--baseline", "base", "--format", "html"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = String::from_utf8(out.stdout).unwrap();
    // The prompt as sent, after the kernel, per model.
    assert!(
        html.contains("<pre class=\"prompt\">system:\nKERNEL TEXT\n\nuser:\nQuestion e1?</pre>"),
        "{html}"
    );
    assert!(html.contains("<pre class=\"prompt\">system:\nBe brief.\n\nuser:\nQuestion e1?</pre>"));
    assert!(html.contains("<pre class=\"response\">Kernel answer two.</pre>"));
    // The judge's raw answer and the error with its kind.
    assert!(html.contains("<pre class=\"judge\">I would rate it highly.</pre>"));
    assert!(html.contains(
        "<p class=\"error\">ethics-judge: <strong>judge-unparsable</strong>: no JSON object in the answer</p>"
    ));
    // e1 went 3 → 8: a flip; e2 failed for the kernel run.
    assert!(
        html.contains("data-flips=\"ethics/care\" data-failed=\"0\""),
        "{html}"
    );
    assert!(html.contains("data-flips=\"\" data-failed=\"1\""), "{html}");
    // e3 could not be generated for the kernel run: the browser says so.
    assert!(
        html.contains("not generated (model: model)</strong>: x</p>"),
        "{html}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["report", "--baseline", "base", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &r["paired"]["base+kernel"]["ethics/care"];
    assert_eq!(p["n"], 1);
    close(&p["mean"], 5.0);
    // The metric's range is derived from the values seen (3 to 8): the
    // failed e2 counts as 3 or 8 against base's 4.
    close(&p["bounds"]["worst"], (5.0 + (3.0 - 4.0)) / 2.0);
    close(&p["bounds"]["best"], (5.0 + (8.0 - 4.0)) / 2.0);
}
