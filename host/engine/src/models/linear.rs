//! A projection with an optional LoRA delta: `y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ`
//! ([LoRA](https://arxiv.org/abs/2106.09685)), and its inference forward.
//!
//! The base weight is quantized (`QMatMul` from GGUF) or dense f32. What
//! training and fusing add (the differentiable forward, the taped forward
//! and its backward, the merged weight) is in the `train` submodule, behind
//! the `train` feature.

use candle_core::quantized::QMatMul;
use candle_core::{Module, Tensor};

#[cfg(feature = "train")]
mod train;
#[cfg(feature = "train")]
pub use train::{FrozenMatmul, LinearTape, LoraGrads, frozen_matmul};

/// A LoRA pair on one projection.
#[derive(Debug, Clone)]
pub struct Lora {
    /// `[r, in]`.
    pub a: Tensor,
    /// `[out, r]`.
    pub b: Tensor,
    /// `lora_alpha / r`.
    pub scale: f64,
    /// Dropout on the LoRA input while training.
    pub dropout: f32,
}

/// A projection `[out, in]`, possibly with a LoRA delta.
#[derive(Debug, Clone)]
pub struct Linear {
    base: QMatMul,
    lora: Option<Lora>,
    /// A contiguous f32 copy of `Wᵀ` `[in, out]`, for many-row inputs
    /// (prefill, training): candle's CPU gemm multiplies by it about a
    /// third faster than by the transposed view of `W` (measured on the
    /// 270M model's shapes, 512 rows, 2 threads: 225 vs 170 GFLOP/s).
    transposed: Option<Tensor>,
}

/// Inputs with at least this many rows use the `Wᵀ` copy: a prompt is
/// compute-bound (f32 gemm beats the quantized dot products several times
/// over), while decoding a handful of rows is bound by reading the weights,
/// where the smaller quantized ones win.
const DENSE_MIN_ROWS: usize = 16;

impl Linear {
    /// A projection without an adapter.
    pub fn new(base: QMatMul) -> Self {
        Linear {
            base,
            lora: None,
            transposed: None,
        }
    }

    /// The base weight.
    pub fn base(&self) -> &QMatMul {
        &self.base
    }

    /// The adapter, if any.
    pub fn lora(&self) -> Option<&Lora> {
        self.lora.as_ref()
    }

    /// Sets (or removes) the adapter.
    pub fn set_lora(&mut self, lora: Option<Lora>) {
        self.lora = lora;
    }

    /// `(out, in)` of the base weight.
    pub fn dims(&self) -> candle_core::Result<(usize, usize)> {
        match &self.base {
            QMatMul::QTensor(q) => q.shape().dims2(),
            QMatMul::Tensor(w) | QMatMul::TensorF16(w) => w.dims2(),
        }
    }

    /// The base weight as dense f32 `[out, in]`.
    pub fn dense_weight(&self) -> candle_core::Result<Tensor> {
        match &self.base {
            QMatMul::QTensor(q) => q.dequantize(&q.device()),
            QMatMul::Tensor(w) | QMatMul::TensorF16(w) => w.to_dtype(candle_core::DType::F32),
        }
    }

    /// Keeps a contiguous f32 copy of `Wᵀ` for many-row inputs.
    pub fn add_transposed_copy(&mut self) -> candle_core::Result<()> {
        self.transposed = Some(self.dense_weight()?.t()?.contiguous()?);
        Ok(())
    }

    /// Inference: the base projection plus the adapter's delta.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let rows = x.elem_count() / x.dim(candle_core::D::Minus1)?.max(1);
        let y = match (&self.transposed, &self.base) {
            (Some(wt), _) if rows >= DENSE_MIN_ROWS => x.broadcast_matmul(wt)?,
            (_, QMatMul::QTensor(q)) if rows < DENSE_MIN_ROWS && super::q8_0::supports(q) => {
                super::q8_0::matmul(&x.contiguous()?, q)?
            }
            _ => self.base.forward(x)?,
        };
        match &self.lora {
            None => Ok(y),
            Some(l) => y + lora_delta(x, l)?,
        }
    }
}

/// `scale·(x·Aᵀ)·Bᵀ`, as 2-D matmuls (no broadcast copies of A and B), the
/// scale applied to the rank-wide intermediate.
fn lora_delta(x: &Tensor, l: &Lora) -> candle_core::Result<Tensor> {
    let dims = x.dims().to_vec();
    let inp = dims[dims.len() - 1];
    let rows = x.elem_count() / inp;
    let low = (x.reshape((rows, inp))?.matmul(&l.a.t()?)? * l.scale)?;
    let y = low.matmul(&l.b.t()?)?;
    let mut shape = dims;
    *shape.last_mut().expect("non-empty dims") = y.dim(1)?;
    y.reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_abs_diff;
    use candle_core::Device;

    /// A projection with an adapter (scale 2, no dropout), an input of 3
    /// rows, and the product with the merged weight.
    pub(super) fn adapted() -> (Linear, Tensor, Tensor) {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (4, 5), &dev).unwrap();
        let a = Tensor::randn(0f32, 1.0, (2, 5), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, (4, 2), &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 5), &dev).unwrap();
        let mut lin = Linear::new(QMatMul::Tensor(w.clone()));
        lin.set_lora(Some(Lora {
            a: a.clone(),
            b: b.clone(),
            scale: 2.0,
            dropout: 0.0,
        }));
        let fused = (w + (b.matmul(&a).unwrap() * 2.0).unwrap()).unwrap();
        let expected = x.matmul(&fused.t().unwrap()).unwrap();
        (lin, x, expected)
    }

    #[test]
    fn lora_adds_its_scaled_delta() {
        let (mut lin, x, expected) = adapted();
        let plain = lin.forward(&x);
        lin.add_transposed_copy().unwrap();
        let many = Tensor::cat(&vec![x.clone(); 6], 0).unwrap(); // 18 rows: the copy's path
        let with_copy = lin.forward(&many);
        let many_expected = Tensor::cat(&vec![expected.clone(); 6], 0).unwrap();
        for (y, want) in [(plain, &expected), (with_copy, &many_expected)] {
            let diff = max_abs_diff(&y.unwrap(), want);
            assert!(diff < 1e-4, "{diff}");
        }
    }
}
