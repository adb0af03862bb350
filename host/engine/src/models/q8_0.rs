//! Q8_0 matrix products for decoding: `x·Wᵀ` for a few rows of `x` against a
//! Q8_0 weight, on the CPU.
//!
//! Decoding reads every weight once per token, so on Gemma 3 270M most of a
//! token's time is the Q8_0 dot products (the 262k-row output layer alone is
//! 178 MB). candle's kernel takes each block's integer dot product with
//! `maddubs` + `madd` and reloads the input block for every weight row. This
//! one takes four weight rows per pass against one load of the input block
//! and, where the CPU has AVX-512 VNNI, one `vpdpbusd` per block. The integer
//! sums are exact and the float sums run in candle's order (eight lanes per
//! row, one fused multiply-add per block, the same horizontal sum), so the
//! results are bit for bit candle's. Work is shared out on candle's own
//! thread pool, the one its other quantized kernels use.
//!
//! The input is quantized to Q8_0 blocks exactly as candle (and ggml's
//! reference) does: `d = max|x| / 127`, `q = round(x / d)`, `d` stored as f16.

use super::fused_ops::f32s;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use half::f16;
use std::sync::Arc;

const BLOCK: usize = 32;
/// Bytes of one Q8_0 block: an f16 scale then 32 `i8`.
const BLOCK_BYTES: usize = 2 + BLOCK;
/// How far ahead of the block being read the kernels ask for weight bytes.
/// A core on its own pulls only so many cache lines at once: on this Xeon
/// the 178 MB output layer streamed at 7.9 GB/s on one thread and 12.5 GB/s
/// on two without prefetching, and at 12.6 and 23 GB/s with it 3 KB ahead
/// (1 KB: 9.9 GB/s on one thread; 6 KB: 14.5 GB/s on two).
const PREFETCH_BYTES: usize = 3072;

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
            .is_ok_and(|(_, k)| k.is_multiple_of(BLOCK))
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
        if dims.last() != Some(&k) {
            candle_core::bail!("q8_0-matmul: input {:?} against weight [{n}, {k}]", dims);
        }
        let m = x.len() / k;
        let data = self.w.data()?;
        if data.len() != n * (k / BLOCK) * BLOCK_BYTES {
            candle_core::bail!("q8_0-matmul: weight data is not [{n}, {k}] in Q8_0");
        }
        let input = Quantized::new(x, k);
        let mut out = vec![0f32; m * n];
        products(&data, n, &input, &mut out);
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("non-empty") = n;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

/// Rows of the input as Q8_0: per block, 32 `i8` and the scale (f16, held as f32).
struct Quantized {
    qs: Vec<[i8; BLOCK]>,
    d: Vec<f32>,
    blocks: usize,
}

impl Quantized {
    fn new(x: &[f32], k: usize) -> Self {
        let blocks = k / BLOCK;
        let mut qs = Vec::with_capacity(x.len() / BLOCK);
        let mut d = Vec::with_capacity(x.len() / BLOCK);
        for chunk in x.chunks_exact(BLOCK) {
            let amax = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
            let mut q = [0i8; BLOCK];
            for (q, v) in q.iter_mut().zip(chunk) {
                *q = (v * inv).round() as i8;
            }
            qs.push(q);
            d.push(f16::from_f32(scale).to_f32());
        }
        Quantized { qs, d, blocks }
    }

    fn row(&self, i: usize) -> Input<'_> {
        let r = i * self.blocks..(i + 1) * self.blocks;
        (&self.qs[r.clone()], &self.d[r])
    }

    fn rows(&self) -> usize {
        self.d.len() / self.blocks.max(1)
    }
}

/// Which dot-product kernel this CPU runs.
#[derive(Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Vnni,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Scalar,
}

fn kernel() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512vnni") && has!("avx512vl") && has!("avx2") && has!("fma") && has!("f16c") {
            return Kernel::Vnni;
        }
        if has!("avx2") && has!("fma") && has!("f16c") {
            return Kernel::Avx2;
        }
    }
    Kernel::Scalar
}

