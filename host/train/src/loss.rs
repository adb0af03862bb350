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

use candle_core::{DType, Tensor};

/// Rows per chunk: 64 rows of 262k logits is 64 MB.
const CHUNK: usize = 64;

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
    let targets_t = Tensor::from_slice(targets, n, h.device())?;
    let mut total = 0f64;
    let mut grads = Vec::new();
    for start in (0..n).step_by(CHUNK) {
        let len = CHUNK.min(n - start);
        let hc = hd.narrow(0, start, len)?;
        let tc = targets_t.narrow(0, start, len)?;
        let logits = hc.matmul(&wt)?;
        let p = candle_nn::ops::softmax_last_dim(&logits)?;
        drop(logits);
        // -log p[target], floored so that an underflowed probability gives
        // a large finite loss (103 nats) rather than infinity.
        let pt = p.gather(&tc.unsqueeze(1)?, 1)?.squeeze(1)?;
        let nll = pt
            .to_dtype(DType::F32)?
            .clamp(1e-45f32, 1f32)?
            .log()?
            .neg()?;
        total += nll.sum_all()?.to_scalar::<f32>()? as f64;
        if with_grad {
            let g = (p.matmul(w)? - w.index_select(&tc, 0)?)?;
            grads.push(g);
        }
    }
    let value = (total / n as f64) as f32;
    let loss = if with_grad {
        let g = (Tensor::cat(&grads, 0)? / n as f64)?;
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
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

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
        assert!(g1.get(&w).is_none(), "the frozen output layer got a gradient");
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
