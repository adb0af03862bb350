//! Issue 14: untrusted plugins cannot crash, stall or bloat the host.
//!
//! One hostile guest per class of attack (see `plugins/tests/`), each
//! contained: the host stays up, the attack is a clear per-item or load-time
//! error, the other items are scored, and what the host keeps and how long
//! it takes are bounded (measured here).

use lem_core::ChatMessage;
use lem_plugin_host::benchmark::{Benchmark, PromptConfig};
use lem_plugin_host::kernel::{Kernel, KernelConfig};
use lem_plugin_host::scorer::PluginItem;
use lem_plugin_host::{
    CallErrorKind, Grants, Judge, JudgeAnswer, JudgeError, JudgeRequest, Limits, LoadError,
    NoJudge, PluginSource, Policy, Runtime, RuntimeConfig, Scorer, World,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).unwrap()
}

fn source(name: &str) -> PluginSource {
    PluginSource::from_file(&lem_bundled::test_plugin(name)).unwrap()
}

fn item(id: &str) -> PluginItem {
    PluginItem {
        id: id.into(),
        benchmark: "test".into(),
        record: r#"{"question":"What is 2+2?"}"#.into(),
    }
}

fn policy(limits: Limits) -> Policy {
    Policy {
        limits,
        ..Policy::default()
    }
}

fn scorer(rt: &Runtime, name: &str, policy: Policy) -> Scorer {
    Scorer::load(rt, &source(name), policy, Arc::new(NoJudge)).unwrap()
}

/// Median wall time of `f` over `n` runs.
fn median(n: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

#[test]
fn huge_error_payloads_are_cut_with_a_marker() {
    let rt = runtime();
    let limits = Limits::default();
    let s = scorer(&rt, "hostile-strings", Policy::default());
    for (id, kind) in [
        ("huge-error", CallErrorKind::Internal),
        ("huge-invalid-input", CallErrorKind::InvalidInput),
    ] {
        let e = s.score(&item(id), "r", &[], &[]).result.unwrap_err();
        assert_eq!(e.kind, kind, "{id}");
        assert!(
            e.message.len() < limits.max_error_bytes + 64,
            "{id}: {}",
            e.message.len()
        );
        assert!(e.message.ends_with("more bytes cut]"), "{id}");
        assert!(e.message.contains(&format!(
            "{} more bytes cut",
            (10 << 20) - limits.max_error_bytes
        )));
        assert_eq!(
            s.score(&item("fine"), "r", &[], &[])
                .result
                .unwrap()
                .metrics["ok"],
            1.0
        );
    }
}

#[test]
fn describe_text_is_cut_and_undeclared_or_excess_metrics_are_refused_quickly() {
    let rt = runtime();
    let s = scorer(&rt, "hostile-strings", Policy::default());
    let info = s.info();
    assert!(info.description.len() < Limits::default().max_description_bytes + 64);
    assert!(info.description.starts_with("innocent\u{1b}[8m"));
    assert!(info.description.ends_with("more bytes cut]"));

    // An undeclared megabyte-long name is named by a short preview only.
    let e = s
        .score(&item("undeclared-huge-name"), "r", &[], &[])
        .result
        .unwrap_err();
    assert_eq!(e.kind, CallErrorKind::BadOutput);
    assert!(e.message.len() < 200, "{}", e.message.len());
    assert!(e.message.contains("(524288 bytes)"), "{}", e.message);

    // 45,000 returned metrics: refused by count, in time comparable to a
    // normal item (the host checks names through a set, after a count check).
    let normal = median(5, || {
        s.score(&item("fine"), "r", &[], &[]).result.unwrap();
    });
    let attack = median(5, || {
        let e = s
            .score(&item("many-metrics"), "r", &[], &[])
            .result
            .unwrap_err();
        assert_eq!(e.kind, CallErrorKind::BadOutput, "{e}");
        assert!(e.message.contains("returned 45000 metrics"), "{e}");
    });
    eprintln!("normal item {normal:?}, 45,000-metric item {attack:?}");
    // Before the set and the count check, 45,000 returned of 200,000
    // declared cost 23 s of host time. Now most of the attack's cost is the
    // guest building 45,000 strings under its own fuel, and the host's share
    // is linear: measured 12 ms against 52 µs for a normal item (~225x) on
    // 2 cores. Bound (with room for a busy machine): 1000x a normal item,
    // and under 250 ms.
    assert!(attack < normal * 1000, "{attack:?} vs {normal:?}");
    assert!(attack < Duration::from_millis(250), "{attack:?}");
}

#[test]
fn a_plugin_declaring_200000_metrics_is_refused_at_load_in_bounded_time() {
    let rt = runtime();
    let started = Instant::now();
    let e = Scorer::load(
        &rt,
        &source("declares-too-much"),
        Policy::default(),
        Arc::new(NoJudge),
    )
    .err()
    .unwrap();
    assert!(
        e.to_string()
            .contains("declares 200000 metrics; the limit is 256"),
        "{e}"
    );
    // Compilation included; measured ~1 s on 2 cores.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn details_must_be_shallow_json_with_finite_numbers() {
    let rt = runtime();
    let s = scorer(&rt, "hostile-strings", Policy::default());
    for (id, want) in [
        ("deep-details", "deeper than 32 levels"),
        ("infinite-details", "finite numbers"),
    ] {
        let e = s.score(&item(id), "r", &[], &[]).result.unwrap_err();
        assert_eq!(e.kind, CallErrorKind::BadOutput, "{id}: {e}");
        assert!(e.message.contains(want), "{id}: {e}");
    }
}

#[test]
fn forty_huge_errors_keep_kilobytes_and_bounded_peak_memory() {
    // What a run keeps of 40 items that each return a 10 MB error: before the
    // caps, 400 MB (and a 400 MB score file). Peak RSS is process-wide, so
    // this test measures growth of the high-water mark across the 40 items;
    // other tests of this binary running at the same time can only make the
    // figure larger, never hide a leak.
    let rt = runtime();
    let s = scorer(&rt, "hostile-strings", Policy::default());
    s.score(&item("huge-error"), "r", &[], &[])
        .result
        .unwrap_err();
    let before = peak_rss_mb();
    let kept: Vec<_> = (0..40)
        .map(|_| {
            s.score(&item("huge-error"), "r", &[], &[])
                .result
                .unwrap_err()
        })
        .collect();
    let bytes: usize = kept.iter().map(|e| e.message.len()).sum();
    let grown = peak_rss_mb().saturating_sub(before);
    eprintln!("40 huge errors: {bytes} bytes kept, peak RSS grew {grown} MB (before {before} MB)");
    assert!(
        bytes < 40 * (Limits::default().max_error_bytes + 64),
        "{bytes}"
    );
    // Measured: 0 MB (it grew 378 MB while a cut error kept the plugin's
    // 10 MB buffer as its capacity).
    assert!(grown < 64, "peak RSS grew {grown} MB");
}

/// The process's peak resident set (VmHWM), in MB.
fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024
}

