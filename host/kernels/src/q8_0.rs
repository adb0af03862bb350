//! Q8_0 matrix products for decoding: `x·Wᵀ` for a few rows of `x` against a
//! Q8_0 weight.
//!
//! Decoding reads every weight once per token, so on Gemma 3 270M most of a
//! token's time is the Q8_0 dot products (the 262k-row output layer alone is
//! 178 MB). The kernels take four weight rows per pass against one load of
//! each input block, and up to four input rows (batched decoding) against
//! one load of each weight block, prefetching the weight stream ahead.
//! Which one runs is chosen at run time from the CPU's features
//! ([`Kernel::best`]):
//!
//! | kernel | CPUs | one block's integer dot product |
//! |---|---|---|
//! | `avx512-vnni` | x86-64 with AVX-512 VNNI | `vpdpbusd` |
//! | `avx2` | x86-64 with AVX2 | `maddubs` + `madd` |
//! | `neon-i8mm` | aarch64 with i8mm (Apple M2+, Graviton 3+) | `smmla`, 2 rows × 2 inputs; `sdot` for a lone input |
//! | `neon-sdot` | aarch64 with dotprod (Apple M1, Graviton 2) | `sdot` |
//! | `neon` | any aarch64 | `smull` + `sadalp` |
//! | `scalar` | anything else | one product at a time |
//!
//! The integer sums are exact everywhere; only the float sums' order
//! differs. The x86 kernels keep candle's order (eight lanes per row, one
//! fused multiply-add per block, candle's horizontal sum), so their results
//! are bit for bit candle's `QMatMul` (tested in `lem-engine`). The aarch64
//! kernels keep the scalar kernel's order (per row, per block in turn:
//! `sum + int·(d_w·d_x)`), so every aarch64 path, the scalar one included,
//! gives the same bits: tested under `qemu-aarch64`. (candle's own aarch64
//! products have three orders, chosen by batch size and CPU features, so
//! there is no one result of candle's there to equal.) Either way a row's
//! result does not depend on how many rows are decoded with it.
//!
//! The input is quantized to Q8_0 blocks exactly as candle (and ggml's
//! reference) does: `d = max|x| / 127`, `q = round(x / d)`, `d` stored as f16.

use half::f16;

/// Values per Q8_0 block.
pub const BLOCK: usize = 32;
/// Bytes of one Q8_0 block: an f16 scale then 32 `i8`.
pub const BLOCK_BYTES: usize = 2 + BLOCK;

/// Rows of an input quantized to Q8_0: per block, 32 `i8` and the scale
/// (f16, held as f32).
pub struct Input {
    qs: Vec<[i8; BLOCK]>,
    d: Vec<f32>,
    blocks: usize,
}

/// One input row's quantized blocks and their scales.
type Row<'a> = (&'a [[i8; BLOCK]], &'a [f32]);

impl Input {
    /// Quantizes `x`, rows of `k` values.
    ///
    /// # Panics
    /// Unless `k` is a positive multiple of [`BLOCK`] and `x` holds whole rows.
    pub fn new(x: &[f32], k: usize) -> Self {
        assert!(
            k > 0 && k.is_multiple_of(BLOCK) && x.len().is_multiple_of(k),
            "q8_0 input: {} values in rows of {k}",
            x.len()
        );
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
        Input {
            qs,
            d,
            blocks: k / BLOCK,
        }
    }

    /// How many rows.
    pub fn rows(&self) -> usize {
        self.d.len() / self.blocks
    }

    /// Bytes of one weight row of this input's width, in Q8_0.
    pub fn row_bytes(&self) -> usize {
        self.blocks * BLOCK_BYTES
    }

    fn row(&self, i: usize) -> Row<'_> {
        let r = i * self.blocks..(i + 1) * self.blocks;
        (&self.qs[r.clone()], &self.d[r])
    }
}

impl crate::quad::Tiles for Input {
    type Row<'a> = Row<'a>;
    const NAME: &'static str = "q8_0";
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
        kernel.tile(w, x)
    }
}

