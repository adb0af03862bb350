//! Resumable training checkpoints (`TrainConfig::checkpoint`).
//!
//! Why it is shaped so: a run killed at any point must continue exactly
//! where it was, so after every step the trainer writes everything the next
//! step depends on — the LoRA weights, AdamW's moments and step count, and
//! the step reached (which, replayed, restores the batch order) — into one
//! safetensors file, written to `<file>.tmp`, synced and renamed over the
//! previous one, so the file on disk is always one whole step. What makes
//! two runs the same run (the flags that shape the updates, the hashes of
//! the data, the base model and the adapter resumed from) is recorded as a
//! fingerprint in the file's metadata; a checkpoint whose fingerprint
//! differs from this run's is an error, never silently used.
//!
//! Tensors: `weights.<module>.lora_A|B`, `adam_m.<same>`, `adam_v.<same>`
//! (f32). Metadata: `format` ([`FORMAT`]), `iteration`, `optimizer_step`,
//! `fingerprint` (a JSON object).

use crate::TrainConfig;
use crate::TrainError;
use crate::optim::AdamWState;
use candle_core::{Device, Tensor, Var};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// The checkpoint's file name inside `--adapter-path`.
pub const FILE: &str = "checkpoint.safetensors";
/// The `format` metadata of a checkpoint this version writes and reads.
pub const FORMAT: &str = "lem-train-checkpoint/1";

/// What a checkpoint restores.
pub(crate) struct Restored {
    /// Steps done.
    pub iteration: usize,
    /// The optimizer's state, its moments in the order of the names given
    /// to [`read`].
    pub optimizer: AdamWState,
    /// The weights, in the same order.
    pub weights: Vec<Tensor>,
}

/// Everything that determines the run's updates, as a JSON object: the
/// flags that shape them and the hashes of what they are computed from.
pub(crate) fn fingerprint(config: &TrainConfig, train_file: &Path) -> Result<Value, TrainError> {
    let hash = |p: &Path| lem_core::hash::sha256_file(p).map_err(|e| TrainError::io(p, e));
    let resume = match &config.resume_adapter_file {
        None => Value::Null,
        Some(path) => {
            let dir = match path.is_file() {
                true => path.parent().unwrap_or(Path::new(".")),
                false => path.as_path(),
            };
            let config_hash = hash(&dir.join(lem_engine::adapter::CONFIG_FILE))?;
            let weights_hash = hash(&dir.join(lem_engine::adapter::WEIGHTS_FILE))?;
            Value::String(lem_core::hash::sha256_parts([
                config_hash.as_bytes(),
                weights_hash.as_bytes(),
            ]))
        }
    };
    let lora = &config.lora;
    Ok(serde_json::json!({
        "iters": config.iters,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
        "max_seq_length": config.max_seq_length,
        "mask_prompt": config.mask_prompt,
        "grad_checkpoint": config.grad_checkpoint,
        "lora_rank": lora.rank,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "lora_targets": lora.targets,
        "num_layers": lora.num_layers,
        "resume_adapter_sha256": resume,
        "train_data_sha256": hash(train_file)?,
        "base_model_sha256": config.base_model_sha256,
    }))
}

