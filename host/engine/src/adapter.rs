//! LoRA adapters in the PEFT layout, read and written in one place so the
//! trainer, `lem generate --adapter` and `lem fuse` agree on it.
//!
//! A directory holds `adapter_config.json` (`peft_type: LORA`, `r`,
//! `lora_alpha`, `target_modules`, `base_model_name_or_path`, plus lem's
//! `base_model_sha256`) and `adapter_model.safetensors` whose keys are
//! `base_model.model.<module>.lora_A.weight` (`[r, in]`) and `.lora_B.weight`
//! (`[out, r]`), `<module>` being the Hugging Face name
//! (`model.layers.3.self_attn.q_proj`). An adapter applies to a model only if
//! every one of its modules exists there with matching shapes: a mismatch is
//! an error, never a silently absent adapter.

use crate::EngineError;
use crate::models::Projections;
use crate::models::linear::Lora;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The config file's name.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The weights file's name.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
const PREFIX: &str = "base_model.model.";

/// `adapter_config.json`, the fields PEFT reads plus lem's own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdapterConfig {
    /// Always `LORA`.
    pub peft_type: String,
    /// Always `CAUSAL_LM`.
    #[serde(default = "causal_lm")]
    pub task_type: String,
    /// The rank.
    pub r: usize,
    /// The scale is `lora_alpha / r`.
    pub lora_alpha: f64,
    /// Dropout used in training.
    #[serde(default)]
    pub lora_dropout: f64,
    /// Module suffixes adapted (`q_proj`, `v_proj`, ...).
    pub target_modules: Vec<String>,
    /// Which blocks carry adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers_to_transform: Option<Vec<usize>>,
    /// Always `none`.
    #[serde(default = "none")]
    pub bias: String,
    /// What the adapter was trained on.
    #[serde(default)]
    pub base_model_name_or_path: String,
    /// lem: the sha256 of the base model file (GGUF) or its config.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model_sha256: Option<String>,
}

fn causal_lm() -> String {
    "CAUSAL_LM".into()
}
fn none() -> String {
    "none".into()
}

impl AdapterConfig {
    /// `lora_alpha / r`.
    pub fn scale(&self) -> f64 {
        self.lora_alpha / self.r as f64
    }
}

/// One module's pair.
#[derive(Debug, Clone)]
pub struct LoraPair {
    /// `[r, in]`.
    pub a: Tensor,
    /// `[out, r]`.
    pub b: Tensor,
}

/// A LoRA adapter: its config and one pair per module (by Hugging Face name).
#[derive(Debug, Clone)]
pub struct Adapter {
    /// The config.
    pub config: AdapterConfig,
    /// Pairs by module name (`model.layers.N.self_attn.q_proj`).
    pub modules: BTreeMap<String, LoraPair>,
}

