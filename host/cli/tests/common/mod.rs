//! What the integration tests share.

use std::path::PathBuf;

/// The default model as `scripts/setup` installs it; `None` (the test
/// skips, saying so) when it is missing outside CI, a failure in CI.
pub fn default_model() -> Option<PathBuf> {
    let path = lem_core::lem_home().join("models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf");
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "the default model is not installed at {}; .ci/run must run scripts/setup",
            path.display()
        );
    }
    eprintln!(
        "SKIPPED: Gemma 3 270M is not installed at {}; run scripts/setup",
        path.display()
    );
    None
}
