//! The compiled-component cache.
//!
//! Compiling a component takes far longer than running it, so compiled code
//! is kept on disk, keyed by the component's SHA-256 and the engine's
//! compatibility hash (wasmtime version, target, compiler settings). Only this
//! host writes the cache; a file is used only if its sidecar digest matches,
//! so a torn or altered file is recompiled rather than loaded. lem never
//! deserializes a precompiled file that came from anywhere else.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

impl ComponentCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// Loads the compiled component for `sha256`, compiling and storing it on a miss.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        sha256: &str,
        wasm: &[u8],
    ) -> wasmtime::Result<Component> {
        let path = self.path(sha256);
        if let Some(component) = self.read(engine, &path) {
            return Ok(component);
        }
        let compiled = engine.precompile_component(wasm)?;
        if let Err(e) = write_atomic(&path, &compiled) {
            tracing::warn!("cannot write component cache {}: {e}", path.display());
        }
        // SAFETY: `compiled` was produced just now by this engine.
        unsafe { Component::deserialize(engine, &compiled) }
    }

    fn read(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let bytes = std::fs::read(path).ok()?;
        let digest = std::fs::read_to_string(digest_path(path)).ok()?;
        if lem_core::hash::sha256_hex(&bytes) != digest.trim() {
            tracing::warn!(
                "component cache entry {} is damaged; recompiling",
                path.display()
            );
            return None;
        }
        // SAFETY: the bytes are a file this host wrote with `precompile_component`
        // for an engine of the same compatibility hash, and their digest matches
        // the one written beside them.
        unsafe { Component::deserialize(engine, &bytes) }.ok()
    }
}

fn digest_path(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let write = |dest: &Path, data: &[u8]| -> std::io::Result<()> {
        let mut temp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut temp, data)?;
        temp.as_file().sync_all()?;
        temp.persist(dest).map_err(|e| e.error)?;
        Ok(())
    };
    write(path, bytes)?;
    write(
        &digest_path(path),
        lem_core::hash::sha256_hex(bytes).as_bytes(),
    )
}
