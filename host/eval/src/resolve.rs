//! Finding benchmarks, plugins, kernels and models by name or path.

use crate::error::{Error, Result};
use lem_core::BenchmarkManifest;
use lem_plugin_host::PluginSource;
use std::path::{Path, PathBuf};

/// A benchmark by shipped name (`gsm8k`) or manifest path.
pub fn benchmark(reference: &str) -> Result<BenchmarkManifest> {
    let path = Path::new(reference);
    if path.is_file() {
        return Ok(BenchmarkManifest::load(path)?);
    }
    if let Some(text) = lem_bundled::manifest(reference) {
        let origin = PathBuf::from(format!("bundled:benchmarks/{reference}.toml"));
        return Ok(BenchmarkManifest::parse(
            text,
            &origin,
            Path::new(lem_bundled::BENCHMARKS_DIR),
        )?);
    }
    let known: Vec<_> = lem_bundled::manifest_names().collect();
    Err(Error::Unknown {
        kind: "benchmark",
        name: reference.to_string(),
        hint: format!(
            "not a manifest file, nor one of the shipped benchmarks ({})",
            known.join(", ")
        ),
    })
}

/// A plugin by shipped name (`gsm8k`) or path to a `.wasm` (relative paths
/// are tried against `base_dir`, then the current directory).
pub fn plugin(reference: &str, base_dir: &Path) -> Result<PluginSource> {
    plugin_capped(
        reference,
        base_dir,
        lem_core::Limits::default().max_wasm_bytes,
    )
}

/// [`plugin`], refusing a file larger than `max_bytes` before reading it.
pub fn plugin_capped(reference: &str, base_dir: &Path, max_bytes: u64) -> Result<PluginSource> {
    if let Some(bytes) = lem_bundled::plugin(reference) {
        return Ok(PluginSource::from_bytes(
            format!("bundled:{reference}"),
            bytes,
        ));
    }
    let candidates = [base_dir.join(reference), PathBuf::from(reference)];
    if let Some(path) = candidates.iter().find(|p| p.is_file()) {
        return PluginSource::from_file_capped(path, max_bytes).map_err(|cause| Error::Plugin {
            context: format!("loading plugin `{reference}`"),
            cause,
        });
    }
    let known: Vec<_> = lem_bundled::plugin_names().collect();
    Err(Error::Unknown {
        kind: "plugin",
        name: reference.to_string(),
        hint: format!(
            "not a shipped plugin ({}) and no such file",
            known.join(", ")
        ),
    })
}

/// The default model's name, as `scripts/setup` installs it.
pub const DEFAULT_MODEL: &str = "gemma-3-270m";

/// The models `scripts/setup` installs: name, and file under
/// `$LEM_HOME/models/NAME/`.
pub const INSTALLED_MODELS: &[(&str, &str)] = &[
    (DEFAULT_MODEL, "gemma-3-270m-q4_k_m.gguf"),
    (
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    ),
    (
        "qwen2.5-coder-1.5b-instruct",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    ),
    ("smollm2-135m-instruct", "smollm2-135m-instruct-q4_1.gguf"),
];

/// A model by path (`.gguf` file or safetensors directory, optionally
/// prefixed `local:`) or by the name of a model `scripts/setup` installed.
pub fn model(spec: &str) -> Result<PathBuf> {
    let spec = spec.strip_prefix("local:").unwrap_or(spec);
    let path = Path::new(spec);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    if let Some((name, file)) = INSTALLED_MODELS.iter().find(|(name, _)| *name == spec) {
        let installed = lem_core::lem_home().join("models").join(name).join(file);
        if installed.is_file() {
            return Ok(installed);
        }
        return Err(Error::NotInstalled {
            name: name.to_string(),
            path: installed,
        });
    }
    let names: Vec<&str> = INSTALLED_MODELS.iter().map(|(name, _)| *name).collect();
    Err(Error::NoModel {
        spec: spec.to_string(),
        installed: names.join(", "),
    })
}

/// [`model`], trying `reference` relative to `base_dir` (a config's
/// directory) first.
pub fn model_near(reference: &str, base_dir: &Path) -> Result<PathBuf> {
    let relative = base_dir.join(reference.strip_prefix("local:").unwrap_or(reference));
    if relative.exists() {
        return Ok(relative);
    }
    model(reference)
}

/// The shipped kernel `kernel-NAME`, or a kernel `.wasm` file.
pub fn kernel(name: &str, base_dir: &Path) -> Result<PluginSource> {
    kernel_capped(name, base_dir, lem_core::Limits::default().max_wasm_bytes)
}

/// [`kernel`], refusing a file larger than `max_bytes` before reading it.
pub fn kernel_capped(name: &str, base_dir: &Path, max_bytes: u64) -> Result<PluginSource> {
    if let Some(bytes) = lem_bundled::plugin(&format!("kernel-{name}")) {
        return Ok(PluginSource::from_bytes(
            format!("bundled:kernel-{name}"),
            bytes,
        ));
    }
    let path = base_dir.join(name);
    if path.is_file() {
        return PluginSource::from_file_capped(&path, max_bytes).map_err(|cause| Error::Plugin {
            context: format!("loading kernel `{name}`"),
            cause,
        });
    }
    let shipped: Vec<_> = lem_bundled::plugin_names()
        .filter_map(|n| n.strip_prefix("kernel-"))
        .collect();
    Err(Error::Unknown {
        kind: "kernel",
        name: name.to_string(),
        hint: format!(
            "not a shipped kernel ({}) nor a .wasm file",
            shipped.join(", ")
        ),
    })
}

/// A kernel's name in records: the shipped name, or the file's stem.
pub fn kernel_name(reference: &str) -> String {
    Path::new(reference).file_stem().map_or_else(
        || reference.to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}
