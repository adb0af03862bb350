//! Q6_K matrix products: `x·Wᵀ` for any number of rows of `x` against a
//! Q6_K weight (a Q4_K_M GGUF's output layer and half its `ffn_down` and
//! `attn_v` projections).
//!
//! A Q6_K block is 256 weights `d·sc·(q − 32)` in sixteen sub-blocks of 16,
//! `q` six bits (four in `ql`, two in `qh`), `sc` an `i8` per sub-block, `d`
//! f16. Against a Q8_K input ([`crate::q8_k`]) a block's product is
//! `d_w·d_x·(Σ_s sc_s·Σ q_w·q_x − 32·Σ_s sc_s·Σ q_x)`, one exact integer sum
//! and one float product. The AVX-512 kernel is [`crate::q4_k`]'s (tiles of
//! four weight rows by up to four input rows, `vpmaddubsw` + `vpdpwssd`);
//! every path gives the scalar kernel's bits.

use crate::q8_0::Kernel;
use crate::q8_k::{BLOCK, Input, Row};
use half::f16;

/// Bytes of one Q6_K block: 128 bytes of low nibbles, 64 of high bit
/// pairs, 16 `i8` scales, then `d` (f16).
pub const BLOCK_BYTES: usize = BLOCK / 2 + BLOCK / 4 + BLOCK / 16 + 2;

pub use crate::q4_k::vectorised;
pub use crate::quad::quads;

/// Calls `out(i, j, x_i · w_j)` for every input row `i` and the weight rows
/// `j` of quad `q` (`4q..4q + 4`, those below `n`). `w` is the weight, `n`
/// rows of `x`'s width in Q6_K. Quads are independent: callers share
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
    const NAME: &'static str = "q6_k";
    const BLOCK_BYTES: usize = BLOCK_BYTES;
    fn dot_scalar(w: &[u8], x: Row<'_>) -> f32 {
        dot_scalar(w, x)
    }
    #[cfg(target_arch = "x86_64")]
    type X86 = x86::Q6K;
    #[cfg(target_arch = "x86_64")]
    type Avx2 = avx2::Q6K;
}

/// The six-bit value `e` (0..256) of a block, unsigned (0..64).
fn value(block: &[u8], e: usize) -> i32 {
    let (half, c, l) = (e / 128, (e % 128) / 64, e % 64);
    let low = block[64 * half + l];
    let nibble = if c == 0 { low & 0x0F } else { low >> 4 };
    let high = block[128 + 32 * half + l % 32];
    let pair = (high >> (4 * c + 2 * (l / 32))) & 3;
    (nibble | pair << 4) as i32
}