/// A judge that answers everything and remembers what reached it.
#[derive(Default)]
struct Recording {
    seen: Mutex<Vec<(usize, usize, u32)>>,
}

impl Judge for Recording {
    fn identity(&self) -> String {
        "recording".into()
    }
    fn complete(&self, request: &JudgeRequest) -> Result<JudgeAnswer, JudgeError> {
        let bytes = request.messages.iter().map(|m| m.content.len()).sum();
        self.seen
            .lock()
            .unwrap()
            .push((request.messages.len(), bytes, request.max_tokens));
        Ok(JudgeAnswer::text("{\"score\": 1}", request.sha256()))
    }
}

#[test]
fn judge_requests_are_bounded_clamped_and_never_made_from_describe() {
    let rt = runtime();
    let judge = Arc::new(Recording::default());
    let s = Scorer::load(
        &rt,
        &source("hostile-judge"),
        Policy::default(),
        judge.clone(),
    )
    .unwrap();
    // describe()'s judge call was refused: no call in nobody's audit trail.
    assert_eq!(s.info().name, "hostile-judge");
    assert!(judge.seen.lock().unwrap().is_empty());

    let out = s.score(&item("huge-request"), "r", &[], &[]);
    assert_eq!(out.result.unwrap_err().kind, CallErrorKind::JudgeFailed);
    assert_eq!(out.judge_calls.len(), 8);
    for call in &out.judge_calls {
        assert!(!call.forwarded);
        assert_eq!(call.request_sha256.len(), 64);
        let e = call.answer.as_ref().unwrap_err().to_string();
        assert!(e.contains("4194308 bytes refused"), "{e}");
    }
    // The same request is named by the same digest.
    assert_eq!(
        out.judge_calls[0].request_sha256,
        out.judge_calls[7].request_sha256
    );

    let out = s.score(&item("many-messages"), "r", &[], &[]);
    assert!(out.result.is_err());
    assert!(!out.judge_calls[0].forwarded);

    for (id, want) in [
        ("bad-role", "role `tool`"),
        ("nan-temperature", "temperature NaN"),
    ] {
        let out = s.score(&item(id), "r", &[], &[]);
        assert!(out.result.is_err(), "{id}");
        assert!(!out.judge_calls[0].forwarded, "{id}");
        let e = out.judge_calls[0].answer.as_ref().unwrap_err().to_string();
        assert!(e.contains(want), "{id}: {e}");
    }

    let out = s.score(&item("max-tokens"), "r", &[], &[]);
    assert_eq!(out.result.unwrap().metrics["ok"], 1.0);
    assert!(out.judge_calls[0].forwarded);

    assert_eq!(
        s.score(&item("fine"), "r", &[], &[])
            .result
            .unwrap()
            .metrics["ok"],
        1.0
    );
    let seen = judge.seen.lock().unwrap();
    // Only the clamped and the normal request reached the judge.
    assert_eq!(
        *seen,
        vec![(1, 1, Limits::default().max_judge_tokens), (1, 1, 16)]
    );
}

