//! lem's own quantized matrix products, as a candle op: `x·Wᵀ` for `x` f32
//! on the CPU, with [`lem_kernels`]' kernels (four weight rows per pass, up
//! to four input rows per weight load; AVX-512 VNNI / AVX2 / NEON `sdot`,
//! `i8mm`, chosen at run time). Work is shared out on candle's own thread
//! pool, the one its other quantized kernels use.
//!
//! - Q8_0 and Q4_1, for decoding (fewer than [`DECODE_ROWS`] rows; prompts
//!   take a dense `Wᵀ` copy or candle's product). The results are bit for
//!   bit candle's `QMatMul`: for Q8_0 on x86-64, whose float order those
//!   kernels keep; for Q4_1 everywhere (candle's Q4_1 product is scalar
//!   code, whose order the kernels keep). Tested below.
//! - Q4_K and Q6_K, for any number of rows, where the CPU has the kernels'
//!   vector path (AVX-512 VNNI or AVX2): prompts of a model too large for
//!   dense copies (Qwen2.5 1.5B) as well as decoding. The input rows are taken in
//!   tiles of [`ROW_TILE`], so a tile's quantized input stays in cache while
//!   each weight quad streams past it once. These agree with candle's
//!   product within rounding (the integer sums are the same; the float
//!   order is lem's own).

use super::fused_ops::f32s;
use crate::tuning;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use lem_kernels::q8_0::Kernel;
use lem_kernels::{q4_1, q4_k, q6_k, q8_0, q8_k};
use std::sync::{Arc, OnceLock};

/// Q8_0 and Q4_1 weights take lem's product below this many input rows.
pub const DECODE_ROWS: usize = 16;

/// Input rows per work item of the K-quant products: 64 rows of an 8960-wide
/// input quantized are 0.7 MB, within a core's L2 beside its weight quad.
const ROW_TILE: usize = 64;

/// `x·Wᵀ` for `x` `[..., k]` (f32, CPU) and a `w` `[n, k]` that [`supports`] takes.
pub fn matmul(x: &Tensor, w: &Arc<QTensor>) -> candle_core::Result<Tensor> {
    matmul_with(x, w, kernel())
}

/// [`matmul`] with a given kernel (tests compare every kernel the CPU has).
fn matmul_with(x: &Tensor, w: &Arc<QTensor>, kernel: Kernel) -> candle_core::Result<Tensor> {
    x.apply_op1_no_bwd(&QuantizedMatmul {
        w: w.clone(),
        kernel,
    })
}

/// Whether [`matmul`] takes this weight for an input of `rows` rows: on the
/// CPU, whole blocks; Q8_0 or Q4_1 below [`DECODE_ROWS`] rows; Q4_K or Q6_K
/// where this CPU has their vector kernels.
pub fn supports(w: &QTensor, rows: usize) -> bool {
    if !w.device().is_cpu() {
        return false;
    }
    let block = match w.dtype() {
        GgmlDType::Q8_0 | GgmlDType::Q4_1 if rows < DECODE_ROWS => q8_0::BLOCK,
        GgmlDType::Q4K | GgmlDType::Q6K if q4_k::vectorised(kernel()) => q8_k::BLOCK,
        _ => return false,
    };
    w.shape()
        .dims2()
        .is_ok_and(|(_, k)| k > 0 && k.is_multiple_of(block))
}

/// The environment variable that picks the kernel by name (`avx2`,
/// `scalar`, ...) among those this CPU has, to compare them; unset, the
/// fastest ([`Kernel::best`]).
pub const KERNEL_ENV: &str = "LEM_KERNEL";

/// The kernel this CPU runs, prefetching as far ahead as [`prefetch`]
/// says (chosen once per process).
pub fn kernel() -> Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    *KERNEL.get_or_init(|| chosen_kernel().with_prefetch(prefetch().prefetch_bytes))
}

