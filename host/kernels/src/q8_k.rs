//! The input side of the K-quant products ([`crate::q4_k`], [`crate::q6_k`]):
//! rows quantized to Q8_K, and the x86 reductions both products share.
//!
//! A Q8_K block is 256 values `d·q`, `q` an `i8`, quantized exactly as ggml's
//! reference does (`d = max / −127` with `max` the value of largest
//! magnitude, `q = round(x / d)` with ties to even; candle rounds ties away
//! from zero), so a prompt's activations are the same integers llama.cpp
//! multiplies. Each block also keeps the sums of its
//! `q` over every 16 values (Q6_K's scales) and every 32 (Q4_K's mins), for
//! the terms of a product that depend on the input only through those sums.

/// Values per block.
pub const BLOCK: usize = 256;

/// One quantized block, laid out for 64-byte loads.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(crate) struct Block {
    pub qs: [i8; BLOCK],
    /// `Σ q` over values `16s..16s + 16`.
    pub bsum16: [i16; 16],
    /// `Σ q` over values `32s..32s + 32`.
    pub bsum32: [i16; 8],
    pub d: f32,
}

/// Rows of an input quantized to Q8_K.
pub struct Input {
    blocks: Vec<Block>,
    per_row: usize,
}

/// One input row's blocks.
pub(crate) type Row<'a> = &'a [Block];

impl Input {
    /// Quantizes `x`, rows of `k` values.
    ///
    /// # Panics
    /// Unless `k` is a positive multiple of [`BLOCK`] and `x` holds whole rows.
    pub fn new(x: &[f32], k: usize) -> Self {
        assert!(
            k > 0 && k.is_multiple_of(BLOCK) && x.len().is_multiple_of(k),
            "q8_k input: {} values in rows of {k}",
            x.len()
        );
        Input {
            blocks: x.chunks_exact(BLOCK).map(quantize).collect(),
            per_row: k / BLOCK,
        }
    }

    /// How many rows.
    pub fn rows(&self) -> usize {
        self.blocks.len() / self.per_row
    }

    /// Blocks per row.
    pub(crate) fn blocks_per_row(&self) -> usize {
        self.per_row
    }

    /// Input row `i`.
    pub(crate) fn row(&self, i: usize) -> Row<'_> {
        &self.blocks[i * self.per_row..(i + 1) * self.per_row]
    }
}