/// How far ahead of the block being read the kernels (every format) ask
/// for weight bytes, unless told otherwise ([`Kernel::with_prefetch`]).
/// A core on its own pulls only so many cache lines at once: on an Ice Lake
/// Xeon the 178 MB output layer streamed at 7.9 GB/s on one thread and
/// 12.5 GB/s on two without prefetching, and at 12.6 and 23 GB/s with it
/// 3 KB ahead (1 KB: 9.9 GB/s on one thread; 6 KB: 14.5 GB/s on two).
/// Other CPUs want other distances: [`crate::tune`] measures them.
pub const DEFAULT_PREFETCH_BYTES: usize = 3072;

/// A dot-product kernel this CPU can run, and how far ahead it prefetches
/// the weight: only [`Kernel::best`], [`Kernel::available`] and
/// [`Kernel::scalar`] make one, so holding one is proof the CPU has its
/// features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    pub(crate) path: Path,
    /// Bytes ahead of each weight row's current block; 0: no prefetching.
    pub(crate) ahead: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    #[cfg(target_arch = "x86_64")]
    Vnni,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "aarch64")]
    I8mm,
    #[cfg(target_arch = "aarch64")]
    Sdot,
    #[cfg(target_arch = "aarch64")]
    Neon,
    Scalar,
}

impl Kernel {
    /// The fastest kernel this CPU has.
    pub fn best() -> Kernel {
        Kernel::available()[0]
    }

    /// Every kernel this CPU can run, fastest first; the last is the scalar one.
    pub fn available() -> Vec<Kernel> {
        let mut paths = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma") && has!("f16c");
            if avx2 && has!("avx512vnni") && has!("avx512vl") && has!("avx512f") && has!("avx512bw")
            {
                paths.push(Path::Vnni);
            }
            if avx2 {
                paths.push(Path::Avx2);
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            use std::arch::is_aarch64_feature_detected as has;
            if has!("i8mm") && has!("dotprod") {
                paths.push(Path::I8mm);
            }
            if has!("dotprod") {
                paths.push(Path::Sdot);
            }
            paths.push(Path::Neon);
        }
        paths.push(Path::Scalar);
        paths
            .into_iter()
            .map(|path| Kernel {
                path,
                ahead: DEFAULT_PREFETCH_BYTES,
            })
            .collect()
    }

    /// The portable kernel, which every CPU runs.
    pub fn scalar() -> Kernel {
        Kernel {
            path: Path::Scalar,
            ahead: DEFAULT_PREFETCH_BYTES,
        }
    }

    /// The same kernel, prefetching the weight `bytes` ahead of the block
    /// it reads (0: not at all). Results do not depend on it; speed does.
    pub fn with_prefetch(self, bytes: usize) -> Kernel {
        Kernel {
            ahead: bytes,
            ..self
        }
    }

    /// How many bytes ahead this kernel prefetches the weight (0: none).
    pub fn prefetch(self) -> usize {
        self.ahead
    }

    /// The kernel's name, as in the table above.
    pub fn name(self) -> &'static str {
        match self.path {
            #[cfg(target_arch = "x86_64")]
            Path::Vnni => "avx512-vnni",
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => "avx2",
            #[cfg(target_arch = "aarch64")]
            Path::I8mm => "neon-i8mm",
            #[cfg(target_arch = "aarch64")]
            Path::Sdot => "neon-sdot",
            #[cfg(target_arch = "aarch64")]
            Path::Neon => "neon",
            Path::Scalar => "scalar",
        }
    }

    /// The products of `G` input rows with four weight rows: `[input][weight]`.
    fn tile<const G: usize>(self, w: [&[u8]; 4], x: [Row<'_>; G]) -> [[f32; 4]; G] {
        // SAFETY: a `Kernel` exists only for paths whose features the CPU
        // has; `quad` checked that every row holds as many whole blocks as
        // each input.
        let ahead = self.ahead;
        match self.path {
            #[cfg(target_arch = "x86_64")]
            Path::Vnni => unsafe { x86::tile_vnni(w, x, ahead) },
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => unsafe { x86::tile_avx2(w, x, ahead) },
            #[cfg(target_arch = "aarch64")]
            Path::I8mm => unsafe { arm::tile_i8mm(w, x, ahead) },
            #[cfg(target_arch = "aarch64")]
            Path::Sdot => unsafe { arm::tile_sdot(w, x, ahead) },
            #[cfg(target_arch = "aarch64")]
            Path::Neon => unsafe { arm::tile_neon(w, x, ahead) },
            Path::Scalar => x.map(|(qs, d)| std::array::from_fn(|r| dot_scalar(w[r], qs, d))),
        }
    }
}

