//! Q4_K matrix products: `x·Wᵀ` for any number of rows of `x` against a
//! Q4_K weight (most of a Qwen2.5 Q4_K_M GGUF's projections).
//!
//! A Q4_K block is 256 weights in eight sub-blocks of 32, each
//! `d·sc·q − dmin·m` with `q` four bits and `sc`, `m` six bits; `d`, `dmin`
//! are f16. Against a Q8_K input ([`crate::q8_k`]) a block's product is
//! `d_w·d_x·Σ_s sc_s·(Σ q_w·q_x) − dmin_w·d_x·Σ_s m_s·(Σ q_x)`: two exact
//! integer sums, then two float products.
//!
//! candle's product takes one pair of rows at a time with 256-bit
//! `maddubs`/`madd`, as llama.cpp's does; on a 1.5B model's prompts it ran at
//! half llama.cpp's speed. The AVX-512 kernel here works on tiles of four
//! weight rows by up to four input rows: 64 values of a weight row are
//! unpacked once and multiplied into four input rows (`vpmaddubsw`), each
//! product scaled by its sub-block's `sc` and accumulated in one
//! instruction (`vpdpwssd`); the integer sums of the sixteen pairs are
//! folded into one vector and the float steps run once per block for all
//! sixteen. The float order is the scalar kernel's, per pair and block:
//! `sum + (int·(d_w·d_x) − mins·(dmin_w·d_x))`, so every path gives the same
//! bits (tested below). x86 CPUs without AVX-512 have an AVX2 path
//! ([`crate::q8_k`]'s `avx2` driver, the same bits); other CPUs use the
//! scalar kernel here, and the engine keeps candle's product for them
//! ([`vectorised`]).

use crate::q8_0::Kernel;
use crate::q8_k::{BLOCK, Input, Row};
use half::f16;

/// Bytes of one Q4_K block: `d`, `dmin` (f16), twelve bytes of packed
/// six-bit scales and mins, then 128 bytes of nibbles (value `64j + l` in
/// the low nibble of byte `32j + l`, value `64j + 32 + l` in its high one).
pub const BLOCK_BYTES: usize = 4 + 12 + BLOCK / 2;

pub use crate::quad::quads;

/// Whether `kernel` has a vector path here: AVX-512 VNNI or AVX2. (Any
/// kernel gives the right result; the engine keeps candle's product where
/// this says no.)
pub fn vectorised(kernel: Kernel) -> bool {
    #[cfg(target_arch = "x86_64")]
    if matches!(
        kernel.path,
        crate::q8_0::Path::Vnni | crate::q8_0::Path::Avx2
    ) {
        return true;
    }
    let _ = kernel;
    false
}

/// Calls `out(i, j, x_i · w_j)` for every input row `i` and the weight rows
/// `j` of quad `q` (`4q..4q + 4`, those below `n`). `w` is the weight, `n`
/// rows of `x`'s width in Q4_K. Quads are independent: callers share
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
    crate::q8_k::quad::<Format>(kernel, w, n, q, x, out)
}

/// This format, for the shared driver.
struct Format;

impl crate::q8_k::KQuant for Format {
    const NAME: &'static str = "q4_k";
    const BLOCK_BYTES: usize = BLOCK_BYTES;
    fn dot_scalar(w: &[u8], x: Row<'_>) -> f32 {
        dot_scalar(w, x)
    }
    #[cfg(target_arch = "x86_64")]
    type X86 = x86::Q4K;
    #[cfg(target_arch = "x86_64")]
    type Avx2 = avx2::Q4K;
}

/// A block's eight scales and eight mins out of their twelve bytes (ggml's
/// `get_scale_min_k4`, four sub-blocks at a time as its vector code does).
#[inline]
fn scales_and_mins(packed: &[u8]) -> ([u8; 8], [u8; 8]) {
    let word = |i: usize| u32::from_le_bytes(packed[4 * i..4 * i + 4].try_into().expect("4"));
    let (a, b, c) = (word(0), word(1), word(2));
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let sc_lo = a & LOW6;
    let sc_hi = (c & LOW4) | (((a >> 6) & LOW2) << 4);
    let m_lo = b & LOW6;
    let m_hi = ((c >> 4) & LOW4) | (((b >> 6) & LOW2) << 4);
    let join = |lo: u32, hi: u32| (u64::from(lo) | u64::from(hi) << 32).to_le_bytes();
    (join(sc_lo, sc_hi), join(m_lo, m_hi))
}