/// What a K-quant format gives the shared driver ([`quad`]).
pub(crate) trait KQuant {
    /// The format's name, for the panic message.
    const NAME: &'static str;
    /// Bytes of one block.
    const BLOCK_BYTES: usize;
    /// One weight row against one input row, in the vector kernel's order.
    fn dot_scalar(w: &[u8], x: Row<'_>) -> f32;
    /// The format's AVX-512 unpacking.
    #[cfg(target_arch = "x86_64")]
    type X86: x86::Format;
    /// The format's AVX2 unpacking and float step.
    #[cfg(target_arch = "x86_64")]
    type Avx2: avx2::Format;
}

/// Calls `out(i, j, x_i · w_j)` for every input row `i` and the weight rows
/// `j` of quad `q` (`4q..4q + 4`, those below `n`) of a weight `w` in format
/// `F`, `n` rows of `x`'s width.
///
/// # Panics
/// If `w` is not `n` such rows or `q` is past the last quad.
pub(crate) fn quad<F: KQuant>(
    kernel: crate::q8_0::Kernel,
    w: &[u8],
    n: usize,
    q: usize,
    x: &Input,
    mut out: impl FnMut(usize, usize, f32),
) {
    let row_bytes = x.blocks_per_row() * F::BLOCK_BYTES;
    let (rows, live) = crate::quad::quad_rows(F::NAME, w, n, q, row_bytes);
    let mut put = |i: usize, r: usize, dot: f32| {
        if r < live {
            out(i, 4 * q + r, dot)
        }
    };
    match kernel.path {
        // SAFETY: a `Kernel` of this path proves the CPU has AVX-512 (F, BW,
        // VNNI); `quad_rows` checked the rows' lengths.
        #[cfg(target_arch = "x86_64")]
        crate::q8_0::Path::Vnni => unsafe { x86::quad::<F>(rows, x, kernel.ahead, put) },
        // SAFETY: a `Kernel` of this path proves the CPU has AVX2.
        #[cfg(target_arch = "x86_64")]
        crate::q8_0::Path::Avx2 => unsafe { avx2::quad::<F>(rows, x, kernel.ahead, put) },
        _ => {
            for i in 0..x.rows() {
                for (r, w) in rows.iter().enumerate() {
                    put(i, r, F::dot_scalar(w, x.row(i)));
                }
            }
        }
    }
}

/// One block as ggml's `quantize_row_q8_K` reference makes it (`max` the
/// first value of the largest magnitude, ties rounded to even).
fn quantize(x: &[f32]) -> Block {
    let mut block = Block {
        qs: [0; BLOCK],
        bsum16: [0; 16],
        bsum32: [0; 8],
        d: 0.0,
    };
    let amax = crate::math::abs_max(x);
    let Some(&max) = x.iter().find(|v| v.abs() == amax).filter(|_| amax > 0.0) else {
        return block;
    };
    let iscale = -127.0 / max;
    crate::math::round_to_i8(&mut block.qs, x, iscale);
    for (s, sum) in block.bsum16.iter_mut().enumerate() {
        *sum = block.qs[16 * s..16 * s + 16]
            .iter()
            .map(|&q| q as i16)
            .sum();
    }
    for (s, sum) in block.bsum32.iter_mut().enumerate() {
        *sum = block.bsum16[2 * s] + block.bsum16[2 * s + 1];
    }
    block.d = 1.0 / iscale;
    block
}

/// Block `b` of each of the four rows of a quad in format `F`, after asking
/// for the bytes `ahead` past it (every cache line a block spans): where
/// both x86 drivers start each block.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn block_at<F: KQuant>(w: [&[u8]; 4], b: usize, ahead: usize) -> [*const u8; 4] {
    w.map(|w| {
        let at = w.as_ptr().wrapping_add(b * F::BLOCK_BYTES);
        if ahead != 0 {
            for line in 0..F::BLOCK_BYTES.div_ceil(64) {
                crate::q8_0::x86::prefetch(at, ahead + 64 * line);
            }
        }
        at
    })
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;

/// The AVX-512 driver both K-quant products share. For each block of a
/// weight quad, the format unpacks its four rows once ([`x86::Format`]):
/// values as bytes and sub-block scales as `i16` lanes, 64 values at a time.
/// Then every four input rows of the tile take their integer sums from those
/// (`vpmaddubsw` of weight bytes by input bytes, `vpdpwssd` of that by the
/// scales: two instructions per 64 values and pair of rows), and the
/// format turns a tile's sixteen sums into one vector of float additions,
/// lane `4r + g` for weight row `r` and input row `g`.
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::{Block, Input, KQuant, block_at};
    use std::arch::x86_64::*;

    /// A weight quad's block, unpacked.
    pub struct Prepared {
        /// `[run][row]`: values `64·run..64·run + 64` as unsigned bytes.
        pub w: [[__m512i; 4]; 4],
        /// `[run][row]`: each `i16` pair of `w`'s products' scale.
        pub s: [[__m512i; 4]; 4],
        /// `[row]`: the block's sub-block scales as `i16`, in the order the
        /// format's runs pick them from.
        pub scales: [__m512i; 4],
        /// The format's per-sub-block terms (Q4_K's mins, Q6_K's scales).
        pub low: [__m512i; 2],
        /// Lane `4r + g`: row `r`'s `d`.
        pub d: __m512,
        /// Lane `4r + g`: row `r`'s `dmin` (Q4_K).
        pub dmin: __m512,
    }

    /// A K-quant format's block, as the driver needs it.
    pub trait Format {
        /// Unpacks what one block of each of four rows needs beyond its
        /// values into `p`: `scales`, `low`, `d`, `dmin`.
        ///
        /// # Safety
        /// AVX-512 F, BW and VNNI; each pointer starts a whole block.
        unsafe fn prepare(blocks: [*const u8; 4], p: &mut Prepared);
        /// Run `run`'s values of each row (`w`) and their products' scales
        /// (`s`), after [`Format::prepare`].
        ///
        /// # Safety
        /// As [`Format::prepare`].
        unsafe fn run(
            blocks: [*const u8; 4],
            run: usize,
            p: &Prepared,
        ) -> ([__m512i; 4], [__m512i; 4]);
        /// A block's additions to lanes `4r + g`, from the integer sums
        /// `acc[g][r]` of input blocks `x` whose scales are `dx` (lane `4r + g`).
        ///
        /// # Safety
        /// AVX-512 F, BW and VNNI.
        unsafe fn add<const G: usize>(
            acc: &[[__m512i; 4]; G],
            p: &Prepared,
            x: [&Block; G],
            dx: __m512,
        ) -> __m512;
    }

