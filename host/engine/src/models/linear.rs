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
            (_, QMatMul::QTensor(q)) if super::quantized::supports(q, rows) => {
                super::quantized::matmul(&x.contiguous()?, q)?
            }
            _ => self.base.forward(x)?,
        };
        match &self.lora {
            None => Ok(y),
            Some(l) => y + lora_delta_inference(x, l)?,
        }
    }
}

/// The `n` f32 values of a contiguous CPU tensor's storage.
fn cpu_slice<'a>(
    cpu: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    n: usize,
) -> candle_core::Result<&'a [f32]> {
    match layout.contiguous_offsets() {
        Some((start, end)) if end - start == n => Ok(&cpu.as_slice::<f32>()?[start..end]),
        _ => candle_core::bail!("LoRA weights are not contiguous"),
    }
}

/// `scale·(x·Aᵀ)·Bᵀ`, the scale applied to the rank-wide intermediate.
///
/// On the CPU each row is computed on its own, in a fixed order: a
/// sequence's answer must not depend on which other sequences share its
/// batch (a matmul picks its kernel and blocking by the number of rows, and
/// rounds differently), or a resumed run would not repeat an uninterrupted
/// one. The rank is small, so these loops cost little. Elsewhere, and in
/// training (where gradients flow through it), [`lora_delta`].
fn lora_delta_inference(x: &Tensor, l: &Lora) -> candle_core::Result<Tensor> {
    let dims = x.dims().to_vec();
    let inp = dims[dims.len() - 1];
    let rows = x.elem_count() / inp;
    let x2 = x.reshape((rows, inp))?;
    let y = if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        let (rank, out) = (l.a.dim(0)?, l.b.dim(0)?);
        let xs: Vec<f32> = x2.flatten_all()?.to_vec1()?;
        let (a_storage, a_layout) = l.a.storage_and_layout();
        let (b_storage, b_layout) = l.b.storage_and_layout();
        let (candle_core::Storage::Cpu(a_cpu), candle_core::Storage::Cpu(b_cpu)) =
            (&*a_storage, &*b_storage)
        else {
            candle_core::bail!("a LoRA adapter on the CPU has its weights elsewhere")
        };
        let a = cpu_slice(a_cpu, a_layout, rank * inp)?;
        let b = cpu_slice(b_cpu, b_layout, out * rank)?;
        let scale = l.scale as f32;
        let mut y = vec![0f32; rows * out];
        let mut low = vec![0f32; rank];
        for (xr, yr) in xs.chunks_exact(inp).zip(y.chunks_exact_mut(out)) {
            for (lj, aj) in low.iter_mut().zip(a.chunks_exact(inp)) {
                *lj = xr.iter().zip(aj).map(|(p, q)| p * q).sum::<f32>() * scale;
            }
            for (yo, bo) in yr.iter_mut().zip(b.chunks_exact(rank)) {
                *yo = low.iter().zip(bo).map(|(p, q)| p * q).sum();
            }
        }
        Tensor::from_vec(y, (rows, out), x.device())?
    } else {
        return lora_delta(x, l);
    };
    let mut shape = dims;
    *shape.last_mut().expect("non-empty dims") = y.dim(1)?;
    y.reshape(shape)
}

/// `scale·(x·Aᵀ)·Bᵀ`, as 2-D matmuls (no broadcast copies of A and B), the
/// scale applied to the rank-wide intermediate; differentiable.
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

    /// A row's output is the same bits alone and in a batch: a sequence's
    /// text must not depend on its batch.
    #[test]
    fn a_rows_delta_does_not_depend_on_its_batch() {
        let (lin, x, _) = adapted();
        let batch = Tensor::cat(&[x.clone(), x.clone()], 0)
            .unwrap()
            .contiguous()
            .unwrap();
        let all: Vec<Vec<f32>> = lin.forward(&batch).unwrap().to_vec2().unwrap();
        for r in 0..3 {
            let alone: Vec<Vec<f32>> = lin
                .forward(&x.narrow(0, r, 1).unwrap())
                .unwrap()
                .to_vec2()
                .unwrap();
            assert_eq!(alone[0], all[r]);
            assert_eq!(alone[0], all[r + 3]);
        }
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
