//! Q4_1 matrix products for decoding: `x·Wᵀ` for a few rows of `x` against a
//! Q4_1 weight (SmolLM2's GGUF stores most of its projections so).
//!
//! A Q4_1 block is 32 weights `d·q + m`, `q` four bits, `d` and `m` f16. As
//! in ggml, the input is quantized to Q8_1 (Q8_0 plus `s = d·Σq`, rounded
//! to f16), so a block's product is `d_w·d_x·Σ q_w·q_x + m_w·s_x`: one
//! integer dot product of unsigned nibbles with signed bytes. candle's own
//! Q4_1 product is scalar code on every CPU; these kernels take it with
//! `vpdpbusd` (AVX-512 VNNI), `maddubs` (AVX2), `sdot` or `smull` (NEON),
//! four weight rows per pass, and keep candle's float order per row and
//! block, `sum + ((int·d_w)·d_x + m_w·s_x)`, so every path gives candle's
//! bits exactly (tested in `lem-engine` against candle's `QMatMul`, and here
//! against the scalar kernel on each path).

use crate::q8_0::{Kernel, Path};
use half::f16;

/// Values per block.
pub const BLOCK: usize = 32;
/// Bytes of one Q4_1 block: `d` and `m` (f16), then 16 bytes of nibbles
/// (value `j` in the low nibble of byte `j`, value `j + 16` in its high one).
pub const BLOCK_BYTES: usize = 4 + BLOCK / 2;

/// Rows of an input quantized to Q8_1, as candle and ggml do: per block
/// `d = max|x| / 127` (f16), `q = round(x / d)`, `s = f16(Σq) · d` (f16).
pub struct Input {
    qs: Vec<[i8; BLOCK]>,
    d: Vec<f32>,
    s: Vec<f32>,
    blocks: usize,
}

/// One input row: blocks, their `d` and their `s`.
type Row<'a> = (&'a [[i8; BLOCK]], &'a [f32], &'a [f32]);

impl Input {
    /// Quantizes `x`, rows of `k` values.
    ///
    /// # Panics
    /// Unless `k` is a positive multiple of [`BLOCK`] and `x` holds whole rows.
    pub fn new(x: &[f32], k: usize) -> Self {
        assert!(
            k > 0 && k.is_multiple_of(BLOCK) && x.len().is_multiple_of(k),
            "q4_1 input: {} values in rows of {k}",
            x.len()
        );
        let n = x.len() / BLOCK;
        let (mut qs, mut d, mut s) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for chunk in x.chunks_exact(BLOCK) {
            let amax = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
            let mut q = [0i8; BLOCK];
            for (q, v) in q.iter_mut().zip(chunk) {
                *q = (v * inv).round() as i8;
            }
            let sum: i32 = q.iter().map(|&v| v as i32).sum();
            let d16 = f16::from_f32(scale);
            qs.push(q);
            d.push(d16.to_f32());
            s.push((f16::from_f32(sum as f32) * d16).to_f32());
        }
        Input {
            qs,
            d,
            s,
            blocks: k / BLOCK,
        }
    }

    /// How many rows.
    pub fn rows(&self) -> usize {
        self.d.len() / self.blocks
    }

    /// Bytes of one weight row of this input's width, in Q4_1.
    pub fn row_bytes(&self) -> usize {
        self.blocks * BLOCK_BYTES
    }

    fn row(&self, i: usize) -> Row<'_> {
        let r = i * self.blocks..(i + 1) * self.blocks;
        (&self.qs[r.clone()], &self.d[r.clone()], &self.s[r])
    }
}

impl crate::quad::Tiles for Input {
    type Row<'a> = Row<'a>;
    const NAME: &'static str = "q4_1";
    fn row_bytes(&self) -> usize {
        Input::row_bytes(self)
    }
    fn rows(&self) -> usize {
        Input::rows(self)
    }
    fn row(&self, i: usize) -> Row<'_> {
        Input::row(self, i)
    }
    fn tile<const G: usize>(kernel: Kernel, w: [&[u8]; 4], x: [Row<'_>; G]) -> [[f32; 4]; G] {
        tile(kernel, w, x)
    }
}

pub use crate::quad::quads;

