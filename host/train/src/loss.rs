//! The output layer and cross-entropy in one pass, in row chunks.
//!
//! Gemma's output layer is the 262k-row tied embedding: materialising its
//! logits for a 2×256 batch, then candle's `log_softmax` and its backward,
//! would hold several 0.5 GB tensors and walk them a dozen times. Here each
//! chunk of rows computes its logits, softmax, loss and the gradient of the
//! hidden states (`(p − onehot)·W / n`, written as `p·W − W[target]`) at
//! once, and drops the logits. The loss returned to autograd is a surrogate
//! `Σ h·g − Σ h̄·g + loss` (with `h̄`, `g` constants), whose value is the loss
//! and whose gradient in `h` is exactly `g`. Only the rows that predict a
//! supervised token are passed in, so the prompt costs nothing here.

use candle_core::Tensor;

/// Rows per chunk: 512 rows of 262k logits is 512 MB (a 2×256 batch in one
/// chunk); fewer rows make the two matmuls markedly less efficient.
const CHUNK: usize = 512;

/// The loss of one batch.
pub struct OutputLoss {
    /// A scalar whose backward gives `h` its gradient.
    pub loss: Tensor,
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
    let wt = w.t()?;
    let mut total = 0f64;
    let mut grads = Vec::new();
    for start in (0..n).step_by(CHUNK) {
        let len = CHUNK.min(n - start);
        let hc = hd.narrow(0, start, len)?;
        let tc = &targets[start..start + len];
        let logits = hc.matmul(&wt)?;
        let (nll, g) = if logits.device().is_cpu() {
            // In place: logits become (softmax - onehot) / n.
            let op = SoftmaxMinusOnehot {
                targets: tc.to_vec(),
                scale: 1.0 / n as f32,
                nll: std::sync::Mutex::new(0.0),
            };
            logits.inplace_op1(&op)?;
            let nll = *op.nll.lock().expect("not poisoned");
            let g = if with_grad {
                Some(logits.matmul(w)?)
            } else {
                None
            };
            (nll, g)
        } else {
            let tt = Tensor::from_slice(tc, len, h.device())?;
            let p = candle_nn::ops::softmax_last_dim(&logits)?;
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
    let loss = if with_grad {
        let g = Tensor::cat(&grads, 0)?;
        let constant = (hd * &g)?.sum_all()?;
        let surrogate = (h * &g)?.sum_all()?;
        let v = Tensor::new(value, h.device())?;
        ((surrogate - constant)? + v)?
    } else {
        Tensor::new(value, h.device())?
    };
    Ok(OutputLoss {
        loss,
        value,
        tokens: n,
    })
}

/// Turns logits `[rows, vocab]` into `scale · (softmax − onehot(target))`
/// in place, one pass for the maximum, one for the exponentials and their
/// sum, one to normalise; adds each row's `−log p(target)` to `nll`
/// (computed from the log-sum-exp, exact even where `p` underflows).
struct SoftmaxMinusOnehot {
    targets: Vec<u32>,
    scale: f32,
    nll: std::sync::Mutex<f64>,
}

impl candle_core::InplaceOp1 for SoftmaxMinusOnehot {
    fn name(&self) -> &'static str {
        "softmax-minus-onehot"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        use rayon::prelude::*;
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("softmax-minus-onehot needs f32 logits");
        };
        let (rows, vocab) = layout.shape().dims2()?;
        let Some((a, b)) = layout.contiguous_offsets() else {
            candle_core::bail!("softmax-minus-onehot needs contiguous logits");
        };
        let data = &mut data[a..b];
        let nll: f64 = data
            .par_chunks_mut(vocab)
            .zip(self.targets.par_iter())
            .map(|(row, &t)| {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let target_logit = row[t as usize];
                let sum = lem_engine::models::train_ops::exp_in_place(row, 1.0, max);
                let k = self.scale / sum;
                for x in row.iter_mut() {
                    *x *= k;
                }
                row[t as usize] -= self.scale;
                (max + sum.ln() - target_logit) as f64
            })
            .sum();
        debug_assert_eq!(rows, self.targets.len());
        *self.nll.lock().expect("not poisoned") += nll;
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
    fn bad_targets_are_errors() {
        let dev = Device::Cpu;
        let h = Tensor::zeros((2, 4), DType::F32, &dev).unwrap();
        let w = Tensor::zeros((3, 4), DType::F32, &dev).unwrap();
        assert!(output_loss(&h, &w, &[0], false).is_err());
        assert!(output_loss(&h, &w, &[0, 3], false).is_err());
    }
}