    /// Calls `out(i, r, x_i · w_r)` for every row `i` of `x` and `r < 4`,
    /// prefetching each row `ahead` bytes past the block it reads (0: not).
    ///
    /// # Safety
    /// AVX-512 F, BW and VNNI; each `w[r]` holds a block of `F` per block
    /// of `x`'s rows.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn quad<F: KQuant>(
        w: [&[u8]; 4],
        x: &Input,
        ahead: usize,
        out: impl FnMut(usize, usize, f32),
    ) {
        // SAFETY (all three): the caller's promise.
        unsafe {
            match x.rows() {
                1 => few::<F, 1>(w, x, ahead, out),
                2 => few::<F, 2>(w, x, ahead, out),
                3 => few::<F, 3>(w, x, ahead, out),
                _ => many::<F>(w, x, ahead, out),
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn empty() -> Prepared {
        let zero = _mm512_setzero_si512();
        Prepared {
            w: [[zero; 4]; 4],
            s: [[zero; 4]; 4],
            scales: [zero; 4],
            low: [zero; 2],
            d: _mm512_setzero_ps(),
            dmin: _mm512_setzero_ps(),
        }
    }

    /// Decoding: `G` < 4 input rows, each run's values multiplied into them
    /// as soon as they are unpacked (kept in registers, not stored).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn few<F: KQuant, const G: usize>(
        w: [&[u8]; 4],
        x: &Input,
        ahead: usize,
        mut out: impl FnMut(usize, usize, f32),
    ) {
        let blocks = x.per_row;
        let mut p = empty();
        let mut sum = _mm512_setzero_ps();
        for b in 0..blocks {
            // Block b of each row: within `w` (the caller's promise).
            let at = block_at::<F>(w, b, ahead);
            unsafe { F::X86::prepare(at, &mut p) };
            let xb: [&Block; G] = std::array::from_fn(|g| &x.blocks[g * blocks + b]);
            let mut acc = [[_mm512_setzero_si512(); 4]; G];
            for run in 0..4 {
                let (wv, sv) = unsafe { F::X86::run(at, run, &p) };
                for (acc, x) in acc.iter_mut().zip(xb) {
                    // SAFETY: values 64·run..64·run + 64 of an aligned block.
                    let xv = unsafe { _mm512_load_si512(x.qs.as_ptr().add(64 * run) as *const _) };
                    for (acc, (w, s)) in acc.iter_mut().zip(wv.iter().zip(&sv)) {
                        *acc = dpwssd(*acc, _mm512_maddubs_epi16(*w, xv), *s);
                    }
                }
            }
            sum = _mm512_add_ps(sum, unsafe { F::X86::add(&acc, &p, xb, scales(xb)) });
        }
        let mut lanes = [0f32; 16];
        // SAFETY: 16 f32 fit `lanes`.
        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), sum) };
        for r in 0..4 {
            for g in 0..G {
                out(g, r, lanes[4 * r + g]);
            }
        }
    }

    /// Prompts: each block's four rows unpacked once, then multiplied into
    /// every four input rows of the tile, and one by one into the rest.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn many<F: KQuant>(
        w: [&[u8]; 4],
        x: &Input,
        ahead: usize,
        mut out: impl FnMut(usize, usize, f32),
    ) {
        let (rows, blocks) = (x.rows(), x.per_row);
        let groups = rows / 4;
        let mut p = empty();
        // One float vector per four rows, then one per row left over.
        let mut sums = vec![_mm512_setzero_ps(); groups + rows % 4];
        let xs = x.blocks.as_ptr();
        // SAFETY: row i < rows, block b < blocks: within `x.blocks`.
        let block = |i: usize, b: usize| unsafe { &*xs.add(i * blocks + b) };
        for b in 0..blocks {
            // Block b of each row: within `w` (the caller's promise).
            let at = block_at::<F>(w, b, ahead);
            unsafe { F::X86::prepare(at, &mut p) };
            for run in 0..4 {
                (p.w[run], p.s[run]) = unsafe { F::X86::run(at, run, &p) };
            }
            for (t, sum) in sums.iter_mut().enumerate() {
                let add = if t < groups {
                    let xb: [&Block; 4] = std::array::from_fn(|g| block(4 * t + g, b));
                    unsafe { F::X86::add(&products(&p, xb), &p, xb, scales(xb)) }
                } else {
                    let xb = [block(4 * groups + t - groups, b)];
                    unsafe { F::X86::add(&products(&p, xb), &p, xb, scales(xb)) }
                };
                *sum = _mm512_add_ps(*sum, add);
            }
        }
        for (t, sum) in sums.into_iter().enumerate() {
            let mut lanes = [0f32; 16];
            // SAFETY: 16 f32 fit `lanes`.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), sum) };
            for r in 0..4 {
                if t < groups {
                    for g in 0..4 {
                        out(4 * t + g, r, lanes[4 * r + g]);
                    }
                } else {
                    out(4 * groups + t - groups, r, lanes[4 * r]);
                }
            }
        }
    }

    /// Lane `4r + g`: input block `x[g]`'s scale `d` (zero past `G`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn scales<const G: usize>(x: [&Block; G]) -> __m512 {
        let mut d = [0f32; 4];
        for (d, x) in d.iter_mut().zip(x) {
            *d = x.d;
        }
        // SAFETY: four f32.
        _mm512_broadcast_f32x4(unsafe { _mm_loadu_ps(d.as_ptr()) })
    }

    /// `acc[g][r]`: the integer sums of input block `x[g]` against the
    /// prepared rows, in 16 lanes each.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn products<const G: usize>(p: &Prepared, x: [&Block; G]) -> [[__m512i; 4]; G] {
        let mut acc = [[_mm512_setzero_si512(); 4]; G];
        for run in 0..4 {
            for (acc, x) in acc.iter_mut().zip(x) {
                // SAFETY: values 64·run..64·run + 64 of an aligned block.
                let xv = unsafe { _mm512_load_si512(x.qs.as_ptr().add(64 * run) as *const _) };
                for (acc, (w, s)) in acc.iter_mut().zip(p.w[run].iter().zip(&p.s[run])) {
                    *acc = dpwssd(*acc, _mm512_maddubs_epi16(*w, xv), *s);
                }
            }
        }
        acc
    }

    /// `acc + a·b` in `i16` pairs, as the one instruction `vpdpwssd`: written
    /// as the intrinsic, LLVM 21 splits most of them into `vpmaddwd` +
    /// `vpaddd` (even built for this project's Sapphire Rapids), a third
    /// more work in the products' loop.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    fn dpwssd(mut acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: a register-only instruction of a feature this function requires.
        unsafe {
            std::arch::asm!(
                "vpdpwssd {acc}, {a}, {b}",
                acc = inout(zmm_reg) acc,
                a = in(zmm_reg) a,
                b = in(zmm_reg) b,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        acc
    }

    /// Lane `4r + g` = `v[r]`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn per_row_lanes(v: [f32; 4]) -> __m512 {
        let idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
        // SAFETY: four f32.
        let v = unsafe { _mm_loadu_ps(v.as_ptr()) };
        _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v))
    }

    /// Four vectors of lanes for weight rows `r = 0..4` folded into one
    /// whose 128-bit lane `r` holds four partial sums of row `r` (exact).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn per_row(v: [__m512i; 4]) -> __m512i {
        let fold = |a, b| {
            _mm512_add_epi32(
                _mm512_shuffle_i32x4::<0x88>(a, b),
                _mm512_shuffle_i32x4::<0xDD>(a, b),
            )
        };
        fold(fold(v[0], v[1]), fold(v[2], v[3]))
    }

    /// Two vectors of lanes for weight rows `(0, 1)` and `(2, 3)`, a row's
    /// in each 256-bit half, folded as [`per_row`] folds four.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn per_row_from_halves(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(
            _mm512_shuffle_i32x4::<0x88>(a, b),
            _mm512_shuffle_i32x4::<0xDD>(a, b),
        )
    }

    /// [`per_row`] vectors of input rows `g = 0..G` summed into lane
    /// `4r + g` (exact; rows past `G` are zero).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn per_pair<const G: usize>(v: [__m512i; G]) -> __m512i {
        let mut p = [_mm512_setzero_si512(); 4];
        p[..G].copy_from_slice(&v);
        let pairs =
            |a, b| _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
        let (s01, s23) = (pairs(p[0], p[1]), pairs(p[2], p[3]));
        _mm512_add_epi32(
            _mm512_unpacklo_epi64(s01, s23),
            _mm512_unpackhi_epi64(s01, s23),
        )
    }
}

