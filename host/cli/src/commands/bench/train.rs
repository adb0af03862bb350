//! `lem bench train`: seconds per LoRA step and peak memory on a real
//! model, with PyTorch + PEFT measured in the same run as the peer
//! (`scripts/train_peft_peer.py`, same GGUF, same token batch, rank, alpha,
//! targets, learning rate and threads).

use crate::commands::engine_args::BaseModelArgs;
use crate::table;
use anyhow::{Context, Result, bail};
use lem_engine::DeviceKind;
use lem_train::data::{self, Batch, Example, Tokenized};
use lem_train::lora::{LoraSpec, parse_targets};
use lem_train::{Backward, TrainConfig, Trainer};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `lem bench train`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) base: BaseModelArgs,
    /// Rows per batch.
    #[arg(long, default_value_t = 2)]
    rows: usize,
    /// Tokens per row.
    #[arg(long, default_value_t = 256)]
    seq: usize,
    /// Steps measured on each side (the first is reported apart: it
    /// includes warm-up); lem runs half before the peer and half after.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    lora_rank: usize,
    /// LoRA alpha.
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    /// Projections adapted (in every block).
    #[arg(long, default_value = "attention")]
    lora_targets: String,
    /// Recompute activations in backward.
    #[arg(long)]
    grad_checkpoint: bool,
    /// Share of each row that carries loss (its end), as with --mask-prompt:
    /// 1 supervises every token; 0.5 masks the first half as a prompt.
    #[arg(long, default_value_t = 1.0)]
    supervised: f64,
    /// Text the batch is cut from (chat JSONL, rendered with the chat template).
    #[arg(long, default_value = "training/train.jsonl")]
    data: PathBuf,
    /// The Python with torch, transformers, peft and gguf for the peer.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Skip the PyTorch peer.
    #[arg(long)]
    no_peer: bool,
    /// Take lem's gradients through candle's autograd instead of its
    /// hand-written backward (to measure what the latter saves).
    #[arg(long)]
    autograd: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

const LEARNING_RATE: f64 = 1e-4;