/// Aborts the test process if not dropped within `limit`: a test of a
/// bounded wait must fail, not hang, if the bound is lost (say, wasmtime-wasi
/// moving to a `wasi:io` version the shadowing does not name).
struct HangGuard(Arc<std::sync::atomic::AtomicBool>);

impl HangGuard {
    fn new(what: &'static str, limit: Duration) -> Self {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = done.clone();
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            if !seen.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!("{what}: still waiting after {limit:?}; the wait is unbounded");
                std::process::abort();
            }
        });
        HangGuard(done)
    }
}

impl Drop for HangGuard {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_sleep_inside_a_host_call_ends_at_the_time_limit() {
    let _guard = HangGuard::new("sleep in a host call", Duration::from_secs(120));
    let rt = runtime();
    let policy = Policy {
        limits: Limits {
            timeout_ms: 300,
            ..Limits::default()
        },
        grants: Grants {
            clocks: true,
            ..Grants::default()
        },
        sha256: None,
    };
    let s = scorer(&rt, "sleeper", policy.clone());
    let started = Instant::now();
    let e = s.score(&item("sleep"), "r", &[], &[]).result.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, CallErrorKind::Timeout, "{e}");
    assert!(e.message.contains("host call"), "{e}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(
        s.score(&item("fine"), "r", &[], &[])
            .result
            .unwrap()
            .metrics["ok"],
        1.0
    );

