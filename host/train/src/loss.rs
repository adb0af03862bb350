//! The output layer and cross-entropy in one pass, in row chunks.
//!
//! Gemma's output layer is the 262k-row tied embedding: materialising its
//! logits for a 2×256 batch, then candle's `log_softmax` and its backward,
//! would hold several 0.5 GB tensors and walk them a dozen times. Here each
//! chunk of rows walks the vocabulary in blocks: a block's logits, their
//! exponentials (an online softmax) and their product with the same block
//! of weights are taken while both are in cache, which gives the loss and
//! the gradient of the hidden states (`(p − onehot)·W / n`, written as
//! `p·W − W[target]`) without the logits ever existing whole. The loss
//! returned to autograd is a surrogate `Σ h·g − Σ h̄·g + loss` (with `h̄`,
//! `g` constants), whose value is the loss and whose gradient in `h` is
//! exactly `g`. Only the rows that predict a
//! supervised token are passed in, so the prompt costs nothing here.

use candle_core::Tensor;
use lem_engine::train::{exp_in_place, matmul, matmul_acc};

/// Rows per chunk (a 2×256 batch is one chunk); fewer rows make the two
/// matmuls markedly less efficient. On the CPU a chunk's logits exist one
/// vocabulary block at a time; elsewhere whole (512 MB for 512 rows).
const CHUNK: usize = 512;

/// The loss of one batch.
pub struct OutputLoss {
    /// A scalar whose backward gives `h` its gradient.
    pub loss: Tensor,
    /// That gradient of `h`, for callers that run their own backward.
    pub grad: Option<Tensor>,
    /// The mean cross-entropy (nats per supervised token).
    pub value: f32,
    /// Supervised tokens.
    pub tokens: usize,
}

/// Mean cross-entropy of predicting `targets` from hidden states `h`
/// `[n, hidden]` (after the final norm) through output weight `w`
/// `[vocab, hidden]`. With `with_grad`, the result carries `h`'s gradient.
pub fn output_loss(
    h: &Tensor,
    w: &Tensor,
    targets: &[u32],
    with_grad: bool,
) -> candle_core::Result<OutputLoss> {
    let (n, _) = h.dims2()?;
    if n != targets.len() || n == 0 {
        candle_core::bail!("{n} hidden rows for {} targets", targets.len());
    }
    let vocab = w.dim(0)?;
    if let Some(t) = targets.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("target {t} is outside the vocabulary of {vocab}");
    }
    let hd = h.detach();
    let mut total = 0f64;
    let mut grads = Vec::new();
    for start in (0..n).step_by(CHUNK) {
        let len = CHUNK.min(n - start);
        let hc = hd.narrow(0, start, len)?;
        let tc = &targets[start..start + len];
        let (nll, g) = if h.device().is_cpu() {
            online_chunk(&hc, w, tc, 1.0 / n as f32, with_grad)?
        } else {
            let tt = Tensor::from_slice(tc, len, h.device())?;
            let p = candle_nn::ops::softmax_last_dim(&hc.matmul(&w.t()?)?)?;
            let pt = p.gather(&tt.unsqueeze(1)?, 1)?.squeeze(1)?;
            let nll = pt.clamp(1e-45f32, 1f32)?.log()?.neg()?.sum_all()?;
            let g = if with_grad {
                Some(((p.matmul(w)? - w.index_select(&tt, 0)?)? / n as f64)?)
            } else {
                None
            };
            (nll.to_scalar::<f32>()? as f64, g)
        };
        total += nll;
        grads.extend(g);
    }
    let value = (total / n as f64) as f32;
    let v = Tensor::new(value, h.device())?;
    let (loss, grad) = if with_grad {
        let g = Tensor::cat(&grads, 0)?;
        let loss = if h.is_variable() || h.track_op() {
            let constant = (hd * &g)?.sum_all()?;
            let surrogate = (h * &g)?.sum_all()?;
            ((surrogate - constant)? + v)?
        } else {
            v
        };
        (loss, Some(g))
    } else {
        (v, None)
    };
    Ok(OutputLoss {
        loss,
        grad,
        value,
        tokens: n,
    })
}

