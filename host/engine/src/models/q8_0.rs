//! Q8_0 matrix products for decoding as a candle op: `x·Wᵀ` for a few rows
//! of `x` (f32, CPU) against a Q8_0 weight, with lem's own kernels
//! ([`lem_kernels::q8_0`]: four weight rows per pass, up to four input rows
//! per weight load, AVX-512 VNNI / AVX2 / NEON `sdot` and `i8mm`, chosen at
//! run time). Work is shared out on candle's own thread pool, the one its
//! other quantized kernels use. On x86-64 the results are bit for bit
//! candle's `QMatMul` (tested below).

use super::fused_ops::f32s;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use lem_kernels::q8_0::{self as kernels, BLOCK, BLOCK_BYTES, Input, Kernel};
use std::sync::{Arc, OnceLock};

/// `x·Wᵀ` for `x` `[..., k]` (f32, CPU) and a Q8_0 `w` `[n, k]`.
pub fn matmul(x: &Tensor, w: &Arc<QTensor>) -> candle_core::Result<Tensor> {
    x.apply_op1_no_bwd(&Q8Matmul { w: w.clone() })
}

/// Whether [`matmul`] takes this weight: Q8_0, on the CPU, whole blocks.
pub fn supports(w: &QTensor) -> bool {
    w.dtype() == GgmlDType::Q8_0
        && w.device().is_cpu()
        && w.shape()
            .dims2()
            .is_ok_and(|(_, k)| k > 0 && k.is_multiple_of(BLOCK))
}

/// The kernel this CPU runs (chosen once per process).
pub fn kernel() -> Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    *KERNEL.get_or_init(Kernel::best)
}

struct Q8Matmul {
    w: Arc<QTensor>,
}

impl CustomOp1 for Q8Matmul {
    fn name(&self) -> &'static str {
        "q8_0-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32s(s, l, "q8_0-matmul")?;
        let (n, k) = self.w.shape().dims2()?;
        let dims = l.shape().dims();
        if dims.last() != Some(&k) || k == 0 || !k.is_multiple_of(BLOCK) {
            candle_core::bail!("q8_0-matmul: input {:?} against weight [{n}, {k}]", dims);
        }
        let m = x.len() / k;
        let data = self.w.data()?;
        if data.len() != n * (k / BLOCK) * BLOCK_BYTES {
            candle_core::bail!("q8_0-matmul: weight data is not [{n}, {k}] in Q8_0");
        }
        let input = Input::new(x, k);
        let mut out = vec![0f32; m * n];
        products(kernel(), &data, n, &input, &mut out);
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("non-empty") = n;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

/// `out[i, j] = x_i · w_j` for all rows `i` of the input and `j < n`, the
/// weight rows shared out across the thread pool four at a time.
fn products(kernel: Kernel, w: &[u8], n: usize, x: &Input, out: &mut [f32]) {
    assert_eq!(out.len(), x.rows() * n);
    let out_ptr = out.as_mut_ptr() as usize;
    candle_core::utils::barrier_pool().execute_chunked(kernels::quads(n), |range| {
        for q in range {
            kernels::quad(kernel, w, n, q, x, |i, j, dot| {
                // SAFETY: each (i, j) belongs to exactly one quad (quads are
                // disjoint), and i < rows, j < n: within `out`.
                unsafe { *(out_ptr as *mut f32).add(i * n + j) = dot };
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::seeded_matrix;
    use candle_core::Module;
    use candle_core::quantized::QMatMul;

    fn weight(n: usize, k: usize) -> Arc<QTensor> {
        Arc::new(QTensor::quantize(&seeded_matrix(n, k, 7), GgmlDType::Q8_0).unwrap())
    }

    /// On x86-64 bit for bit candle's `QMatMul`, whose float order the x86
    /// kernels keep; elsewhere (candle's aarch64 products have orders of
    /// their own) within rounding.
    #[test]
    fn equals_candles_q8_0_matmul() {
        // 4-row quads and a partial last quad (n = 38), one and several input rows.
        for (m, n, k) in [(1, 40, 64), (3, 38, 96), (5, 257, 640), (8, 64, 128)] {
            let w = weight(n, k);
            let x = seeded_matrix(m, k, 11 + m as u64);
            let ours = matmul(&x, &w).unwrap();
            let theirs = QMatMul::from_arc(w).unwrap().forward(&x).unwrap();
            assert_eq!(ours.dims(), &[m, n]);
            let (ours, theirs) = (
                ours.to_vec2::<f32>().unwrap(),
                theirs.to_vec2::<f32>().unwrap(),
            );
            if cfg!(target_arch = "x86_64") && kernel() != Kernel::scalar() {
                assert_eq!(ours, theirs, "m={m} n={n} k={k}");
            } else {
                for (a, b) in ours.iter().flatten().zip(theirs.iter().flatten()) {
                    assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn keeps_leading_dimensions() {
        let w = weight(12, 64);
        let x = seeded_matrix(6, 64, 5).reshape((2, 3, 64)).unwrap();
        assert_eq!(matmul(&x, &w).unwrap().dims(), &[2, 3, 12]);
    }

    #[test]
    fn refuses_a_mismatched_input() {
        let w = weight(12, 64);
        assert!(matmul(&seeded_matrix(2, 32, 5), &w).is_err());
    }
}
