//! Hostile plugins are contained: each attack becomes a clear load-time or
//! per-item error, the host survives, and the other items are still scored.

use lem_plugin_host::scorer::PluginItem;
use lem_plugin_host::{
    CallErrorKind, LoadError, NoJudge, PluginSource, Runtime, RuntimeConfig, Scorer,
};
use lem_plugin_host::{DirGrant, Grants, Limits, Policy};
use std::sync::Arc;

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
        record: "{}".into(),
    }
}

fn quick_limits() -> Limits {
    Limits {
        fuel: Some(500_000_000),
        ..Limits::default()
    }
}

fn hostile(limits: Limits) -> (Runtime, Scorer) {
    let rt = runtime();
    let policy = Policy {
        limits,
        ..Policy::default()
    };
    let scorer = Scorer::load(&rt, &source("hostile"), policy, Arc::new(NoJudge)).unwrap();
    (rt, scorer)
}

fn error_of(scorer: &Scorer, id: &str) -> lem_plugin_host::CallError {
    match scorer.score(&item(id), "response", &[], &[]).result {
        Ok(s) => panic!("{id}: expected an error, got {s:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_attack_is_an_item_error_and_the_run_goes_on() {
    let (_rt, scorer) = hostile(quick_limits());
    use CallErrorKind::*;
    let expected: [(&str, &[CallErrorKind]); 7] = [
        ("loop", &[OutOfFuel]),
        ("memory-bomb", &[MemoryLimit]),
        // Rust guests keep locals on a shadow stack in linear memory: deep
        // recursion overflows that (a memory trap) or the wasm stack.
        ("recursion", &[StackOverflow, Trap]),
        ("panic", &[Trap]),
        ("slow", &[OutOfFuel]),
        ("huge-return", &[MemoryLimit]),
        ("nan", &[BadOutput]),
    ];
    for (attack, kinds) in expected {
        let e = error_of(&scorer, attack);
        assert!(kinds.contains(&e.kind), "{attack}: {e}");
        // The next item, on the same plugin, is scored normally.
        let ok = scorer
            .score(&item("fine"), "response", &[], &[])
            .result
            .unwrap();
        assert_eq!(ok.metrics["ok"], 1.0, "after {attack}");
    }
}

#[test]
fn a_panic_message_reaches_the_error() {
    let (_rt, scorer) = hostile(quick_limits());
    let e = error_of(&scorer, "panic");
    assert!(
        e.message.contains("hostile plugin panicked on purpose"),
        "{e}"
    );
}

#[test]
fn guest_time_is_bounded_when_fuel_is_unlimited() {
    let (_rt, scorer) = hostile(Limits {
        fuel: None,
        timeout_ms: 200,
        ..Limits::default()
    });
    for attack in ["loop", "slow"] {
        let started = std::time::Instant::now();
        let e = error_of(&scorer, attack);
        assert_eq!(e.kind, CallErrorKind::Timeout, "{attack}: {e}");
        assert!(
            started.elapsed().as_secs_f64() < 5.0,
            "{attack} ran {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn return_size_is_capped_even_when_memory_allows_it() {
    let (_rt, scorer) = hostile(Limits {
        memory_bytes: 512 << 20,
        fuel: Some(5_000_000_000),
        ..Limits::default()
    });
    let e = error_of(&scorer, "huge-return");
    assert_eq!(e.kind, CallErrorKind::OutputTooLarge, "{e}");
    let e = error_of(&scorer, "huge-metric-list");
    assert!(
        matches!(
            e.kind,
            CallErrorKind::OutputTooLarge | CallErrorKind::BadOutput
        ),
        "{e}"
    );
}

#[test]
fn no_environment_args_or_stdout_leak_in() {
    // SAFETY: set before any other thread of this test reads the environment.
    unsafe { std::env::set_var("LEM_TEST_SECRET", "hunter2") };
    let (_rt, scorer) = hostile(quick_limits());
    let scored = scorer
        .score(&item("env"), "response", &[], &[])
        .result
        .unwrap();
    let details: serde_json::Value = serde_json::from_str(scored.details.unwrap().get()).unwrap();
    assert_eq!(details["vars"], serde_json::json!([]), "{details}");
    assert_eq!(details["args"], serde_json::json!([]), "{details}");
    assert!(details["home"].is_null());
}

#[test]
fn floods_of_stderr_and_logs_are_bounded() {
    let (_rt, scorer) = hostile(Limits {
        fuel: Some(5_000_000_000),
        ..Limits::default()
    });
    // Either it finishes (writes beyond the bound fail) or it traps; the host
    // keeps at most the bound.
    if let Err(e) = scorer.score(&item("stderr-flood"), "r", &[], &[]).result {
        assert!(
            e.message.len() < Limits::default().max_stderr_bytes + 1024,
            "{} bytes",
            e.message.len()
        );
    }
    let ok = scorer
        .score(&item("log-flood"), "r", &[], &[])
        .result
        .unwrap();
    assert_eq!(ok.metrics["ok"], 1.0);
}

fn load_error(name: &str, grants: Grants) -> LoadError {
    let policy = Policy {
        grants,
        ..Policy::default()
    };
    match Scorer::load(&runtime(), &source(name), policy, Arc::new(NoJudge)) {
        Ok(_) => panic!("{name} loaded"),
        Err(e) => e,
    }
}

#[test]
fn ambient_imports_are_refused_at_load_naming_the_import() {
    for (name, interface) in [
        ("reads-file", "wasi:filesystem/"),
        ("reads-clock", "wasi:clocks/"),
        ("opens-socket", "wasi:sockets/"),
        ("reads-random", "wasi:random/"),
    ] {
        let e = load_error(name, Grants::default());
        match &e {
            LoadError::ForbiddenImport { denied, .. } => {
                assert!(
                    denied
                        .iter()
                        .any(|(import, _)| import.starts_with(interface)),
                    "{name}: {e}"
                )
            }
            other => panic!("{name}: {other}"),
        }
        assert!(e.to_string().contains(interface), "{e}");
    }
}

#[test]
fn granted_capabilities_are_exactly_what_was_granted() {
    let rt = runtime();
    // A granted clock is the real one.
    let policy = Policy {
        grants: Grants {
            clocks: true,
            ..Grants::default()
        },
        ..Policy::default()
    };
    let clock = Scorer::load(&rt, &source("reads-clock"), policy, Arc::new(NoJudge)).unwrap();
    let now = clock
        .score(&item("x"), "r", &[], &[])
        .result
        .unwrap()
        .metrics["ok"];
    assert!(now > 1.7e9, "clock reads {now}");

    // A granted directory does not open the rest of the filesystem.
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        grants: Grants {
            clocks: true,
            dirs: vec![DirGrant {
                host: dir.path().to_owned(),
                guest: "/data".into(),
                writable: false,
            }],
            ..Grants::default()
        },
        ..Policy::default()
    };
    let files = Scorer::load(&rt, &source("reads-file"), policy, Arc::new(NoJudge)).unwrap();
    let e = files.score(&item("x"), "r", &[], &[]).result.unwrap_err();
    assert_eq!(e.kind, CallErrorKind::Internal, "{e}");
}

#[test]
fn wrong_world_and_non_components_are_refused() {
    let rt = runtime();
    let template = PluginSource::from_file(&lem_bundled::built_plugin("template")).unwrap();
    let e = Scorer::load(&rt, &template, Policy::default(), Arc::new(NoJudge))
        .err()
        .unwrap();
    assert!(matches!(e, LoadError::WrongWorld { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("is a `benchmark` plugin, but a `scorer` plugin is needed"),
        "{e}"
    );

    let gsm8k = PluginSource::from_file(&lem_bundled::built_plugin("gsm8k")).unwrap();
    let e = lem_plugin_host::kernel::Kernel::load(&rt, &gsm8k, Policy::default())
        .err()
        .unwrap();
    assert!(matches!(e, LoadError::WrongWorld { .. }), "{e}");

    for (bytes, want) in [
        (&b"plain text, not wasm"[..], "not a WebAssembly file"),
        (&b"\0asm\x01\0\0\0"[..], "core WebAssembly module"),
        (&b"\x7fELF\x02\x01\x01"[..], "precompiled"),
    ] {
        let src = PluginSource::from_bytes("bad.wasm", bytes.to_vec());
        let e = Scorer::load(&rt, &src, Policy::default(), Arc::new(NoJudge))
            .err()
            .unwrap();
        assert!(e.to_string().contains(want), "{e}");
    }
}

#[test]
fn an_unsupported_contract_version_is_refused() {
    let bytes = std::fs::read(lem_bundled::built_plugin("gsm8k")).unwrap();
    let from = b"lem:plugin/scorer-api@0.1.0";
    let to = b"lem:plugin/scorer-api@0.9.0";
    let mut patched = bytes.clone();
    let mut replaced = 0;
    let mut i = 0;
    while i + from.len() <= patched.len() {
        if &patched[i..i + from.len()] == from {
            patched[i..i + from.len()].copy_from_slice(to);
            replaced += 1;
        }
        i += 1;
    }
    assert!(replaced > 0);
    let src = PluginSource::from_bytes("future.wasm", patched);
    let e = Scorer::load(&runtime(), &src, Policy::default(), Arc::new(NoJudge))
        .err()
        .unwrap();
    assert!(matches!(e, LoadError::UnsupportedVersion { .. }), "{e}");
    assert!(e.to_string().contains("0.9.0"), "{e}");
}

#[test]
fn a_pinned_hash_is_enforced_before_anything_runs() {
    let rt = runtime();
    let src = source("hostile");
    let right = lem_core::hash::sha256_hex(&src.bytes);
    let pinned = |sha256: &str| Policy {
        sha256: Some(sha256.into()),
        ..Policy::default()
    };
    assert!(Scorer::load(&rt, &src, pinned(&right), Arc::new(NoJudge)).is_ok());
    let e = Scorer::load(&rt, &src, pinned(&"0".repeat(64)), Arc::new(NoJudge))
        .err()
        .unwrap();
    assert!(matches!(e, LoadError::HashMismatch { .. }), "{e}");
}

#[test]
fn the_compiled_cache_is_used_and_a_damaged_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
    };
    let rt = Runtime::new(config.clone()).unwrap();
    let src = source("hostile");
    Scorer::load(&rt, &src, Policy::default(), Arc::new(NoJudge)).unwrap();
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let cwasm = entries
        .iter()
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .expect("cache entry written");
    // Damage the entry: the host must not load it, and must still work.
    let mut bytes = std::fs::read(cwasm).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(cwasm, bytes).unwrap();
    let rt = Runtime::new(config).unwrap();
    let scorer = Scorer::load(&rt, &src, Policy::default(), Arc::new(NoJudge)).unwrap();
    assert_eq!(
        scorer
            .score(&item("fine"), "r", &[], &[])
            .result
            .unwrap()
            .metrics["ok"],
        1.0
    );
}
