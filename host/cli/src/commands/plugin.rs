//! `lem plugin ...`: look inside plugins.

use crate::table;
use anyhow::{Context, Result};
use lem_plugin_host::{PluginInfo, Runtime, RuntimeConfig, World, inspect};
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
    metrics: Vec<String>,
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
    let report = Report {
        file: source.label.clone(),
        world: component.world,
        wit_version: component.wit_version.clone(),
        name: info.name,
        version: info.version,
        description: info.description,
        metrics: info.metrics,
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
            vec!["metrics".into(), report.metrics.join(", ")],
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
