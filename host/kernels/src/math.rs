//! Vectorised `exp`, `tanh` and the GELU gate, and the slice kernels built
//! from them: Gemma's gated MLP product and its gradient, and the
//! exponentials of a softmax row. libm evaluates `exp` and `tanh` one value
//! at a time; these are written so the loops vectorise, and compiled for
//! the widest vectors the CPU has ([`simd_kernel!`](crate::simd_kernel)).

/// Declares `pub fn NAME(args) -> ret` from a body written so its loops
/// vectorise, compiled for the CPU's widest vectors:
///
/// - x86-64: three times, for AVX-512, for AVX2 + FMA and for the baseline
///   (SSE2), chosen at run time;
/// - aarch64: once, for the baseline, which is NEON with fused multiply-add:
///   every aarch64 CPU has it, so there is nothing to choose (SVE's wider
///   vectors are on few CPUs that run lem, and Apple's have none);
/// - elsewhere: once, for the baseline.
///
/// The engine's training ops use it too, for kernels of their own.
#[macro_export]
macro_rules! simd_kernel {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident : $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn wide($($arg: $ty),*) -> $ret { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn narrow($($arg: $ty),*) -> $ret { body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features `wide` was compiled for.
                    return unsafe { wide($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    return unsafe { narrow($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// Which compilation of [`simd_kernel!`](crate::simd_kernel)'s kernels this
/// CPU runs: `avx512f`, `avx2+fma` or `sse2` on x86-64, `neon` on aarch64.
pub fn path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "avx2+fma";
        }
        "sse2"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "baseline"
    }
}

/// `e^x` within a few ulp for `x` in [-87, 88] (clamped outside: below it
/// gives ~1e-38 where the true value is smaller still), Cephes' polynomial.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants, as published
pub fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = n.mul_add(2.121_944_4e-4, n.mul_add(-0.693_359_4, x));
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5.000_000_1e-1);
    let e = (p * r).mul_add(r, r + 1.0);
    // 2^n built in the exponent bits: n + 127 is a whole number in [1, 254],
    // so it is the low mantissa bits of n + 127 + 2^23, and shifting those
    // left by 23 puts it in the exponent field and drops the rest. (`n as
    // i32` would not vectorise: Rust's float-to-int cast saturates, and
    // it compiled to one scalar conversion per lane, 2 ns per element.)
    e * f32::from_bits((n + 8_388_735.0).to_bits() << 23)
}

/// `tanh(x)` from [`fast_exp`].
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    let e = fast_exp(2.0 * x.clamp(-9.0, 9.0));
    (e - 1.0) / (e + 1.0)
}

/// √(2/π), of the tanh form of GELU.
pub const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// The cubic coefficient of the tanh form of GELU.
pub const GELU_C: f32 = 0.044_715;

/// GELU, tanh form (as Gemma's `gelu_pytorch_tanh`).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + fast_tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)))
}

crate::simd_kernel! {
    /// `y = gelu(g)·u`, elementwise over the shortest of the three.
    fn gelu_mul(y: &mut [f32], g: &[f32], u: &[f32]) -> () {
        for ((y, g), u) in y.iter_mut().zip(g).zip(u) {
            *y = gelu(*g) * u;
        }
    }
}

crate::simd_kernel! {
    /// The gradients of [`gelu_mul`]: `dg = d·u·gelu'(g)`, `du = d·gelu(g)`.
    fn gelu_mul_grad(dg: &mut [f32], du: &mut [f32], g: &[f32], u: &[f32], d: &[f32]) -> () {
        for i in 0..g.len().min(dg.len()).min(du.len()).min(u.len()).min(d.len()) {
            let x = g[i];
            let th = fast_tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
            let value = 0.5 * x * (1.0 + th);
            let slope = 0.5 * (1.0 + th)
                + 0.5 * x * (1.0 - th * th) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x);
            dg[i] = d[i] * u[i] * slope;
            du[i] = d[i] * value;
        }
    }
}

crate::simd_kernel! {
    /// The largest `|x|` (0 for none).
    fn abs_max(x: &[f32]) -> f32 {
        let mut acc = [0f32; 16];
        let mut chunks = x.chunks_exact(16);
        for c in &mut chunks {
            for i in 0..16 {
                acc[i] = acc[i].max(c[i].abs());
            }
        }
        let tail = chunks.remainder().iter().fold(0f32, |a, v| a.max(v.abs()));
        acc.iter().fold(tail, |a, &v| a.max(v))
    }
}

