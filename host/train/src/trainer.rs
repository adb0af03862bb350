//! The training loop: batches in, LoRA updates out, with reports, evals and
//! saves on the mlx_lm schedule (`--steps-per-report`, `--steps-per-eval`,
//! `--save-every`), and with `--checkpoint` a resumable checkpoint after
//! every step ([`crate::checkpoint`]).

use crate::TrainError;
use crate::checkpoint;
use crate::data::{self, Batch, DataDir, TokenizeReport, Tokenized};
use crate::lora::{LoraSet, LoraSpec};
use crate::loss::output_loss;
use crate::optim::{AdamW, AdamWParams};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use lem_engine::adapter::Adapter;
use lem_engine::tokenizer::Tokenizer;
use lem_engine::train::{Gemma3, LayerTape, TrainableModel};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Everything one `lem train` run needs, named as mlx_lm names its flags.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// The data directory (`train.jsonl`, optional `valid.jsonl`, `test.jsonl`).
    pub data: PathBuf,
    /// Loss on the last (assistant) message only.
    pub mask_prompt: bool,
    /// Optimizer steps.
    pub iters: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Where the adapter is written.
    pub adapter_path: PathBuf,
    /// Save every this many steps (and at the end).
    pub save_every: usize,
    /// Start from this adapter's weights.
    pub resume_adapter_file: Option<PathBuf>,
    /// Examples are cut to this many tokens.
    pub max_seq_length: usize,
    /// Report the training loss every this many steps.
    pub steps_per_report: usize,
    /// Validate every this many steps (0: never; also at the end if valid.jsonl exists).
    pub steps_per_eval: usize,
    /// Validation batches per evaluation (`None`: the whole set).
    pub val_batches: Option<usize>,
    /// Recompute each block's activations in backward instead of keeping them.
    pub grad_checkpoint: bool,
    /// Seed of initialisation and batch order.
    pub seed: u64,
    /// The adapters.
    pub lora: LoraSpec,
    /// Also write the mlx_lm layout (into `adapter_path/mlx`).
    pub export_mlx: bool,
    /// Also report the loss on `test.jsonl` at the end.
    pub test: bool,
    /// Name recorded as `base_model_name_or_path`.
    pub base_model_name: String,
    /// The base model's sha256, recorded in the adapter config.
    pub base_model_sha256: Option<String>,
    /// Save a resumable checkpoint (adapter weights, optimizer state, step)
    /// after every step, atomically, into `adapter_path/checkpoint.safetensors`,
    /// and continue from it when one is there: a run killed at any point
    /// resumes losing at most the step in flight, and ends with the same
    /// adapter as an uninterrupted run.
    ///
    /// The checkpoint records a fingerprint of everything that determines
    /// the updates (iters, batch size, learning rate, seed, max sequence
    /// length, mask_prompt, grad_checkpoint, the LoRA spec, and the sha256 of
    /// the train data, the base model and the adapter resumed from); one
    /// from another run is an error, never used. It needs `lora.dropout` 0
    /// (dropout masks are random and not saved). It is removed once the
    /// last step's adapter is saved. A resumed run reports only the steps
    /// it runs (events and [`TrainSummary`]), after a [`TrainEvent::Resumed`].
    /// Resume on the device it was written on: the arithmetic of another
    /// continues the run correctly but not bit for bit.
    pub checkpoint: bool,
}