    // A describe() that sleeps fails the load, in bounded time.
    let started = Instant::now();
    let e = Scorer::load(
        &rt,
        &source("sleeps-in-describe"),
        policy,
        Arc::new(NoJudge),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("timeout"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn inspect_describes_with_nothing_granted_and_returns_from_a_sleeping_describe() {
    let _guard = HangGuard::new("sleeping describe()", Duration::from_secs(120));
    let rt = runtime();
    // A plugin importing clocks is described (the import is linked to the
    // frozen, deny-all clock), without any grant.
    let info = rt
        .describe_untrusted(&source("reads-clock"), World::Scorer)
        .unwrap();
    assert_eq!(info.name, "reads-clock");
    // And one whose describe() sleeps an hour returns at the default limit.
    let started = Instant::now();
    let e = rt
        .describe_untrusted(&source("sleeps-in-describe"), World::Scorer)
        .unwrap_err();
    let took = started.elapsed();
    assert!(e.to_string().contains("timeout"), "{e}");
    let limit = Duration::from_millis(Limits::default().timeout_ms);
    assert!(took < limit + Duration::from_secs(10), "{took:?}");
}

fn kernel_error(k: &Kernel, user: &str) -> lem_plugin_host::CallError {
    k.apply(&[ChatMessage::new("user", user)], &KernelConfig::default())
        .unwrap_err()
}

#[test]
fn a_kernel_is_held_to_the_message_contract_per_item() {
    let rt = runtime();
    let k = Kernel::load(
        &rt,
        &source("hostile-kernel"),
        policy(Limits {
            fuel: Some(500_000_000),
            ..Limits::default()
        }),
    )
    .unwrap();
    use CallErrorKind::*;
    for (user, kind, want) in [
        ("fuel", OutOfFuel, "fuel"),
        ("drop-user", BadOutput, "no user turn"),
        ("system-after", BadOutput, "system turn after"),
        ("empty-turns", OutputTooLarge, "250000 messages"),
        ("bad-role", BadOutput, "role `tool`"),
        ("huge", OutputTooLarge, "bytes of messages"),
    ] {
        let started = Instant::now();
        let e = kernel_error(&k, user);
        assert_eq!(e.kind, kind, "{user}: {e}");
        assert!(e.message.contains(want), "{user}: {e}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{user}: {:?}",
            started.elapsed()
        );
        // The next item is fine.
        let ok = k
            .apply(&[ChatMessage::new("user", "q")], &KernelConfig::default())
            .unwrap();
        assert_eq!(ok[0], ChatMessage::new("system", "hostile-kernel ran"));
        assert_eq!(ok[1], ChatMessage::new("user", "q"));
    }
}

#[test]
fn a_benchmark_plugin_is_held_to_the_message_contract_per_item() {
    let rt = runtime();
    let b = Benchmark::load(
        &rt,
        &source("hostile-prompt"),
        policy(Limits {
            fuel: Some(50_000_000),
            ..Limits::default()
        }),
    )
    .unwrap();
    let config = PromptConfig {
        prompt_field: "question".into(),
        ..PromptConfig::default()
    };
    use CallErrorKind::*;
    for (id, kind, want) in [
        ("empty", BadOutput, "every user turn is empty"),
        ("huge", OutputTooLarge, "bytes of messages"),
        ("loop", OutOfFuel, "fuel"),
        ("bad-role", BadOutput, "role `narrator`"),
        ("error", InvalidInput, "no prompt for this item"),
    ] {
        let e = b.prompt(&item(id), &config).unwrap_err();
        assert_eq!(e.kind, kind, "{id}: {e}");
        assert!(e.message.contains(want), "{id}: {e}");
        let ok = b.prompt(&item("fine"), &config).unwrap();
        assert_eq!(ok, vec![ChatMessage::new("user", "What is 2+2?")]);
    }
}

#[test]
fn a_wasm_file_is_checked_and_capped_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wasm");
    let file = std::fs::File::create(&big).unwrap();
    // A sparse 200 MB file: refused by its size, before a byte is read.
    file.set_len(200 << 20).unwrap();
    let e = PluginSource::from_file(&big).err().unwrap();
    assert!(matches!(e, LoadError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("209715200 bytes"), "{e}");
    let e = PluginSource::from_file_capped(&big, 1 << 40).err().unwrap();
    assert!(matches!(e, LoadError::NotWasm { .. }), "{e}");
    let elf = dir.path().join("x.cwasm");
    std::fs::write(&elf, b"\x7fELF\x02\x01\x01\0rest").unwrap();
    let e = PluginSource::from_file(&elf).err().unwrap();
    assert!(matches!(e, LoadError::Precompiled { .. }), "{e}");
}

#[test]
fn a_read_from_a_granted_socket_that_never_answers_ends_at_the_time_limit() {
    let _guard = HangGuard::new("socket read", Duration::from_secs(120));
    // A server that accepts and then says nothing, for as long as the test.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let rt = runtime();
    let policy = Policy {
        limits: Limits {
            timeout_ms: 300,
            ..Limits::default()
        },
        // Rust's socket code imports clocks (for socket timeouts) too.
        grants: Grants {
            network: true,
            clocks: true,
            ..Grants::default()
        },
        sha256: None,
    };
    let s = scorer(&rt, "waits-on-socket", policy);
    let wait = PluginItem {
        id: "wait".into(),
        benchmark: "test".into(),
        record: format!(r#"{{"port":"{port}"}}"#),
    };
    let started = Instant::now();
    let e = s.score(&wait, "r", &[], &[]).result.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, CallErrorKind::Timeout, "{e}");
    assert!(e.message.contains("host call"), "{e}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(
        s.score(&item("fine"), "r", &[], &[])
            .result
            .unwrap()
            .metrics["ok"],
        1.0
    );
    drop(held.join());
}
