//! Fused CPU ops that inference and training share: reading a tensor's f32
//! storage (`f32s`, which the decode kernels use too), a fast `exp` and
//! `tanh` in kernels compiled for the CPU's vector width (`simd_kernel!`),
//! and the GELU-gated product of Gemma's MLP ([`gelu_mul`]: candle's `gelu`
//! evaluates libm's `tanh` one value at a time).
//!
//! What only training needs is in the `train` submodule (behind the `train`
//! feature): differentiable RMSNorm, rope and causal softmax, the per-head
//! norm and rope of Gemma 3's hand-written backward, and the backward of
//! every op, [`gelu_mul`]'s included.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

/// The f32 values of a contiguous tensor's storage (custom ops' inputs).
pub(crate) fn f32s<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{what}: needs f32");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{what}: needs a contiguous tensor"),
    }
}

fn out(v: Vec<f32>, l: &Layout) -> (CpuStorage, Shape) {
    (CpuStorage::F32(v), l.shape().clone())
}

// ------------------------------------------------------------- fast math

/// Kernels with a body written so loops vectorize, compiled three times —
/// for AVX-512, for AVX2 + FMA and for the baseline — and chosen at run
/// time: the GELU gate and the training ops spend their non-matmul time in
/// `exp` and `tanh` over millions of elements, which libm evaluates one at
/// a time.
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

/// `e^x` within a few ulp for `x` in [-87, 88] (clamped outside: below it
/// gives ~1e-38 where the true value is smaller still), Cephes' polynomial.
#[inline(always)]
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
fn fast_tanh(x: f32) -> f32 {
    let e = fast_exp(2.0 * x.clamp(-9.0, 9.0));
    (e - 1.0) / (e + 1.0)
}

// Declared after `simd_kernel!`, which its kernels use.
#[cfg(feature = "train")]
pub mod train;

simd_kernel! {
    /// `y = gelu(g)·u`.
    fn gelu_mul_kernel(y: &mut [f32], g: &[f32], u: &[f32]) -> () {
        for ((y, g), u) in y.iter_mut().zip(g).zip(u) {
            *y = gelu(*g) * u;
        }
    }
}

// ------------------------------------------------------------- GELU gate

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044_715;

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + fast_tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)))
}

/// `gelu_tanh(gate) · up`, the Gemma MLP's gated product.
pub fn gelu_mul(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if !gate.device().is_cpu() {
        return gate.gelu()? * up;
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, GeluMul)
}

struct GeluMul;

impl CustomOp2 for GeluMul {
    fn name(&self) -> &'static str {
        "train-gelu-mul"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        us: &CpuStorage,
        ul: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, u) = (f32s(gs, gl, "gelu-mul")?, f32s(us, ul, "gelu-mul")?);
        if g.len() != u.len() {
            candle_core::bail!("gelu-mul: shapes differ");
        }
        let mut y = vec![0f32; g.len()];
        y.par_chunks_mut(4096)
            .zip(g.par_chunks(4096).zip(u.par_chunks(4096)))
            .for_each(|(yc, (gc, uc))| gelu_mul_kernel(yc, gc, uc));
        Ok(out(y, gl))
    }

    /// The gradients of [`gelu_mul`] in both inputs
    /// ([`train::gelu_mul_grad`]).
    #[cfg(feature = "train")]
    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dg, du) = train::gelu_mul_grad(gate, up, grad)?;
        Ok((Some(dg), Some(du)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_abs_diff;
    use candle_core::Device;

    #[test]
    fn fast_exp_is_close_to_exp() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (a, b) = (fast_exp(x), x.exp());
            assert!(((a - b) / b).abs() < 2e-6, "exp({x}): {a} vs {b}");
        }
    }

    #[test]
    fn gelu_mul_matches_gelu_times_up() {
        let gate = Tensor::randn(0f32, 1.0, (4, 9), &Device::Cpu).unwrap();
        let up = Tensor::randn(0f32, 1.0, (4, 9), &Device::Cpu).unwrap();
        let fused = gelu_mul(&gate, &up).unwrap();
        let composite = (gate.gelu().unwrap() * &up).unwrap();
        assert!(max_abs_diff(&fused, &composite) < 1e-4);
    }
}