/// The tests both K-quant formats share.
#[cfg(test)]
pub(crate) mod checks {
    use super::{BLOCK, Input, KQuant, quad};
    use crate::q8_0::Kernel;
    use crate::quad::{quads, seeded_values};

    /// Every product of `x` with the `n` rows of `w`, row-major, by quads.
    fn products<F: KQuant>(kernel: Kernel, w: &[u8], n: usize, x: &Input) -> Vec<f32> {
        let mut out = vec![f32::NAN; x.rows() * n];
        for q in 0..quads(n) {
            quad::<F>(kernel, w, n, q, x, |i, j, v| out[i * n + j] = v);
        }
        out
    }

    /// The scalar kernel is the f64 product of `dequantize`d weights (`n`
    /// rows of `blocks` blocks made by `weight`) and the dequantized input.
    pub fn scalar_is_the_dequantized_product<F: KQuant>(
        weight: fn(usize, usize, u64) -> Vec<u8>,
        dequantize: fn(&[u8]) -> Vec<f64>,
    ) {
        let (n, blocks, m) = (5, 3, 2);
        let k = blocks * BLOCK;
        let w = weight(n, blocks, 1);
        let input = Input::new(&seeded_values(m * k, 2), k);
        let got = products::<F>(Kernel::scalar(), &w, n, &input);
        for i in 0..m {
            let xq: Vec<f64> = input
                .row(i)
                .iter()
                .flat_map(|b| b.qs.iter().map(|&q| q as f64 * b.d as f64))
                .collect();
            for (j, row) in w.chunks_exact(blocks * F::BLOCK_BYTES).enumerate() {
                let wq: Vec<f64> = row
                    .chunks_exact(F::BLOCK_BYTES)
                    .flat_map(dequantize)
                    .collect();
                let want: f64 = wq.iter().zip(&xq).map(|(a, b)| a * b).sum();
                let scale: f64 = wq.iter().zip(&xq).map(|(a, b)| (a * b).abs()).sum();
                let diff = (got[i * n + j] as f64 - want).abs();
                assert!(
                    diff <= 1e-5 * scale,
                    "({i}, {j}): {} vs {want}",
                    got[i * n + j]
                );
            }
        }
    }

