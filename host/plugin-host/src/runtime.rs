//! The engine, the cache and the epoch ticker; loading and verifying plugins.

use crate::cache::ComponentCache;
use crate::error::LoadError;
use crate::inspect::{ComponentInfo, World, inspect};
use crate::policy::Policy;
use crate::sandbox::{EPOCH_TICK, HostState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine};

/// How the runtime is set up.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

impl RuntimeConfig {
    /// The default: cache under `$LEM_HOME/cache/components`.
    pub fn with_default_cache() -> Self {
        RuntimeConfig {
            cache_dir: Some(lem_core::lem_home().join("cache").join("components")),
        }
    }
}

/// What a plugin says about itself (`describe`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PluginInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line for people.
    pub description: String,
    /// The metrics it produces (scorers), in its order. A 0.1.0 plugin
    /// names its metrics only: see [`MetricDescriptor::named`].
    pub metrics: Vec<MetricDescriptor>,
    /// Whether it calls the judge.
    pub needs_judge: bool,
}

impl PluginInfo {
    /// The metrics' names, in the plugin's order.
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        self.metrics.iter().map(|m| m.name.as_str())
    }
}

/// How a scorer describes one metric it returns.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricDescriptor {
    /// The metric's name.
    pub name: String,
    /// Its lowest and highest values, when the plugin says (`lo < hi`, both
    /// finite).
    pub range: Option<[f64; 2]>,
    /// Whether a higher value is better.
    pub higher_is_better: bool,
    /// How its values are written.
    pub unit: lem_core::MetricUnit,
    /// Whether the plugin described it (contract 0.2.0 and later) or only
    /// named it (0.1.0): then the range is unknown and `higher_is_better`
    /// and `unit` are defaults, not the plugin's word.
    pub described: bool,
}

impl MetricDescriptor {
    /// A metric known by name only (a 0.1.0 plugin's): unknown range,
    /// higher is better, a plain number, not described.
    pub fn named(name: impl Into<String>) -> Self {
        MetricDescriptor {
            name: name.into(),
            range: None,
            higher_is_better: true,
            unit: lem_core::MetricUnit::Number,
            described: false,
        }
    }
}

/// A plugin's bytes and a label for messages (its path, or `bundled:NAME`).
#[derive(Debug, Clone)]
pub struct PluginSource {
    /// Names the plugin in messages and records.
    pub label: String,
    /// The `.wasm` component.
    pub bytes: Arc<[u8]>,
}

