//! Attention of one new token against its sequence's key/value cache, fused
//! into one CPU op for decoding.
//!
//! Written as tensor ops, one decode step's attention is about ten of them
//! per layer and sequence (copies, a scaled `q·Kᵀ` through a general matmul
//! that packs its operands, a softmax, `P·V`, reshapes), each allocating its
//! result: on Gemma 3 270M that overhead cost more than the arithmetic, which
//! is a few hundred thousand multiply-adds per layer. Here the scores, the
//! softmax and the weighted sum of values run in one pass over the cached
//! rows, in place, with query heads sharing their key/value head by index.
//! Other devices keep the tensor-op path.

use super::fused_ops::f32s;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

/// `softmax(scale · q·Kᵀ) · V` for one token: `q` `[1, heads, 1, d]` against
/// rows `from..from + len` of `keys` and `values` `[1, kv, capacity, d]`
/// (`heads` a multiple of `kv`). `softcap` caps scores as `c·tanh(s/c)`.
/// Returns `[1, heads, 1, d]`.
pub fn attend(
    q: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    from: usize,
    len: usize,
    scale: f32,
    softcap: Option<f32>,
) -> candle_core::Result<Tensor> {
    q.contiguous()?.apply_op3_no_bwd(
        keys,
        values,
        &DecodeAttention {
            from,
            len,
            scale,
            softcap,
        },
    )
}

struct DecodeAttention {
    from: usize,
    len: usize,
    scale: f32,
    softcap: Option<f32>,
}

impl CustomOp3 for DecodeAttention {
    fn name(&self) -> &'static str {
        "decode-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let q = f32s(qs, ql, "decode-attention query")?;
        let k = f32s(ks, kl, "decode-attention keys")?;
        let v = f32s(vs, vl, "decode-attention values")?;
        let (_, heads, one, d) = ql.shape().dims4()?;
        let (_, kv, capacity, d2) = kl.shape().dims4()?;
        if one != 1 || d != d2 || vl.shape() != kl.shape() || kv == 0 || heads % kv != 0 {
            candle_core::bail!(
                "decode-attention: query {:?} does not fit keys {:?} / values {:?}",
                ql.shape(),
                kl.shape(),
                vl.shape()
            );
        }
        if self.len == 0 || self.from + self.len > capacity {
            candle_core::bail!(
                "decode-attention: rows {}..{} outside a cache of {capacity}",
                self.from,
                self.from + self.len
            );
        }
        let group = heads / kv;
        let mut out = vec![0f32; heads * d];
        let mut scores = vec![0f32; self.len];
        for h in 0..heads {
            let cache = (h / group) * capacity * d;
            let rows = cache + self.from * d..cache + (self.from + self.len) * d;
            let (keys, values) = (&k[rows.clone()], &v[rows]);
            let qh = &q[h * d..(h + 1) * d];
            for (s, key) in scores.iter_mut().zip(keys.chunks_exact(d)) {
                let raw = dot(qh, key) * self.scale;
                *s = match self.softcap {
                    Some(c) => c * (raw / c).tanh(),
                    None => raw,
                };
            }
            let max = scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut sum = 0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let oh = &mut out[h * d..(h + 1) * d];
            for (&p, value) in scores.iter().zip(values.chunks_exact(d)) {
                let p = p / sum;
                for (o, &x) in oh.iter_mut().zip(value) {
                    *o += p * x;
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((1, heads, 1, d))))
    }
}

/// A dot product in sixteen lanes (so it vectorises).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_abs_diff;
    use candle_core::{Device, IndexOp};

    /// The tensor-op reference: scores, cap, softmax, weighted values.
    fn reference(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        from: usize,
        len: usize,
        scale: f64,
        softcap: Option<f64>,
    ) -> Tensor {
        let (heads, kv) = (q.dim(1).unwrap(), k.dim(1).unwrap());
        let outs: Vec<Tensor> = (0..heads)
            .map(|h| {
                let kh = k
                    .i((0, h / (heads / kv)))
                    .unwrap()
                    .narrow(0, from, len)
                    .unwrap();
                let vh = v
                    .i((0, h / (heads / kv)))
                    .unwrap()
                    .narrow(0, from, len)
                    .unwrap();
                let qh = q.i((0, h)).unwrap();
                let mut s = (qh.matmul(&kh.t().unwrap()).unwrap() * scale).unwrap();
                if let Some(c) = softcap {
                    s = ((s / c).unwrap().tanh().unwrap() * c).unwrap();
                }
                let p = candle_nn::ops::softmax_last_dim(&s).unwrap();
                p.matmul(&vh).unwrap()
            })
            .collect();
        Tensor::stack(&outs, 0).unwrap().unsqueeze(0).unwrap()
    }

    #[test]
    fn matches_the_tensor_ops() {
        let dev = Device::Cpu;
        let (heads, kv, cap, d) = (4, 2, 12, 40);
        let q = Tensor::randn(0f32, 1.0, (1, heads, 1, d), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, kv, cap, d), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, kv, cap, d), &dev).unwrap();
        for (from, len, softcap) in [(0, 1, None), (0, 12, None), (3, 7, Some(5.0))] {
            let ours = attend(&q, &k, &v, from, len, 0.3, softcap.map(|c| c as f32)).unwrap();
            let want = reference(&q, &k, &v, from, len, 0.3, softcap);
            assert_eq!(ours.dims(), &[1, heads, 1, d]);
            let diff = max_abs_diff(&ours, &want);
            assert!(diff < 1e-5, "from {from} len {len}: {diff}");
        }
    }

    #[test]
    fn refuses_rows_outside_the_cache() {
        let dev = Device::Cpu;
        let q = Tensor::zeros((1, 2, 1, 8), candle_core::DType::F32, &dev).unwrap();
        let k = Tensor::zeros((1, 1, 4, 8), candle_core::DType::F32, &dev).unwrap();
        assert!(attend(&q, &k, &k, 2, 3, 1.0, None).is_err());
        assert!(attend(&q, &k, &k, 0, 0, 1.0, None).is_err());
    }
}
