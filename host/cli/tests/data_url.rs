//! A manifest whose data comes from a URL: downloaded once, used only when
//! its sha256 matches the pin; a URL without a pin is refused.

use axum::Router;
use axum::routing::get;
use std::path::Path;
use std::process::{Command, Output};

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn score(dir: &Path, manifest: &str) -> Output {
    std::fs::write(dir.join("m.toml"), manifest).unwrap();
    Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["score", "--json", "--benchmark"])
        .arg(dir.join("m.toml"))
        .arg("--responses")
        .arg(root().join("benchmarks/samples/gsm8k-responses.jsonl"))
        .env("LEM_HOME", dir.join("home"))
        .output()
        .unwrap()
}

#[test]
fn data_from_a_url_is_verified_against_its_pin() {
    let data = std::fs::read_to_string(root().join("benchmarks/samples/gsm8k.jsonl")).unwrap();
    let sha = lem_core::hash::sha256_hex(data.as_bytes());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/gsm8k.jsonl", listener.local_addr().unwrap());
    let served = data.clone();
    rt.spawn(async move {
        let app = Router::new().route("/gsm8k.jsonl", get(move || async move { served }));
        axum::serve(listener, app).await
    });
    let manifest = |pin: &str| {
        format!(
            "name = \"gsm8k\"\n[data]\nurl = \"{url}\"\n{pin}\n[prompt]\nplugin = \"template\"\nfield = \"question\"\n[[scorers]]\nplugin = \"gsm8k\"\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();

    let ok = score(dir.path(), &manifest(&format!("sha256 = \"{sha}\"")));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("\"n\":5"));
    assert!(dir.path().join(format!("home/data/{sha}.jsonl")).is_file());

    let wrong = score(
        dir.path(),
        &manifest(&format!("sha256 = \"{}\"", "1".repeat(64))),
    );
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && err.contains("does not match the manifest's pinned"),
        "{err}"
    );

    let unpinned = score(dir.path(), &manifest(""));
    let err = String::from_utf8_lossy(&unpinned.stderr);
    assert!(
        err.contains("m.toml:3:") && err.contains("needs a pinned `sha256`"),
        "{err}"
    );
}