/// One chunk of rows on the CPU: returns `Σ −log p(target)` and, with
/// `with_grad`, `scale · (p·W − W[target])`.
///
/// The vocabulary is walked in blocks of [`VOCAB_BLOCK`] rows of `W`: each
/// block's logits are exponentiated in place against the running row
/// maximum (an online softmax, as in flash attention) and multiplied by the
/// same block of `W` at once, while both are still in cache; when a row's
/// maximum grows, what it has summed so far is rescaled. The chunk's full
/// logits never exist.
fn online_chunk(
    h: &Tensor,
    w: &Tensor,
    targets: &[u32],
    scale: f32,
    with_grad: bool,
) -> candle_core::Result<(f64, Option<Tensor>)> {
    let rows = h.dim(0)?;
    let vocab = w.dim(0)?;
    let op = ExpBlock {
        targets: targets.to_vec(),
        rows: std::sync::Mutex::new(vec![RowState::default(); rows]),
        from: std::sync::atomic::AtomicUsize::new(0),
    };
    // Σ_blocks e^(logits − max)·W_block, kept at the current maxima.
    let hidden = w.dim(1)?;
    let mut acc = vec![0f32; if with_grad { rows * hidden } else { 0 }];
    for from in (0..vocab).step_by(VOCAB_BLOCK) {
        let wb = w.narrow(0, from, VOCAB_BLOCK.min(vocab - from))?;
        let block = matmul(h, &wb.t()?)?;
        op.from.store(from, std::sync::atomic::Ordering::Relaxed);
        block.inplace_op1(&op)?;
        if with_grad {
            // Rows whose maximum grew bring their sums to the new one.
            for (row, state) in acc.chunks_exact_mut(hidden).zip(op.rows().iter()) {
                if state.factor != 1.0 {
                    row.iter_mut().for_each(|v| *v *= state.factor);
                }
            }
            matmul_acc(&block, &wb, &mut acc)?;
        }
    }
    let states = op.rows();
    let nll: f64 = states
        .iter()
        .map(|r| r.max as f64 + r.sum.ln() - r.target_logit as f64)
        .sum();
    let g = match with_grad {
        true => {
            let acc = Tensor::from_vec(acc, (rows, hidden), h.device())?;
            let inv: Vec<f32> = states.iter().map(|r| (1.0 / r.sum) as f32).collect();
            let inv = Tensor::from_vec(inv, (rows, 1), h.device())?;
            let t = Tensor::from_slice(targets, rows, h.device())?;
            Some(((acc.broadcast_mul(&inv)? - w.index_select(&t, 0)?)? * scale as f64)?)
        }
        false => None,
    };
    Ok((nll, g))
}

/// Vocabulary rows per block of [`online_chunk`]: a 512-row chunk's logits
/// for 4096 of them take 8 MB. Whole-vocabulary logits (512 MB for a 2×256
/// batch) made the softmax a memory-bound pass of 0.19 s per step; in
/// blocks the two products take the same time as whole (1.38 vs 1.43 s,
/// 2048 to 16384 rows alike).
const VOCAB_BLOCK: usize = 4096;

/// The online softmax of one row so far.
#[derive(Clone, Copy)]
struct RowState {
    max: f32,
    sum: f64,
    target_logit: f32,
    /// `e^(previous max − max)`: what the row's earlier sums are scaled by.
    factor: f32,
}

impl Default for RowState {
    fn default() -> Self {
        RowState {
            max: f32::NEG_INFINITY,
            sum: 0.0,
            target_logit: f32::NEG_INFINITY,
            factor: 1.0,
        }
    }
}

/// Turns one vocabulary block of logits `[rows, block]` (starting at
/// vocabulary row `from`) into `e^(logit − max)` in place, where `max` is
/// each row's running maximum, and folds the block into the rows' state.
struct ExpBlock {
    targets: Vec<u32>,
    rows: std::sync::Mutex<Vec<RowState>>,
    from: std::sync::atomic::AtomicUsize,
}

impl ExpBlock {
    fn rows(&self) -> std::sync::MutexGuard<'_, Vec<RowState>> {
        self.rows.lock().expect("not poisoned")
    }
}