/// The kernel this process runs, whatever its prefetch distance:
/// [`KERNEL_ENV`]'s, else the fastest (chosen once per process, so a bad
/// name is warned of once).
pub fn chosen_kernel() -> Kernel {
    static CHOSEN: OnceLock<Kernel> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let Ok(name) = std::env::var(KERNEL_ENV) else {
            return Kernel::best();
        };
        let available = Kernel::available();
        match available.iter().find(|k| k.name() == name) {
            Some(&k) => k,
            None => {
                let names: Vec<_> = available.iter().map(|k| k.name()).collect();
                tracing::warn!(
                    "{KERNEL_ENV}={name:?} is not a kernel this CPU has ({}); using {}",
                    names.join(", "),
                    Kernel::best().name()
                );
                Kernel::best()
            }
        }
    })
}

/// How far ahead [`kernel`] prefetches the weight on this CPU and this
/// process's thread count, and where that came from: measured once per
/// machine and kept under `LEM_HOME` ([`crate::tuning`]).
pub fn prefetch() -> &'static tuning::Choice {
    static CHOICE: OnceLock<tuning::Choice> = OnceLock::new();
    CHOICE.get_or_init(|| {
        let threads = candle_core::utils::get_num_threads();
        tuning::prefetch(chosen_kernel(), threads, &lem_core::lem_home())
    })
}

struct QuantizedMatmul {
    w: Arc<QTensor>,
    kernel: Kernel,
}

impl CustomOp1 for QuantizedMatmul {
    fn name(&self) -> &'static str {
        "lem-quantized-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32s(s, l, "lem-quantized-matmul")?;
        let (n, k) = self.w.shape().dims2()?;
        let dims = l.shape().dims();
        if dims.last() != Some(&k) || k == 0 || !k.is_multiple_of(q8_0::BLOCK) {
            candle_core::bail!(
                "quantized matmul: input {:?} against weight [{n}, {k}]",
                dims
            );
        }
        let dtype = self.w.dtype();
        let (block, block_bytes) = match dtype {
            GgmlDType::Q8_0 => (q8_0::BLOCK, q8_0::BLOCK_BYTES),
            GgmlDType::Q4_1 => (q4_1::BLOCK, q4_1::BLOCK_BYTES),
            GgmlDType::Q4K => (q8_k::BLOCK, q4_k::BLOCK_BYTES),
            GgmlDType::Q6K => (q8_k::BLOCK, q6_k::BLOCK_BYTES),
            other => candle_core::bail!("quantized matmul: lem has no product for {other:?}"),
        };
        if !k.is_multiple_of(block) {
            candle_core::bail!("quantized matmul: width {k} is not whole {dtype:?} blocks");
        }
        let data = self.w.data()?;
        if data.len() != n * (k / block) * block_bytes {
            candle_core::bail!("quantized matmul: weight data is not [{n}, {k}] in {dtype:?}");
        }
        let m = x.len() / k;
        // Every value is written below (each (i, j) by one work item), so
        // the output is not zero-filled first (1.5% of a prompt's time).
        let mut out: Vec<f32> = Vec::with_capacity(m * n);
        let out_ptr = out.as_mut_ptr() as usize;
        // SAFETY (for the writes): each (i, j) belongs to exactly one work
        // item (quads and row tiles are disjoint), and i < m, j < n: within `out`.
        let write =
            |i: usize, j: usize, dot: f32| unsafe { *(out_ptr as *mut f32).add(i * n + j) = dot };
        let pool = candle_core::utils::barrier_pool();
        let kernel = self.kernel;
        match dtype {
            GgmlDType::Q8_0 => {
                let input = q8_0::Input::new(x, k);
                pool.execute_chunked(q8_0::quads(n), |range| {
                    for q in range {
                        q8_0::quad(kernel, &data, n, q, &input, write);
                    }
                });
            }
            GgmlDType::Q4_1 => {
                let input = q4_1::Input::new(x, k);
                pool.execute_chunked(q4_1::quads(n), |range| {
                    for q in range {
                        q4_1::quad(kernel, &data, n, q, &input, write);
                    }
                });
            }
            _ => {
                let tiles: Vec<q8_k::Input> = x
                    .chunks(ROW_TILE * k)
                    .map(|rows| q8_k::Input::new(rows, k))
                    .collect();
                let quads = q4_k::quads(n);
                // Tile-major: a worker's consecutive items share a tile.
                pool.execute_chunked(tiles.len() * quads, |range| {
                    for item in range {
                        let (t, q) = (item / quads, item % quads);
                        let out = |i: usize, j: usize, dot: f32| write(t * ROW_TILE + i, j, dot);
                        match dtype {
                            GgmlDType::Q4K => q4_k::quad(kernel, &data, n, q, &tiles[t], out),
                            _ => q6_k::quad(kernel, &data, n, q, &tiles[t], out),
                        }
                    }
                });
            }
        }
        // SAFETY: the products above wrote all m × n values.
        unsafe { out.set_len(m * n) };
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("non-empty") = n;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::seeded_matrix;
    use candle_core::Module;
    use candle_core::quantized::QMatMul;

