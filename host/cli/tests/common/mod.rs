//! What the integration tests share.

use std::path::PathBuf;

/// The default model as `scripts/setup` installs it. Tests that need it are
/// `#[ignore = "needs scripts/setup"]`; `scripts/test` runs them.
pub fn default_model() -> PathBuf {
    lem_engine::testing::installed("models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf")
}