pub fn run(args: Args) -> Result<ExitCode> {
    let threads = crate::threads::count();
    let path = lem_eval::resolve::model(&args.base.model)?;
    if !path.is_file() {
        bail!(
            "lem bench train compares against PyTorch loading the same GGUF file; pass a .gguf model"
        );
    }
    let (model, tokenizer, _) =
        lem_train::base::BaseModel::load(&path, args.base.tokenizer.as_deref(), DeviceKind::Cpu)?
            .into_gemma3()?;
    let rows = batch_rows(&tokenizer, &args)?;
    let layers = model.config().num_hidden_layers;
    let tmp = tempfile::tempdir()?;
    let config = TrainConfig {
        data: tmp.path().to_owned(),
        mask_prompt: false,
        iters: args.steps,
        batch_size: args.rows,
        learning_rate: LEARNING_RATE,
        adapter_path: tmp.path().join("adapter"),
        save_every: 0,
        resume_adapter_file: None,
        max_seq_length: args.seq,
        steps_per_report: 1,
        steps_per_eval: 0,
        val_batches: None,
        grad_checkpoint: args.grad_checkpoint,
        seed: 0,
        lora: LoraSpec {
            rank: args.lora_rank,
            alpha: args.lora_alpha,
            dropout: 0.0,
            targets: parse_targets(&args.lora_targets)?,
            num_layers: layers,
        },
        export_mlx: false,
        test: false,
        base_model_name: args.base.model.clone(),
        base_model_sha256: None,
        checkpoint: false,
    };
    let mut trainer = Trainer::new(model, tokenizer, config)?;
    let backward = match args.autograd {
        true => Backward::Autograd,
        false => trainer.default_backward(),
    };
    if !(args.supervised > 0.0 && args.supervised <= 1.0) {
        bail!("--supervised must be in (0, 1]");
    }
    let prompt = ((1.0 - args.supervised) * args.seq as f64).round() as usize;
    let examples: Vec<Tokenized> = rows
        .iter()
        .map(|ids| Tokenized {
            ids: ids.clone(),
            supervised: (0..ids.len()).map(|p| p > 0 && p >= prompt).collect(),
        })
        .collect();
    let batch = Batch::new(&examples.iter().collect::<Vec<_>>());
    // lem runs before and after the peer (half the steps each), so a
    // machine that speeds up or slows down during the run favours neither.
    let (mut losses, mut times) = (Vec::new(), Vec::new());
    let mut run_steps = |n: usize| -> Result<()> {
        let progress = crate::progress::progress_bar(n as u64, "lem steps");
        for _ in 0..n {
            let t = Instant::now();
            losses.push(trainer.step_with(&batch, backward)?);
            times.push(t.elapsed().as_secs_f64());
            progress.inc(1);
        }
        progress.finish_and_clear();
        Ok(())
    };
    let before = if args.no_peer {
        args.steps
    } else {
        args.steps.div_ceil(2)
    };
    run_steps(before)?;
    let peer = if args.no_peer {
        Err("skipped (--no-peer)".to_string())
    } else {
        eprintln!("running the PyTorch + PEFT peer ...");
        peft_peer(&path, threads, &args, &examples)
    };
    run_steps(args.steps - before)?;
    let ours = json!({
        "losses": losses,
        "seconds_per_step": times,
        "peak_rss_gb": lem_train::trainer::peak_memory_gb(),
        "trainable_parameters": trainer.lora().parameter_count(),
    });
    let tokens = (args.rows * args.seq) as f64;
    let report = json!({
        "machine": super::machine::describe(),
        "threads": threads,
        "model": path.display().to_string(),
        "shape": {"rows": args.rows, "seq": args.seq, "supervised": args.supervised, "rank": args.lora_rank, "alpha": args.lora_alpha, "targets": args.lora_targets, "learning_rate": LEARNING_RATE, "grad_checkpoint": args.grad_checkpoint},
        "backward": format!("{backward:?}").to_lowercase(),
        "lem": summarize(&ours, tokens),
        "pytorch_peft": peer.as_ref().map(|p| summarize(p, tokens)).unwrap_or_else(|e| json!({"unavailable": e})),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (a, b) = (&report["lem"], &report["pytorch_peft"]);
    let cell = |v: &Value, key: &str, digits: usize| {
        v.get(key)
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |x| format!("{x:.digits$}"))
    };
    let rows_out = [
        ("step-0 loss", "first_loss", 4),
        ("s/step (median after the first)", "seconds_per_step", 2),
        ("first step, s", "first_step_seconds", 2),
        ("tokens/s", "tokens_per_second", 1),
        ("peak RSS, GB", "peak_rss_gb", 2),
        ("trainable parameters", "trainable_parameters", 0),
    ]
    .iter()
    .map(|(label, key, d)| vec![label.to_string(), cell(a, key, *d), cell(b, key, *d)])
    .collect::<Vec<_>>();
    println!(
        "{} threads, {}; batch {}x{} ({:.0}% supervised), LoRA r={} alpha={} on {}; lem's backward: {:?}",
        threads,
        super::machine::describe(),
        args.rows,
        args.seq,
        args.supervised * 100.0,
        args.lora_rank,
        args.lora_alpha,
        args.lora_targets,
        backward
    );
    print!(
        "{}",
        table::render(&["measure", "lem", "PyTorch + PEFT"], &rows_out)
    );
    if let Err(e) = peer {
        println!("PyTorch + PEFT: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

/// First loss, first step time, median of the rest, tokens/s.
fn summarize(v: &Value, tokens: f64) -> Value {
    let times: Vec<f64> = v["seconds_per_step"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let mut rest: Vec<f64> = times.iter().skip(1).copied().collect();
    rest.sort_by(f64::total_cmp);
    let median = if rest.is_empty() {
        times.first().copied().unwrap_or(f64::NAN)
    } else {
        rest[rest.len() / 2]
    };
    let mut out = v.clone();
    out["first_loss"] = v["losses"][0].clone();
    out["first_step_seconds"] = json!(times.first());
    out["seconds_per_step"] = json!(median);
    out["tokens_per_second"] = json!(tokens / median);
    out["step_seconds"] = json!(times);
    out
}

/// `rows` windows of `seq` tokens cut from the chat-rendered data, each
/// example starting with BOS as the template renders it.
fn batch_rows(tokenizer: &lem_engine::tokenizer::Tokenizer, args: &Args) -> Result<Vec<Vec<u32>>> {
    let path = if args.data.is_file() {
        args.data.clone()
    } else {
        PathBuf::from(lem_bundled::BENCHMARKS_DIR)
            .join("..")
            .join(&args.data)
    };
    let examples = data::read_examples(&path)
        .with_context(|| format!("reading the bench text {}", path.display()))?;
    let mut ids = Vec::new();
    for e in examples.iter().cycle().take(examples.len() * 8) {
        let text = match e {
            Example::Chat(m) => tokenizer.training_texts(m)?.1,
            Example::Text(t) => t.clone(),
        };
        ids.extend(tokenizer.encode(&text)?);
        if ids.len() >= args.rows * args.seq {
            break;
        }
    }
    if ids.len() < args.rows * args.seq {
        bail!(
            "{} has too little text for a {}x{} batch",
            path.display(),
            args.rows,
            args.seq
        );
    }
    Ok(ids
        .chunks(args.seq)
        .take(args.rows)
        .map(<[u32]>::to_vec)
        .collect())
}

/// Runs scripts/train_peft_peer.py with the same model, batch and settings.
fn peft_peer(
    model: &std::path::Path,
    threads: usize,
    args: &Args,
    examples: &[Tokenized],
) -> Result<Value, String> {
    let script = PathBuf::from(lem_bundled::BENCHMARKS_DIR).join("../scripts/train_peft_peer.py");
    let batch = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let rows: Vec<&Vec<u32>> = examples.iter().map(|e| &e.ids).collect();
    // Hugging Face shifts labels itself: label p is the token at p, -100 if unsupervised.
    let labels: Vec<Vec<i64>> = examples
        .iter()
        .map(|e| {
            e.ids
                .iter()
                .zip(&e.supervised)
                .map(|(&id, &s)| if s { id as i64 } else { -100 })
                .collect()
        })
        .collect();
    std::fs::write(
        batch.path(),
        json!({"rows": rows, "labels": labels}).to_string(),
    )
    .map_err(|e| e.to_string())?;
    let targets = parse_targets(&args.lora_targets)
        .map_err(|e| e.to_string())?
        .join(",");
    let out = std::process::Command::new(&args.python)
        .arg(&script)
        .arg("--gguf")
        .arg(model)
        .arg("--batch")
        .arg(batch.path())
        .args(["--threads", &threads.to_string()])
        .args(["--steps", &args.steps.to_string()])
        .args(["--rank", &args.lora_rank.to_string()])
        .args(["--alpha", &args.lora_alpha.to_string()])
        .args(["--targets", &targets])
        .args(["--lr", &LEARNING_RATE.to_string()])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args.python))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").to_string();
        return Err(format!(
            "peer failed ({last}); it needs `pip install torch transformers peft gguf` (point --python at that Python)"
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("peer printed no JSON: {e}"))
}
