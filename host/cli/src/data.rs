//! Reading a benchmark's data file.

use anyhow::{Context, Result, bail};
use lem_core::jsonl::{self, Located};
use lem_core::{BenchmarkItem, BenchmarkManifest};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A manifest's data `url`, downloaded once into `$LEM_HOME/data/` under
/// its pinned sha256 (checked by the caller before use).
fn download(url: &str, sha256: &str) -> Result<PathBuf> {
    let dir = lem_core::lem_home().join("data");
    let path = dir.join(format!("{}.jsonl", sha256.to_ascii_lowercase()));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let rt = crate::models::runtime()?;
    let body = rt
        .block_on(async { reqwest::get(url).await?.error_for_status()?.bytes().await })
        .with_context(|| format!("downloading {url}"))?;
    let actual = lem_core::hash::sha256_hex(&body);
    if !actual.eq_ignore_ascii_case(sha256) {
        bail!(
            "{url}: sha256 {actual} does not match the manifest's pinned {sha256}; the data changed or is not the file the manifest expects"
        );
    }
    let mut file = lem_core::AtomicFile::create(&path)?;
    std::io::Write::write_all(&mut file, &body)?;
    file.commit()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The items of a benchmark, in file order; `data` overrides the manifest's
/// file (whose pinned sha256 is then checked). Duplicate ids are an error.
pub fn load_items(
    manifest: &BenchmarkManifest,
    data: Option<&Path>,
) -> Result<Vec<Located<BenchmarkItem>>> {
    let (path, pinned) = match data {
        Some(path) => (path.to_path_buf(), None),
        None => match (
            manifest.data_path(),
            &manifest.data.url,
            &manifest.data.sha256,
        ) {
            (Some(path), _, pin) => (path, pin.as_deref()),
            (None, Some(url), Some(pin)) => (download(url, pin)?, Some(pin.as_str())),
            _ => bail!(
                "benchmark `{}` has no data file: pass --data",
                manifest.name
            ),
        },
    };
    if let Some(pin) = pinned {
        let actual = lem_core::hash::sha256_file(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if !actual.eq_ignore_ascii_case(pin) {
            bail!(
                "{}: sha256 {actual} does not match the manifest's pinned {pin}; the data changed or is not the file the manifest expects",
                path.display()
            );
        }
    }
    let rows = jsonl::read::<Map<String, Value>>(&path)?;
    let mut first_line: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let item = BenchmarkItem::from_record(row.value, &manifest.data.id_field)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), row.line))?;
        if let Some(first) = first_line.insert(item.id.clone(), row.line) {
            bail!(
                "{}:{}: duplicate id `{}` (first on line {first}); ids must be unique",
                path.display(),
                row.line,
                item.id
            );
        }
        items.push(Located {
            line: row.line,
            value: item,
        });
    }
    Ok(items)
}
