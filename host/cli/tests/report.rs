//! `lem report` on a score fixture written here: means, deltas, percents and
//! CIs against values worked out by hand; and the HTML report rendered in
//! headless Chromium, whose DOM must hold the tables and the charts.

mod chromium;
use chromium::{chromium, headless};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scores.json")
}

fn report(format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args([
            "report",
            "--baseline",
            "base",
            "--format",
            format,
            "--scores",
        ])
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
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[test]
fn means_deltas_percents_and_cis_match_the_hand_computed_values() {
    let r: Value = serde_json::from_str(&report("json")).unwrap();
    assert_eq!(r["baseline"], "base");
    let base = &r["models"]["base"];
    let lek = &r["models"]["lek"];
    // GSM8K: base 2/4 correct, lek 3/4 (booleans count as 0/1).
    close(&base["gsm8k/correct"]["mean"], 0.5);
    close(&lek["gsm8k/correct"]["mean"], 0.75);
    assert_eq!(base["gsm8k/correct"]["n"], 4);
    assert_eq!(base["gsm8k/correct"]["failures"], 0);
    // Equal values: every bootstrap resample has the same mean, so the CI is a point.
    close(&base["truthfulqa/truthfulness"]["mean"], 6.0);
    close(&base["truthfulqa/truthfulness"]["ci95"][0], 6.0);
    close(&base["truthfulqa/truthfulness"]["ci95"][1], 6.0);
    close(&lek["truthfulqa/informativeness"]["ci95"][1], 5.0);
    // A 0/1 metric over 4 items: the CI lies within [0, 1] and holds the mean.
    let (lo, hi) = (
        base["gsm8k/correct"]["ci95"][0].as_f64().unwrap(),
        base["gsm8k/correct"]["ci95"][1].as_f64().unwrap(),
    );
    assert!((0.0..=0.5).contains(&lo) && (0.5..=1.0).contains(&hi) && lo < hi);
    // Differential: delta = lek - base, percent = 100 (lek - base) / base.
    let d = &r["differential"]["lek"];
    close(&d["gsm8k/correct"]["delta"], 0.25);
    close(&d["gsm8k/correct"]["percent"], 50.0);
    close(&d["truthfulqa/truthfulness"]["delta"], 3.0);
    close(&d["truthfulqa/truthfulness"]["percent"], 50.0);
    close(&d["truthfulqa/informativeness"]["percent"], 25.0);
    assert!(r["differential"].get("base").is_none());
    // The note (a string) is not a metric.
    assert!(base.get("truthfulqa/note").is_none());
}

#[test]
fn markdown_has_the_paper_tables() {
    let md = report("md");
    assert!(md.contains("| base"), "{md}");
    assert!(md.contains("+50"), "{md}");
}

#[test]
#[ignore = "needs chromium (scripts/test installs it)"]
fn the_html_report_renders_its_tables_and_charts_in_chromium() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    std::fs::write(&html, report("html")).unwrap();
    let url = format!("file://{}", html.display());

    // The DOM after Chromium has parsed and laid out the page.
    let dom = headless(&chromium, &dir.path().join("p1"))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    for table in [
        "<table id=\"main\"",
        "<table id=\"differential\"",
        "<table id=\"domains\"",
    ] {
        assert!(dom.contains(table), "{table} missing from the rendered DOM");
    }
    assert_eq!(
        dom.matches("class=\"chart\"").count(),
        1,
        "one chart: the forest plot"
    );
    assert!(dom.contains("lek") && dom.contains("base"));

    // A screenshot: a real, non-trivial picture of the page.
    let png = dir.path().join("report.png");
    let shot = headless(&chromium, &dir.path().join("p2"))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,1600")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(&bytes[1..4], b"PNG");
    assert!(
        bytes.len() > 20_000,
        "a blank page compresses to a few KB: {} bytes",
        bytes.len()
    );
}
