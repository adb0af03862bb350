//! `lem generate`: answer every item of a benchmark with a model; resumable.

use super::engine_args::{ModelArgs, SamplingArgs};
use anyhow::{Context, Result, bail};
use lem_core::{AppendStore, ResponseRecord};
use lem_engine::{Event, Request};
use lem_plugin_host::benchmark::{Benchmark, PromptConfig};
use lem_plugin_host::scorer::PluginItem;
use lem_plugin_host::{Runtime, RuntimeConfig};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `lem generate`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Shipped benchmark name or manifest path.
    #[arg(long)]
    benchmark: String,
    /// Benchmark data (JSONL); defaults to the manifest's data file.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Only the first N items.
    #[arg(long)]
    limit: Option<usize>,
    /// Responses file; appended to and resumed (items already there are skipped).
    #[arg(long)]
    out: PathBuf,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// The model's name in the records (default: the model file's name).
    #[arg(long)]
    model_name: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let manifest = crate::resolve::benchmark(&args.benchmark)?;
    let mut items = crate::data::load_items(&manifest, args.data.as_deref())?;
    if let Some(limit) = args.limit {
        items.truncate(limit);
    }
    let (mut store, opened) = AppendStore::open(&args.out)?;
    if opened.repaired_bytes > 0 {
        eprintln!(
            "{}: cut off a torn last line ({} bytes) left by an interrupted run; that item will be generated again",
            args.out.display(),
            opened.repaired_bytes
        );
    }
    let pending: Vec<_> = items
        .into_iter()
        .filter(|i| !store.contains(&i.value.id))
        .collect();
    if pending.is_empty() {
        eprintln!(
            "{}: all {} items already done",
            args.out.display(),
            store.len()
        );
        return Ok(ExitCode::SUCCESS);
    }

    // Prompts come from the benchmark's plugin, in the sandbox.
    let runtime = Runtime::new(RuntimeConfig::with_default_cache())?;
    let source = crate::resolve::plugin(&manifest.prompt.plugin, &manifest.base_dir)?;
    let mut policy = lem_core::Policy::default();
    policy.sha256 = manifest.prompt.sha256.clone();
    let benchmark =
        Benchmark::load(&runtime, &source, policy).context("loading the benchmark plugin")?;
    let prompt_config = PromptConfig {
        prompt_field: manifest.prompt.field.clone(),
        system: manifest.prompt.system.clone(),
        system_in_user_turn: manifest.prompt.system_in_user_turn,
        options: Vec::new(),
    };

    let (engine, model_path) = args.model.load()?;
    let model_name = args.model_name.clone().unwrap_or_else(|| {
        model_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    });
    let model_sha256 = if model_path.is_file() {
        Some(
            lem_core::hash::sha256_file(&model_path)
                .with_context(|| format!("hashing {}", model_path.display()))?,
        )
    } else {
        None
    };
    let params = args.sampling.params(
        manifest.generation.temperature,
        manifest.generation.max_tokens as usize,
    );

    let mut requests = Vec::with_capacity(pending.len());
    let mut asked: HashMap<String, String> = HashMap::new();
    for item in &pending {
        let at = || format!("item `{}` (data line {})", item.value.id, item.line);
        let messages = benchmark
            .prompt(
                &PluginItem::new(&manifest.name, &item.value),
                &prompt_config,
            )
            .with_context(|| format!("{}: the benchmark plugin could not make a prompt", at()))?;
        let prompt = engine.encode_chat(&messages).with_context(at)?;
        let question = messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.clone())
            .unwrap_or_default();
        asked.insert(item.value.id.clone(), question);
        requests.push(Request {
            key: item.value.id.clone(),
            prompt,
            params: params.clone(),
        });
    }

    let total = requests.len() as u64;
    let progress = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(
            "generating {bar:30} {pos}/{len} items {msg} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let (mut tokens_out, mut failures, mut write_error) = (0usize, 0usize, None);
    engine.generate(requests, args.batch_size, false, &mut |event| match event {
        Event::Done(done) => {
            tokens_out += done.tokens.len();
            let record = ResponseRecord {
                id: done.key.clone(),
                benchmark: manifest.name.clone(),
                model: model_name.clone(),
                prompt: asked.remove(&done.key).unwrap_or_default(),
                response: done.text.clone(),
                elapsed_seconds: done.elapsed.as_secs_f64(),
                extra: json!({
                    "tokens_in": done.prompt_tokens,
                    "tokens_out": done.tokens.len(),
                    "finish_reason": done.finish.as_str(),
                    "sampling": params,
                    "model_sha256": model_sha256,
                    "kernel": "none",
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            };
            if write_error.is_none()
                && let Err(e) = store.append(&done.key, &record)
            {
                write_error = Some(e);
            }
            progress.inc(1);
            progress.set_message(format!(
                "{:.1} tok/s",
                tokens_out as f64 / started.elapsed().as_secs_f64().max(1e-9)
            ));
        }
        Event::Failed { key, error } => {
            failures += 1;
            progress.suspend(|| eprintln!("item `{key}`: {error}"));
            progress.inc(1);
        }
        Event::Text { .. } => {}
    })?;
    progress.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e.into());
    }
    eprintln!(
        "{}: {} items written ({} generated now, {tokens_out} tokens in {:.1}s, {:.1} tok/s)",
        args.out.display(),
        store.len(),
        total as usize - failures,
        started.elapsed().as_secs_f64(),
        tokens_out as f64 / started.elapsed().as_secs_f64().max(1e-9),
    );
    if failures > 0 {
        bail!(
            "{failures} items could not be generated (see above); fix them and run again to fill them in"
        );
    }
    Ok(ExitCode::SUCCESS)
}