fn bad(path: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::BadFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl Adapter {
    /// Reads an adapter directory (or its `adapter_model.safetensors`).
    pub fn load(path: &Path, device: &Device) -> Result<Self, EngineError> {
        let dir: PathBuf = if path.is_file() {
            path.parent().unwrap_or(Path::new(".")).to_owned()
        } else {
            path.to_owned()
        };
        let config_path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config_path).map_err(|e| {
            EngineError::Io(
                config_path.clone(),
                std::io::Error::new(
                    e.kind(),
                    format!("{e}: an adapter directory needs {CONFIG_FILE} and {WEIGHTS_FILE}"),
                ),
            )
        })?;
        let config: AdapterConfig = serde_json::from_str(&text)
            .map_err(|e| bad(&config_path, format!("not a PEFT adapter config: {e}")))?;
        if config.peft_type != "LORA" {
            return Err(bad(
                &config_path,
                format!(
                    "peft_type is `{}`; lem reads LORA adapters",
                    config.peft_type
                ),
            ));
        }
        if config.r == 0 {
            return Err(bad(&config_path, "r is 0"));
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        let tensors = candle_core::safetensors::load(&weights_path, device)
            .map_err(|e| bad(&weights_path, format!("cannot read: {e}")))?;
        let mut halves: BTreeMap<String, (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
        for (key, t) in tensors {
            let t = t
                .to_dtype(candle_core::DType::F32)
                .map_err(EngineError::candle)?;
            let module = key
                .strip_prefix(PREFIX)
                .and_then(|k| k.strip_suffix(".weight"));
            let Some(module) = module else {
                return Err(bad(
                    &weights_path,
                    format!(
                        "key `{key}` is not in the PEFT layout `{PREFIX}<module>.lora_A.weight`"
                    ),
                ));
            };
            let entry = if let Some(m) = module.strip_suffix(".lora_A") {
                &mut halves.entry(m.to_string()).or_default().0
            } else if let Some(m) = module.strip_suffix(".lora_B") {
                &mut halves.entry(m.to_string()).or_default().1
            } else {
                return Err(bad(
                    &weights_path,
                    format!("key `{key}` is neither lora_A nor lora_B"),
                ));
            };
            *entry = Some(t);
        }
        let mut modules = BTreeMap::new();
        for (name, (a, b)) in halves {
            let (Some(a), Some(b)) = (a, b) else {
                return Err(bad(
                    &weights_path,
                    format!("module `{name}` has only one of lora_A / lora_B"),
                ));
            };
            let (ra, _) = a.dims2().map_err(EngineError::candle)?;
            let (_, rb) = b.dims2().map_err(EngineError::candle)?;
            if ra != config.r || rb != config.r {
                return Err(bad(
                    &weights_path,
                    format!(
                        "module `{name}`: lora_A is {:?} and lora_B {:?}, but r is {}",
                        a.dims(),
                        b.dims(),
                        config.r
                    ),
                ));
            }
            modules.insert(name, LoraPair { a, b });
        }
        if modules.is_empty() {
            return Err(bad(&weights_path, "the adapter has no LoRA tensors"));
        }
        Ok(Adapter { config, modules })
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` into
    /// `dir`, each atomically (written aside, synced, renamed: a crash
    /// leaves the previous file or the new one, never part of one).
    pub fn save(&self, dir: &Path) -> Result<(), EngineError> {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::Io(dir.to_owned(), e))?;
        let mut tensors = HashMap::new();
        for (name, pair) in &self.modules {
            tensors.insert(format!("{PREFIX}{name}.lora_A.weight"), pair.a.clone());
            tensors.insert(format!("{PREFIX}{name}.lora_B.weight"), pair.b.clone());
        }
        let weights = dir.join(WEIGHTS_FILE);
        let tmp = dir.join(format!(".{WEIGHTS_FILE}.tmp"));
        candle_core::safetensors::save(&tensors, &tmp)
            .map_err(|e| bad(&tmp, format!("cannot write: {e}")))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| EngineError::Io(tmp.clone(), e))?;
        std::fs::rename(&tmp, &weights).map_err(|e| EngineError::Io(weights.clone(), e))?;
        let json = serde_json::to_string_pretty(&self.config).expect("config serializes");
        write_atomic(&dir.join(CONFIG_FILE), json.as_bytes())
    }

    /// Writes the mlx_lm layout into `dir`: `adapters.safetensors` with
    /// `<module>.lora_a` `[in, r]` / `.lora_b` `[r, out]` and mlx_lm's
    /// `adapter_config.json` (written as `mlx/` beside the PEFT files).
    pub fn save_mlx(&self, dir: &Path, num_layers: usize) -> Result<(), EngineError> {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::Io(dir.to_owned(), e))?;
        let mut tensors = HashMap::new();
        for (name, pair) in &self.modules {
            let t = |x: &Tensor| x.t().and_then(|x| x.contiguous());
            tensors.insert(
                format!("{name}.lora_a"),
                t(&pair.a).map_err(EngineError::candle)?,
            );
            tensors.insert(
                format!("{name}.lora_b"),
                t(&pair.b).map_err(EngineError::candle)?,
            );
        }
        let weights = dir.join("adapters.safetensors");
        candle_core::safetensors::save(&tensors, &weights)
            .map_err(|e| bad(&weights, format!("cannot write: {e}")))?;
        let keys: Vec<String> = self
            .config
            .target_modules
            .iter()
            .map(|m| match m.as_str() {
                "q_proj" | "k_proj" | "v_proj" | "o_proj" => format!("self_attn.{m}"),
                other => format!("mlp.{other}"),
            })
            .collect();
        let config = serde_json::json!({
            "fine_tune_type": "lora",
            "num_layers": num_layers,
            "lora_parameters": {
                "rank": self.config.r,
                "scale": self.config.scale(),
                "dropout": self.config.lora_dropout,
                "keys": keys,
            },
        });
        write_atomic(
            &dir.join("adapter_config.json"),
            serde_json::to_string_pretty(&config)
                .expect("json")
                .as_bytes(),
        )
    }

    /// Sets this adapter on `model`'s projections. Every module must exist
    /// with matching shapes; otherwise nothing is changed and the error
    /// names the first mismatch.
    pub fn apply(&self, model: &mut impl Projections) -> Result<(), EngineError> {
        let scale = self.config.scale();
        let mut linears: BTreeMap<String, _> = model.linears_mut().into_iter().collect();
        // Check everything before changing anything.
        for (name, pair) in &self.modules {
            let Some(lin) = linears.get(name) else {
                return Err(EngineError::BadModel(format!(
                    "the adapter has module `{name}`, which this model does not have: it was trained on another model"
                )));
            };
            let (out, inp) = lin.dims().map_err(EngineError::candle)?;
            let (_, a_in) = pair.a.dims2().map_err(EngineError::candle)?;
            let (b_out, _) = pair.b.dims2().map_err(EngineError::candle)?;
            if a_in != inp || b_out != out {
                return Err(EngineError::BadModel(format!(
                    "adapter module `{name}` is for a {b_out}x{a_in} projection; this model's is {out}x{inp}: it was trained on another model"
                )));
            }
        }
        for (name, pair) in &self.modules {
            let lin = linears.get_mut(name).expect("checked above");
            lin.set_lora(Some(Lora {
                a: pair.a.clone(),
                b: pair.b.clone(),
                scale,
                dropout: 0.0,
            }));
        }
        Ok(())
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| EngineError::Io(tmp.clone(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| EngineError::Io(path.to_owned(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter() -> Adapter {
        let dev = Device::Cpu;
        let mut modules = BTreeMap::new();
        modules.insert(
            "model.layers.0.self_attn.q_proj".to_string(),
            LoraPair {
                a: Tensor::randn(0f32, 1.0, (2, 8), &dev).unwrap(),
                b: Tensor::randn(0f32, 1.0, (6, 2), &dev).unwrap(),
            },
        );
        Adapter {
            config: AdapterConfig {
                peft_type: "LORA".into(),
                task_type: "CAUSAL_LM".into(),
                r: 2,
                lora_alpha: 4.0,
                lora_dropout: 0.0,
                target_modules: vec!["q_proj".into()],
                layers_to_transform: Some(vec![0]),
                bias: "none".into(),
                base_model_name_or_path: "tiny".into(),
                base_model_sha256: None,
            },
            modules,
        }
    }

    #[test]
    fn save_then_load_keeps_keys_shapes_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let a = adapter();
        a.save(dir.path()).unwrap();
        let raw =
            candle_core::safetensors::load(dir.path().join(WEIGHTS_FILE), &Device::Cpu).unwrap();
        let mut keys: Vec<_> = raw.keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
            ]
        );
        let b = Adapter::load(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(a.config, b.config);
        let (x, y) = (
            &a.modules["model.layers.0.self_attn.q_proj"],
            &b.modules["model.layers.0.self_attn.q_proj"],
        );
        assert_eq!(x.a.to_vec2::<f32>().unwrap(), y.a.to_vec2::<f32>().unwrap());
        assert_eq!(x.b.to_vec2::<f32>().unwrap(), y.b.to_vec2::<f32>().unwrap());
    }

    #[test]
    fn foreign_keys_and_wrong_ranks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = adapter();
        a.save(dir.path()).unwrap();
        a.config.r = 3;
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            serde_json::to_string(&a.config).unwrap(),
        )
        .unwrap();
        let err = Adapter::load(dir.path(), &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("but r is 3"), "{err}");

        let mut t = HashMap::new();
        t.insert(
            "model.layers.0.q.weight".to_string(),
            Tensor::zeros((2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
        candle_core::safetensors::save(&t, dir.path().join(WEIGHTS_FILE)).unwrap();
        let err = Adapter::load(dir.path(), &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("PEFT layout"), "{err}");
    }
}