/// One weight row against one input row.
fn dot_scalar(w: &[u8], x: Row<'_>) -> f32 {
    let mut sum = 0f32;
    for (block, xb) in w.chunks_exact(BLOCK_BYTES).zip(x) {
        let sc = |s: usize| block[192 + s] as i8 as i32;
        let d = f16::from_le_bytes([block[208], block[209]]).to_f32();
        let mut int = 0i32;
        let mut offset = 0i32;
        for s in 0..16 {
            let part: i32 = (16 * s..16 * s + 16)
                .map(|e| value(block, e) * xb.qs[e] as i32)
                .sum();
            int += sc(s) * part;
            offset += sc(s) * xb.bsum16[s] as i32;
        }
        sum += (int - 32 * offset) as f32 * (d * xb.d);
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::BLOCK_BYTES;
    use crate::q8_k::Block;
    use crate::q8_k::x86::{
        Format, Prepared, per_pair, per_row, per_row_from_halves, per_row_lanes,
    };
    use half::f16;
    use std::arch::x86_64::*;

    pub struct Q6K;

    impl Format for Q6K {
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        unsafe fn prepare(blocks: [*const u8; 4], p: &mut Prepared) {
            let mut d = [0f32; 4];
            let mut scales = [_mm256_setzero_si256(); 4];
            for r in 0..4 {
                let at = blocks[r];
                // SAFETY: a whole block (the caller's promise).
                let block = unsafe { std::slice::from_raw_parts(at, BLOCK_BYTES) };
                d[r] = f16::from_le_bytes([block[208], block[209]]).to_f32();
                scales[r] =
                    _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(at.add(192) as *const _) });
                p.scales[r] = _mm512_castsi256_si512(scales[r]);
            }
            // Rows 0 and 1's sixteen scales, then rows 2 and 3's.
            let join =
                |a: __m256i, b: __m256i| _mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), b);
            p.low = [join(scales[0], scales[1]), join(scales[2], scales[3])];
            p.d = per_row_lanes(d);
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        unsafe fn run(
            blocks: [*const u8; 4],
            run: usize,
            p: &Prepared,
        ) -> ([__m512i; 4], [__m512i; 4]) {
            let nibble = _mm512_set1_epi8(0x0F);
            let pair_bits = _mm512_set1_epi8(0x30);
            let (half, high) = (run / 2, run % 2);
            // Run c (values 64c..64c + 64) takes its high bit pairs from bits
            // 4·(c mod 2) of `qh` in its first 32 values and 4·(c mod 2) + 2
            // in the rest: shifted down by that, up by 4 and masked, they
            // sit at bits 4 and 5 of each byte.
            let shift = 4 * high as i16;
            let shifts = _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm256_set1_epi16(shift)),
                _mm256_set1_epi16(shift + 2),
            );
            // For run c, i16 lanes 8i..8i + 8 take scale 4c + i.
            let lanes: [i16; 32] = std::array::from_fn(|l| (4 * run + l / 8) as i16);
            // SAFETY: 32 i16 are 64 bytes.
            let pick = unsafe { _mm512_loadu_si512(lanes.as_ptr() as *const _) };
            let values = std::array::from_fn(|r| {
                // SAFETY: ql bytes 64h..64h + 64 and qh bytes 32h..32h + 32.
                let (ql, qh) = unsafe {
                    (
                        _mm512_loadu_si512(blocks[r].add(64 * half) as *const _),
                        _mm256_loadu_si256(blocks[r].add(128 + 32 * half) as *const _),
                    )
                };
                let low = match high {
                    0 => _mm512_and_si512(ql, nibble),
                    _ => _mm512_and_si512(_mm512_srli_epi16::<4>(ql), nibble),
                };
                let pairs = _mm512_srlv_epi16(_mm512_broadcast_i64x4(qh), shifts);
                let pairs = _mm512_and_si512(_mm512_slli_epi16::<4>(pairs), pair_bits);
                _mm512_or_si512(low, pairs)
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
            // The −32 offset: each row's 16 scales against the input's 16 sums.
            let total: [__m512i; G] = std::array::from_fn(|g| {
                // SAFETY: bsum16 is 32 bytes.
                let sums = unsafe { _mm256_loadu_si256(x[g].bsum16.as_ptr() as *const _) };
                let sums = _mm512_broadcast_i64x4(sums);
                let offset = per_row_from_halves(
                    _mm512_dpwssd_epi32(zero, p.low[0], sums),
                    _mm512_dpwssd_epi32(zero, p.low[1], sums),
                );
                _mm512_sub_epi32(per_row(acc[g]), _mm512_slli_epi32::<5>(offset))
            });
            let int = _mm512_cvtepi32_ps(per_pair(total));
            _mm512_mul_ps(int, _mm512_mul_ps(p.d, dx))
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::BLOCK_BYTES;
    use crate::q8_k::Block;
    use crate::q8_k::avx2::{Format, Unpacked, lane_sums, run_scales};
    use half::f16;
    use std::arch::x86_64::*;

    pub struct Q6K;

    impl Format for Q6K {
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn unpack(p: *const u8, r: usize, u: &mut Unpacked) {
            // SAFETY: a whole block (the caller's promise).
            let block = unsafe { std::slice::from_raw_parts(p, BLOCK_BYTES) };
            let (nibble, pair) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(3));
            let shift = |v: __m256i, by: i32| _mm256_srl_epi16(v, _mm_cvtsi32_si128(by));
            // Values 128h + 64c + 32k + l: the low (c = 0) or high (c = 1)
            // nibble of byte 64h + 32k + l, with bits 4c + 2k of byte
            // 128 + 32h + l above it (`value`'s layout).
            // SAFETY (the loads): within the block's 210 bytes.
            for h in 0..2 {
                let high = unsafe { _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i) };
                for k in 0..2 {
                    let low =
                        unsafe { _mm256_loadu_si256(p.add(64 * h + 32 * k) as *const __m256i) };
                    for c in 0..2 {
                        let four = _mm256_and_si256(shift(low, 4 * c), nibble);
                        let two = _mm256_and_si256(shift(high, 4 * c + 2 * k as i32), pair);
                        u.q[r][4 * h + 2 * c as usize + k] =
                            _mm256_or_si256(four, _mm256_slli_epi16::<4>(two));
                    }
                }
            }
            let sc = |s: usize| block[192 + s] as i8 as i16;
            for run in 0..8 {
                u.s[r][run] = run_scales(sc(2 * run), sc(2 * run + 1));
            }
            // The sixteen scales times −32 (at most 4096), against `bsum16`:
            // the values' offset of 32, taken out of the integer sum.
            // SAFETY: the sixteen scale bytes, 192..208 of the block.
            let scales = unsafe { _mm_loadu_si128(p.add(192) as *const __m128i) };
            u.coef[r] = _mm256_mullo_epi16(_mm256_cvtepi8_epi16(scales), _mm256_set1_epi16(-32));
            u.d[r] = f16::from_le_bytes([block[208], block[209]]).to_f32();
        }

        /// Per lane: `(int − 32·offset)·(d·d_x)`, `offset` the block's
        /// scales by the input's sums over 16 values.
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn add(mut acc: [__m256i; 4], u: &Unpacked, x: &Block) -> __m128 {
            // SAFETY: the sixteen i16 of `bsum16`.
            let bsum = unsafe { _mm256_loadu_si256(x.bsum16.as_ptr() as *const __m256i) };
            for (acc, &coef) in acc.iter_mut().zip(&u.coef) {
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(coef, bsum));
            }
            let ints = _mm_cvtepi32_ps(lane_sums(acc));
            // SAFETY: four f32.
            let d = unsafe { _mm_loadu_ps(u.d.as_ptr()) };
            _mm_mul_ps(ints, _mm_mul_ps(d, _mm_set1_ps(x.d)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::q8_k::checks;
    use crate::quad::seeded_values;

    /// `n` rows of `blocks` Q6_K blocks with seeded bytes and scales.
    fn weight(n: usize, blocks: usize, seed: u64) -> Vec<u8> {
        let noise = seeded_values(n * blocks * BLOCK_BYTES, seed);
        let mut w = Vec::with_capacity(noise.len());
        for block in noise.chunks_exact(BLOCK_BYTES) {
            w.extend(block[..208].iter().map(|v| ((v + 1.0) * 127.99) as u8));
            w.extend(f16::from_f32(block[208].abs() * 0.01 + 0.001).to_le_bytes());
        }
        w
    }

    /// Values of a Q6_K block as ggml's `dequantize_row_q6_K` gives them.
    fn dequantize(block: &[u8]) -> Vec<f64> {
        let d = f16::from_le_bytes([block[208], block[209]]).to_f64();
        let mut out = vec![0f64; BLOCK];
        for half in 0..2 {
            let (ql, qh) = (&block[64 * half..], &block[128 + 32 * half..]);
            let sc = &block[192 + 8 * half..];
            for l in 0..32 {
                let is = l / 16;
                let q = [
                    (ql[l] & 0xF) | ((qh[l] & 3) << 4),
                    (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
                    (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                    (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                ];
                for (i, q) in q.into_iter().enumerate() {
                    out[128 * half + l + 32 * i] =
                        d * sc[is + 2 * i] as i8 as f64 * (q as f64 - 32.0);
                }
            }
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
}
