//! The trainable LoRA pairs: which projections get one, how they start, and
//! how they turn into (and come back from) an [`Adapter`].

use crate::TrainError;
use candle_core::{DType, Tensor, Var};
use lem_engine::adapter::{Adapter, AdapterConfig, LoraPair};
use lem_engine::train::{Lora, TrainableModel};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Every projection LoRA can adapt, by its Hugging Face suffix.
pub const ALL_TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Reads `--lora-targets`: a comma list of projection names, or
/// `attention` (q/k/v/o), `mlp` (gate/up/down), `all`.
pub fn parse_targets(text: &str) -> Result<Vec<String>, TrainError> {
    let mut out: Vec<String> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let names: &[&str] = match part {
            "all" => &ALL_TARGETS,
            "attention" => &ALL_TARGETS[..4],
            "mlp" => &ALL_TARGETS[4..],
            name if ALL_TARGETS.contains(&name) => {
                std::slice::from_ref(ALL_TARGETS.iter().find(|t| **t == name).expect("contained"))
            }
            other => {
                return Err(TrainError::BadConfig(format!(
                    "--lora-targets: `{other}` is not one of {}, attention, mlp, all",
                    ALL_TARGETS.join(", ")
                )));
            }
        };
        for n in names {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    }
    if out.is_empty() {
        return Err(TrainError::BadConfig("--lora-targets is empty".into()));
    }
    Ok(out)
}

/// Where adapters go and how big they are.
#[derive(Debug, Clone)]
pub struct LoraSpec {
    /// Rank.
    pub rank: usize,
    /// Alpha (scale = alpha / rank).
    pub alpha: f64,
    /// Dropout on the adapter input.
    pub dropout: f32,
    /// Projection suffixes.
    pub targets: Vec<String>,
    /// Adapt the last this many blocks.
    pub num_layers: usize,
}

/// The trainable pairs, attached to a model.
pub struct LoraSet {
    spec: LoraSpec,
    first_layer: usize,
    modules: BTreeMap<String, (Var, Var)>,
}

impl LoraSet {
    /// Creates pairs on `model` as PEFT initialises them: `A` uniform in
    /// ±1/√in (Kaiming, a = √5), `B` zero, so training starts at the base model.
    pub fn attach(
        model: &mut impl TrainableModel,
        spec: LoraSpec,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let layers = model.num_layers();
        if spec.num_layers == 0 || spec.rank == 0 {
            return Err(TrainError::BadConfig(
                "--num-layers and --lora-rank must be at least 1".into(),
            ));
        }
        let first_layer = layers.saturating_sub(spec.num_layers);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let device = model.device().clone();
        let mut modules = BTreeMap::new();
        for (name, lin) in model.linears_mut() {
            if !selected(&name, &spec.targets, first_layer) {
                continue;
            }
            let (out, inp) = lin.dims()?;
            let bound = 1.0 / (inp as f32).sqrt();
            let a: Vec<f32> = (0..spec.rank * inp)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let a = Var::from_tensor(&Tensor::from_vec(a, (spec.rank, inp), &device)?)?;
            let b = Var::zeros((out, spec.rank), DType::F32, &device)?;
            lin.set_lora(Some(Lora {
                a: a.as_tensor().clone(),
                b: b.as_tensor().clone(),
                scale: spec.alpha / spec.rank as f64,
                dropout: spec.dropout,
            }));
            modules.insert(name, (a, b));
        }
        if modules.is_empty() {
            return Err(TrainError::BadConfig(
                "no projection matched --lora-targets in the chosen layers".into(),
            ));
        }
        Ok(LoraSet {
            spec,
            first_layer,
            modules,
        })
    }

    /// The trainable variables.
    pub fn vars(&self) -> Vec<Var> {
        self.modules
            .values()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect()
    }

