//! The plugins that ship inside `lem`.
//!
//! Why it is its own crate: the build script compiles every guest under
//! `plugins/` to a wasm32-wasip2 component (a nested cargo with its own target
//! directory) and embeds the shipped ones here, so `lem` is one file with its
//! default scorers, and host crates rebuild without recompiling guests.
#![deny(missing_docs)]

use std::path::PathBuf;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

pub use generated::BENCHMARKS_DIR;

/// The bytes of a shipped plugin (`gsm8k`, `template`, ...).
pub fn plugin(name: &str) -> Option<&'static [u8]> {
    generated::PLUGINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of the shipped plugins.
pub fn plugin_names() -> impl Iterator<Item = &'static str> {
    generated::PLUGINS.iter().map(|(n, _)| *n)
}

/// The text of a shipped benchmark manifest (`benchmarks/NAME.toml`).
pub fn manifest(name: &str) -> Option<&'static str> {
    generated::MANIFESTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// Names of the shipped benchmarks.
pub fn manifest_names() -> impl Iterator<Item = &'static str> {
    generated::MANIFESTS.iter().map(|(n, _)| *n)
}

/// Path of a built guest `.wasm` by package name (`lem-gsm8k`,
/// `word-count-scorer`), for tests and benchmarks that need a file.
#[doc(hidden)]
pub fn guest_path(package: &str) -> PathBuf {
    PathBuf::from(generated::TEST_PLUGIN_DIR).join(format!("{}.wasm", package.replace('-', "_")))
}

/// Path of a test guest (`plugins/tests/NAME`).
#[doc(hidden)]
pub fn test_plugin(name: &str) -> PathBuf {
    guest_path(&format!("lem-test-{name}"))
}

/// Path of a shipped plugin's `.wasm` as built (`plugins/NAME`).
#[doc(hidden)]
pub fn built_plugin(name: &str) -> PathBuf {
    guest_path(&format!("lem-{name}"))
}
