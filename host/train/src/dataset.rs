//! Writing a distilled dataset: `train.jsonl` / `valid.jsonl` in chat
//! format, split deterministically by example id, so a rerun with more
//! answers keeps every earlier example on the same side.

use crate::TrainError;
use lem_core::ChatMessage;
use lem_core::hash::sha256_hex;
use std::path::Path;

/// One distilled example: the plain prompt and the teacher's answer.
#[derive(Debug, Clone)]
pub struct DistilledExample {
    /// The seed's id.
    pub id: String,
    /// The user prompt, without the kernel.
    pub prompt: String,
    /// The teacher's answer (given the kernel).
    pub answer: String,
}

/// How many examples went where.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SplitCounts {
    /// In `train.jsonl`.
    pub train: usize,
    /// In `valid.jsonl`.
    pub valid: usize,
}

fn draw(id: &str, seed: u64) -> f64 {
    let h = sha256_hex(format!("{seed}:{id}").as_bytes());
    u64::from_str_radix(&h[..16], 16).expect("hex") as f64 / u64::MAX as f64
}

/// Writes `examples` into `dir` as `train.jsonl` and `valid.jsonl`: an
/// example is in the validation split when a hash of `(seed, id)` falls
/// below `valid_fraction`. With a fraction above 0 and at least two
/// examples, both files get at least one.
pub fn write_split(
    dir: &Path,
    examples: &[DistilledExample],
    valid_fraction: f64,
    seed: u64,
) -> Result<SplitCounts, TrainError> {
    if !(0.0..1.0).contains(&valid_fraction) {
        return Err(TrainError::BadConfig(
            "--valid-fraction must be in [0, 1)".into(),
        ));
    }
    let draws: Vec<f64> = examples.iter().map(|e| draw(&e.id, seed)).collect();
    let mut valid: Vec<bool> = draws.iter().map(|d| *d < valid_fraction).collect();
    let n_valid = valid.iter().filter(|v| **v).count();
    if valid_fraction > 0.0 && examples.len() >= 2 {
        let pick = |want: bool| {
            (0..examples.len())
                .filter(|&i| valid[i] != want)
                .min_by(|&a, &b| {
                    let key = |i: usize| if want { draws[i] } else { -draws[i] };
                    key(a).total_cmp(&key(b))
                })
        };
        if n_valid == 0 {
            let i = pick(true).expect("non-empty");
            valid[i] = true;
        } else if n_valid == examples.len() {
            let i = pick(false).expect("non-empty");
            valid[i] = false;
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let mut counts = SplitCounts { train: 0, valid: 0 };
    let (mut train_text, mut valid_text) = (String::new(), String::new());
    for (e, v) in examples.iter().zip(valid) {
        let line = serde_json::json!({
            "messages": [
                ChatMessage::new("user", e.prompt.clone()),
                ChatMessage::new("assistant", e.answer.clone()),
            ]
        });
        let target = if v { &mut valid_text } else { &mut train_text };
        target.push_str(&line.to_string());
        target.push('\n');
        if v {
            counts.valid += 1;
        } else {
            counts.train += 1;
        }
    }
    for (name, text) in [("train.jsonl", train_text), ("valid.jsonl", valid_text)] {
        let path = dir.join(name);
        // No validation examples: no valid.jsonl (an empty one is refused
        // by the trainer), and none left from an earlier split.
        if name == "valid.jsonl" && text.is_empty() {
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| TrainError::io(&path, e))?;
            }
            continue;
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).map_err(|e| TrainError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| TrainError::io(&path, e))?;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(i: usize) -> DistilledExample {
        DistilledExample {
            id: format!("S{i:02}"),
            prompt: format!("prompt {i}"),
            answer: format!("answer {i}"),
        }
    }

    #[test]
    fn the_split_is_stable_and_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<_> = (0..30).map(ex).collect();
        let c = write_split(dir.path(), &all, 0.1, 7).unwrap();
        assert_eq!(c.train + c.valid, 30);
        assert!(c.valid >= 1 && c.train >= 1);
        let valid = std::fs::read_to_string(dir.path().join("valid.jsonl")).unwrap();
        // Adding examples keeps earlier ones on the same side.
        let more: Vec<_> = (0..40).map(ex).collect();
        write_split(dir.path(), &more, 0.1, 7).unwrap();
        let valid2 = std::fs::read_to_string(dir.path().join("valid.jsonl")).unwrap();
        for line in valid.lines() {
            assert!(valid2.contains(line), "{line} moved");
        }
        let small = write_split(dir.path(), &all[..2], 0.1, 7).unwrap();
        assert_eq!((small.train, small.valid), (1, 1));
        assert!(write_split(dir.path(), &all, 1.0, 7).is_err());
    }
}