/// `out[i, j] = x_i · w_j` for all rows `i` of the input and `j < n`, the
/// weight rows split across the thread pool four at a time. Input rows go
/// four at a time too (batched decoding), so each weight block is loaded,
/// and its absolute value and scale taken, once for four products.
fn products(w: &[u8], n: usize, x: &Quantized, out: &mut [f32]) {
    let kernel = kernel();
    let row_bytes = x.blocks * BLOCK_BYTES;
    let m = x.rows();
    let quads = n.div_ceil(4);
    let out_ptr = out.as_mut_ptr() as usize;
    // SAFETY (for the writes): each (i, first + r) is written by exactly one
    // work item (quads are disjoint), within `out`'s m·n.
    let write = |i: usize, first: usize, dots: [f32; 4]| {
        for (r, dot) in dots.into_iter().enumerate().take(n - first) {
            unsafe { *(out_ptr as *mut f32).add(i * n + first + r) = dot };
        }
    };
    candle_core::utils::barrier_pool().execute_chunked(quads, |range| {
        for quad in range {
            let first = quad * 4;
            let rows: [&[u8]; 4] = std::array::from_fn(|r| {
                // A partial last quad repeats its last row; the extra results are dropped.
                let j = (first + r).min(n - 1);
                &w[j * row_bytes..(j + 1) * row_bytes]
            });
            let mut i = 0;
            while i + 4 <= m {
                let inputs: [_; 4] = std::array::from_fn(|g| x.row(i + g));
                for (g, dots) in tile(kernel, rows, inputs).into_iter().enumerate() {
                    write(i + g, first, dots);
                }
                i += 4;
            }
            for i in i..m {
                let [dots] = tile(kernel, rows, [x.row(i)]);
                write(i, first, dots);
            }
        }
    });
}

/// One input row's quantized blocks and their scales.
type Input<'a> = (&'a [[i8; BLOCK]], &'a [f32]);