impl PluginSource {
    /// Reads a `.wasm` file of at most the default `max_wasm_bytes`.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        Self::from_file_capped(path, lem_core::Limits::default().max_wasm_bytes)
    }

    /// Reads a `.wasm` file: its size and first bytes are checked before the
    /// rest is read, so a huge or foreign file costs nothing to refuse.
    pub fn from_file_capped(path: &Path, max_bytes: u64) -> Result<Self, LoadError> {
        use std::io::Read;
        let label = path.display().to_string();
        let io = |source| LoadError::Io {
            label: label.clone(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size > max_bytes {
            return Err(LoadError::TooLarge {
                label,
                size,
                limit: max_bytes,
            });
        }
        let mut head = [0u8; 8];
        let got = file.read(&mut head).map_err(io)?;
        crate::inspect::check_header(&label, &head[..got])?;
        let mut bytes = Vec::with_capacity(size as usize);
        bytes.extend_from_slice(&head[..got]);
        // `take` holds the cap even if the file grows while it is read.
        (&mut file)
            .take(max_bytes - got as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > max_bytes {
            return Err(LoadError::TooLarge {
                label,
                size: bytes.len() as u64,
                limit: max_bytes,
            });
        }
        Ok(PluginSource {
            label,
            bytes: bytes.into(),
        })
    }

    /// Wraps bytes already in memory.
    pub fn from_bytes(label: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Self {
        PluginSource {
            label: label.into(),
            bytes: bytes.into(),
        }
    }
}

/// The plugin runtime: one per process is plenty.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ComponentCache>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// How a load treats the component's imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Imports {
    /// Refuse what the policy does not grant (every load for a run).
    Check,
    /// Link every WASI import to its deny-all implementation (frozen clocks,
    /// fixed random, no sockets, no directories): `inspect` describes a
    /// plugin this way, granting nothing whatever it imports.
    DenyAll,
}

/// A component that passed every load-time check, linked and ready to instantiate.
pub(crate) struct Verified {
    pub(crate) label: String,
    pub(crate) sha256: String,
    pub(crate) info: ComponentInfo,
    pub(crate) pre: InstancePre<HostState>,
}

impl Runtime {
    /// Builds the engine (fuel and epoch interruption on) and the linker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let setup = |e: wasmtime::Error| LoadError::Instantiate {
            label: "plugin runtime".into(),
            reason: format!("{e:#}"),
        };
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true);
        let engine = Engine::new(&wasm).map_err(setup)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(setup)?;
        crate::watchdog::bound_waits(&mut linker).map_err(setup)?;
        crate::v0_1_0::add_to_linker(&mut linker).map_err(setup)?;
        crate::v0_2_0::add_to_linker(&mut linker).map_err(setup)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let (engine, stop) = (engine.clone(), ticker_stop.clone());
            std::thread::Builder::new()
                .name("lem-plugin-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| setup(e.into()))?;
        }
        let cache = config
            .cache_dir
            .map(|dir| ComponentCache::new(dir, &engine));
        Ok(Runtime {
            engine,
            linker,
            cache,
            ticker_stop,
        })
    }

    /// What a plugin of any world says about itself, for people vetting it
    /// (`lem plugin inspect`): `describe()` runs under the default limits
    /// with nothing granted, whatever the plugin imports (every WASI import
    /// is linked to its deny-all implementation), and cannot reach a judge.
    pub fn describe_untrusted(
        &self,
        source: &PluginSource,
        world: World,
    ) -> Result<PluginInfo, LoadError> {
        let policy = Policy::default();
        let deny = Imports::DenyAll;
        Ok(match world {
            World::Scorer => {
                let judge = Arc::new(crate::NoJudge);
                crate::Scorer::load_with(self, source, policy, judge, deny)?
                    .info()
                    .clone()
            }
            World::Kernel => crate::kernel::Kernel::load_with(self, source, policy, deny)?
                .info()
                .clone(),
            World::Benchmark => crate::benchmark::Benchmark::load_with(self, source, policy, deny)?
                .info()
                .clone(),
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Checks pin, world, version and imports, then compiles (or loads from
    /// the cache) and links the component. Nothing of the plugin runs here.
    pub(crate) fn verify(
        &self,
        source: &PluginSource,
        world: World,
        policy: &Policy,
        imports: Imports,
    ) -> Result<Verified, LoadError> {
        let label = source.label.clone();
        let sha256 = lem_core::hash::sha256_hex(&source.bytes);
        if let Some(pin) = &policy.sha256
            && !pin.eq_ignore_ascii_case(&sha256)
        {
            return Err(LoadError::HashMismatch {
                label,
                expected: pin.clone(),
                actual: sha256,
            });
        }
        let info = inspect(&label, &source.bytes)?;
        match imports {
            Imports::Check => info.check(&label, world, &policy.grants)?,
            Imports::DenyAll => info.check_world(&label, world)?,
        }
        let component = match &self.cache {
            Some(cache) => cache.load(&self.engine, &sha256, &source.bytes),
            None => Component::new(&self.engine, &source.bytes[..]),
        }
        .map_err(|e| LoadError::Invalid {
            label: label.clone(),
            reason: format!("{e:#}"),
        })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Instantiate {
                label: label.clone(),
                reason: format!("{e:#}"),
            })?;
        Ok(Verified {
            label,
            sha256,
            info,
            pre,
        })
    }
}
