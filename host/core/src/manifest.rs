//! Benchmark manifests (`benchmarks/NAME.toml`): where a benchmark's data is,
//! how its prompts are made, how they are generated and which plugins score them.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A benchmark manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkManifest {
    /// The benchmark's name, as response records carry it.
    pub name: String,
    /// One line for people.
    #[serde(default)]
    pub description: String,
    /// The data file.
    #[serde(default)]
    pub data: DataSpec,
    /// How a record becomes chat messages.
    #[serde(default)]
    pub prompt: PromptSpec,
    /// Generation settings.
    #[serde(default)]
    pub generation: GenerationSpec,
    /// The scorer plugins, in order.
    #[serde(default)]
    pub scorers: Vec<PluginRef>,
    /// How reports present the scorers' metrics, in the order shown.
    #[serde(default)]
    pub metrics: Vec<MetricSpec>,
    /// The directory relative paths are resolved against (the manifest's own).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// How a report presents one metric (`[[metrics]]` in a manifest): until
/// plugins declare their metrics' ranges, the manifest does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// The metric's name, as the scorer reports it.
    pub name: String,
    /// The column heading (default `BENCHMARK/METRIC`).
    pub label: Option<String>,
    /// The lowest and highest values the metric can take. Failure bounds
    /// put failed items at these ends; a percent change is shown only when
    /// the lowest is not negative.
    pub range: Option<[f64; 2]>,
    /// Whether a higher value is better (the direction of a verdict).
    #[serde(default = "yes")]
    pub higher_is_better: bool,
    /// `number` (default) or `percent` (a 0-1 fraction shown as a percent).
    #[serde(default)]
    pub unit: MetricUnit,
    /// Shown after every benchmark's main metrics (a looser or stricter
    /// variant of a main one).
    #[serde(default)]
    pub supplementary: bool,
}

fn yes() -> bool {
    true
}

/// How a metric's values are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricUnit {
    /// A plain number.
    #[default]
    Number,
    /// A fraction in 0-1, shown as a percent.
    Percent,
}

/// Where the data file is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Path of the JSONL data, relative to the manifest.
    pub path: Option<PathBuf>,
    /// Where to download the data when there is no `path` (needs `sha256`).
    #[serde(default)]
    pub url: Option<String>,
    /// Pinned SHA-256 of the data file.
    pub sha256: Option<String>,
    /// The record field holding the item id.
    #[serde(default = "default_id_field")]
    pub id_field: String,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            path: None,
            url: None,
            sha256: None,
            id_field: default_id_field(),
        }
    }
}

fn default_id_field() -> String {
    "id".into()
}

/// How prompts are made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    /// The benchmark plugin (bundled name or path to a `.wasm`).
    #[serde(default = "default_prompt_plugin")]
    pub plugin: String,
    /// Pinned SHA-256 of the benchmark plugin.
    pub sha256: Option<String>,
    /// The record field holding the prompt text.
    #[serde(default = "default_prompt_field")]
    pub field: String,
    /// System text.
    pub system: Option<String>,
    /// Put the system text in the user turn, before the prompt.
    #[serde(default)]
    pub system_in_user_turn: bool,
}

impl Default for PromptSpec {
    fn default() -> Self {
        PromptSpec {
            plugin: default_prompt_plugin(),
            sha256: None,
            field: default_prompt_field(),
            system: None,
            system_in_user_turn: false,
        }
    }
}

fn default_prompt_plugin() -> String {
    "template".into()
}
fn default_prompt_field() -> String {
    "question".into()
}

/// Generation settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationSpec {
    /// Maximum new tokens.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Sampling temperature.
    #[serde(default = "default_temperature")]
    pub temperature: f32,
}

impl Default for GenerationSpec {
    fn default() -> Self {
        GenerationSpec {
            max_tokens: default_max_tokens(),
            temperature: default_temperature(),
        }
    }
}

fn default_max_tokens() -> u32 {
    256
}
fn default_temperature() -> f32 {
    0.3
}

/// A reference to a plugin: a bundled name or a path, optionally pinned,
/// with its limits and grants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// Bundled name (`gsm8k`) or path to a `.wasm`, relative to the manifest.
    pub plugin: String,
    /// Pinned SHA-256: a plugin with another digest is refused before it runs.
    pub sha256: Option<String>,
    /// Per-call bounds; when absent, the run's (an eval config's `[limits]`,
    /// else the defaults).
    #[serde(default)]
    pub limits: Option<crate::policy::Limits>,
    /// Ambient capabilities (none when absent).
    #[serde(default)]
    pub grants: crate::policy::Grants,
    /// Free-form options handed to the plugin (`options = { key = "value" }`):
    /// a scorer of contract 0.2.0 gets them with every item, so one plugin
    /// can serve several configurations (a 0.1.0 scorer never sees them).
    /// Values are strings, as kernels' and benchmarks' options are.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Metrics this scorer returns that its `describe()` cannot name,
    /// because its options define them (the shipped `rubric-judge`'s
    /// `fields`). Each must be described in the manifest's `[[metrics]]`;
    /// the host then accepts them from this scorer as declared.
    #[serde(default)]
    pub metrics: Vec<String>,
}