    /// Q4_K and Q6_K agree with candle's product within rounding (the same
    /// integer sums; the float order is lem's), on one row, a few, and
    /// more than a row tile with a partial last quad.
    #[test]
    fn k_quants_agree_with_candles_matmul() {
        for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
            for (m, n, k) in [
                (1, 8, 256),
                (3, 38, 512),
                (70, 13, 768),
                (1, 896, 4864),
                (2, 64, 4864),
            ] {
                let w = quantized(n, k, dtype);
                assert_eq!(supports(&w, m), q4_k::vectorised(kernel()));
                let x = seeded_matrix(m, k, 5 + m as u64);
                let theirs = QMatMul::from_arc(w.clone()).unwrap().forward(&x).unwrap();
                let theirs = theirs.to_vec2::<f32>().unwrap();
                // Every kernel the engine would take on some CPU (on an
                // AVX-512 one the AVX2 one too), not only this CPU's best.
                for kernel in Kernel::available() {
                    if !q4_k::vectorised(kernel) {
                        continue;
                    }
                    let ours = matmul_with(&x, &w, kernel).unwrap();
                    for (a, b) in ours
                        .to_vec2::<f32>()
                        .unwrap()
                        .iter()
                        .flatten()
                        .zip(theirs.iter().flatten())
                    {
                        assert!(
                            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                            "{dtype:?} {}: {a} vs {b}",
                            kernel.name()
                        );
                    }
                }
            }
        }
    }

    fn weight(n: usize, k: usize) -> Arc<QTensor> {
        quantized(n, k, GgmlDType::Q8_0)
    }

    fn quantized(n: usize, k: usize, dtype: GgmlDType) -> Arc<QTensor> {
        Arc::new(QTensor::quantize(&seeded_matrix(n, k, 7), dtype).unwrap())
    }

    /// Q4_1 is bit for bit candle's on every CPU (its product is scalar
    /// code there, whose order the kernels keep).
    #[test]
    fn equals_candles_q4_1_matmul_bit_for_bit() {
        for (m, n, k) in [(1, 40, 64), (3, 38, 96), (5, 257, 640), (8, 64, 128)] {
            let w = quantized(n, k, GgmlDType::Q4_1);
            assert!(supports(&w, m));
            let x = seeded_matrix(m, k, 11 + m as u64);
            let ours = matmul(&x, &w).unwrap().to_vec2::<f32>().unwrap();
            let theirs = QMatMul::from_arc(w).unwrap().forward(&x).unwrap();
            assert_eq!(ours, theirs.to_vec2::<f32>().unwrap(), "m={m} n={n} k={k}");
        }
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