/// The products of `G` input rows with four weight rows: `[input][weight]`.
fn tile<const G: usize>(kernel: Kernel, w: [&[u8]; 4], x: [Input<'_>; G]) -> [[f32; 4]; G] {
    match kernel {
        // SAFETY: `kernel()` chose these only where the CPU has their features;
        // every row holds as many whole blocks as the input (checked by the caller).
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni => unsafe { x86::tile_vnni(w, x) },
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => unsafe { x86::tile_avx2(w, x) },
        Kernel::Scalar => x.map(|(qs, d)| std::array::from_fn(|r| dot_scalar(w[r], qs, d))),
    }
}

fn dot_scalar(w: &[u8], qs: &[[i8; BLOCK]], d: &[f32]) -> f32 {
    let mut sum = 0f32;
    for (b, (q, &dx)) in qs.iter().zip(d).enumerate() {
        let block = &w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
        let dw = f16::from_le_bytes([block[0], block[1]]).to_f32();
        let int: i32 = block[2..]
            .iter()
            .zip(q)
            .map(|(&a, &b)| a as i8 as i32 * b as i32)
            .sum();
        sum += dw * dx * int as f32;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BLOCK_BYTES, PREFETCH_BYTES};
    use std::arch::x86_64::*;

    /// The sum of the eight lanes, in candle's order.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum(x: __m256) -> f32 {
        let hi = _mm256_extractf128_ps(x, 1);
        let s = _mm_add_ps(hi, _mm256_castps256_ps128(x));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// The block scale at `p` (little-endian f16).
    ///
    /// # Safety
    /// `p` must point to two readable bytes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn scale(p: *const u8) -> f32 {
        let bits = unsafe { (p as *const u16).read_unaligned() };
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }

    /// The body of a `G`-input × four-weight-row kernel; `|$a, $s| $int_dot`
    /// is the integer dot product of one block (eight i32 lanes), spliced in
    /// so it compiles with the kernel's target features.
    macro_rules! tile_body {
        ($w:ident, $x:ident, $g:ident, |$a:ident, $s:ident| $int_dot:expr) => {{
            let mut acc = [[_mm256_setzero_ps(); 4]; $g];
            let base = [
                $w[0].as_ptr(),
                $w[1].as_ptr(),
                $w[2].as_ptr(),
                $w[3].as_ptr(),
            ];
            for b in 0..$x[0].1.len() {
                // SAFETY: every row holds as many blocks as each input (the caller's contract).
                let y: [__m256i; $g] = std::array::from_fn(|g| unsafe {
                    _mm256_loadu_si256($x[g].0[b].as_ptr() as *const __m256i)
                });
                for r in 0..4 {
                    let p = unsafe { base[r].add(b * BLOCK_BYTES) };
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_BYTES) as *const i8);
                    let qw = unsafe { _mm256_loadu_si256(p.add(2) as *const __m256i) };
                    let $a = _mm256_sign_epi8(qw, qw);
                    let dw = unsafe { scale(p) };
                    for g in 0..$g {
                        let $s = _mm256_sign_epi8(y[g], qw);
                        let dot: __m256i = $int_dot;
                        let s = _mm256_set1_ps(dw * $x[g].1[b]);
                        acc[g][r] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(dot), acc[g][r]);
                    }
                }
            }
            let mut out = [[0f32; 4]; $g];
            for g in 0..$g {
                for r in 0..4 {
                    out[g][r] = hsum(acc[g][r]);
                }
            }
            out
        }};
    }

    /// One `vpdpbusd` per block, input and weight row.
    ///
    /// # Safety
    /// The CPU must have the features enabled here, and each row of `w` must
    /// hold as many whole blocks as each input.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
    pub(super) unsafe fn tile_vnni<const G: usize>(
        w: [&[u8]; 4],
        x: [super::Input<'_>; G],
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, |a, s| _mm256_dpbusd_epi32(
            _mm256_setzero_si256(),
            a,
            s
        ))
    }

    /// `maddubs` + `madd` (AVX2).
    ///
    /// # Safety
    /// As [`tile_vnni`], for AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn tile_avx2<const G: usize>(
        w: [&[u8]; 4],
        x: [super::Input<'_>; G],
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, |a, s| _mm256_madd_epi16(
            _mm256_maddubs_epi16(a, s),
            _mm256_set1_epi16(1)
        ))
    }
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

    #[test]
    fn equals_candles_q8_0_matmul_bit_for_bit() {
        // 4-row quads and a partial last quad (n = 38), one and several input rows.
        for (m, n, k) in [(1, 40, 64), (3, 38, 96), (5, 257, 640), (8, 64, 128)] {
            let w = weight(n, k);
            let x = seeded_matrix(m, k, 11 + m as u64);
            let ours = matmul(&x, &w).unwrap();
            let theirs = QMatMul::from_arc(w).unwrap().forward(&x).unwrap();
            assert_eq!(ours.dims(), &[m, n]);
            assert_eq!(
                ours.to_vec2::<f32>().unwrap(),
                theirs.to_vec2::<f32>().unwrap(),
                "m={m} n={n} k={k}"
            );
        }
    }

    #[test]
    fn every_kernel_agrees_with_the_scalar_one() {
        let (n, k) = (8, 128);
        let w = weight(n, k);
        let data = w.data().unwrap();
        let x = Quantized::new(
            &seeded_matrix(1, k, 3)
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap(),
            k,
        );
        let row_bytes = k / BLOCK * BLOCK_BYTES;
        let rows: [&[u8]; 4] = std::array::from_fn(|r| &data[r * row_bytes..(r + 1) * row_bytes]);
        let scalar = tile(Kernel::Scalar, rows, [x.row(0)]);
        let fast = tile(kernel(), rows, [x.row(0)]);
        let wide = tile(kernel(), rows, [x.row(0); 4]);
        for (a, b) in scalar[0].iter().zip(fast[0]) {
            assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
        }
        assert!(wide.iter().all(|w| *w == fast[0]));
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