pub use crate::quad::quads;

/// Calls `out(i, j, x_i · w_j)` for every input row `i` and the weight rows
/// `j` of quad `q` (`4q..4q + 4`, those below `n`). `w` is the weight, `n`
/// rows of `x`'s width in Q8_0. Quads are independent: callers share
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

/// One weight row against one input row, block by block in turn.
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
pub(crate) mod x86 {
    use super::{BLOCK_BYTES, Row};
    use std::arch::x86_64::*;

    /// Asks for the cache line `ahead` bytes past `p`, unless `ahead` is 0
    /// (a hint: never faults).
    #[inline(always)]
    pub(crate) fn prefetch(p: *const u8, ahead: usize) {
        if ahead != 0 {
            // SAFETY: a prefetch reads nothing architecturally and cannot fault.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(ahead) as *const i8) };
        }
    }

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
        ($w:ident, $x:ident, $g:ident, $ahead:ident, |$a:ident, $s:ident| $int_dot:expr) => {{
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
                    prefetch(p, $ahead);
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
        x: [Row<'_>; G],
        ahead: usize,
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, ahead, |a, s| _mm256_dpbusd_epi32(
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
        x: [Row<'_>; G],
        ahead: usize,
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, ahead, |a, s| _mm256_madd_epi16(
            _mm256_maddubs_epi16(a, s),
            _mm256_set1_epi16(1)
        ))
    }
}

#[cfg(target_arch = "aarch64")]
pub(crate) mod arm {
    //! NEON kernels. `sdot`, `smmla`, `prfm` and `fcvtl` are written as
    //! inline assembly: Rust's intrinsics for the first three are unstable,
    //! and the f16 vector types the fourth needs are too.
    use super::{BLOCK_BYTES, Row};
    use std::arch::aarch64::*;
    use std::arch::asm;

    /// Asks for the cache line `ahead` bytes past `p`, unless `ahead` is 0
    /// (a hint: never faults).
    #[inline(always)]
    pub(crate) fn prefetch(p: *const u8, ahead: usize) {
        if ahead == 0 {
            return;
        }
        let p = p.wrapping_add(ahead);
        // SAFETY: `prfm` reads nothing architecturally and cannot fault.
        unsafe {
            asm!("prfm pldl1keep, [{p}]", p = in(reg) p, options(nostack, readonly, preserves_flags))
        };
    }

    /// The four rows' block scales (f16 at byte `at` of each) as f32.
    ///
    /// # Safety
    /// Each `rows[r] + at` must point to two readable bytes.
    #[inline]
    #[target_feature(enable = "neon")]
    pub(crate) unsafe fn scales(rows: [*const u8; 4], at: usize) -> float32x4_t {
        let mut bits = [0u16; 4];
        for r in 0..4 {
            bits[r] = unsafe { (rows[r].add(at) as *const u16).read_unaligned() };
        }
        let h = unsafe { vld1_u16(bits.as_ptr()) };
        let out: float32x4_t;
        // SAFETY: `fcvtl` (f16 to f32, four lanes) is base ARMv8.
        unsafe {
            asm!("fcvtl {o:v}.4s, {h:v}.4h", o = lateout(vreg) out, h = in(vreg) h,
                 options(pure, nomem, nostack, preserves_flags))
        };
        out
    }

    /// `[Σd0, Σd1, Σd2, Σd3]`: each vector's four lanes summed.
    #[inline]
    #[target_feature(enable = "neon")]
    pub(crate) fn lane_sums(d: [int32x4_t; 4]) -> int32x4_t {
        vpaddq_s32(vpaddq_s32(d[0], d[1]), vpaddq_s32(d[2], d[3]))
    }

    /// `acc + dot4(a, b)` per lane.
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    pub(crate) fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        // SAFETY: the CPU has dotprod (this function's feature).
        unsafe {
            asm!("sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b", acc = inout(vreg) acc,
                 a = in(vreg) a, b = in(vreg) b, options(pure, nomem, nostack, preserves_flags))
        };
        acc
    }

    /// `acc + A·Bᵀ`, `A` and `B` two rows of eight `i8` each: `[a0·b0, a0·b1, a1·b0, a1·b1]`.
    #[inline]
    #[target_feature(enable = "neon,i8mm")]
    fn smmla(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        // SAFETY: the CPU has i8mm (this function's feature).
        unsafe {
            asm!("smmla {acc:v}.4s, {a:v}.16b, {b:v}.16b", acc = inout(vreg) acc,
                 a = in(vreg) a, b = in(vreg) b, options(pure, nomem, nostack, preserves_flags))
        };
        acc
    }

    /// The 32 bytes of one block: two halves of 16.
    type Block = (int8x16_t, int8x16_t);

    /// The body of a `G`-input × four-weight-row kernel. `|$wq, $yq| $ints`
    /// gives, from the four rows' blocks and the `G` inputs', each input's
    /// four exact integer block sums (one row per lane); the float part is
    /// shared, in the scalar kernel's order.
    macro_rules! tile_body {
        ($w:ident, $x:ident, $g:ident, $ahead:ident, |$wq:ident, $yq:ident| $ints:expr) => {{
            let base = [
                $w[0].as_ptr(),
                $w[1].as_ptr(),
                $w[2].as_ptr(),
                $w[3].as_ptr(),
            ];
            let mut acc = [vdupq_n_f32(0.0); $g];
            for b in 0..$x[0].1.len() {
                let at = b * BLOCK_BYTES;
                let mut $wq: [Block; 4] = [(vdupq_n_s8(0), vdupq_n_s8(0)); 4];
                for r in 0..4 {
                    // SAFETY: every row holds as many blocks as each input (the caller's contract).
                    let p = unsafe { base[r].add(at) };
                    prefetch(p, $ahead);
                    $wq[r] = unsafe {
                        (
                            vld1q_s8(p.add(2) as *const i8),
                            vld1q_s8(p.add(18) as *const i8),
                        )
                    };
                }
                let mut $yq: [Block; $g] = [(vdupq_n_s8(0), vdupq_n_s8(0)); $g];
                for g in 0..$g {
                    let p = $x[g].0[b].as_ptr();
                    $yq[g] = unsafe { (vld1q_s8(p), vld1q_s8(p.add(16))) };
                }
                let ints: [int32x4_t; $g] = $ints;
                let dw = unsafe { scales(base, at) };
                for g in 0..$g {
                    let s = vmulq_n_f32(dw, $x[g].1[b]);
                    acc[g] = vaddq_f32(acc[g], vmulq_f32(vcvtq_f32_s32(ints[g]), s));
                }
            }
            let mut out = [[0f32; 4]; $g];
            for g in 0..$g {
                unsafe { vst1q_f32(out[g].as_mut_ptr(), acc[g]) };
            }
            out
        }};
    }

    /// Each input's four row sums by `sdot`, two per block and row.
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    fn sums_sdot<const G: usize>(wq: &[Block; 4], yq: &[Block; G]) -> [int32x4_t; G] {
        let mut ints = [vdupq_n_s32(0); G];
        for g in 0..G {
            let mut d = [vdupq_n_s32(0); 4];
            for r in 0..4 {
                d[r] = sdot(sdot(d[r], wq[r].0, yq[g].0), wq[r].1, yq[g].1);
            }
            ints[g] = lane_sums(d);
        }
        ints
    }

    /// `sdot` for every dot product.
    ///
    /// # Safety
    /// The CPU must have dotprod, and each row of `w` must hold as many
    /// whole blocks as each input.
    #[target_feature(enable = "neon,dotprod")]
    pub(super) unsafe fn tile_sdot<const G: usize>(
        w: [&[u8]; 4],
        x: [Row<'_>; G],
        ahead: usize,
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, ahead, |wq, yq| sums_sdot(&wq, &yq))
    }

    /// Pairs of inputs by `smmla` (each takes eight bytes of two rows
    /// against eight of two inputs, so a block is four per pair of rows and
    /// pair of inputs: half `sdot`'s instructions); a lone input by `sdot`.
    ///
    /// # Safety
    /// The CPU must have i8mm and dotprod, and each row of `w` must hold as
    /// many whole blocks as each input.
    #[target_feature(enable = "neon,i8mm,dotprod")]
    pub(super) unsafe fn tile_i8mm<const G: usize>(
        w: [&[u8]; 4],
        x: [Row<'_>; G],
        ahead: usize,
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, ahead, |wq, yq| if G.is_multiple_of(2) {
            sums_smmla(&wq, &yq)
        } else {
            sums_sdot(&wq, &yq)
        })
    }

    /// The eight-byte chunks of a block, `k = 0..4`, two blocks interleaved:
    /// `[a's chunk k, b's chunk k]`.
    #[inline]
    #[target_feature(enable = "neon")]
    fn pairs(a: Block, b: Block) -> [int8x16_t; 4] {
        let (a0, a1) = (vreinterpretq_s64_s8(a.0), vreinterpretq_s64_s8(a.1));
        let (b0, b1) = (vreinterpretq_s64_s8(b.0), vreinterpretq_s64_s8(b.1));
        [
            vreinterpretq_s8_s64(vzip1q_s64(a0, b0)),
            vreinterpretq_s8_s64(vzip2q_s64(a0, b0)),
            vreinterpretq_s8_s64(vzip1q_s64(a1, b1)),
            vreinterpretq_s8_s64(vzip2q_s64(a1, b1)),
        ]
    }

    /// Each input's four row sums by `smmla`; `G` is even.
    #[inline]
    #[target_feature(enable = "neon,i8mm")]
    fn sums_smmla<const G: usize>(wq: &[Block; 4], yq: &[Block; G]) -> [int32x4_t; G] {
        let rows = [pairs(wq[0], wq[1]), pairs(wq[2], wq[3])];
        let mut ints = [vdupq_n_s32(0); G];
        for gp in 0..G / 2 {
            let inputs = pairs(yq[2 * gp], yq[2 * gp + 1]);
            // mm[p] = [r·g, r·g', r'·g, r'·g'] for rows r, r' = 2p, 2p + 1.
            let mut mm = [vdupq_n_s32(0); 2];
            for p in 0..2 {
                for k in 0..4 {
                    mm[p] = smmla(mm[p], rows[p][k], inputs[k]);
                }
            }
            ints[2 * gp] = vuzp1q_s32(mm[0], mm[1]);
            ints[2 * gp + 1] = vuzp2q_s32(mm[0], mm[1]);
        }
        ints
    }

    /// Base NEON: `smull` (i8 × i8 to i16, exact) and `sadalp` (pairs into i32).
    ///
    /// # Safety
    /// Each row of `w` must hold as many whole blocks as each input.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn tile_neon<const G: usize>(
        w: [&[u8]; 4],
        x: [Row<'_>; G],
        ahead: usize,
    ) -> [[f32; 4]; G] {
        tile_body!(w, x, G, ahead, |wq, yq| {
            let mut ints = [vdupq_n_s32(0); G];
            for g in 0..G {
                let mut d = [vdupq_n_s32(0); 4];
                for r in 0..4 {
                    for (a, b) in [(wq[r].0, yq[g].0), (wq[r].1, yq[g].1)] {
                        d[r] = vpadalq_s16(d[r], vmull_s8(vget_low_s8(a), vget_low_s8(b)));
                        d[r] = vpadalq_s16(d[r], vmull_high_s8(a, b));
                    }
                }
                ints[g] = lane_sums(d);
            }
            ints
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::quad::{products, seeded_values as values};

    /// `n` rows of `k` in Q8_0, quantized as ggml does, with the extreme
    /// byte -128 (which ggml never writes but a file may hold) in row 0.
    fn weight(n: usize, k: usize, seed: u64) -> Vec<u8> {
        let x = Input::new(&values(n * k, seed), k);
        let mut w = Vec::with_capacity(n * x.row_bytes());
        for (q, d) in x.qs.iter().zip(&x.d) {
            w.extend_from_slice(&f16::from_f32(*d).to_le_bytes());
            w.extend(q.iter().map(|&v| v as u8));
        }
        w[2] = 0x80;
        w
    }

    fn scalar_reference(w: &[u8], n: usize, x: &Input) -> Vec<f32> {
        let rb = x.row_bytes();
        (0..x.rows())
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| {
                let (qs, d) = x.row(i);
                dot_scalar(&w[j * rb..(j + 1) * rb], qs, d)
            })
            .collect()
    }

    /// Every kernel the CPU has, on partial quads, one to nine input rows
    /// (tiles of four and a remainder): on aarch64 bit for bit the scalar
    /// kernel (the same float order); on x86, whose kernels keep candle's
    /// order instead, within rounding.
    #[test]
    fn every_kernel_agrees_with_the_scalar_one() {
        let kernels = Kernel::available();
        eprintln!(
            "kernels here: {:?}",
            kernels.iter().map(|k| k.name()).collect::<Vec<_>>()
        );
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
            let reference = scalar_reference(&w, n, &x);
            for &kernel in &kernels {
                let ours = products(kernel, &w, n, &x);
                for (a, b) in reference.iter().zip(&ours) {
                    if cfg!(target_arch = "x86_64") && kernel != Kernel::scalar() {
                        assert!(
                            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                            "{}: {a} vs {b}",
                            kernel.name()
                        );
                    } else {
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
    }

    /// How far ahead a kernel prefetches changes its speed, never its bits.
    #[test]
    fn prefetching_does_not_change_a_result() {
        let (n, k) = (9, 320);
        let w = weight(n, k, 13);
        let x = Input::new(&values(5 * k, 17), k);
        for kernel in Kernel::available() {
            let want = products(kernel, &w, n, &x);
            for ahead in [0, 64, 4096] {
                let got = products(kernel.with_prefetch(ahead), &w, n, &x);
                assert_eq!(got, want, "{} {ahead} bytes ahead", kernel.name());
            }
        }
    }

    /// A row's result does not depend on the rows decoded with it.
    #[test]
    fn a_row_alone_equals_the_row_in_a_batch() {
        let (n, k) = (10, 192);
        let w = weight(n, k, 3);
        let xs = values(6 * k, 5);
        for kernel in Kernel::available() {
            let batch = products(kernel, &w, n, &Input::new(&xs, k));
            for i in 0..6 {
                let alone = products(kernel, &w, n, &Input::new(&xs[i * k..(i + 1) * k], k));
                assert_eq!(
                    alone,
                    batch[i * n..(i + 1) * n],
                    "{} row {i}",
                    kernel.name()
                );
            }
        }
    }

    #[test]
    fn quantizes_as_ggml_does() {
        let mut x = vec![0f32; 64];
        x[0] = 2.54;
        x[1] = -1.0;
        x[2] = 0.009;
        let q = Input::new(&x, 32);
        assert_eq!(q.rows(), 2);
        assert_eq!(q.d[0], f16::from_f32(2.54 / 127.0).to_f32());
        assert_eq!(&q.qs[0][..3], &[127, -50, 0]);
        // An all-zero block has scale 0 and zero quants, not NaN.
        assert_eq!((q.d[1], q.qs[1]), (0.0, [0; BLOCK]));
    }

    #[test]
    #[should_panic(expected = "is not 3 rows")]
    fn refuses_a_weight_of_the_wrong_size() {
        let x = Input::new(&values(64, 1), 64);
        let w = weight(2, 64, 1);
        quad(Kernel::best(), &w, 3, 0, &x, |_, _, _| {});
    }

    /// `scripts/test-aarch64` runs these tests on emulated CPUs with and
    /// without `sdot` and `i8mm` and says which kernel each must choose, so
    /// a change of qemu's CPU cannot quietly leave a path untested.
    #[test]
    fn chooses_the_kernel_the_cpu_allows() {
        let best = Kernel::best();
        assert_eq!(Kernel::available().last(), Some(&Kernel::scalar()));
        if cfg!(target_arch = "aarch64") {
            assert!(best.name().starts_with("neon"), "{}", best.name());
        }
        if let Ok(want) = std::env::var("LEM_EXPECT_Q8_0_KERNEL") {
            assert_eq!(best.name(), want, "LEM_EXPECT_Q8_0_KERNEL");
        }
    }
}