/// What the loop reports as it goes (`--json` prints these one per line).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    /// Data read and adapters attached.
    Started {
        /// Training examples kept.
        train_examples: usize,
        /// Validation examples kept.
        valid_examples: usize,
        /// Examples cut to --max-seq-length.
        truncated: usize,
        /// Examples dropped (nothing left to learn after truncation).
        dropped: usize,
        /// Trainable parameters.
        trainable_parameters: usize,
        /// Adapted projections.
        adapted_modules: usize,
    },
    /// A checkpoint was restored (`--checkpoint`): steps up to
    /// `iteration` were done by an earlier run and are not run or reported
    /// again.
    Resumed {
        /// The last step done.
        iteration: usize,
        /// The checkpoint file.
        path: PathBuf,
    },
    /// One step finished (with `--checkpoint`, after its checkpoint was written).
    Step {
        /// 1-based step.
        iteration: usize,
        /// Its loss.
        loss: f32,
    },
    /// The training loss since the last report.
    Report {
        /// Step.
        iteration: usize,
        /// Mean loss per supervised token since the last report.
        train_loss: f32,
        /// Learning rate.
        learning_rate: f64,
        /// Steps per second.
        iterations_per_second: f64,
        /// Tokens (padding excluded) per second.
        tokens_per_second: f64,
        /// Seconds per step.
        seconds_per_step: f64,
        /// Tokens trained on so far.
        trained_tokens: usize,
        /// Peak resident memory of the process, GB (Linux).
        peak_memory_gb: Option<f64>,
    },
    /// A validation pass.
    Eval {
        /// Step (0: before training).
        iteration: usize,
        /// Mean loss per supervised token.
        val_loss: f32,
        /// How long it took.
        seconds: f64,
    },
    /// The adapter was written.
    Saved {
        /// Step.
        iteration: usize,
        /// The directory.
        path: PathBuf,
    },
    /// The test-set loss.
    Test {
        /// Mean loss per supervised token.
        test_loss: f32,
    },
}

/// How a run ended. A run resumed from a checkpoint covers only the steps
/// it ran itself (`resumed_at + 1 ..= iters`): its losses, timings and token
/// counts say nothing of the steps before.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Steps run (by this call).
    pub iterations: usize,
    /// The step a checkpoint resumed from (0: started from the beginning).
    pub resumed_at: usize,
    /// The first step's loss (NaN when no step was left to run).
    pub first_loss: f32,
    /// The last report's training loss.
    pub final_train_loss: f32,
    /// The last validation loss, if any.
    pub final_val_loss: Option<f32>,
    /// Mean seconds per step.
    pub seconds_per_step: f64,
    /// Mean tokens per second.
    pub tokens_per_second: f64,
    /// Peak resident memory, GB.
    pub peak_memory_gb: Option<f64>,
}

/// How a step's gradients are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backward {
    /// lem's hand-written backward ([`Gemma3::layer_backward`]): the CPU's.
    Taped,
    /// candle's autograd: other devices, and the reference in tests.
    Autograd,
}

/// A model with adapters attached, ready to train: any family that
/// implements [`TrainableModel`] (Gemma 3 by default).
pub struct Trainer<M: TrainableModel = Gemma3> {
    model: M,
    tokenizer: Tokenizer,
    lora: LoraSet,
    opt: AdamW,
    output: Tensor,
    device: Device,
    config: TrainConfig,
}

impl<M: TrainableModel> Trainer<M> {
    /// Attaches adapters to `model` (dense, as `Model::load_with(.., true)`
    /// loads it) and, when asked, loads the weights to resume from.
    pub fn new(
        mut model: M,
        tokenizer: Tokenizer,
        config: TrainConfig,
    ) -> Result<Self, TrainError> {
        validate(&config)?;
        let output = model.output_weight()?;
        let device = output.device().clone();
        let lora = LoraSet::attach(&mut model, config.lora.clone(), config.seed)?;
        if let Some(path) = &config.resume_adapter_file {
            let adapter = Adapter::load(path, &device)?;
            lora.resume_from(&adapter)?;
        }
        let params = AdamWParams {
            lr: config.learning_rate,
            weight_decay: 0.0,
            ..AdamWParams::default()
        };
        let opt = AdamW::new(lora.vars(), params)?;
        Ok(Trainer {
            model,
            tokenizer,
            lora,
            opt,
            output,
            device,
            config,
        })
    }

    /// The model with its (live) adapters.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The adapters.
    pub fn lora(&self) -> &LoraSet {
        &self.lora
    }

    /// The adapters as they are now.
    pub fn adapter(&self) -> Adapter {
        self.lora.to_adapter(
            &self.config.base_model_name,
            self.config.base_model_sha256.clone(),
        )
    }