    /// Every path, on groups of four input rows and rows left over, on one
    /// to three rows (decoding) and on a partial quad, gives the scalar
    /// kernel's bits.
    pub fn every_kernel_gives_the_scalar_bits<F: KQuant>(weight: fn(usize, usize, u64) -> Vec<u8>) {
        let (n, blocks) = (7, 4);
        let k = blocks * BLOCK;
        let w = weight(n, blocks, 3);
        for m in [1, 2, 3, 6, 9] {
            let input = Input::new(&seeded_values(m * k, 4), k);
            let want = products::<F>(Kernel::scalar(), &w, n, &input);
            // Prefetching, or not, changes no result.
            let kernels = Kernel::available().into_iter();
            for kernel in kernels.flat_map(|k| [k, k.with_prefetch(0)]) {
                let got = products::<F>(kernel, &w, n, &input);
                assert_eq!(got, want, "{} with {m} rows", kernel.name());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes_as_ggml_does() {
        let mut x: Vec<f32> = crate::quad::seeded_values(2 * BLOCK, 3);
        x[40] = -2.5; // the extreme value is negative: d is positive
        x[300] = 3.0; // positive: d is negative
        let input = Input::new(&x, BLOCK);
        assert_eq!(input.rows(), 2);
        for (b, block) in input.blocks.iter().enumerate() {
            let xs = &x[b * BLOCK..(b + 1) * BLOCK];
            let max = [-2.5f32, 3.0][b];
            assert_eq!(block.d, 1.0 / (-127.0 / max));
            for (q, v) in block.qs.iter().zip(xs) {
                assert_eq!(*q as f32, ((-127.0 / max) * v).round_ties_even());
            }
            let total: i32 = block.qs.iter().map(|&q| q as i32).sum();
            assert_eq!(block.bsum16.iter().map(|&s| s as i32).sum::<i32>(), total);
            assert_eq!(block.bsum32.iter().map(|&s| s as i32).sum::<i32>(), total);
            assert_eq!(
                block.bsum32[3] as i32,
                block.qs[96..128].iter().map(|&q| q as i32).sum::<i32>()
            );
        }
        assert_eq!(block_of_zeros().d, 0.0);
    }

    fn block_of_zeros() -> Block {
        quantize(&[0.0; BLOCK])
    }
}
