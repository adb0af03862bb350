//! JSONL in and out.
//!
//! Reading reports a bad line by file and line number. Writing goes through
//! [`AtomicFile`]: the output appears under its real name only once it is
//! complete, so an interrupted run leaves nothing that looks finished.

use crate::text::TextError;
use serde::de::DeserializeOwned;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A value read from a JSONL file, with the line it came from.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// 1-based line number.
    pub line: usize,
    /// The value.
    pub value: T,
}

/// Why a JSONL file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The file could not be opened or read.
    /// (The cause is in the message, not also a `source()`, so that error
    /// chains print it once.)
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// A line is not valid JSON, or not the record expected.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, and what to do.
        message: String,
    },
    /// The file holds no records.
    #[error("{path}: the file has no records (expected one JSON object per line)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Reads every non-blank line of a JSONL file as a `T`.
///
/// Fails on the first bad line (not UTF-8, not JSON, not a `T`), naming the
/// file and line; fails on a file with no records at all.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<Located<T>>, JsonlError> {
    let mut out = Vec::new();
    for line in crate::text::lines(path)? {
        let (number, line) = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(&line).map_err(|e| JsonlError::Line {
            path: path.to_owned(),
            line: number,
            message: describe_json_error(&e),
        })?;
        out.push(Located {
            line: number,
            value,
        });
    }
    if out.is_empty() {
        return Err(JsonlError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(out)
}

impl From<TextError> for JsonlError {
    fn from(e: TextError) -> Self {
        match e {
            TextError::Io { path, error } => JsonlError::Io { path, error },
            TextError::NotUtf8 { path, line, byte } => JsonlError::Line {
                path,
                line,
                message: crate::text::not_utf8_message(byte),
            },
        }
    }
}

fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => format!("{e} (each line must be one record of the expected shape)"),
        Category::Syntax | Category::Eof => {
            format!("not valid JSON: {e} (each line must be one complete JSON object)")
        }
        Category::Io => e.to_string(),
    }
}

/// An output file written under a temporary name beside its destination and
/// renamed into place by [`AtomicFile::commit`]. Dropped uncommitted, the
/// temporary file is deleted and the destination is left as it was.
pub struct AtomicFile {
    dest: PathBuf,
    writer: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `dest`.
    pub fn create(dest: &Path) -> std::io::Result<Self> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)?;
        Ok(AtomicFile {
            dest: dest.to_owned(),
            writer: BufWriter::new(temp),
        })
    }

    /// Writes one value as a JSON line.
    pub fn write_json<T: serde::Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.writer, value)?;
        self.writer.write_all(b"\n")
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(self) -> std::io::Result<()> {
        let temp = self.writer.into_inner().map_err(|e| e.into_error())?;
        temp.as_file().sync_all()?;
        temp.persist(&self.dest).map_err(|e| e.error)?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Rec {
        #[allow(dead_code)]
        id: String,
    }

    #[test]
    fn bad_line_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, "{\"id\":\"a\"}\n\n{\"id\": \"b\"\n").unwrap();
        let err = read::<Rec>(&path).unwrap_err().to_string();
        assert!(err.contains("x.jsonl:3:"), "{err}");
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn missing_field_and_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, "{\"name\":\"a\"}\n").unwrap();
        let err = read::<Rec>(&path).unwrap_err().to_string();
        assert!(
            err.contains(":1:") && err.contains("missing field `id`"),
            "{err}"
        );
        std::fs::write(&path, "\n  \n").unwrap();
        assert!(matches!(read::<Rec>(&path), Err(JsonlError::Empty { .. })));
    }

    #[test]
    fn atomic_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.jsonl");
        std::fs::write(&dest, "old\n").unwrap();
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_json(&serde_json::json!({"a": 1})).unwrap();
        drop(f);
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file left behind"
        );
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_json(&serde_json::json!({"a": 2})).unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "{\"a\":2}\n");
    }
}
