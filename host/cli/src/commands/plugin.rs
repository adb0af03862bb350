//! `lem plugin ...`: look inside plugins.

use crate::table;
use anyhow::{Context, Result};
use lem_plugin_host::{MetricDescriptor, PluginInfo, Runtime, RuntimeConfig, World, inspect};
use std::path::PathBuf;
use std::process::ExitCode;

/// `lem plugin` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Show a plugin's world, contract version, name, metrics, digest and imports.
    Inspect {
        /// The .wasm component, or a shipped plugin's name.
        plugin: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the shipped plugins.
    List,
}

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Inspect { plugin, json } => inspect_plugin(&plugin, json),
        Command::List => {
            for name in lem_bundled::plugin_names() {
                println!("{name}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(serde::Serialize)]
struct Report {
    file: String,
    world: World,
    wit_version: String,
    name: String,
    version: String,
    description: String,
    /// The metrics' names.
    metrics: Vec<String>,
    /// How the plugin describes them (0.2.0 and later; a 0.1.0 plugin's
    /// are names only, `described: false`).
    metric_descriptors: Vec<MetricDescriptor>,
    needs_judge: bool,
    sha256: String,
    size_bytes: usize,
    imports: Vec<String>,
}

fn inspect_plugin(reference: &str, json: bool) -> Result<ExitCode> {
    let source = lem_eval::resolve::plugin(reference, &PathBuf::from("."))?;
    let component = inspect::inspect(&source.label, &source.bytes)?;
    // Describing runs the plugin, sandboxed, under the default limits and
    // with nothing granted, whatever it imports: vetting a plugin must not
    // hand it a clock, randomness, files or the network.
    let runtime = Runtime::new(RuntimeConfig::with_default_cache())?;
    let describe = || runtime.describe_untrusted(&source, component.world);
    let (info, describe_error) = match describe() {
        Ok(info) => (info, None),
        Err(e) => (PluginInfo::default(), Some(e.to_string())),
    };
    let metrics = info.metric_names().map(str::to_string).collect();
    let report = Report {
        file: source.label.clone(),
        world: component.world,
        wit_version: component.wit_version.clone(),
        name: info.name,
        version: info.version,
        description: info.description,
        metrics,
        metric_descriptors: info.metrics,
        needs_judge: info.needs_judge,
        sha256: lem_core::hash::sha256_hex(&source.bytes),
        size_bytes: source.bytes.len(),
        imports: component.imports.clone(),
    };
    if json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(e) = &describe_error {
            value["describe_error"] = e.clone().into();
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&value).context("printing JSON")?
        );
    } else {
        let mut rows = vec![
            vec!["file".into(), report.file],
            vec!["world".into(), report.world.to_string()],
            vec!["wit".into(), format!("lem:plugin@{}", report.wit_version)],
            vec!["name".into(), report.name],
            vec!["version".into(), report.version],
            vec!["description".into(), report.description],
            vec![
                "metrics".into(),
                report
                    .metric_descriptors
                    .iter()
                    .map(describe_metric)
                    .collect::<Vec<_>>()
                    .join(", "),
            ],
            vec!["needs judge".into(), report.needs_judge.to_string()],
            vec!["sha256".into(), report.sha256],
            vec!["size".into(), format!("{} bytes", report.size_bytes)],
        ];
        for (i, import) in report.imports.iter().enumerate() {
            rows.push(vec![
                if i == 0 {
                    "imports".into()
                } else {
                    String::new()
                },
                import.clone(),
            ]);
        }
        print!("{}", table::render(&["field", "value"], &rows));
        if let Some(e) = describe_error {
            println!("describe failed: {}", crate::text::escape(&e));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A metric as the table shows it: its name, then what the plugin says of
/// it, e.g. `truthfulness (1 to 10)` or `harm (lower is better)`.
fn describe_metric(m: &MetricDescriptor) -> String {
    let mut said = Vec::new();
    if let Some([lo, hi]) = m.range {
        said.push(format!("{lo} to {hi}"));
    }
    if m.unit == lem_core::MetricUnit::Percent {
        said.push("percent".into());
    }
    if m.described && !m.higher_is_better {
        said.push("lower is better".into());
    }
    if said.is_empty() {
        m.name.clone()
    } else {
        format!("{} ({})", m.name, said.join(", "))
    }
}