impl PluginRef {
    /// The policy the host enforces for this plugin, under the default limits
    /// when its entry sets none.
    pub fn policy(&self) -> crate::policy::Policy {
        self.policy_with(&crate::policy::Limits::default())
    }

    /// The options as the plugin receives them: (key, value) in key order.
    pub fn option_pairs(&self) -> Vec<(String, String)> {
        self.options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The policy the host enforces for this plugin, under `run_limits` when
    /// its entry sets none.
    pub fn policy_with(&self, run_limits: &crate::policy::Limits) -> crate::policy::Policy {
        crate::policy::Policy {
            limits: self.limits.clone().unwrap_or_else(|| run_limits.clone()),
            grants: self.grants.clone(),
            sha256: self.sha256.clone(),
        }
    }
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Could not read the file.
    #[error("{path}: {source}")]
    Io {
        /// The manifest.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a valid manifest.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The manifest.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl BenchmarkManifest {
    /// Reads a manifest file.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, path, &base)
    }

    /// Parses manifest text; `origin` names it in errors and `base_dir`
    /// anchors its relative paths.
    pub fn parse(text: &str, origin: &Path, base_dir: &Path) -> Result<Self, ManifestError> {
        let invalid = |line, message| ManifestError::Invalid {
            path: origin.to_owned(),
            line,
            message,
        };
        let mut manifest: BenchmarkManifest = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            invalid(line, e.message().to_string())
        })?;
        for (key, pin) in [
            ("data.sha256", &manifest.data.sha256),
            ("prompt.sha256", &manifest.prompt.sha256),
        ]
        .into_iter()
        .chain(
            manifest
                .scorers
                .iter()
                .map(|s| ("scorers.sha256", &s.sha256)),
        ) {
            if let Some(pin) = pin
                && !crate::hash::is_sha256_hex(pin)
            {
                let line = text.find(pin.as_str()).map_or(1, |at| line_of(text, at));
                return Err(invalid(
                    line,
                    format!("`{key}` must be 64 hex digits, found `{pin}`"),
                ));
            }
        }
        if let Some(url) = &manifest.data.url
            && manifest.data.sha256.is_none()
        {
            let line = text.find(url.as_str()).map_or(1, |at| line_of(text, at));
            return Err(invalid(
                line,
                "a data `url` needs a pinned `sha256`: lem only uses downloaded data it can verify"
                    .into(),
            ));
        }
        for m in &manifest.metrics {
            let line = text
                .find(&format!("\"{}\"", m.name))
                .map_or(1, |at| line_of(text, at));
            if let Some([lo, hi]) = m.range
                && !(lo.is_finite() && hi.is_finite() && lo < hi)
            {
                return Err(invalid(
                    line,
                    format!(
                        "metric `{}`: `range` must be [lowest, highest] with lowest < highest",
                        m.name
                    ),
                ));
            }
            if manifest.metrics.iter().filter(|o| o.name == m.name).count() > 1 {
                return Err(invalid(
                    line,
                    format!("metric `{}` is described twice", m.name),
                ));
            }
        }
        for scorer in &manifest.scorers {
            for name in &scorer.metrics {
                if !manifest.metrics.iter().any(|m| &m.name == name) {
                    let line = text
                        .find(&format!("\"{name}\""))
                        .map_or(1, |at| line_of(text, at));
                    return Err(invalid(
                        line,
                        format!(
                            "scorer `{}` returns metric `{name}`, which no [[metrics]] entry \
                             describes: add one (name, range, higher_is_better)",
                            scorer.plugin
                        ),
                    ));
                }
            }
        }
        manifest.base_dir = base_dir.to_owned();
        Ok(manifest)
    }

    /// The data file, resolved against the manifest's directory.
    pub fn data_path(&self) -> Option<PathBuf> {
        self.data.path.as_ref().map(|p| self.base_dir.join(p))
    }
}

pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_descriptions_read_in_order_and_bad_ones_name_the_line() {
        let text = "name = \"b\"\n[[metrics]]\nname = \"accuracy\"\nlabel = \"B %\"\nrange = [0, 1]\nunit = \"percent\"\n[[metrics]]\nname = \"harm\"\nhigher_is_better = false\n";
        let m = BenchmarkManifest::parse(text, Path::new("b.toml"), Path::new(".")).unwrap();
        assert_eq!(m.metrics.len(), 2);
        assert_eq!(m.metrics[0].unit, MetricUnit::Percent);
        assert_eq!(m.metrics[0].range, Some([0.0, 1.0]));
        assert!(!m.metrics[1].higher_is_better && m.metrics[1].range.is_none());
        let bad = "name = \"b\"\n[[metrics]]\nname = \"x\"\nrange = [3, 1]\n";
        let e = BenchmarkManifest::parse(bad, Path::new("b.toml"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b.toml:3:") && e.contains("lowest < highest"),
            "{e}"
        );
    }

    #[test]
    fn a_scorers_own_metrics_must_be_described() {
        let ok = "name = \"x\"\n[[scorers]]\nplugin = \"rubric-judge\"\nmetrics = [\"clarity\"]\n[[metrics]]\nname = \"clarity\"\nrange = [1, 10]\n";
        let m = BenchmarkManifest::parse(ok, Path::new("x.toml"), Path::new(".")).unwrap();
        assert_eq!(m.scorers[0].metrics, ["clarity"]);
        let bad = "name = \"x\"\n[[scorers]]\nplugin = \"rubric-judge\"\nmetrics = [\"clarity\"]\n";
        let e = BenchmarkManifest::parse(bad, Path::new("x.toml"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml:4:") && e.contains("no [[metrics]] entry"),
            "{e}"
        );
    }

    /// The example rubric that is only a manifest reads.
    #[test]
    fn the_example_rubric_manifest_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/clarity-rubric/clarity.toml");
        let m = BenchmarkManifest::load(&path).unwrap();
        assert_eq!(m.scorers[0].plugin, "rubric-judge");
        assert_eq!(m.scorers[0].metrics, ["clarity", "condescension"]);
        assert!(m.scorers[0].options["fields"].contains("condescension 0..4 lower"));
        assert!(m.data_path().unwrap().is_file());
    }

    #[test]
    fn parses_a_full_manifest() {
        let text = r#"
name = "gsm8k"
[data]
path = "data/gsm8k.jsonl"
[prompt]
field = "question"
system = "Solve it."
system_in_user_turn = true
[generation]
max_tokens = 512
[[scorers]]
plugin = "gsm8k"
"#;
        let m = BenchmarkManifest::parse(text, Path::new("b/gsm8k.toml"), Path::new("b")).unwrap();
        assert_eq!(m.name, "gsm8k");
        assert_eq!(m.generation.max_tokens, 512);
        assert_eq!(m.generation.temperature, 0.3);
        assert_eq!(m.scorers[0].plugin, "gsm8k");
        assert!(m.scorers[0].options.is_empty());
        assert_eq!(m.data_path().unwrap(), Path::new("b/data/gsm8k.jsonl"));
    }

    #[test]
    fn scorer_options_are_strings_in_key_order() {
        let text = "name = \"x\"\n[[scorers]]\nplugin = \"rubric\"\noptions = { reasoning = \"true\", guidance = \"Be strict.\" }\n[[scorers]]\nplugin = \"other\"\n[scorers.options]\nk = \"v\"\n";
        let m = BenchmarkManifest::parse(text, Path::new("x.toml"), Path::new(".")).unwrap();
        assert_eq!(
            m.scorers[0].option_pairs(),
            [
                ("guidance".to_string(), "Be strict.".to_string()),
                ("reasoning".to_string(), "true".to_string())
            ]
        );
        assert_eq!(m.scorers[1].options["k"], "v");
        // A value that is not a string names its line.
        let bad = "name = \"x\"\n[[scorers]]\nplugin = \"p\"\noptions = { n = 3 }\n";
        let e = BenchmarkManifest::parse(bad, Path::new("x.toml"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.toml:4:"), "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        let text = "name = \"x\"\n[generation]\nmax_tokens = \"many\"\n";
        let err = BenchmarkManifest::parse(text, Path::new("x.toml"), Path::new(".")).unwrap_err();
        assert!(err.to_string().starts_with("x.toml:3:"), "{err}");
        let text = "name = \"x\"\n\n[[scorers]]\nplugin = \"a\"\nsha256 = \"beef\"\n";
        let err = BenchmarkManifest::parse(text, Path::new("x.toml"), Path::new(".")).unwrap_err();
        assert!(err.to_string().starts_with("x.toml:5:"), "{err}");
        let err = BenchmarkManifest::parse(
            "name = \"x\"\nbogus = 1\n",
            Path::new("x.toml"),
            Path::new("."),
        );
        assert!(err.unwrap_err().to_string().contains("x.toml:2:"));
    }
}
