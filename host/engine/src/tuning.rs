//! How far ahead this machine's quantized products prefetch the weight:
//! measured once per CPU model, kernel and thread count
//! ([`lem_kernels::tune`], about a second) and kept in
//! `$LEM_HOME/tuning/`, so the same binary streams weights as fast as this
//! CPU allows instead of at a distance chosen on another vendor's machine.
//!
//! The first quantized product of a process asks [`prefetch`]: the
//! `LEM_PREFETCH_BYTES` environment variable if set, else the cached
//! measurement, else a new one (then cached). `lem bench kernels` measures
//! again and replaces the cached one.

use lem_kernels::q8_0::Kernel;
use lem_kernels::tune::{self, Plan};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The environment variable that sets the distance, in bytes, without
/// measuring (0: no prefetching).
pub const ENV: &str = "LEM_PREFETCH_BYTES";

/// One calibration, as cached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The CPU's model name (`cpu_model`), or `unknown CPU`.
    pub cpu: String,
    /// The Q8_0 kernel measured (`avx512-vnni`, `neon-sdot`, ...).
    pub kernel: String,
    /// Threads sharing the weight, as decoding shares them.
    pub threads: usize,
    /// The distance chosen ([`tune::choose`]).
    pub prefetch_bytes: usize,
    /// Bytes of the synthetic weight each round streamed.
    pub weight_bytes: usize,
    /// Rounds; each distance's rate is its rounds' median (0 in a file
    /// kept before this was).
    #[serde(default)]
    pub rounds: usize,
    /// Every distance's rate.
    pub measured: Vec<Measured>,
}

/// One distance's rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Bytes ahead; 0: none.
    pub prefetch_bytes: usize,
    /// Weight bytes streamed per second through the decode product.
    pub gb_s: f64,
}

/// Where a process's distance came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// [`ENV`].
    Environment,
    /// A calibration cached at this path.
    Cached(PathBuf),
    /// Measured by this process (and cached at this path, unless it could not be written).
    Measured(PathBuf),
    /// The kernel has no prefetching to tune (the scalar kernel), or
    /// measuring was not possible; the default distance.
    Default,
}

/// A process's distance and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// Bytes ahead; 0: none.
    pub prefetch_bytes: usize,
    /// Where it came from.
    pub source: Source,
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match &self.source {
            Source::Environment => format!("from {ENV}"),
            Source::Cached(_) => "calibrated".to_string(),
            Source::Measured(_) => "calibrated now".to_string(),
            Source::Default => "default".to_string(),
        };
        match self.prefetch_bytes {
            0 => write!(f, "no prefetch ({how})"),
            b => write!(f, "prefetch {b} B ({how})"),
        }
    }
}

/// The distance for `kernel` on `threads` threads, from [`ENV`], the cache
/// under `home`, or a new calibration (cached there).
pub fn prefetch(kernel: Kernel, threads: usize, home: &Path) -> Choice {
    if let Some(bytes) = from_env() {
        return Choice {
            prefetch_bytes: bytes,
            source: Source::Environment,
        };
    }
    if kernel == Kernel::scalar() {
        return Choice {
            prefetch_bytes: kernel.prefetch(),
            source: Source::Default,
        };
    }
    let path = cache_path(home, kernel, threads);
    match read(&path) {
        Ok(Some(c)) if c.kernel == kernel.name() && c.threads == threads => {
            return Choice {
                prefetch_bytes: c.prefetch_bytes,
                source: Source::Cached(path),
            };
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("{e}; measuring again"),
    }
    let calibration = calibrate(kernel, threads);
    if let Err(e) = write(&path, &calibration) {
        tracing::warn!("cannot keep the kernel calibration: {e}");
    }
    Choice {
        prefetch_bytes: calibration.prefetch_bytes,
        source: Source::Measured(path),
    }
}

/// Measures every candidate distance for `kernel` on `threads` threads.
pub fn calibrate(kernel: Kernel, threads: usize) -> Calibration {
    let plan = Plan::for_this_machine(threads);
    tracing::info!(
        "measuring how far ahead the {} kernel should prefetch on {threads} thread(s) \
         ({} MB, once per CPU)",
        kernel.name(),
        plan.weight_bytes >> 20
    );
    let rates = tune::calibrate(kernel, &plan);
    Calibration {
        cpu: cpu_name(),
        kernel: kernel.name().to_string(),
        threads: plan.threads,
        prefetch_bytes: tune::choose(&rates),
        weight_bytes: plan.weight_bytes,
        rounds: plan.rounds,
        measured: rates
            .iter()
            .map(|r| Measured {
                prefetch_bytes: r.prefetch_bytes,
                gb_s: r.gb_s,
            })
            .collect(),
    }
}

/// Where the calibration of `kernel` on `threads` threads on this CPU is
/// kept: `tuning/<cpu>-<kernel>-t<threads>.json` under `home`.
pub fn cache_path(home: &Path, kernel: Kernel, threads: usize) -> PathBuf {
    let cpu: String = cpu_name()
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let cpu = cpu
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    home.join("tuning")
        .join(format!("{cpu}-{}-t{threads}.json", kernel.name()))
}

/// Writes `calibration` to `path` whole or not at all (a temporary file
/// renamed into place), so a reader never sees half a file.
pub fn write(path: &Path, calibration: &Calibration) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_string_pretty(calibration).map_err(std::io::Error::other)?;
    let mut file = lem_core::jsonl::AtomicFile::create(path)?;
    file.write_all(json.as_bytes())?;
    file.write_all(b"\n")?;
    file.commit()
}

