//! Fused CPU ops that inference and training share: reading a tensor's f32
//! storage (`f32s`, which the decode kernels use too) and the GELU-gated
//! products of Gemma's MLP ([`gelu_mul`]: candle's `gelu` evaluates libm's
//! `tanh` one value at a time; this one runs [`lem_kernels::math`]'s
//! vectorised kernel) and of Llama's and Qwen's ([`silu_mul`], for
//! inference: candle's `silu` then its product took 3% of a 1.5B model's
//! prompt on one thread; fused, it is one pass on every thread).
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

/// `y = f(gate, up)` elementwise, in chunks on every thread: the gated
/// products of both MLPs.
fn gated_product(
    what: &str,
    (gs, gl): (&CpuStorage, &Layout),
    (us, ul): (&CpuStorage, &Layout),
    f: impl Fn(&mut [f32], &[f32], &[f32]) + Sync,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (g, u) = (f32s(gs, gl, what)?, f32s(us, ul, what)?);
    if g.len() != u.len() {
        candle_core::bail!("{what}: shapes differ");
    }
    let mut y = vec![0f32; g.len()];
    y.par_chunks_mut(4096)
        .zip(g.par_chunks(4096).zip(u.par_chunks(4096)))
        .for_each(|(yc, (gc, uc))| f(yc, gc, uc));
    Ok(out(y, gl))
}

// Declared here so its kernels can share this module's helpers.
#[cfg(feature = "train")]
pub mod train;

// ------------------------------------------------------------- GELU gate

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
        gated_product("gelu-mul", (gs, gl), (us, ul), lem_kernels::math::gelu_mul)
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

// ------------------------------------------------------------- SiLU gate

/// `silu(gate) · up`, the Llama MLP's gated product, for inference (no
/// gradient: training differentiates candle's ops). Bit for bit candle's
/// `silu(gate) * up`: the same libm `exp` in the same expression (a faster
/// `exp` moved SmolLM2's greedy text off llama.cpp's at a near tie).
pub fn silu_mul(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if !gate.device().is_cpu() || gate.dtype() != candle_core::DType::F32 {
        return candle_nn::ops::silu(gate)? * up;
    }
    gate.contiguous()?
        .apply_op2_no_bwd(&up.contiguous()?, &SiluMul)
}

struct SiluMul;

impl CustomOp2 for SiluMul {
    fn name(&self) -> &'static str {
        "silu-mul"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        us: &CpuStorage,
        ul: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        gated_product("silu-mul", (gs, gl), (us, ul), |y, g, u| {
            for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
                *y = g / (1.0 + (-g).exp()) * u;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_abs_diff;
    use candle_core::Device;

    #[test]
    fn gelu_mul_matches_gelu_times_up() {
        let gate = Tensor::randn(0f32, 1.0, (4, 9), &Device::Cpu).unwrap();
        let up = Tensor::randn(0f32, 1.0, (4, 9), &Device::Cpu).unwrap();
        let fused = gelu_mul(&gate, &up).unwrap();
        let composite = (gate.gelu().unwrap() * &up).unwrap();
        assert!(max_abs_diff(&fused, &composite) < 1e-4);
    }

    #[test]
    fn silu_mul_matches_silu_times_up() {
        let gate = Tensor::randn(0f32, 3.0, (4, 9), &Device::Cpu).unwrap();
        let up = Tensor::randn(0f32, 1.0, (4, 9), &Device::Cpu).unwrap();
        let fused = silu_mul(&gate, &up).unwrap();
        let composite = (candle_nn::ops::silu(&gate).unwrap() * &up).unwrap();
        let bits = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(bits(&fused), bits(&composite));
    }
}
