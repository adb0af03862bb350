//! `lem bench kernels`: the prefetch distance measured on this CPU, kept
//! under `LEM_HOME` and then used by every run (about two seconds).

use std::process::Command;

#[test]
fn measures_keeps_and_is_then_used() {
    assert!(
        std::env::var_os("LEM_PREFETCH_BYTES").is_none(),
        "LEM_PREFETCH_BYTES is set: this test checks the measurement, unset it"
    );
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["bench", "kernels", "--threads", "1", "--json"])
        .env("LEM_HOME", home.path())
        .env_remove("LEM_PREFETCH_BYTES")
        .env_remove("LEM_KERNEL")
        .output()
        .expect("run lem");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let measured = v["measured"].as_array().expect("measured");
    let distances: Vec<_> = measured
        .iter()
        .map(|m| m["prefetch_bytes"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(distances, lem_kernels::tune::CANDIDATES);
    assert!(
        measured.iter().all(|m| m["gb_s"].as_f64().unwrap() > 0.0),
        "{v}"
    );
    let chosen = v["prefetch_bytes"].as_u64().unwrap() as usize;
    assert!(lem_kernels::tune::CANDIDATES.contains(&chosen), "{v}");
    assert_eq!(v["threads"], 1);
    assert_eq!(v["kernel"], lem_kernels::q8_0::Kernel::best().name());

    // Kept where the engine looks, and read from there: the same choice.
    let path = std::path::PathBuf::from(v["path"].as_str().unwrap());
    assert!(
        path.starts_with(home.path().join("tuning")),
        "{}",
        path.display()
    );
    let kept = lem_engine::tuning::read(&path).unwrap().expect("kept");
    assert_eq!(kept.prefetch_bytes, chosen);
    let choice = lem_engine::tuning::prefetch(lem_kernels::q8_0::Kernel::best(), 1, home.path());
    if lem_kernels::q8_0::Kernel::best() != lem_kernels::q8_0::Kernel::scalar() {
        assert_eq!(choice.prefetch_bytes, chosen);
        assert_eq!(choice.source, lem_engine::tuning::Source::Cached(path));
    }
}