/// Calls `out(i, j, x_i · w_j)` for every input row `i` and the weight rows
/// `j` of quad `q` (`4q..4q + 4`, those below `n`). `w` is the weight, `n`
/// rows of `x`'s width in Q4_1. Quads are independent: callers share
/// them out across threads.
///
/// # Panics
/// If `w` is not `n` such rows or `q` is past the last quad.
pub fn quad(
    kernel: Kernel,
    w: &[u8],
    n: usize,
    q: usize,
    x: &Input,
    out: impl FnMut(usize, usize, f32),
) {
    crate::quad::quad(kernel, w, n, q, x, out)
}

fn tile<const G: usize>(kernel: Kernel, w: [&[u8]; 4], x: [Row<'_>; G]) -> [[f32; 4]; G] {
    // SAFETY: a `Kernel` exists only for paths whose features the CPU has;
    // `quad` checked that every row holds as many blocks as each input.
    let ahead = kernel.ahead;
    match kernel.path {
        #[cfg(target_arch = "x86_64")]
        Path::Vnni => unsafe { x86::tile_vnni(w, x, ahead) },
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => unsafe { x86::tile_avx2(w, x, ahead) },
        #[cfg(target_arch = "aarch64")]
        Path::I8mm | Path::Sdot => unsafe { arm::tile_sdot(w, x, ahead) },
        #[cfg(target_arch = "aarch64")]
        Path::Neon => unsafe { arm::tile_neon(w, x, ahead) },
        Path::Scalar => x.map(|(qs, d, s)| std::array::from_fn(|r| dot_scalar(w[r], qs, d, s))),
    }
}

/// One weight row against one input row, in candle's order.
fn dot_scalar(w: &[u8], qs: &[[i8; BLOCK]], d: &[f32], s: &[f32]) -> f32 {
    let mut sum = 0f32;
    for (b, q) in qs.iter().enumerate() {
        let block = &w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
        let dw = f16::from_le_bytes([block[0], block[1]]).to_f32();
        let mw = f16::from_le_bytes([block[2], block[3]]).to_f32();
        let mut int = 0i32;
        for j in 0..BLOCK / 2 {
            let byte = block[4 + j] as i32;
            int += (byte & 0x0F) * q[j] as i32 + (byte >> 4) * q[j + BLOCK / 2] as i32;
        }
        sum += int as f32 * dw * d[b] + mw * s[b];
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BLOCK_BYTES, Row};
    use crate::q8_0::x86::prefetch;
    use std::arch::x86_64::*;

    /// Four f16 at `rows[r] + at` as f32.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn halves(rows: [*const u8; 4], at: usize) -> __m128 {
        let h = |r: usize| unsafe { (rows[r].add(at) as *const u16).read_unaligned() as i64 };
        let packed = h(0) | h(1) << 16 | h(2) << 32 | h(3) << 48;
        _mm_cvtph_ps(_mm_cvtsi64_si128(packed))
    }

    /// `[Σd0, Σd1, Σd2, Σd3]`: each vector's eight lanes summed (exact).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lane_sums(d: [__m256i; 4]) -> __m128i {
        let c = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
        _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1))
    }

    /// A block's 32 nibbles as bytes 0..=15, in value order.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn nibbles(p: *const u8) -> __m256i {
        let packed = unsafe { _mm_loadu_si128(p as *const __m128i) };
        let mask = _mm_set1_epi8(0x0F);
        let lo = _mm_and_si128(packed, mask);
        let hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
        _mm256_set_m128i(hi, lo)
    }

    macro_rules! tile_body {
        ($w:ident, $x:ident, $g:ident, $ahead:ident, |$a:ident, $y:ident| $int_dot:expr) => {{
            let base = [
                $w[0].as_ptr(),
                $w[1].as_ptr(),
                $w[2].as_ptr(),
                $w[3].as_ptr(),
            ];
            let mut acc = [_mm_setzero_ps(); $g];
            for b in 0..$x[0].1.len() {
                let at = b * BLOCK_BYTES;
                let mut wq = [_mm256_setzero_si256(); 4];
                for r in 0..4 {
                    // SAFETY: every row holds as many blocks as each input.
                    let p = unsafe { base[r].add(at) };
                    prefetch(p, $ahead);
                    wq[r] = unsafe { nibbles(p.add(4)) };
                }
                let dw = unsafe { halves(base, at) };
                let mw = unsafe { halves(base, at + 2) };
                for g in 0..$g {
                    let $y = unsafe { _mm256_loadu_si256($x[g].0[b].as_ptr() as *const __m256i) };
                    let mut d = [_mm256_setzero_si256(); 4];
                    for r in 0..4 {
                        let $a = wq[r];
                        d[r] = $int_dot;
                    }
                    let ints = _mm_cvtepi32_ps(lane_sums(d));
                    let t = _mm_add_ps(
                        _mm_mul_ps(_mm_mul_ps(ints, dw), _mm_set1_ps($x[g].1[b])),
                        _mm_mul_ps(mw, _mm_set1_ps($x[g].2[b])),
                    );
                    acc[g] = _mm_add_ps(acc[g], t);
                }
            }
            let mut out = [[0f32; 4]; $g];
            for g in 0..$g {
                unsafe { _mm_storeu_ps(out[g].as_mut_ptr(), acc[g]) };
            }
            out
        }};
    }

    /// `vpdpbusd` of the unsigned nibbles with the signed input.
    ///
    /// # Safety
    /// The CPU must have these features; every row of `w` must hold as many
    /// blocks as each input.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
    pub(super) unsafe fn tile_vnni<const G: usize>(
        w: [&[u8]; 4],
        x: [Row<'_>; G],
        ahead: usize,
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, ahead, |a, y| _mm256_dpbusd_epi32(
            _mm256_setzero_si256(),
            a,
            y
        ))
    }

    /// `maddubs` (at most 2·15·127 per pair: no saturation) and `madd`.
    ///
    /// # Safety
    /// As [`tile_vnni`], for AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn tile_avx2<const G: usize>(
        w: [&[u8]; 4],
        x: [Row<'_>; G],
        ahead: usize,
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, ahead, |a, y| _mm256_madd_epi16(
            _mm256_maddubs_epi16(a, y),
            _mm256_set1_epi16(1)
        ))
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::{BLOCK_BYTES, Row};
    use crate::q8_0::arm::{lane_sums, prefetch, scales, sdot};
    use std::arch::aarch64::*;

    macro_rules! tile_body {
        ($w:ident, $x:ident, $g:ident, $ahead:ident, |$lo:ident, $hi:ident, $y0:ident, $y1:ident| $ints:expr) => {{
            let base = [
                $w[0].as_ptr(),
                $w[1].as_ptr(),
                $w[2].as_ptr(),
                $w[3].as_ptr(),
            ];
            let mut acc = [vdupq_n_f32(0.0); $g];
            let mask = vdupq_n_u8(0x0F);
            for b in 0..$x[0].1.len() {
                let at = b * BLOCK_BYTES;
                let mut wq = [(vdupq_n_s8(0), vdupq_n_s8(0)); 4];
                for r in 0..4 {
                    // SAFETY: every row holds as many blocks as each input.
                    let p = unsafe { base[r].add(at) };
                    prefetch(p, $ahead);
                    let packed = unsafe { vld1q_u8(p.add(4)) };
                    wq[r] = (
                        vreinterpretq_s8_u8(vandq_u8(packed, mask)),
                        vreinterpretq_s8_u8(vshrq_n_u8::<4>(packed)),
                    );
                }
                let dw = unsafe { scales(base, at) };
                let mw = unsafe { scales(base, at + 2) };
                for g in 0..$g {
                    let p = $x[g].0[b].as_ptr();
                    let ($y0, $y1) = unsafe { (vld1q_s8(p), vld1q_s8(p.add(16))) };
                    let mut d = [vdupq_n_s32(0); 4];
                    for r in 0..4 {
                        let ($lo, $hi) = wq[r];
                        d[r] = $ints;
                    }
                    let ints = vcvtq_f32_s32(lane_sums(d));
                    let t = vaddq_f32(
                        vmulq_n_f32(vmulq_f32(ints, dw), $x[g].1[b]),
                        vmulq_n_f32(mw, $x[g].2[b]),
                    );
                    acc[g] = vaddq_f32(acc[g], t);
                }
            }
            let mut out = [[0f32; 4]; $g];
            for g in 0..$g {
                unsafe { vst1q_f32(out[g].as_mut_ptr(), acc[g]) };
            }
            out
        }};
    }

    /// `sdot` of the nibbles (0..=15, as signed bytes) with the input.
    ///
    /// # Safety
    /// The CPU must have dotprod; every row of `w` must hold as many blocks
    /// as each input.
    #[target_feature(enable = "neon,dotprod")]
    pub(super) unsafe fn tile_sdot<const G: usize>(
        w: [&[u8]; 4],
        x: [Row<'_>; G],
        ahead: usize,
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, ahead, |lo, hi, y0, y1| sdot(
            sdot(vdupq_n_s32(0), lo, y0),
            hi,
            y1
        ))
    }

    /// Base NEON: `smull` and `sadalp`.
    ///
    /// # Safety
    /// Every row of `w` must hold as many blocks as each input.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn tile_neon<const G: usize>(
        w: [&[u8]; 4],
        x: [Row<'_>; G],
        ahead: usize,
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, ahead, |lo, hi, y0, y1| {
            let mut d = vdupq_n_s32(0);
            for (a, b) in [(lo, y0), (hi, y1)] {
                d = vpadalq_s16(d, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
                d = vpadalq_s16(d, vmull_high_s8(a, b));
            }
            d
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::quad::{products, seeded_values as values};

    /// `n` rows of `k` in Q4_1 with seeded nibbles, scales and minimums.
    fn weight(n: usize, k: usize, seed: u64) -> Vec<u8> {
        let v = values(n * k / BLOCK * (BLOCK_BYTES + 2), seed);
        let mut w = Vec::new();
        for (b, chunk) in v
            .chunks_exact(BLOCK_BYTES + 2)
            .take(n * k / BLOCK)
            .enumerate()
        {
            w.extend_from_slice(&f16::from_f32(chunk[0].abs() / 8.0 + 1e-3).to_le_bytes());
            w.extend_from_slice(&f16::from_f32(chunk[1]).to_le_bytes());
            w.extend(
                chunk[2..2 + BLOCK / 2]
                    .iter()
                    .map(|x| ((x + 1.0) * 127.9) as u8),
            );
            if b == 0 {
                w[4] = 0xFF; // the extreme nibbles, 15 and 15
            }
        }
        w
    }

    /// Every kernel the CPU has gives the scalar kernel's bits (candle's
    /// order), on partial quads and one to nine input rows.
    #[test]
    fn every_kernel_equals_the_scalar_one_bit_for_bit() {
        for (m, n, k) in [
            (1, 4, 32),
            (1, 38, 96),
            (2, 9, 64),
            (4, 12, 640),
            (7, 5, 128),
            (9, 41, 256),
        ] {
            let w = weight(n, k, 7 + n as u64);
            let x = Input::new(&values(m * k, 11 + m as u64), k);
            let reference = products(Kernel::scalar(), &w, n, &x);
            assert!(reference.iter().all(|v| v.is_finite()));
            // Prefetching, or not, changes no result.
            let kernels = Kernel::available().into_iter();
            for kernel in kernels.flat_map(|k| [k, k.with_prefetch(0)]) {
                let ours = products(kernel, &w, n, &x);
                for (a, b) in reference.iter().zip(&ours) {
                    assert_eq!(
                        a.to_bits(),
                        b.to_bits(),
                        "{} m={m} n={n} k={k}: {a} vs {b}",
                        kernel.name()
                    );
                }
            }
        }
    }

    /// The scalar kernel is `Σ (d·q + m)·x` up to the input's quantization.
    #[test]
    fn the_scalar_kernel_is_the_dequantized_product() {
        let (n, k) = (3, 64);
        let w = weight(n, k, 5);
        let xs = values(k, 9);
        let x = Input::new(&xs, k);
        let ours = products(Kernel::scalar(), &w, n, &x);
        for j in 0..n {
            let row = &w[j * x.row_bytes()..(j + 1) * x.row_bytes()];
            let mut exact = 0f64;
            for (b, block) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                let d = f16::from_le_bytes([block[0], block[1]]).to_f64();
                let m = f16::from_le_bytes([block[2], block[3]]).to_f64();
                for i in 0..BLOCK {
                    let byte = block[4 + i % 16];
                    let q = if i < 16 { byte & 0x0F } else { byte >> 4 };
                    exact += (d * q as f64 + m) * xs[b * BLOCK + i] as f64;
                }
            }
            assert!(
                (ours[j] as f64 - exact).abs() < 0.02 * exact.abs().max(1.0),
                "{} vs {exact}",
                ours[j]
            );
        }
    }
}