crate::simd_kernel! {
    /// `q = x·scale` rounded to the nearest integer, ties to even, as ggml's
    /// `nearest_int` does it (adding 1.5·2²³ leaves the integer in the low
    /// mantissa bits); `x·scale` must lie within ±127.
    fn round_to_i8(q: &mut [i8], x: &[f32], scale: f32) -> () {
        for (q, x) in q.iter_mut().zip(x) {
            let bits = (x * scale + 12_582_912.0).to_bits() as i32;
            *q = ((bits & 0x007f_ffff) - 0x0040_0000) as i8;
        }
    }
}

crate::simd_kernel! {
    /// `row[i] = e^(row[i]·scale − shift)`; returns the sum.
    fn exp_in_place(row: &mut [f32], scale: f32, shift: f32) -> f32 {
        let mut acc = [0f32; 16];
        let mut chunks = row.chunks_exact_mut(16);
        for c in &mut chunks {
            for i in 0..16 {
                c[i] = fast_exp(c[i] * scale - shift);
                acc[i] += c[i];
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for v in chunks.into_remainder() {
            *v = fast_exp(*v * scale - shift);
            sum += *v;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abs_max_and_rounding_are_ggmls() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 - 20.0) * 0.37).collect();
        assert_eq!(abs_max(&x), 20.0 * 0.37);
        assert_eq!(abs_max(&[]), 0.0);
        let halves = [0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5, 126.6, -127.0, 3.2];
        let mut q = [0i8; 9];
        round_to_i8(&mut q, &halves, 1.0);
        assert_eq!(q, [0, 2, 2, 0, -2, -2, 127, -127, 3]);
    }

    /// GELU's tanh form through libm, the reference.
    fn gelu_libm(x: f64) -> f64 {
        0.5 * x * (1.0 + (0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x)).tanh())
    }

    #[test]
    fn fast_exp_is_close_to_exp() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (a, b) = (fast_exp(x), x.exp());
            assert!(((a - b) / b).abs() < 2e-6, "exp({x}): {a} vs {b}");
        }
    }

    #[test]
    fn fast_tanh_is_close_to_tanh_and_saturates() {
        for i in -1200..=1200 {
            let x = i as f32 / 100.0;
            let (a, b) = (fast_tanh(x), x.tanh());
            assert!((a - b).abs() < 2e-6, "tanh({x}): {a} vs {b}");
        }
        assert_eq!(fast_tanh(1e30), 1.0);
        assert_eq!(fast_tanh(-1e30), -1.0);
    }

    /// The kernels' vector and remainder lanes alike (lengths that are not
    /// multiples of any vector width), against libm in f64.
    #[test]
    fn gelu_mul_and_its_gradient_match_libm() {
        for len in [1, 7, 16, 37, 100] {
            let g: Vec<f32> = (0..len).map(|i| (i as f32 - 50.0) / 9.0).collect();
            let u: Vec<f32> = (0..len).map(|i| 1.0 + (i % 5) as f32 / 4.0).collect();
            let d: Vec<f32> = (0..len).map(|i| 0.5 - (i % 3) as f32 / 3.0).collect();
            let mut y = vec![0f32; len];
            gelu_mul(&mut y, &g, &u);
            let (mut dg, mut du) = (vec![0f32; len], vec![0f32; len]);
            gelu_mul_grad(&mut dg, &mut du, &g, &u, &d);
            for i in 0..len {
                let x = g[i] as f64;
                let want = gelu_libm(x) * u[i] as f64;
                assert!(
                    (y[i] as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
                    "y[{i}]"
                );
                let slope = (gelu_libm(x + 1e-4) - gelu_libm(x - 1e-4)) / 2e-4;
                let want_dg = d[i] as f64 * u[i] as f64 * slope;
                assert!(
                    (dg[i] as f64 - want_dg).abs() < 1e-3,
                    "dg[{i}] {} {want_dg}",
                    dg[i]
                );
                let want_du = d[i] as f64 * gelu_libm(x);
                assert!((du[i] as f64 - want_du).abs() < 1e-5 * want_du.abs().max(1.0));
            }
        }
    }

    #[test]
    fn exp_in_place_exponentiates_and_sums() {
        let mut row: Vec<f32> = (0..37).map(|i| i as f32 / 10.0).collect();
        let sum = exp_in_place(&mut row, 2.0, 1.0);
        let expected: f32 = (0..37).map(|i| (i as f32 / 5.0 - 1.0).exp()).sum();
        assert!((sum - expected).abs() / expected < 1e-5);
        assert!((row[36] - 6.2f32.exp()).abs() / row[36] < 1e-5);
    }
}