/// The calibration kept at `path`: `None` if there is none, an error saying
/// what is wrong if the file is unreadable or not a calibration.
pub fn read(path: &Path) -> Result<Option<Calibration>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}: not a kernel calibration ({e})", path.display()))
}

fn from_env() -> Option<usize> {
    let value = std::env::var(ENV).ok()?;
    match value.trim().parse() {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            tracing::warn!("{ENV}={value:?} is not a byte count; ignoring it");
            None
        }
    }
}

fn cpu_name() -> String {
    lem_kernels::cpu_model().unwrap_or_else(|| "unknown CPU".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calibration(kernel: Kernel, threads: usize, bytes: usize) -> Calibration {
        Calibration {
            cpu: cpu_name(),
            kernel: kernel.name().to_string(),
            threads,
            prefetch_bytes: bytes,
            weight_bytes: 1 << 28,
            rounds: 3,
            measured: vec![Measured {
                prefetch_bytes: bytes,
                gb_s: 10.0,
            }],
        }
    }

    /// A cached calibration is used as it is, without measuring again.
    #[test]
    fn uses_the_cached_calibration() {
        if std::env::var_os(ENV).is_some() {
            panic!("{ENV} is set: this test checks the cache, unset it");
        }
        let home = tempfile::tempdir().unwrap();
        let kernel = Kernel::best();
        if kernel == Kernel::scalar() {
            return; // nothing to tune on this CPU; `prefetch` says Default
        }
        let path = cache_path(home.path(), kernel, 2);
        write(&path, &calibration(kernel, 2, 16384)).unwrap();
        let choice = prefetch(kernel, 2, home.path());
        assert_eq!(
            choice,
            Choice {
                prefetch_bytes: 16384,
                source: Source::Cached(path.clone()),
            }
        );
        assert_eq!(choice.to_string(), "prefetch 16384 B (calibrated)");
        // Kept per thread count: one thread has none yet.
        assert_ne!(cache_path(home.path(), kernel, 1), path);
    }

    /// With nothing cached, the first process measures (every candidate,
    /// on a weight past the caches: about a second) and keeps the result,
    /// which the next one reads; a damaged file is measured over.
    #[test]
    fn measures_once_and_keeps_the_result() {
        if std::env::var_os(ENV).is_some() {
            panic!("{ENV} is set: this test checks the measurement, unset it");
        }
        let kernel = Kernel::best();
        if kernel == Kernel::scalar() {
            return; // nothing to tune on this CPU; `prefetch` says Default
        }
        let home = tempfile::tempdir().unwrap();
        let path = cache_path(home.path(), kernel, 1);
        let first = prefetch(kernel, 1, home.path());
        assert_eq!(first.source, Source::Measured(path.clone()));
        let kept = read(&path).unwrap().expect("the calibration is kept");
        assert_eq!(kept.prefetch_bytes, first.prefetch_bytes);
        assert_eq!((kept.kernel.as_str(), kept.threads), (kernel.name(), 1));
        let measured: Vec<_> = kept.measured.iter().map(|m| m.prefetch_bytes).collect();
        assert_eq!(measured, tune::CANDIDATES);
        assert!(kept.measured.iter().all(|m| m.gb_s > 0.0), "{kept:?}");
        let second = prefetch(kernel, 1, home.path());
        assert_eq!(second.source, Source::Cached(path.clone()));
        std::fs::write(&path, "not json").unwrap();
        let third = prefetch(kernel, 1, home.path());
        assert_eq!(third.source, Source::Measured(path.clone()));
        assert!(
            read(&path).unwrap().is_some(),
            "the damaged file is replaced"
        );
    }

    #[test]
    fn a_damaged_cache_file_is_an_error_naming_it() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join("tuning").join("x.json");
        assert_eq!(read(&path), Ok(None));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"cpu\": \"half a file").unwrap();
        let err = read(&path).unwrap_err();
        assert!(
            err.contains("x.json") && err.contains("not a kernel calibration"),
            "{err}"
        );
    }

    #[test]
    fn writes_whole_files_and_reads_them_back() {
        let home = tempfile::tempdir().unwrap();
        let kernel = Kernel::best();
        let path = cache_path(home.path(), kernel, 1);
        let c = calibration(kernel, 1, 4096);
        write(&path, &c).unwrap();
        assert_eq!(read(&path), Ok(Some(c)));
        // Only the file itself is left: no temporary beside it.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [path.file_name().unwrap()]);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.ends_with(&format!("-{}-t1.json", kernel.name()))
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)),
            "{name}"
        );
    }
}
