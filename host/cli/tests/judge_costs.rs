//! Issue 14, judge requests: a scorer sending 4 MB judge requests (eight per
//! item, at the default judge concurrency) once exhausted 6 GB, and a 50 MB
//! request wrote 400 MB of answer cache. Now such a request is refused
//! before it reaches the judge, its sha256 is what the audit trail keeps,
//! and the `lem` process's peak RSS stays within a stated bound of a run of
//! normal items. One test in its own binary: peak RSS of children is
//! process-wide.

mod common;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const ITEMS: usize = 24;

/// Peak RSS (MB) of the largest child this process has waited for.
fn children_peak_rss_mb() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful call above.
    let usage = unsafe { usage.assume_init() };
    usage.ru_maxrss as u64 / 1024
}

/// The judge: counts requests and the largest body it was sent.
#[derive(Default)]
struct Judge {
    requests: AtomicUsize,
    largest: AtomicUsize,
}

async fn answer(State(judge): State<Arc<Judge>>, Json(body): Json<Value>) -> Json<Value> {
    judge.requests.fetch_add(1, Ordering::SeqCst);
    judge
        .largest
        .fetch_max(body.to_string().len(), Ordering::SeqCst);
    Json(json!({
        "choices": [{"message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1},
    }))
}

fn write_inputs(dir: &Path, attack: &str) {
    let (mut data, mut responses) = (String::new(), String::new());
    for i in 0..ITEMS {
        let id = format!("{attack}#{i}");
        data += &format!("{{\"id\":\"{id}\",\"question\":\"q\"}}\n");
        responses += &format!(
            "{{\"id\":\"{id}\",\"benchmark\":\"b\",\"model\":\"m\",\"prompt\":\"q\",\"response\":\"r\",\"elapsed_seconds\":0}}\n"
        );
    }
    std::fs::write(dir.join(format!("{attack}.data.jsonl")), data).unwrap();
    std::fs::write(dir.join(format!("{attack}.responses.jsonl")), responses).unwrap();
    std::fs::write(
        dir.join("b.toml"),
        format!(
            "name = \"b\"\n[[scorers]]\nplugin = \"{}\"\n",
            lem_bundled::test_plugin("hostile-judge").display()
        ),
    )
    .unwrap();
}

/// Scores the `attack` items, with the judge's answer cache on or off.
fn score(dir: &Path, port: u16, attack: &str, cache: bool) -> (Vec<Value>, std::time::Duration) {
    let out = format!("{attack}.scores.jsonl");
    let started = std::time::Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["score", "--benchmark", "b.toml", "--json"])
        .args(["--data", &format!("{attack}.data.jsonl")])
        .args(["--responses", &format!("{attack}.responses.jsonl")])
        .args(["--out", &out])
        .args((!cache).then_some("--no-judge-cache"))
        .arg("--judge")
        .arg(format!("openai:http://127.0.0.1:{port}/v1#judge"))
        .current_dir(dir)
        .env("LEM_HOME", dir.join("home"))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let records = std::fs::read_to_string(dir.join(out))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (records, took)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                dir_bytes(&path)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

#[test]
fn oversized_judge_requests_are_refused_recorded_by_digest_and_cost_little() {
    let judge = Arc::new(Judge::default());
    let (_rt, port) = common::serve_http(
        Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(judge.clone()),
    );

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d, "fine");
    write_inputs(d, "huge-request");
    // Normal items are judged over loopback each time (no answer cache).
    score(d, port, "fine", false); // compiles the plugin into the cache
    let (normal, normal_time) = score(d, port, "fine", false);
    assert!(
        normal.iter().all(|r| r["metrics"]["ok"] == 1.0),
        "{normal:?}"
    );
    let normal_rss = children_peak_rss_mb();
    let asked = judge.requests.load(Ordering::SeqCst);
    assert_eq!(asked, 2 * ITEMS);

    // The attack runs with the answer cache on: refused requests must not
    // reach it.
    let (attack, attack_time) = score(d, port, "huge-request", true);
    let attack_rss = children_peak_rss_mb();
    eprintln!(
        "{ITEMS} normal judged items: {normal_time:?}, peak RSS {normal_rss} MB; {ITEMS} items \
         of 8 x 4 MB requests: {attack_time:?}, peak RSS {attack_rss} MB; judge cache {} bytes; \
         largest request {} bytes",
        dir_bytes(&d.join("home/judge-cache")),
        judge.largest.load(Ordering::SeqCst)
    );
    // Nothing of the attack reached the judge.
    assert_eq!(judge.requests.load(Ordering::SeqCst), asked);
    assert!(judge.largest.load(Ordering::SeqCst) < 10_000);
    for r in &attack {
        assert_eq!(r["error"]["kind"], "judge-failed", "{r}");
        let calls = r["judge"]["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 8, "{r}");
        for c in calls {
            assert_eq!(c["request_sha256"].as_str().unwrap().len(), 64);
            assert!(c["error"].as_str().unwrap().contains("refused"), "{c}");
        }
    }
    // Records hold digests and short errors, not requests.
    let size = std::fs::metadata(d.join("huge-request.scores.jsonl"))
        .unwrap()
        .len();
    assert!(size < (ITEMS * 8 * 1_000) as u64, "{size} bytes");
    // Nothing was forwarded, so nothing was cached.
    assert_eq!(dir_bytes(&d.join("home/judge-cache")), 0);
    // Items are scored 8 at once (the default judge concurrency). Each
    // attacking guest holds ~8 MB of strings and the host lifts one 4 MB
    // request at a time, checks its size, hashes it in place and drops it:
    // measured 148 MB against 32 MB for normal items, 116 MB for 8 items in
    // flight. Before, every request stayed in memory twice for the whole
    // run (3 items exhausted 6 GB). Bound: 20 MB per item in flight.
    assert!(
        attack_rss < normal_rss + 8 * 20,
        "peak RSS {attack_rss} MB vs {normal_rss} MB"
    );
    // 192 refused requests of 4 MB: measured ~780 ms against ~26 ms for 24
    // normal items judged over loopback (~30x, most of it the guests
    // building and the host lifting 768 MB). Bound: 50x, plus a second for
    // a busy machine.
    assert!(
        attack_time < normal_time * 50 + std::time::Duration::from_secs(1),
        "{attack_time:?} vs {normal_time:?}"
    );
}
