//! `lem train`: LoRA fine-tuning with mlx_lm's flags, so the LEK recipe's
//! commands carry over one-to-one; adapters are written in the PEFT layout.

use super::engine_args::BaseModelArgs;
use anyhow::{Context, Result, bail};
use lem_engine::DeviceKind;
use lem_train::base::BaseModel;
use lem_train::lora::{LoraSpec, parse_targets};
use lem_train::{TrainConfig, TrainEvent};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `lem train` (mlx_lm's `lora` flags plus `--lora-*`).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) base: BaseModelArgs,
    /// cpu, cuda or metal.
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
    /// Train (without it, only --test runs).
    #[arg(long)]
    train: bool,
    /// Report the loss on DATA/test.jsonl (after training, or of --adapter-path alone).
    #[arg(long)]
    test: bool,
    /// Directory with train.jsonl, valid.jsonl (optional) and test.jsonl (optional).
    #[arg(long)]
    data: PathBuf,
    /// Only `lora` is supported.
    #[arg(long, default_value = "lora")]
    fine_tune_type: String,
    /// Loss on the assistant's answer only, not on the prompt.
    #[arg(long)]
    mask_prompt: bool,
    /// Optimizer steps.
    #[arg(long, default_value_t = 1000)]
    iters: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 1e-5)]
    learning_rate: f64,
    /// Where the adapter is saved (adapter_config.json, adapter_model.safetensors).
    #[arg(long, default_value = "adapters")]
    adapter_path: PathBuf,
    /// Save the adapter every N steps (and at the end).
    #[arg(long, default_value_t = 100)]
    save_every: usize,
    /// Start from this adapter (a directory or its adapter_model.safetensors):
    /// the second stage of a curriculum.
    #[arg(long)]
    resume_adapter_file: Option<PathBuf>,
    /// Adapt the last N blocks (-1: all).
    #[arg(long, default_value_t = 16, allow_negative_numbers = true)]
    num_layers: i64,
    /// Longer examples are truncated to this many tokens (and counted).
    #[arg(long, default_value_t = 2048)]
    max_seq_length: usize,
    /// Report the training loss every N steps.
    #[arg(long, default_value_t = 10)]
    steps_per_report: usize,
    /// Validate every N steps (0: only at the end).
    #[arg(long, default_value_t = 200)]
    steps_per_eval: usize,
    /// Validation batches per evaluation (-1: the whole set).
    #[arg(long, default_value_t = 25, allow_negative_numbers = true)]
    val_batches: i64,
    /// Recompute activations in backward to save memory (needs --lora-dropout 0).
    #[arg(long)]
    grad_checkpoint: bool,
    /// Seed of the adapter initialisation and batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    lora_rank: usize,
    /// LoRA alpha (scale = alpha / rank).
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    /// Dropout on the adapter input.
    #[arg(long, default_value_t = 0.0)]
    lora_dropout: f32,
    /// Projections to adapt: names (q_proj,...,down_proj) or attention, mlp, all.
    #[arg(long, default_value = "all")]
    lora_targets: String,
    /// Also write the mlx_lm adapter layout into ADAPTER_PATH/mlx.
    #[arg(long)]
    export_mlx: bool,
    /// Save a resumable checkpoint (adapter weights, optimizer state, step)
    /// after every step, atomically, into ADAPTER_PATH/checkpoint.safetensors,
    /// and continue from it when one is there: a run killed at any point
    /// resumes losing at most the step in flight, and ends with the same
    /// adapter as an uninterrupted run (needs --lora-dropout 0; a checkpoint
    /// of other flags or data is refused).
    #[arg(long)]
    checkpoint: bool,
    /// Print events as JSON lines on stdout instead of a progress bar.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.fine_tune_type != "lora" {
        bail!(
            "--fine-tune-type {}: lem trains LoRA adapters only (`lora`)",
            args.fine_tune_type
        );
    }
    if !args.train && !args.test {
        bail!("nothing to do: pass --train (and/or --test)");
    }
    let path = lem_eval::resolve::model(&args.base.model)?;
    let base = BaseModel::load(&path, args.base.tokenizer.as_deref(), args.device)?;
    let layers = base.num_layers();
    let num_layers = if args.num_layers < 0 {
        layers
    } else {
        args.num_layers as usize
    };
    if num_layers > layers {
        bail!("--num-layers {num_layers}: the model has {layers} blocks");
    }
    let resume = match (&args.resume_adapter_file, args.train) {
        (Some(p), _) => Some(p.clone()),
        // --test alone evaluates the adapter at --adapter-path.
        (None, false) => Some(args.adapter_path.clone()),
        (None, true) => None,
    };
    let sha = base.sha256().context("hashing the base model")?;
    let config = TrainConfig {
        data: args.data.clone(),
        mask_prompt: args.mask_prompt,
        iters: if args.train { args.iters } else { 1 },
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        adapter_path: args.adapter_path.clone(),
        save_every: args.save_every,
        resume_adapter_file: resume,
        max_seq_length: args.max_seq_length,
        steps_per_report: args.steps_per_report,
        steps_per_eval: args.steps_per_eval,
        val_batches: usize::try_from(args.val_batches).ok(),
        grad_checkpoint: args.grad_checkpoint,
        seed: args.seed,
        lora: LoraSpec {
            rank: args.lora_rank,
            alpha: args.lora_alpha,
            dropout: args.lora_dropout,
            targets: parse_targets(&args.lora_targets)?,
            num_layers,
        },
        export_mlx: args.export_mlx,
        test: args.test,
        base_model_name: args.base.model.clone(),
        base_model_sha256: Some(sha),
        checkpoint: args.train && args.checkpoint,
    };
    let mut trainer = base.trainer(config)?;
    if !args.train {
        let test_loss = trainer.test_loss()?;
        print_event(&TrainEvent::Test { test_loss }, args.json);
        return Ok(ExitCode::SUCCESS);
    }
    let progress = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        crate::progress::progress_bar(args.iters as u64, "training")
    };
    let summary = trainer.train(&mut |event| {
        if let TrainEvent::Resumed { iteration, .. } = &event {
            progress.set_position(*iteration as u64);
        }
        if let TrainEvent::Step { loss, .. } = &event {
            progress.inc(1);
            progress.set_message(format!("loss {loss:.3}"));
            if !args.json {
                return;
            }
        }
        progress.suspend(|| print_event(&event, args.json));
    })?;
    progress.finish_and_clear();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"event": "done", "summary": summary})
        );
    } else {
        eprintln!(
            "Done: {} steps{}, loss {:.3} -> {:.3}, {:.2} s/step, {:.1} tokens/s; adapter in {}",
            summary.iterations,
            match summary.resumed_at {
                0 => String::new(),
                n => format!(" (after {n} of an earlier run)"),
            },
            summary.first_loss,
            summary.final_train_loss,
            summary.seconds_per_step,
            summary.tokens_per_second,
            args.adapter_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One event: a JSON line on stdout, or mlx_lm's wording on stderr.
fn print_event(event: &TrainEvent, json: bool) {
    if json {
        println!("{}", serde_json::json!(event));
        return;
    }
    match event {
        TrainEvent::Started {
            train_examples,
            valid_examples,
            truncated,
            dropped,
            trainable_parameters,
            adapted_modules,
        } => {
            eprintln!(
                "Training on {train_examples} examples ({valid_examples} validation); {trainable_parameters} trainable parameters in {adapted_modules} adapters"
            );
            if *truncated > 0 {
                eprintln!(
                    "warning: {truncated} examples were longer than --max-seq-length and were truncated"
                );
            }
            if *dropped > 0 {
                eprintln!(
                    "warning: {dropped} examples had nothing left to learn after truncation and were dropped"
                );
            }
        }
        TrainEvent::Resumed { iteration, path } => {
            eprintln!("Resuming after iter {iteration} from {}", path.display())
        }
        TrainEvent::Step { .. } => {}
        TrainEvent::Report {
            iteration,
            train_loss,
            learning_rate,
            iterations_per_second,
            tokens_per_second,
            seconds_per_step,
            trained_tokens,
            peak_memory_gb,
        } => eprintln!(
            "Iter {iteration}: Train loss {train_loss:.3}, Learning Rate {learning_rate:.3e}, It/sec {iterations_per_second:.3} ({seconds_per_step:.2} s/step), Tokens/sec {tokens_per_second:.1}, Trained Tokens {trained_tokens}{}",
            peak_memory_gb.map_or(String::new(), |g| format!(", Peak mem {g:.2} GB"))
        ),
        TrainEvent::Eval {
            iteration,
            val_loss,
            seconds,
        } => eprintln!("Iter {iteration}: Val loss {val_loss:.3}, Val took {seconds:.1}s"),
        TrainEvent::Saved { iteration, path } => eprintln!(
            "Iter {iteration}: Saved adapter weights to {}",
            path.display()
        ),
        TrainEvent::Test { test_loss } => eprintln!(
            "Test loss {test_loss:.3}, Test ppl {:.3}",
            (*test_loss as f64).exp()
        ),
    }
}
