//! Reading a benchmark's data file (downloaded once when the manifest names
//! a URL, and checked against its pinned sha256).

use crate::error::{Error, IoContext, Result};
use lem_core::jsonl::{self, Located};
use lem_core::{BenchmarkItem, BenchmarkManifest};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A manifest's data `url`, downloaded once into `$LEM_HOME/data/` under
/// its pinned sha256 (checked here, and again by the caller before use).
fn download(url: &str, sha256: &str) -> Result<PathBuf> {
    let dir = lem_core::lem_home().join("data");
    let path = dir.join(format!("{}.jsonl", sha256.to_ascii_lowercase()));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).at(&dir)?;
    let rt = crate::models::runtime()?;
    let body = rt
        .block_on(async { reqwest::get(url).await?.error_for_status()?.bytes().await })
        .map_err(|e| Error::Invalid(format!("downloading {url}: {e}")))?;
    let actual = lem_core::hash::sha256_hex(&body);
    if !actual.eq_ignore_ascii_case(sha256) {
        return Err(Error::Invalid(format!(
            "{url}: sha256 {actual} does not match the manifest's pinned {sha256}; the data changed or is not the file the manifest expects"
        )));
    }
    let mut file = lem_core::AtomicFile::create(&path).at(&path)?;
    std::io::Write::write_all(&mut file, &body).at(&path)?;
    file.commit().at(&path)?;
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
            _ => {
                return Err(Error::Invalid(format!(
                    "benchmark `{}` has no data file: pass --data",
                    manifest.name
                )));
            }
        },
    };
    if let Some(pin) = pinned {
        let actual = lem_core::hash::sha256_file(&path).at(&path)?;
        if !actual.eq_ignore_ascii_case(pin) {
            return Err(Error::Invalid(format!(
                "{}: sha256 {actual} does not match the manifest's pinned {pin}; the data changed or is not the file the manifest expects",
                path.display()
            )));
        }
    }
    let rows = jsonl::read::<Map<String, Value>>(&path)?;
    let mut first_line: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let item = BenchmarkItem::from_record(row.value, &manifest.data.id_field).map_err(|e| {
            Error::Data {
                path: path.clone(),
                line: row.line,
                message: e.to_string(),
            }
        })?;
        if let Some(first) = first_line.insert(item.id.clone(), row.line) {
            return Err(Error::Data {
                path,
                line: row.line,
                message: format!(
                    "duplicate id `{}` (first on line {first}); ids must be unique",
                    item.id
                ),
            });
        }
        items.push(Located {
            line: row.line,
            value: item,
        });
    }
    Ok(items)
}
