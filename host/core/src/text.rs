//! Text files read as UTF-8, with a bad byte reported by file and line.
//!
//! `std`'s readers say only "stream did not contain valid UTF-8"; a person
//! with a 10,000-line file needs the line. Every reader of user-supplied text
//! (responses, benchmark data, training data, scores, seeds) goes through
//! here, so the message is the same everywhere and said once.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Why a text file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
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
    /// A line holds bytes that are not UTF-8.
    #[error("{}:{line}: {}", path.display(), not_utf8_message(*byte))]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based byte offset of the first bad byte within the line.
        byte: usize,
    },
}

/// What is wrong with a line that is not UTF-8, and what to do.
pub(crate) fn not_utf8_message(byte: usize) -> String {
    format!("not valid UTF-8 at byte {byte} of the line (save the file as UTF-8)")
}

impl TextError {
    /// The 1-based line of a UTF-8 error, if that is what this is.
    pub fn line(&self) -> Option<usize> {
        match self {
            TextError::NotUtf8 { line, .. } => Some(*line),
            TextError::Io { .. } => None,
        }
    }
}

/// Reads a whole file as UTF-8.
pub fn read_to_string(path: &Path) -> Result<String, TextError> {
    let bytes = std::fs::read(path).map_err(|error| TextError::Io {
        path: path.to_owned(),
        error,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let bad = e.utf8_error().valid_up_to();
        let line_start = bytes[..bad]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        TextError::NotUtf8 {
            path: path.to_owned(),
            line: 1 + bytes[..bad].iter().filter(|&&b| b == b'\n').count(),
            byte: bad - line_start + 1,
        }
    })
}

/// The lines of a file, numbered from 1, without their line endings (`\n` or
/// `\r\n`). Reading stops at the first line that is not UTF-8.
pub fn lines(path: &Path) -> Result<Lines, TextError> {
    let file = File::open(path).map_err(|error| TextError::Io {
        path: path.to_owned(),
        error,
    })?;
    Ok(Lines {
        path: path.to_owned(),
        reader: BufReader::new(file),
        line: 0,
        buf: Vec::new(),
        failed: false,
    })
}

/// Iterator over a file's lines; see [`lines`].
pub struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
    line: usize,
    buf: Vec<u8>,
    failed: bool,
}

impl Iterator for Lines {
    type Item = Result<(usize, String), TextError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(error) => {
                self.failed = true;
                return Some(Err(TextError::Io {
                    path: self.path.clone(),
                    error,
                }));
            }
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        match std::str::from_utf8(&self.buf) {
            Ok(text) => Some(Ok((self.line, text.to_owned()))),
            Err(e) => {
                self.failed = true;
                Some(Err(TextError::NotUtf8 {
                    path: self.path.clone(),
                    line: self.line,
                    byte: e.valid_up_to() + 1,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.jsonl");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn a_bad_byte_is_named_by_line_and_byte_once() {
        let (_d, path) = file(b"one\ntwo\r\nth\xffree\nfour\n");
        let got: Vec<_> = lines(&path).unwrap().collect();
        assert_eq!(got.len(), 3, "reading stops at the bad line");
        assert_eq!(got[1].as_ref().unwrap(), &(2, "two".to_string()));
        let e = got[2].as_ref().unwrap_err();
        assert_eq!(e.line(), Some(3));
        let msg = e.to_string();
        assert!(
            msg.ends_with(
                "data.jsonl:3: not valid UTF-8 at byte 3 of the line (save the file as UTF-8)"
            ),
            "{msg}"
        );
        assert_eq!(
            msg.matches("UTF-8").count(),
            2,
            "said once, plus the remedy: {msg}"
        );

        let e = read_to_string(&path).unwrap_err();
        assert_eq!(e.to_string(), msg);
    }

    #[test]
    fn a_bad_byte_on_the_first_line_and_a_missing_final_newline() {
        let (_d, path) = file(b"\xc3(\nok");
        assert_eq!(read_to_string(&path).unwrap_err().line(), Some(1));
        let (_d, path) = file("é\nlast".as_bytes());
        let got: Vec<_> = lines(&path).unwrap().map(Result::unwrap).collect();
        assert_eq!(got, [(1, "é".into()), (2, "last".into())]);
        assert_eq!(read_to_string(&path).unwrap(), "é\nlast");
    }
}
