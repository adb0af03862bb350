//! The AVX2 driver both K-quant products share, for x86 CPUs without
//! AVX-512: most laptops and desktops (Intel's since Alder Lake, AMD's
//! before Zen 4), where a Qwen2.5 1.5B's prompts otherwise go through
//! candle's product one pair of rows at a time.
//!
//! For each block of a weight quad, the format unpacks its four rows once
//! ([`Format::unpack`]): 256 values as unsigned bytes in eight runs of 32,
//! and each run's sub-block scales as `i16` lanes. Every two input rows then
//! take their exact integer sums from those (`vpmaddubsw` of weight bytes by
//! input bytes, `vpmaddwd` of that by the scales, `vpaddd`: three
//! instructions per 32 values and pair of rows), and the format's float
//! steps ([`Format::add`]) run once per block and input row for all four
//! weight rows, lane by lane in the scalar kernel's order, so every result
//! is the scalar kernel's bits. A block is unpacked once for all the input
//! rows of a call: a prompt's tile shares it, and for the one row of a
//! decoded token it still beats candle's product.

use super::{Block, Input, KQuant, block_at};
use std::arch::x86_64::*;

/// A weight quad's block, unpacked.
pub struct Unpacked {
    /// `[row][run]`: values `32·run..32·run + 32` as unsigned bytes.
    pub q: [[__m256i; 8]; 4],
    /// `[row][run]`: the scale of each `i16` pair of `q`'s products with an
    /// input (lanes 0..8: values `32·run..32·run + 16`; 8..16: the next 16).
    pub s: [[__m256i; 8]; 4],
    /// `[row]`: the format's coefficients of the input's sums (Q4_K's mins,
    /// Q6_K's scales times −32), as `i16` lanes.
    pub coef: [__m256i; 4],
    /// Lane `r`: row `r`'s `d`.
    pub d: [f32; 4],
    /// Lane `r`: row `r`'s `dmin` (Q4_K).
    pub dmin: [f32; 4],
}

/// A K-quant format's block, as this driver needs it.
pub trait Format {
    /// Unpacks the block at `p` as row `r` of `u`.
    ///
    /// # Safety
    /// AVX2; `p` starts a whole block.
    unsafe fn unpack(p: *const u8, r: usize, u: &mut Unpacked);
    /// The block's additions to the four rows' sums (lane `r`), from the
    /// exact integer sums `acc[r]` (eight lanes each) of the rows' values,
    /// each times its sub-block scale, by input block `x`'s: per lane, the
    /// scalar kernel's float steps.
    ///
    /// # Safety
    /// AVX2.
    unsafe fn add(acc: [__m256i; 4], u: &Unpacked, x: &Block) -> __m128;
}

/// Calls `out(i, r, x_i · w_r)` for every row `i` of `x` and `r < 4`,
/// prefetching each row `ahead` bytes past the block it reads (0: not).
///
/// # Safety
/// AVX2; each `w[r]` holds a block of `F` per block of `x`'s rows.
#[target_feature(enable = "avx2")]
pub unsafe fn quad<F: KQuant>(
    w: [&[u8]; 4],
    x: &Input,
    ahead: usize,
    mut out: impl FnMut(usize, usize, f32),
) {
    let (rows, blocks) = (x.rows(), x.per_row);
    let mut sums = vec![_mm_setzero_ps(); rows];
    let zero = _mm256_setzero_si256();
    let mut u = Unpacked {
        q: [[zero; 8]; 4],
        s: [[zero; 8]; 4],
        coef: [zero; 4],
        d: [0.0; 4],
        dmin: [0.0; 4],
    };
    let xs = x.blocks.as_ptr();
    // SAFETY: row i < rows, block b < blocks: within `x.blocks`.
    let block = |i: usize, b: usize| unsafe { &*xs.add(i * blocks + b) };
    for b in 0..blocks {
        let at = block_at::<F>(w, b, ahead);
        for (r, &p) in at.iter().enumerate() {
            // SAFETY: block b of each row (the caller's promise).
            unsafe { F::Avx2::unpack(p, r, &mut u) };
        }
        let mut i = 0;
        while i + 2 <= rows {
            let xb = [block(i, b), block(i + 1, b)];
            for (g, acc) in ints(&u, xb).into_iter().enumerate() {
                let add = unsafe { F::Avx2::add(acc, &u, xb[g]) };
                sums[i + g] = _mm_add_ps(sums[i + g], add);
            }
            i += 2;
        }
        if i < rows {
            let xb = block(i, b);
            let [acc] = ints(&u, [xb]);
            let add = unsafe { F::Avx2::add(acc, &u, xb) };
            sums[i] = _mm_add_ps(sums[i], add);
        }
    }
    for (i, sum) in sums.into_iter().enumerate() {
        let mut lanes = [0f32; 4];
        // SAFETY: four f32 fit `lanes`.
        unsafe { _mm_storeu_ps(lanes.as_mut_ptr(), sum) };
        for (r, v) in lanes.into_iter().enumerate() {
            out(i, r, v);
        }
    }
}

/// `[g][r]`: the integer sums of input block `x[g]` against the unpacked
/// rows (each value times its sub-block scale), in eight lanes (exact).
#[inline]
#[target_feature(enable = "avx2")]
fn ints<const G: usize>(u: &Unpacked, x: [&Block; G]) -> [[__m256i; 4]; G] {
    let mut acc = [[_mm256_setzero_si256(); 4]; G];
    for run in 0..8 {
        // SAFETY: values 32·run..32·run + 32 of a 64-byte aligned block.
        let xv: [__m256i; G] = std::array::from_fn(|g| unsafe {
            _mm256_load_si256(x[g].qs.as_ptr().add(32 * run) as *const __m256i)
        });
        for (r, (q, s)) in u.q.iter().zip(&u.s).enumerate() {
            let (q, s) = (q[run], s[run]);
            for (acc, &xv) in acc.iter_mut().zip(&xv) {
                // At most 2·63·127 per i16 (no saturation), then exact i32.
                let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, xv), s);
                acc[r] = _mm256_add_epi32(acc[r], p);
            }
        }
    }
    acc
}

/// Lane `r`: `v[r]`'s four lanes summed (exact).
#[inline]
#[target_feature(enable = "avx2")]
pub fn quad_sums(v: [__m128i; 4]) -> __m128i {
    _mm_hadd_epi32(_mm_hadd_epi32(v[0], v[1]), _mm_hadd_epi32(v[2], v[3]))
}

/// `[Σd0, Σd1, Σd2, Σd3]`: each vector's eight lanes summed (exact).
#[inline]
#[target_feature(enable = "avx2")]
pub fn lane_sums(d: [__m256i; 4]) -> __m128i {
    let c = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
    _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1))
}

/// A run's scale vector: `lo` for its first 16 values, `hi` for the next.
#[inline]
#[target_feature(enable = "avx2")]
pub fn run_scales(lo: i16, hi: i16) -> __m256i {
    _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo))
}