/// One weight row against one input row.
fn dot_scalar(w: &[u8], x: Row<'_>) -> f32 {
    let mut sum = 0f32;
    for (block, xb) in w.chunks_exact(BLOCK_BYTES).zip(x) {
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        let dmin = f16::from_le_bytes([block[2], block[3]]).to_f32();
        let (sc, m) = scales_and_mins(&block[4..16]);
        let qs = &block[16..];
        let mut int = 0i32;
        for j in 0..4 {
            let (mut lo, mut hi) = (0i32, 0i32);
            for l in 0..32 {
                let byte = qs[32 * j + l] as i32;
                lo += (byte & 0x0F) * xb.qs[64 * j + l] as i32;
                hi += (byte >> 4) * xb.qs[64 * j + 32 + l] as i32;
            }
            int += sc[2 * j] as i32 * lo + sc[2 * j + 1] as i32 * hi;
        }
        let mins: i32 = (0..8).map(|s| m[s] as i32 * xb.bsum32[s] as i32).sum();
        sum += int as f32 * (d * xb.d) - mins as f32 * (dmin * xb.d);
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BLOCK_BYTES, scales_and_mins};
    use crate::q8_k::Block;
    use crate::q8_k::x86::{Format, Prepared, per_pair, per_row, per_row_lanes};
    use half::f16;
    use std::arch::x86_64::*;

    pub struct Q4K;

    impl Format for Q4K {
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        unsafe fn prepare(blocks: [*const u8; 4], p: &mut Prepared) {
            let (mut d, mut dmin, mut mins) = ([0f32; 4], [0f32; 4], [0i64; 4]);
            for r in 0..4 {
                let at = blocks[r];
                // SAFETY: a whole block (the caller's promise).
                let block = unsafe { std::slice::from_raw_parts(at, BLOCK_BYTES) };
                d[r] = f16::from_le_bytes([block[0], block[1]]).to_f32();
                dmin[r] = f16::from_le_bytes([block[2], block[3]]).to_f32();
                let (sc, m) = scales_and_mins(&block[4..16]);
                mins[r] = i64::from_le_bytes(m);
                p.scales[r] = _mm512_cvtepu8_epi16(_mm256_zextsi128_si256(_mm_cvtsi64_si128(
                    i64::from_le_bytes(sc),
                )));
            }
            // Each row's eight mins as i16, one row per 128-bit lane.
            p.low[0] = _mm512_cvtepu8_epi16(_mm256_set_epi64x(mins[3], mins[2], mins[1], mins[0]));
            p.d = per_row_lanes(d);
            p.dmin = per_row_lanes(dmin);
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        unsafe fn run(
            blocks: [*const u8; 4],
            run: usize,
            p: &Prepared,
        ) -> ([__m512i; 4], [__m512i; 4]) {
            // Bytes 0..32 as they are, 32..64 shifted down a nibble: with
            // the mask, 32 bytes of nibbles broadcast to both halves become
            // their 64 values in order.
            let shifts = _mm512_inserti64x4::<1>(_mm512_setzero_si512(), _mm256_set1_epi16(4));
            let nibble = _mm512_set1_epi8(0x0F);
            // Run j's first 16 i16 lanes take scale 2j, the rest 2j + 1.
            let (a, b) = (2 * run as i16, 2 * run as i16 + 1);
            let pick = _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm256_set1_epi16(a)),
                _mm256_set1_epi16(b),
            );
            let values = std::array::from_fn(|r| {
                // SAFETY: bytes 16 + 32j .. 48 + 32j of the block.
                let packed =
                    unsafe { _mm256_loadu_si256(blocks[r].add(16 + 32 * run) as *const _) };
                let both = _mm512_broadcast_i64x4(packed);
                _mm512_and_si512(_mm512_srlv_epi16(both, shifts), nibble)
            });
            let scales = std::array::from_fn(|r| _mm512_permutexvar_epi16(pick, p.scales[r]));
            (values, scales)
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        unsafe fn add<const G: usize>(
            acc: &[[__m512i; 4]; G],
            p: &Prepared,
            x: [&Block; G],
            dx: __m512,
        ) -> __m512 {
            let zero = _mm512_setzero_si512();
            let main: [__m512i; G] = std::array::from_fn(|g| per_row(acc[g]));
            let low: [__m512i; G] = std::array::from_fn(|g| {
                // SAFETY: bsum32 is 16 bytes.
                let sums = unsafe { _mm_loadu_si128(x[g].bsum32.as_ptr() as *const _) };
                _mm512_dpwssd_epi32(zero, p.low[0], _mm512_broadcast_i32x4(sums))
            });
            let int = _mm512_cvtepi32_ps(per_pair(main));
            let mins = _mm512_cvtepi32_ps(per_pair(low));
            _mm512_sub_ps(
                _mm512_mul_ps(int, _mm512_mul_ps(p.d, dx)),
                _mm512_mul_ps(mins, _mm512_mul_ps(p.dmin, dx)),
            )
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{BLOCK_BYTES, scales_and_mins};
    use crate::q8_k::Block;
    use crate::q8_k::avx2::{Format, Unpacked, lane_sums, quad_sums, run_scales};
    use half::f16;
    use std::arch::x86_64::*;

    pub struct Q4K;

    impl Format for Q4K {
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn unpack(p: *const u8, r: usize, u: &mut Unpacked) {
            // SAFETY: a whole block (the caller's promise).
            let block = unsafe { std::slice::from_raw_parts(p, BLOCK_BYTES) };
            let (sc, m) = scales_and_mins(&block[4..16]);
            let low = _mm256_set1_epi8(0x0F);
            for j in 0..4 {
                // Values 64j..64j + 32 in the low nibbles, the next 32 in the high.
                let bytes = unsafe { _mm256_loadu_si256(p.add(16 + 32 * j) as *const __m256i) };
                u.q[r][2 * j] = _mm256_and_si256(bytes, low);
                u.q[r][2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16::<4>(bytes), low);
            }
            // A run of 32 is one sub-block: one scale for both halves.
            for (run, &sc) in sc.iter().enumerate() {
                u.s[r][run] = run_scales(sc as i16, sc as i16);
            }
            // The eight mins as i16 lanes 0..8, against `bsum32`.
            // SAFETY: the eight bytes of `m`.
            let m = unsafe { _mm_loadl_epi64(m.as_ptr() as *const __m128i) };
            u.coef[r] = _mm256_cvtepu8_epi16(m);
            u.d[r] = f16::from_le_bytes([block[0], block[1]]).to_f32();
            u.dmin[r] = f16::from_le_bytes([block[2], block[3]]).to_f32();
        }

        /// Per lane: `int·(d·d_x) − mins·(dmin·d_x)`, `mins` the block's
        /// mins by the input's sums over 32 values.
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn add(acc: [__m256i; 4], u: &Unpacked, x: &Block) -> __m128 {
            let ints = _mm_cvtepi32_ps(lane_sums(acc));
            // SAFETY: the eight i16 of `bsum32`.
            let bsum = unsafe { _mm_loadu_si128(x.bsum32.as_ptr() as *const __m128i) };
            let mins = quad_sums(
                u.coef
                    .map(|c| _mm_madd_epi16(_mm256_castsi256_si128(c), bsum)),
            );
            let xd = _mm_set1_ps(x.d);
            // SAFETY: four f32 each.
            let (d, dmin) = unsafe { (_mm_loadu_ps(u.d.as_ptr()), _mm_loadu_ps(u.dmin.as_ptr())) };
            _mm_sub_ps(
                _mm_mul_ps(ints, _mm_mul_ps(d, xd)),
                _mm_mul_ps(_mm_cvtepi32_ps(mins), _mm_mul_ps(dmin, xd)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::q8_k::checks;
    use crate::quad::seeded_values;

    /// `n` rows of `blocks` Q4_K blocks with seeded bytes and small scales.
    fn weight(n: usize, blocks: usize, seed: u64) -> Vec<u8> {
        let noise = seeded_values(n * blocks * BLOCK_BYTES, seed);
        let mut w = Vec::with_capacity(noise.len());
        for block in noise.chunks_exact(BLOCK_BYTES) {
            w.extend(f16::from_f32(block[0].abs() * 0.01 + 0.001).to_le_bytes());
            w.extend(f16::from_f32(block[1].abs() * 0.01).to_le_bytes());
            w.extend(block[4..].iter().map(|v| ((v + 1.0) * 127.99) as u8));
        }
        w
    }

    /// Values of a Q4_K block as ggml's `dequantize_row_q4_K` gives them.
    fn dequantize(block: &[u8]) -> Vec<f64> {
        let d = f16::from_le_bytes([block[0], block[1]]).to_f64();
        let dmin = f16::from_le_bytes([block[2], block[3]]).to_f64();
        let q = &block[4..16];
        let scale_min = |j: usize| -> (f64, f64) {
            if j < 4 {
                ((q[j] & 63) as f64, (q[j + 4] & 63) as f64)
            } else {
                (
                    ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)) as f64,
                    ((q[j + 4] >> 4) | ((q[j] >> 6) << 4)) as f64,
                )
            }
        };
        let mut out = Vec::with_capacity(BLOCK);
        for j in 0..4 {
            let qs = &block[16 + 32 * j..48 + 32 * j];
            let (s1, m1) = scale_min(2 * j);
            let (s2, m2) = scale_min(2 * j + 1);
            out.extend(qs.iter().map(|&b| d * s1 * (b & 0xF) as f64 - dmin * m1));
            out.extend(qs.iter().map(|&b| d * s2 * (b >> 4) as f64 - dmin * m2));
        }
        out
    }

    #[test]
    fn scalar_kernel_is_the_dequantized_product() {
        checks::scalar_is_the_dequantized_product::<Format>(weight, dequantize);
    }

    #[test]
    fn every_kernel_gives_the_scalar_bits() {
        checks::every_kernel_gives_the_scalar_bits::<Format>(weight);
    }

    #[test]
    fn scales_and_mins_are_ggmls() {
        let packed: Vec<u8> = (0..12u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(200))
            .collect();
        let (sc, m) = scales_and_mins(&packed);
        for j in 0..8 {
            let (s, mm) = if j < 4 {
                (packed[j] & 63, packed[j + 4] & 63)
            } else {
                (
                    (packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4),
                    (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
                )
            };
            assert_eq!((sc[j], m[j]), (s, mm), "sub-block {j}");
        }
    }
}