/// Writes the state after step `iteration` to `path`, atomically.
pub(crate) fn write(
    path: &Path,
    iteration: usize,
    vars: &[(String, Var)],
    optimizer: &AdamWState,
    fingerprint: &Value,
) -> Result<(), TrainError> {
    let bad = |reason: String| TrainError::Checkpoint {
        path: path.to_owned(),
        reason,
    };
    if optimizer.first_moments.len() != vars.len() || optimizer.second_moments.len() != vars.len() {
        return Err(bad(format!(
            "the optimizer holds {} moments for {} variables",
            optimizer.first_moments.len(),
            vars.len()
        )));
    }
    let mut tensors: Vec<(String, Tensor)> = Vec::with_capacity(3 * vars.len());
    for (i, (name, var)) in vars.iter().enumerate() {
        tensors.push((format!("weights.{name}"), var.as_tensor().detach()));
        tensors.push((format!("adam_m.{name}"), optimizer.first_moments[i].clone()));
        tensors.push((
            format!("adam_v.{name}"),
            optimizer.second_moments[i].clone(),
        ));
    }
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("iteration".to_string(), iteration.to_string()),
        ("optimizer_step".to_string(), optimizer.step.to_string()),
        ("fingerprint".to_string(), fingerprint.to_string()),
    ]);
    let bytes = safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| bad(format!("cannot serialize: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    write_atomic(path, &bytes)
}

/// Reads the checkpoint at `path`, refusing it unless it was written by a
/// run with this `fingerprint` and holds every one of `names`.
pub(crate) fn read(
    path: &Path,
    fingerprint: &Value,
    names: &[String],
    device: &Device,
) -> Result<Restored, TrainError> {
    let bad = |reason: String| TrainError::Checkpoint {
        path: path.to_owned(),
        reason: format!(
            "{reason}; delete it to start this run from the beginning, or choose another --adapter-path"
        ),
    };
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a readable checkpoint ({e})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let field = |key: &str| {
        meta.get(key)
            .ok_or_else(|| bad(format!("not a lem training checkpoint (no `{key}`)")))
    };
    let format = field("format")?;
    if format != FORMAT {
        return Err(bad(format!(
            "a checkpoint of format `{format}`; this lem reads `{FORMAT}`"
        )));
    }
    let number = |key: &str| {
        field(key)?
            .parse::<usize>()
            .map_err(|_| bad(format!("`{key}` is not a number")))
    };
    let (iteration, step) = (number("iteration")?, number("optimizer_step")?);
    let theirs: Value = serde_json::from_str(field("fingerprint")?)
        .map_err(|e| bad(format!("its fingerprint is not JSON ({e})")))?;
    let differences = differences(&theirs, fingerprint);
    if !differences.is_empty() {
        return Err(bad(format!(
            "this checkpoint is of another run ({})",
            differences.join("; ")
        )));
    }
    let iters = fingerprint["iters"].as_u64().unwrap_or(0) as usize;
    if iteration == 0 || iteration > iters || step != iteration {
        return Err(bad(format!(
            "it claims step {iteration} (optimizer step {step}) of {iters}"
        )));
    }
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| bad(format!("cannot read its tensors ({e})")))?;
    let mut take = |key: String| {
        tensors
            .remove(&key)
            .ok_or_else(|| bad(format!("it has no `{key}`")))
    };
    let (mut weights, mut first, mut second) = (Vec::new(), Vec::new(), Vec::new());
    for name in names {
        weights.push(take(format!("weights.{name}"))?);
        first.push(take(format!("adam_m.{name}"))?);
        second.push(take(format!("adam_v.{name}"))?);
    }
    if let Some(extra) = tensors.keys().min() {
        return Err(bad(format!(
            "it has `{extra}`, which this run does not train"
        )));
    }
    Ok(Restored {
        iteration,
        optimizer: AdamWState {
            step,
            first_moments: first,
            second_moments: second,
        },
        weights,
    })
}

/// `key: checkpoint X, this run Y` for every field that differs.
fn differences(theirs: &Value, ours: &Value) -> Vec<String> {
    let empty = Map::new();
    let (a, b) = (
        theirs.as_object().unwrap_or(&empty),
        ours.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&Value>| match v {
        None => "absent".to_string(),
        Some(Value::String(s)) if s.len() > 16 => format!("{}…", &s[..12]),
        Some(v) => v.to_string(),
    };
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: checkpoint {}, this run {}",
                show(a.get(k)),
                show(b.get(k))
            )
        })
        .collect()
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the
/// old file or the new one: `<path>.tmp`, synced, renamed over `path`, and
/// the directory synced (on Unix) so the rename itself is durable.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = std::fs::File::create(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| TrainError::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| TrainError::io(dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_field_and_shorten_hashes() {
        let a = serde_json::json!({"iters": 8, "seed": 3, "train_data_sha256": "a".repeat(64)});
        let b = serde_json::json!({"iters": 10, "seed": 3, "train_data_sha256": "b".repeat(64), "new": true});
        let d = differences(&a, &b);
        assert_eq!(
            d,
            [
                "iters: checkpoint 8, this run 10",
                "new: checkpoint absent, this run true",
                "train_data_sha256: checkpoint aaaaaaaaaaaa…, this run bbbbbbbbbbbb…",
            ]
        );
        assert!(differences(&a, &a).is_empty());
    }
}
