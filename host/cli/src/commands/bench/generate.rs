//! `lem bench generate`: prompt and decode speed and a batched benchmark run
//! on a real model, with llama.cpp measured in the same run as the peer.

use crate::commands::engine_args::ModelArgs;
use crate::table;
use anyhow::{Context, Result};
use lem_core::ChatMessage;
use lem_engine::{Event, Request, SamplingParams};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `lem bench generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Prompt length for the prompt-speed measurement.
    #[arg(long, default_value_t = 256)]
    prompt_tokens: usize,
    /// Tokens decoded for the decode-speed measurement.
    #[arg(long, default_value_t = 128)]
    decode_tokens: usize,
    /// GSM8K-style items for the whole-run measurement (0 skips it).
    #[arg(long, default_value_t = 50)]
    items: usize,
    /// Data for the whole run (default: $LEM_UPSTREAM/benchmarks/gsm8k.jsonl, else the shipped sample, repeated).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Max new tokens per item.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Batch size of the whole run.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Skip the llama.cpp peer.
    #[arg(long)]
    no_peer: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    let threads = crate::threads::count();
    let (engine, model_path) = args.model.load()?;
    let model = engine.model();
    let prompt: Vec<u32> = std::iter::once(2)
        .chain((0..args.prompt_tokens as u32 - 1).map(|i| 818 + i % 500))
        .collect();
    let mut cache = model.new_cache(args.prompt_tokens + args.decode_tokens + 1)?;
    let t = Instant::now();
    let mut logits = model.prefill(&prompt, &mut cache)?;
    let prompt_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..args.decode_tokens {
        let next = lem_engine::sampling::argmax(&logits.to_vec1::<f32>()?);
        logits = model.decode(&[next], &mut [&mut cache])?.squeeze(0)?;
    }
    let decode_s = t.elapsed().as_secs_f64();
    let mut ours = json!({
        "prompt_tok_s": args.prompt_tokens as f64 / prompt_s,
        "decode_tok_s": args.decode_tokens as f64 / decode_s,
    });

    let items = if args.items > 0 {
        item_prompts(&engine, &args)?
    } else {
        Vec::new()
    };
    if !items.is_empty() {
        let requests: Vec<Request> = items
            .iter()
            .enumerate()
            .map(|(i, ids)| Request {
                key: format!("item-{i}"),
                prompt: ids.clone(),
                params: SamplingParams {
                    temperature: 0.0,
                    max_tokens: args.max_tokens,
                    ..SamplingParams::default()
                },
                ..Request::default()
            })
            .collect();
        let (t, mut generated) = (Instant::now(), 0usize);
        engine.generate(requests, args.batch_size, false, &mut |e| {
            if let Event::Done(d) = e {
                generated += d.tokens.len();
            }
        })?;
        ours["items_seconds"] = json!(t.elapsed().as_secs_f64());
        ours["items_tokens"] = json!(generated);
    }

    let model_bytes = std::fs::metadata(&model_path).map(|m| m.len()).unwrap_or(0) as f64;
    let bandwidth = measure_bandwidth(threads);
    let peer = if args.no_peer {
        Err("skipped (--no-peer)".to_string())
    } else {
        llama_cpp(&model_path, threads, &args, &items)
    };
    let report = json!({
        "machine": super::machine::describe(),
        "cpu_kernels": lem_engine::cpu_kernels(),
        "threads": threads,
        "model": model_path.display().to_string(),
        "lem": ours,
        "llama_cpp": peer.clone().unwrap_or_else(|e| json!({"unavailable": e})),
        "memory_bandwidth_gb_s": bandwidth / 1e9,
        "model_bytes": model_bytes,
        "decode_ceiling_tok_s": bandwidth / model_bytes.max(1.0),
        "items": items.len(),
        "batch_size": args.batch_size,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let cell = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |x| format!("{x:.1}"))
    };
    let peer_value = peer.clone().unwrap_or(Value::Null);
    let rows = vec![
        vec![
            "prompt tok/s".into(),
            cell(&ours, "prompt_tok_s"),
            cell(&peer_value, "prompt_tok_s"),
        ],
        vec![
            "decode tok/s".into(),
            cell(&ours, "decode_tok_s"),
            cell(&peer_value, "decode_tok_s"),
        ],
        vec![
            format!(
                "{} items, s (lem batch {}, llama.cpp one at a time)",
                items.len(),
                args.batch_size
            ),
            cell(&ours, "items_seconds"),
            cell(&peer_value, "items_seconds"),
        ],
        vec![
            "tokens generated in the items run".into(),
            cell(&ours, "items_tokens"),
            cell(&peer_value, "items_tokens"),
        ],
    ];
    println!("{} threads, {}", threads, super::machine::describe());
    print!("{}", table::render(&["measure", "lem", "llama.cpp"], &rows));
    if let Err(e) = peer {
        println!("llama.cpp: {e}");
    }
    println!(
        "memory bandwidth {:.1} GB/s; {:.0} MB read per decoded token; decode ceiling {:.1} tok/s",
        bandwidth / 1e9,
        model_bytes / 1e6,
        bandwidth / model_bytes.max(1.0)
    );
    Ok(ExitCode::SUCCESS)
}

/// Chat prompts for the whole-run measurement, as the GSM8K manifest builds them.
fn item_prompts(engine: &lem_engine::Engine, args: &GenerateArgs) -> Result<Vec<Vec<u32>>> {
    let manifest = lem_eval::resolve::benchmark("gsm8k")?;
    let path = match &args.data {
        Some(p) => p.clone(),
        None => match std::env::var_os("LEM_UPSTREAM") {
            Some(up) => PathBuf::from(up).join("benchmarks/gsm8k.jsonl"),
            None => manifest.data_path().context("no data for the items run")?,
        },
    };
    let items = lem_eval::data::load_items(&manifest, Some(&path))?;
    let system = manifest.prompt.system.clone().unwrap_or_default();
    let mut out = Vec::new();
    for item in items.iter().cycle().take(args.items) {
        let question = item
            .value
            .record
            .get(&manifest.prompt.field)
            .and_then(Value::as_str)
            .unwrap_or_default();
        let message = ChatMessage {
            role: "user".into(),
            content: format!("{system}\n\n{question}"),
        };
        out.push(engine.encode_chat(&[message])?);
    }
    Ok(out)
}

/// Runs scripts/llama_cpp_peer.py with the same model, threads and prompts.
fn llama_cpp(
    model: &std::path::Path,
    threads: usize,
    args: &GenerateArgs,
    items: &[Vec<u32>],
) -> Result<Value, String> {
    let script = PathBuf::from(lem_bundled::BENCHMARKS_DIR).join("../scripts/llama_cpp_peer.py");
    let items_file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(
        items_file.path(),
        serde_json::to_vec(items).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&script)
        .arg("speed")
        .arg("--model")
        .arg(model)
        .args(["--threads", &threads.to_string()])
        .args([
            "--prompt-tokens",
            &args.prompt_tokens.to_string(),
            "--decode-tokens",
            &args.decode_tokens.to_string(),
        ])
        .args(["--max-tokens", &args.max_tokens.to_string()]);
    if !items.is_empty() {
        cmd.arg("--items").arg(items_file.path());
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").to_string();
        return Err(format!(
            "peer failed ({last}); install it with `pip install llama-cpp-python`"
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("peer printed no JSON: {e}"))
}

/// Read bandwidth: best of a few passes summing a 512 MiB buffer.
/// Bytes per second that `threads` threads read from memory, each summing
/// its share of a 512 MB buffer (best of three): the rate a decoder that
/// reads every weight once per token is bound by.
fn measure_bandwidth(threads: usize) -> f64 {
    let data = vec![1u64; 64 << 20];
    let share = data.len().div_ceil(threads.max(1));
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        std::thread::scope(|s| {
            for part in data.chunks(share) {
                s.spawn(move || {
                    let sum = part.iter().fold(0u64, |a, &b| a.wrapping_add(b));
                    std::hint::black_box(sum);
                });
            }
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    (data.len() * 8) as f64 / best
}