    /// Reads and tokenizes one data file.
    pub fn load_examples(
        &self,
        path: &std::path::Path,
    ) -> Result<(Vec<Tokenized>, TokenizeReport), TrainError> {
        let examples = data::read_examples(path)?;
        data::tokenize(
            &examples,
            &self.tokenizer,
            self.config.mask_prompt,
            self.config.max_seq_length,
            self.model.vocab_size(),
            path,
        )
    }

    /// The optimizer (its state can be exported and restored).
    pub fn optimizer(&self) -> &AdamW {
        &self.opt
    }

    /// Where `--checkpoint` keeps the resumable state.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.config.adapter_path.join(checkpoint::FILE)
    }

    /// Runs the configured training, calling `events` as it goes. With
    /// `checkpoint` set, first continues from the checkpoint if there is one
    /// (see [`TrainConfig::checkpoint`]).
    pub fn train(
        &mut self,
        events: &mut dyn FnMut(TrainEvent),
    ) -> Result<TrainSummary, TrainError> {
        let files = DataDir::locate(&self.config.data)?;
        let checkpoint_path = self.checkpoint_path();
        let fingerprint = match self.config.checkpoint {
            true => Some(checkpoint::fingerprint(&self.config, &files.train)?),
            false => {
                if checkpoint_path.exists() {
                    tracing::warn!(
                        path = %checkpoint_path.display(),
                        "a checkpoint is there but --checkpoint is not set: starting from the beginning"
                    );
                }
                None
            }
        };
        let restored = match &fingerprint {
            Some(fp) if checkpoint_path.exists() => {
                let names: Vec<String> =
                    self.lora.named_vars().into_iter().map(|(n, _)| n).collect();
                Some(checkpoint::read(
                    &checkpoint_path,
                    fp,
                    &names,
                    &self.device,
                )?)
            }
            _ => None,
        };
        let (train, mut report) = self.load_examples(&files.train)?;
        if train.len() < self.config.batch_size {
            return Err(TrainError::BadData {
                path: files.train.clone(),
                reason: format!(
                    "{} usable examples, fewer than --batch-size {}",
                    train.len(),
                    self.config.batch_size
                ),
            });
        }
        let valid = match &files.valid {
            Some(p) => {
                let (v, r) = self.load_examples(p)?;
                report.truncated += r.truncated;
                report.dropped += r.dropped;
                v
            }
            None => Vec::new(),
        };
        events(TrainEvent::Started {
            train_examples: train.len(),
            valid_examples: valid.len(),
            truncated: report.truncated,
            dropped: report.dropped,
            trainable_parameters: self.lora.parameter_count(),
            adapted_modules: self.lora.vars().len() / 2,
        });
        let mut order = BatchOrder::new(&train, self.config.batch_size, self.config.seed);
        let mut start = 0;
        if let Some(r) = restored {
            self.restore(&r).map_err(|e| TrainError::Checkpoint {
                path: checkpoint_path.clone(),
                reason: format!(
                    "cannot restore ({e}); delete it to start this run from the beginning, or choose another --adapter-path"
                ),
            })?;
            // The batch order is a function of the steps taken: replay them.
            for _ in 0..r.iteration {
                order.next();
            }
            start = r.iteration;
            events(TrainEvent::Resumed {
                iteration: start,
                path: checkpoint_path.clone(),
            });
        }
        let started = Instant::now();
        let (mut window_loss, mut window_tokens, mut window_steps) = (0f64, 0usize, 0usize);
        let mut window_supervised = 0usize;
        let mut window_start = Instant::now();
        let (mut trained_tokens, mut first_loss, mut final_train_loss) = (0usize, None, f32::NAN);
        let mut final_val_loss = None;
        for it in start + 1..=self.config.iters {
            let members = order.next();
            let batch = Batch::new(&members.iter().map(|&i| &train[i]).collect::<Vec<_>>());
            let tokens: usize = members.iter().map(|&i| train[i].ids.len()).sum();
            let loss = self.step(&batch)?;
            if let Some(fp) = &fingerprint {
                checkpoint::write(
                    &checkpoint_path,
                    it,
                    &self.lora.named_vars(),
                    &self.opt.state(),
                    fp,
                )?;
            }
            first_loss.get_or_insert(loss);
            events(TrainEvent::Step {
                iteration: it,
                loss,
            });
            window_loss += loss as f64 * batch.targets.len() as f64;
            window_tokens += tokens;
            trained_tokens += tokens;
            window_steps += 1;
            window_supervised += batch.targets.len();
            if it % self.config.steps_per_report.max(1) == 0 || it == self.config.iters {
                let secs = window_start.elapsed().as_secs_f64();
                final_train_loss = (window_loss / window_supervised.max(1) as f64) as f32;
                events(TrainEvent::Report {
                    iteration: it,
                    train_loss: final_train_loss,
                    learning_rate: self.opt.learning_rate(),
                    iterations_per_second: window_steps as f64 / secs,
                    tokens_per_second: window_tokens as f64 / secs,
                    seconds_per_step: secs / window_steps as f64,
                    trained_tokens,
                    peak_memory_gb: peak_memory_gb(),
                });
                (window_loss, window_tokens, window_steps) = (0.0, 0, 0);
                window_supervised = 0;
                window_start = Instant::now();
            }
            let eval_now = self.config.steps_per_eval > 0 && it % self.config.steps_per_eval == 0;
            if !valid.is_empty() && (eval_now || it == self.config.iters) {
                let t = Instant::now();
                let v = self.evaluate(&valid, self.config.val_batches)?;
                final_val_loss = Some(v);
                events(TrainEvent::Eval {
                    iteration: it,
                    val_loss: v,
                    seconds: t.elapsed().as_secs_f64(),
                });
            }
            if (self.config.save_every > 0 && it % self.config.save_every == 0)
                || it == self.config.iters
            {
                self.save(it)?;
                events(TrainEvent::Saved {
                    iteration: it,
                    path: self.config.adapter_path.clone(),
                });
            }
        }
        let iters = self.config.iters;
        if start == iters {
            // Killed after the last step's checkpoint: its evaluation and
            // save may not have happened.
            if !valid.is_empty() {
                let t = Instant::now();
                let v = self.evaluate(&valid, self.config.val_batches)?;
                final_val_loss = Some(v);
                events(TrainEvent::Eval {
                    iteration: iters,
                    val_loss: v,
                    seconds: t.elapsed().as_secs_f64(),
                });
            }
            self.save(iters)?;
            events(TrainEvent::Saved {
                iteration: iters,
                path: self.config.adapter_path.clone(),
            });
        }
        if fingerprint.is_some() {
            // The final adapter is saved: nothing is left to resume.
            match std::fs::remove_file(&checkpoint_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(TrainError::io(&checkpoint_path, e));
                }
                _ => {}
            }
        }
        if self.config.test {
            let test_loss = self.test_loss()?;
            events(TrainEvent::Test { test_loss });
        }
        let secs = started.elapsed().as_secs_f64();
        let ran = iters - start;
        Ok(TrainSummary {
            iterations: ran,
            resumed_at: start,
            first_loss: first_loss.unwrap_or(f32::NAN),
            final_train_loss,
            final_val_loss,
            seconds_per_step: secs / ran.max(1) as f64,
            tokens_per_second: trained_tokens as f64 / secs,
            peak_memory_gb: peak_memory_gb(),
        })
    }

    /// Sets the adapters and the optimizer to a checkpoint's state: the
    /// optimizer first (it checks every shape before changing anything),
    /// then the weights, whose shapes are checked before any is set.
    fn restore(&mut self, r: &checkpoint::Restored) -> Result<(), TrainError> {
        let vars = self.lora.named_vars();
        for ((name, var), w) in vars.iter().zip(&r.weights) {
            if var.dims() != w.dims() || var.dtype() != w.dtype() {
                return Err(TrainError::BadConfig(format!(
                    "`{name}` is {:?} {:?} there, {:?} {:?} in this run",
                    w.dims(),
                    w.dtype(),
                    var.dims(),
                    var.dtype()
                )));
            }
        }
        self.opt.set_state(&r.optimizer)?;
        for ((_, var), w) in vars.iter().zip(&r.weights) {
            var.set(&w.to_device(var.device())?)?;
        }
        Ok(())
    }

    /// Writes the adapter (and `trainer_state.json`) to `--adapter-path`,
    /// each file atomically.
    pub fn save(&self, iteration: usize) -> Result<(), TrainError> {
        let dir = &self.config.adapter_path;
        let adapter = self.adapter();
        adapter.save(dir)?;
        if self.config.export_mlx {
            adapter.save_mlx(&dir.join("mlx"), self.config.lora.num_layers)?;
        }
        let state = serde_json::json!({
            "iteration": iteration,
            "iters": self.config.iters,
            "batch_size": self.config.batch_size,
            "learning_rate": self.config.learning_rate,
            "max_seq_length": self.config.max_seq_length,
            "mask_prompt": self.config.mask_prompt,
            "seed": self.config.seed,
        });
        let path = dir.join("trainer_state.json");
        checkpoint::write_atomic(
            &path,
            serde_json::to_string_pretty(&state)
                .expect("json")
                .as_bytes(),
        )
    }

    /// Mean loss per supervised token on the data directory's `test.jsonl`.
    pub fn test_loss(&self) -> Result<f32, TrainError> {
        let path = DataDir::locate(&self.config.data)?
            .test
            .ok_or_else(|| TrainError::BadData {
                path: self.config.data.clone(),
                reason: "--test needs test.jsonl in the data directory".into(),
            })?;
        let (test, _) = self.load_examples(&path)?;
        self.evaluate(&test, None)
    }

    /// The loss of one batch, without updating anything.
    pub fn batch_loss(&self, batch: &Batch) -> Result<f32, TrainError> {
        let h = self.hidden(batch, false)?;
        Ok(output_loss(&h.detach(), &self.output, &batch.targets, false)?.value)
    }

    /// Mean loss per supervised token over `examples`, in batches of
    /// `--batch-size`, at most `max_batches` of them.
    pub fn evaluate(
        &self,
        examples: &[Tokenized],
        max_batches: Option<usize>,
    ) -> Result<f32, TrainError> {
        let (mut total, mut count) = (0f64, 0usize);
        for (i, chunk) in examples.chunks(self.config.batch_size.max(1)).enumerate() {
            if max_batches.is_some_and(|m| i >= m) {
                break;
            }
            let batch = Batch::new(&chunk.iter().collect::<Vec<_>>());
            let loss = self.batch_loss(&batch)?;
            total += loss as f64 * batch.targets.len() as f64;
            count += batch.targets.len();
        }
        Ok((total / count.max(1) as f64) as f32)
    }

    /// The hidden states (after the final norm) of the rows that predict
    /// supervised tokens, `[targets, hidden]`.
    fn hidden(&self, batch: &Batch, train: bool) -> Result<Tensor, TrainError> {
        let ids = Tensor::from_slice(&batch.ids, (batch.rows, batch.len), &self.device)?;
        let hidden = self
            .model
            .forward_train(&ids, self.lora.first_layer(), train)?;
        Ok(self.select(&hidden, batch)?)
    }

    fn select(&self, hidden: &Tensor, batch: &Batch) -> candle_core::Result<Tensor> {
        let from = Tensor::from_slice(&batch.from, batch.from.len(), &self.device)?;
        let h = self.model.hidden_size();
        hidden
            .reshape((batch.rows * batch.len, h))?
            .index_select(&from, 0)
    }

    /// One optimizer step on `batch`; returns its loss (before the update).
    pub fn step(&mut self, batch: &Batch) -> Result<f32, TrainError> {
        self.step_with(batch, self.default_backward())
    }

    /// [`Trainer::step`] with the chosen backward (`lem bench train
    /// --autograd` compares the two).
    pub fn step_with(&mut self, batch: &Batch, backward: Backward) -> Result<f32, TrainError> {
        let (value, grads) = self.gradients(batch, backward)?;
        self.opt.step(&grads)?;
        Ok(value)
    }

    /// The hand-written backward where the model supports it (the CPU),
    /// else autograd.
    pub fn default_backward(&self) -> Backward {
        match self
            .model
            .as_gemma3()
            .is_some_and(Gemma3::supports_taped_training)
        {
            true => Backward::Taped,
            false => Backward::Autograd,
        }
    }

    /// The loss of `batch` and the adapters' gradients, by the chosen
    /// backward (with `--grad-checkpoint` as configured), without updating.
    pub fn gradients(
        &self,
        batch: &Batch,
        backward: Backward,
    ) -> Result<(f32, GradStore), TrainError> {
        match backward {
            Backward::Taped => self.taped_grads(batch),
            Backward::Autograd if self.config.grad_checkpoint => self.checkpointed_grads(batch),
            Backward::Autograd => self.autograd_grads(batch),
        }
    }

    /// The loss and the adapters' gradients with the hand-written backward
    /// (the CPU): each adapted block keeps its tape, or with
    /// `--grad-checkpoint` only its input, the tape being rebuilt one block
    /// at a time in backward.
    fn taped_grads(&self, batch: &Batch) -> Result<(f32, GradStore), TrainError> {
        enum Kept {
            Tape(Box<LayerTape>),
            Input(Tensor),
        }
        let m = self.model.as_gemma3().ok_or_else(|| {
            TrainError::BadConfig(
                "the hand-written backward is Gemma 3's; this family trains through autograd"
                    .into(),
            )
        })?;
        let clock = Instant::now();
        let first = self.lora.first_layer();
        let ids = Tensor::from_slice(&batch.ids, (batch.rows, batch.len), &self.device)?;
        let mut x = m.embed_train(&ids)?;
        let mut kept = Vec::new();
        for i in 0..m.config().num_hidden_layers {
            let (y, tape) = m.layer_forward_taped(i, &x, true)?;
            if i >= first {
                kept.push(match self.config.grad_checkpoint {
                    true => Kept::Input(x),
                    false => Kept::Tape(Box::new(tape)),
                });
            }
            x = y;
        }
        let h = self.select(&m.final_norm_train(&x)?, batch)?;
        let forward_s = clock.elapsed().as_secs_f64();
        let out = output_loss(&h, &self.output, &batch.targets, true)?;
        let loss_s = clock.elapsed().as_secs_f64() - forward_s;
        let g = out
            .grad
            .ok_or_else(|| TrainError::BadConfig("the loss gave no gradient".into()))?;
        let (rows, hidden) = (batch.rows * batch.len, m.config().hidden_size);
        let from = Tensor::from_slice(&batch.from, batch.from.len(), &self.device)?;
        let d_top = Tensor::zeros((rows, hidden), g.dtype(), &self.device)?
            .index_add(&from, &g, 0)?
            .reshape((batch.rows, batch.len, hidden))?;
        let mut dy = m.final_norm_backward(&x, &d_top)?;
        let mut store = GradStore::default();
        for i in (first..m.config().num_hidden_layers).rev() {
            let tape = match kept.pop() {
                Some(Kept::Tape(tape)) => *tape,
                Some(Kept::Input(x)) => m.layer_forward_taped(i, &x, false)?.1,
                None => return Err(TrainError::BadConfig(format!("block {i} kept nothing"))),
            };
            let (dx, grads) = m.layer_backward(i, &tape, &dy, i > first)?;
            for (param, grad) in grads {
                store.insert(&param, grad);
            }
            if let Some(dx) = dx {
                dy = dx;
            }
        }
        tracing::debug!(
            forward_s,
            loss_s,
            backward_s = clock.elapsed().as_secs_f64() - forward_s - loss_s,
            "train step (taped)"
        );
        Ok((out.value, store))
    }

    /// The same through candle's autograd (devices other than the CPU).
    fn autograd_grads(&self, batch: &Batch) -> Result<(f32, GradStore), TrainError> {
        let h = self.hidden(batch, true)?;
        let out = output_loss(&h, &self.output, &batch.targets, true)?;
        Ok((out.value, out.loss.backward()?))
    }

    /// Autograd with gradient checkpointing: keep only each adapted block's
    /// input; in backward, recompute one block at a time and push the
    /// gradient of its output through it.
    fn checkpointed_grads(&self, batch: &Batch) -> Result<(f32, GradStore), TrainError> {
        let m = &self.model;
        let layers = m.num_layers();
        let first = self.lora.first_layer();
        let ids = Tensor::from_slice(&batch.ids, (batch.rows, batch.len), &self.device)?;
        let masks = m.train_masks(batch.len)?;
        let mut x = m.embed_train(&ids)?;
        let mut inputs = Vec::with_capacity(layers - first);
        for i in 0..layers {
            if i >= first {
                inputs.push(x.clone());
            }
            x = m.layer_train(i, &x, &masks, false)?.detach();
        }
        let top = Var::from_tensor(&x)?;
        let h = self.select(&m.final_norm_train(top.as_tensor())?, batch)?;
        let out = output_loss(&h, &self.output, &batch.targets, true)?;
        let grads = out.loss.backward()?;
        let mut g = grads
            .get(top.as_tensor())
            .cloned()
            .ok_or_else(|| TrainError::BadConfig("no gradient reached the last block".into()))?;
        let vars = self.lora.vars();
        let mut store = GradStore::default();
        for i in (first..layers).rev() {
            let input = Var::from_tensor(&inputs[i - first])?;
            let y = m.layer_train(i, input.as_tensor(), &masks, false)?;
            let grads = (y * &g)?.sum_all()?.backward()?;
            for v in &vars {
                if let Some(gv) = grads.get(v.as_tensor()) {
                    store.insert(v.as_tensor(), gv.clone());
                }
            }
            if i > first {
                g = grads.get(input.as_tensor()).cloned().ok_or_else(|| {
                    TrainError::BadConfig(format!("no gradient reached block {i}"))
                })?;
            }
        }
        Ok((out.value, store))
    }
}