impl candle_core::InplaceOp1 for ExpBlock {
    fn name(&self) -> &'static str {
        "online-softmax-block"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        use rayon::prelude::*;
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("online-softmax-block needs f32 logits");
        };
        let (rows, block) = layout.shape().dims2()?;
        let Some((a, b)) = layout.contiguous_offsets() else {
            candle_core::bail!("online-softmax-block needs contiguous logits");
        };
        let from = self.from.load(std::sync::atomic::Ordering::Relaxed);
        let mut states = self.rows();
        if rows != states.len() {
            candle_core::bail!("online-softmax-block: {rows} rows for {}", states.len());
        }
        data[a..b]
            .par_chunks_mut(block)
            .zip(states.par_iter_mut())
            .zip(self.targets.par_iter())
            .for_each(|((row, state), &t)| {
                let block_max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let max = state.max.max(block_max);
                if let Some(&logit) = (t as usize).checked_sub(from).and_then(|i| row.get(i)) {
                    state.target_logit = logit;
                }
                let sum = exp_in_place(row, 1.0, max);
                state.factor = (state.max - max).exp();
                state.sum = state.sum * state.factor as f64 + sum as f64;
                state.max = max;
            });
        Ok(())
    }
}

/// The plain reference: full logits and candle's cross-entropy (tests only).
#[cfg(test)]
fn reference_loss(h: &Tensor, w: &Tensor, targets: &[u32]) -> candle_core::Result<Tensor> {
    let logits = h.matmul(&w.t()?)?;
    let t = Tensor::from_slice(targets, targets.len(), h.device())?;
    candle_nn::loss::cross_entropy(&logits, &t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use lem_engine::testing::max_abs_diff as max_diff;

    #[test]
    fn matches_plain_cross_entropy_in_value_and_gradient() {
        let dev = Device::Cpu;
        // More rows than one chunk, so chunking is exercised.
        let n = CHUNK + 7;
        let h = Var::randn(0f32, 1.0, (n, 16), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (50, 16), &dev).unwrap();
        let targets: Vec<u32> = (0..n as u32).map(|i| (i * 7) % 50).collect();
        let ours = output_loss(&h, &w, &targets, true).unwrap();
        let reference = reference_loss(&h, &w, &targets).unwrap();
        let r = reference.to_scalar::<f32>().unwrap();
        assert!((ours.value - r).abs() < 1e-4, "{} vs {r}", ours.value);
        assert!((ours.loss.to_scalar::<f32>().unwrap() - r).abs() < 1e-4);
        let g1 = ours.loss.backward().unwrap();
        let g2 = reference.backward().unwrap();
        let d = max_diff(g1.get(&h).unwrap(), g2.get(&h).unwrap());
        assert!(d < 1e-5, "gradient differs by {d}");
        assert!(
            g1.get(&w).is_none(),
            "the frozen output layer got a gradient"
        );
    }

    #[test]
    fn vocabulary_blocks_rescale_exactly() {
        let dev = Device::Cpu;
        let (n, hidden, vocab) = (9, 8, 2 * VOCAB_BLOCK + 5);
        let h = Var::randn(0f32, 1.0, (n, hidden), &dev).unwrap();
        // Later blocks hold larger logits, so every row's maximum moves on.
        let ramp: Vec<f32> = (0..vocab)
            .map(|v| 1.0 + 3.0 * v as f32 / vocab as f32)
            .collect();
        let ramp = Tensor::from_vec(ramp, (vocab, 1), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (vocab, hidden), &dev)
            .unwrap()
            .broadcast_mul(&ramp)
            .unwrap();
        let targets: Vec<u32> = (0..n as u32).map(|i| i * 1811 % vocab as u32).collect();
        let ours = output_loss(&h, &w, &targets, true).unwrap();
        let reference = reference_loss(&h, &w, &targets).unwrap();
        let r = reference.to_scalar::<f32>().unwrap();
        assert!(
            (ours.value - r).abs() < 1e-4 * r.abs().max(1.0),
            "{} vs {r}",
            ours.value
        );
        let g1 = ours.loss.backward().unwrap();
        let g2 = reference.backward().unwrap();
        let d = max_diff(g1.get(&h).unwrap(), g2.get(&h).unwrap());
        assert!(d < 1e-5, "gradient differs by {d}");
    }

    #[test]
    fn bad_targets_are_errors() {
        let dev = Device::Cpu;
        let h = Tensor::zeros((2, 4), DType::F32, &dev).unwrap();
        let w = Tensor::zeros((3, 4), DType::F32, &dev).unwrap();
        assert!(output_loss(&h, &w, &[0], false).is_err());
        assert!(output_loss(&h, &w, &[0, 3], false).is_err());
    }
}
