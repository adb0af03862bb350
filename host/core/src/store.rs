//! The append-only JSONL store of a resumable run.
//!
//! Each record is written as one line with a single `write` and synced to
//! disk before the next item starts, so a crash loses at most the line being
//! written. On reopening, a torn last line (no newline: the write was cut
//! short) is cut off and reported, never kept; a damaged line anywhere else
//! is an error, since silently dropping finished work would be worse.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A JSONL file of records keyed by their `id` field.
pub struct AppendStore {
    path: PathBuf,
    file: File,
    done: HashSet<String>,
}

/// What opening a store found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Records already there.
    pub kept: usize,
    /// Bytes of a torn last line that were cut off.
    pub repaired_bytes: usize,
}

/// Why a store could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A complete line is not a record.
    #[error("{path}:{line}: {message}; fix or remove that line, then run again")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl AppendStore {
    /// Opens (or creates) the store, repairing a torn last line.
    pub fn open(path: &Path) -> Result<(Self, OpenReport), StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut report = OpenReport {
            kept: 0,
            repaired_bytes: bytes.len() - complete,
        };
        if report.repaired_bytes > 0 {
            file.set_len(complete as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
        }
        let mut done = HashSet::new();
        for (index, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let damaged = |message: String| StoreError::Damaged {
                path: path.to_owned(),
                line: index + 1,
                message,
            };
            let value: serde_json::Value = serde_json::from_slice(line)
                .map_err(|e| damaged(format!("not valid JSON: {e}")))?;
            let id = value
                .get("id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| damaged("record has no string `id`".into()))?;
            if !done.insert(id.to_string()) {
                return Err(damaged(format!("id `{id}` appears twice")));
            }
            report.kept += 1;
        }
        Ok((
            AppendStore {
                path: path.to_owned(),
                file,
                done,
            },
            report,
        ))
    }

    /// Whether a record with this id is stored.
    pub fn contains(&self, id: &str) -> bool {
        self.done.contains(id)
    }

    /// Records stored.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// Appends one record and syncs it to disk.
    pub fn append<T: serde::Serialize>(&mut self, id: &str, record: &T) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(record).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.done.insert(id.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resumes_and_repairs_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        {
            let (mut s, report) = AppendStore::open(&path).unwrap();
            assert_eq!(report, OpenReport::default());
            s.append("a", &json!({"id": "a", "x": 1})).unwrap();
            s.append("b", &json!({"id": "b", "x": 2})).unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"id\": \"c\", \"x\"")
            .unwrap();
        let (mut s, report) = AppendStore::open(&path).unwrap();
        assert_eq!(
            report,
            OpenReport {
                kept: 2,
                repaired_bytes: 15
            }
        );
        assert!(s.contains("a") && s.contains("b") && !s.contains("c"));
        s.append("c", &json!({"id": "c"})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        );
    }

    #[test]
    fn a_damaged_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, "{\"id\":\"a\"}\ngarbage\n{\"id\":\"b\"}\n").unwrap();
        let err = AppendStore::open(&path).err().unwrap().to_string();
        assert!(err.contains("r.jsonl:2:"), "{err}");
        // Nothing was changed.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"a\"}\ngarbage\n{\"id\":\"b\"}\n"
        );
    }
}