fn validate(c: &TrainConfig) -> Result<(), TrainError> {
    let bad = |m: &str| Err(TrainError::BadConfig(m.into()));
    if c.iters == 0 {
        return bad("--iters must be at least 1");
    }
    if c.batch_size == 0 {
        return bad("--batch-size must be at least 1");
    }
    if c.max_seq_length < 2 {
        return bad("--max-seq-length must be at least 2");
    }
    if !(c.learning_rate > 0.0 && c.learning_rate.is_finite()) {
        return bad("--learning-rate must be a positive number");
    }
    if !(0.0..1.0).contains(&c.lora.dropout) {
        return bad("--lora-dropout must be in [0, 1)");
    }
    if c.checkpoint && c.lora.dropout > 0.0 {
        return bad(
            "--checkpoint resumes a run bit for bit, which needs --lora-dropout 0 (the dropout masks are random and not saved)",
        );
    }
    if c.grad_checkpoint && c.lora.dropout > 0.0 {
        return bad(
            "--grad-checkpoint recomputes blocks in backward, which needs --lora-dropout 0 (the dropout masks would differ)",
        );
    }
    Ok(())
}

/// mlx_lm's order: examples sorted by length into batches of similar
/// length (little padding), batch order shuffled every epoch.
struct BatchOrder {
    batches: Vec<Vec<usize>>,
    next: usize,
    rng: rand::rngs::StdRng,
}

impl BatchOrder {
    fn new(examples: &[Tokenized], batch_size: usize, seed: u64) -> Self {
        let mut idx: Vec<usize> = (0..examples.len()).collect();
        idx.sort_by_key(|&i| (examples[i].ids.len(), i));
        let batches: Vec<Vec<usize>> = idx
            .chunks(batch_size)
            .filter(|c| c.len() == batch_size)
            .map(|c| c.to_vec())
            .collect();
        let mut order = BatchOrder {
            batches,
            next: 0,
            rng: rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed_ba7c),
        };
        order.shuffle();
        order
    }

    fn shuffle(&mut self) {
        self.batches.shuffle(&mut self.rng);
    }

    fn next(&mut self) -> Vec<usize> {
        if self.next == self.batches.len() {
            self.shuffle();
            self.next = 0;
        }
        self.next += 1;
        self.batches[self.next - 1].clone()
    }
}

/// Peak resident memory (VmHWM), GB; Linux only.
pub fn peak_memory_gb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0 / 1024.0)
}