    /// The trainable variables named `<module>.lora_A` / `.lora_B`, in the
    /// order of [`LoraSet::vars`].
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        self.modules
            .iter()
            .flat_map(|(name, (a, b))| {
                [
                    (format!("{name}.lora_A"), a.clone()),
                    (format!("{name}.lora_B"), b.clone()),
                ]
            })
            .collect()
    }

    /// The spec it was attached with.
    pub fn spec(&self) -> &LoraSpec {
        &self.spec
    }

    /// Trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.modules
            .values()
            .map(|(a, b)| a.elem_count() + b.elem_count())
            .sum()
    }

    /// The lowest block with an adapter (backward stops there).
    pub fn first_layer(&self) -> usize {
        self.first_layer
    }

    /// A snapshot as an adapter.
    pub fn to_adapter(&self, base_model: &str, base_sha256: Option<String>) -> Adapter {
        let modules = self
            .modules
            .iter()
            .map(|(name, (a, b))| {
                (
                    name.clone(),
                    LoraPair {
                        a: a.as_tensor().detach(),
                        b: b.as_tensor().detach(),
                    },
                )
            })
            .collect();
        Adapter {
            config: AdapterConfig {
                peft_type: "LORA".into(),
                task_type: "CAUSAL_LM".into(),
                r: self.spec.rank,
                lora_alpha: self.spec.alpha,
                lora_dropout: self.spec.dropout as f64,
                target_modules: self.spec.targets.clone(),
                layers_to_transform: Some(
                    (self.first_layer..self.first_layer + self.spec.num_layers)
                        .filter(|l| {
                            self.modules
                                .keys()
                                .any(|k| k.starts_with(&format!("model.layers.{l}.")))
                        })
                        .collect(),
                ),
                bias: "none".into(),
                base_model_name_or_path: base_model.to_string(),
                base_model_sha256: base_sha256,
            },
            modules,
        }
    }

    /// Continues from `adapter`: it must have exactly these modules, rank
    /// and shapes (train again with the same --lora-* and --num-layers).
    pub fn resume_from(&self, adapter: &Adapter) -> Result<(), TrainError> {
        let mismatch = |what: String| {
            TrainError::BadConfig(format!(
                "--resume-adapter-file: {what}; resume with the --lora-rank, --lora-targets and --num-layers it was trained with"
            ))
        };
        if adapter.config.r != self.spec.rank {
            return Err(mismatch(format!(
                "the adapter has rank {}, this run {}",
                adapter.config.r, self.spec.rank
            )));
        }
        for name in self.modules.keys() {
            if !adapter.modules.contains_key(name) {
                return Err(mismatch(format!("the adapter has no `{name}`")));
            }
        }
        if let Some(extra) = adapter
            .modules
            .keys()
            .find(|k| !self.modules.contains_key(*k))
        {
            return Err(mismatch(format!(
                "the adapter has `{extra}`, which this run does not train"
            )));
        }
        for (name, (a, b)) in &self.modules {
            let pair = &adapter.modules[name];
            if pair.a.dims() != a.dims() || pair.b.dims() != b.dims() {
                return Err(mismatch(format!("`{name}` has other shapes")));
            }
            a.set(&pair.a.to_device(a.device())?)?;
            b.set(&pair.b.to_device(b.device())?)?;
        }
        Ok(())
    }
}

fn selected(name: &str, targets: &[String], first_layer: usize) -> bool {
    let Some(rest) = name.strip_prefix("model.layers.") else {
        return false;
    };
    let Some((layer, proj)) = rest.split_once('.') else {
        return false;
    };
    let Ok(layer) = layer.parse::<usize>() else {
        return false;
    };
    let suffix = proj.rsplit('.').next().unwrap_or(proj);
    layer >= first_layer && targets.iter().any(|t| t == suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_aliases_and_refuse_unknown_names() {
        assert_eq!(parse_targets("attention").unwrap(), ALL_TARGETS[..4]);
        assert_eq!(
            parse_targets("q_proj, v_proj,q_proj").unwrap(),
            ["q_proj", "v_proj"]
        );
        assert_eq!(parse_targets("all").unwrap().len(), 7);
        let e = parse_targets("qkv").unwrap_err().to_string();
        assert!(e.contains("`qkv`"), "{e}");
    }

    #[test]
    fn selection_is_by_layer_and_suffix() {
        let t = vec!["q_proj".to_string()];
        assert!(selected("model.layers.5.self_attn.q_proj", &t, 4));
        assert!(!selected("model.layers.3.self_attn.q_proj", &t, 4));
        assert!(!selected("model.layers.5.self_attn.k_proj", &t, 4));
    }
}
