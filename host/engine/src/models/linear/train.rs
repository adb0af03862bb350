//! What training and fusing need of a projection (behind the `train`
//! feature): the differentiable forward ([`Linear::forward_train`]), the
//! taped forward and its hand-written backward ([`Linear::forward_taped`],
//! [`Linear::backward`]), and the weight with its adapter merged.
//!
//! In the differentiable forward a dense base goes through
//! [`FrozenMatmul`], whose backward returns only the input's gradient:
//! candle's own matmul backward would also compute the (unused) gradient of
//! every frozen weight, which costs a matmul and a weight-sized buffer per
//! projection per step.

use super::{Linear, lora_delta};
use crate::models::matmul::matmul;
use candle_core::backend::BackendStorage;
use candle_core::quantized::QMatMul;
use candle_core::{CpuStorage, CustomOp2, Layout, Module, Shape, Tensor};

impl Linear {
    /// Replaces the base weight with dense f32 `w` `[out, in]` (same
    /// shape), keeping the adapter, and the `Wᵀ` copy when there was one.
    pub fn set_weight(&mut self, w: Tensor) -> candle_core::Result<()> {
        if w.dims2()? != self.dims()? {
            candle_core::bail!(
                "set_weight: shape {:?} for a {:?} projection",
                w.dims(),
                self.dims()?
            );
        }
        let had_copy = self.transposed.is_some();
        self.base = QMatMul::Tensor(w.to_dtype(candle_core::DType::F32)?.contiguous()?);
        self.transposed = None;
        if had_copy {
            self.add_transposed_copy()?;
        }
        Ok(())
    }

    /// The dense weight with the adapter merged: `W + scale·B·A`, in f32.
    pub fn fused_weight(&self) -> candle_core::Result<Tensor> {
        let w = self.dense_weight()?;
        match &self.lora {
            None => Ok(w),
            Some(l) => w + l.b.matmul(&l.a)?.affine(l.scale, 0.0)?,
        }
    }

    /// Training: gradients flow to the input and to the adapter, never to
    /// the base weight; `dropout` applies the adapter's dropout.
    pub fn forward_train(&self, x: &Tensor, dropout: bool) -> candle_core::Result<Tensor> {
        let y = match &self.base {
            QMatMul::Tensor(w) => frozen_matmul(x, w, self.transposed.as_ref())?,
            _ => self.base.forward(&x.detach())?,
        };
        match &self.lora {
            None => Ok(y),
            Some(l) => {
                let input = if dropout && l.dropout > 0.0 {
                    candle_nn::ops::dropout(x, l.dropout)?
                } else {
                    x.clone()
                };
                y + lora_delta(&input, l)?
            }
        }
    }
}

/// What a projection's backward needs from its taped forward
/// ([`Linear::forward_taped`]).
#[derive(Debug)]
pub struct LinearTape {
    /// With an adapter: its input (`x`, or `x` through dropout), the
    /// dropout's scaled keep-mask when there was one, and `input·Aᵀ` `[n,
    /// r]`. (The base needs nothing: its input gradient is `dy·W`.)
    lora: Option<(Tensor, Option<Tensor>, Tensor)>,
}

/// The gradients of an adapter's pair.
#[derive(Debug)]
pub struct LoraGrads {
    /// Of `A` `[r, in]`.
    pub a: Tensor,
    /// Of `B` `[out, r]`.
    pub b: Tensor,
}

impl Linear {
    /// Training outside autograd: `y` `[n, out]` for `x` `[n, in]` and what
    /// [`Linear::backward`] needs; `dropout` applies the adapter's dropout.
    pub fn forward_taped(
        &self,
        x: &Tensor,
        dropout: bool,
    ) -> candle_core::Result<(Tensor, LinearTape)> {
        let y = match &self.transposed {
            Some(wt) => matmul(x, wt)?,
            None => matmul(x, &self.dense_weight()?.t()?)?,
        };
        let Some(l) = &self.lora else {
            return Ok((y, LinearTape { lora: None }));
        };
        let (input, keep) = if dropout && l.dropout > 0.0 {
            let keep = (x
                .rand_like(0.0, 1.0)?
                .ge(l.dropout as f64)?
                .to_dtype(x.dtype())?
                * (1.0 / (1.0 - l.dropout as f64)))?;
            ((x * &keep)?, Some(keep))
        } else {
            (x.clone(), None)
        };
        let low = matmul(&input, &l.a.t()?)?;
        let y = (y + matmul(&(&low * l.scale)?, &l.b.t()?)?)?;
        Ok((
            y,
            LinearTape {
                lora: Some((input, keep, low)),
            },
        ))
    }

    /// The backward of [`Linear::forward_taped`] for the output's gradient
    /// `dy` `[n, out]`: the input's gradient (when `want_dx`) and the
    /// adapter's.
    pub fn backward(
        &self,
        tape: &LinearTape,
        dy: &Tensor,
        want_dx: bool,
    ) -> candle_core::Result<(Option<Tensor>, Option<LoraGrads>)> {
        let mut dx = match want_dx {
            true => Some(matmul(dy, &self.dense_weight()?)?),
            false => None,
        };
        let grads = match (&self.lora, &tape.lora) {
            (Some(l), Some((input, keep, low))) => {
                let dlow = (matmul(dy, &l.b)? * l.scale)?;
                let db = (matmul(&dy.t()?, low)? * l.scale)?;
                let da = matmul(&dlow.t()?, input)?;
                if let Some(d) = dx.as_mut() {
                    let mut through = matmul(&dlow, &l.a)?;
                    if let Some(keep) = keep {
                        through = (through * keep)?;
                    }
                    *d = (&*d + through)?;
                }
                Some(LoraGrads { a: da, b: db })
            }
            (None, None) => None,
            _ => candle_core::bail!("linear backward: the tape and the adapter do not match"),
        };
        Ok((dx, grads))
    }
}

/// `x·Wᵀ` for `x` `[..., in]` and a frozen `W` `[out, in]`, whose backward
/// gives `x` its gradient and `W` none. `wt`, a contiguous copy of `Wᵀ`,
/// makes the forward product faster; the backward multiplies by `W`.
pub fn frozen_matmul(x: &Tensor, w: &Tensor, wt: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let dims = x.dims().to_vec();
    let (out, inp) = w.dims2()?;
    let rows: usize = dims[..dims.len() - 1].iter().product();
    if !x.device().is_cpu() {
        // Other devices: the plain matmul (its weight gradient is computed and dropped).
        return x.broadcast_matmul(&w.detach().t()?);
    }
    let flat = x.reshape((rows, inp))?.contiguous()?;
    let rhs = match wt {
        Some(wt) => wt.clone(),
        None => w.t()?,
    };
    let y = flat.apply_op2(&rhs, FrozenMatmul { w: w.clone() })?;
    let mut shape = dims;
    *shape.last_mut().expect("non-empty dims") = out;
    y.reshape(shape)
}

/// The custom op behind [`frozen_matmul`]: `x · rhs` with `rhs` = `Wᵀ`
/// (a view or a copy); its backward multiplies the gradient by `W`.
pub struct FrozenMatmul {
    /// `W` `[out, in]`.
    pub w: Tensor,
}

impl CustomOp2 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        rhs: &CpuStorage,
        rl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, k) = xl.shape().dims2()?;
        let (k2, n) = rl.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("frozen-matmul: input has {k} columns, weight {k2}");
        }
        let y = x.matmul(rhs, (1, m, n, k), xl, rl)?;
        Ok((y, Shape::from((m, n))))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _rhs: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.matmul(&self.w)?), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::linear::Lora;
    use crate::testing::max_abs_diff;
    use candle_core::{Device, Var};

    #[test]
    fn frozen_matmul_matches_matmul_and_its_input_gradient() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (2, 3, 5), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (4, 5), &dev).unwrap();
        let wt = w.t().unwrap().contiguous().unwrap();
        let reference = x.broadcast_matmul(&w.t().unwrap()).unwrap();
        let g2 = reference
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for copy in [None, Some(&wt)] {
            let y = frozen_matmul(&x, &w, copy).unwrap();
            let diff = max_abs_diff(&y, &reference);
            assert!(diff < 1e-5, "{diff}");
            let g1 = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let (a, b) = (g1.get(&x).unwrap(), g2.get(&x).unwrap());
            let diff = max_abs_diff(a, b);
            assert!(diff < 1e-4, "{diff}");
            assert!(g1.get(&w).is_none(), "the frozen weight got a gradient");
            assert!(g1.get(&wt).is_none(), "the frozen copy got a gradient");
        }
    }

    #[test]
    fn the_taped_backward_matches_autograd_through_dropout() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (6, 5), &dev).unwrap();
        let (a, b) = (
            Var::randn(0f32, 1.0, (2, 5), &dev).unwrap(),
            Var::randn(0f32, 1.0, (6, 2), &dev).unwrap(),
        );
        let mut lin = Linear::new(QMatMul::Tensor(w.clone()));
        lin.set_lora(Some(Lora {
            a: a.as_tensor().clone(),
            b: b.as_tensor().clone(),
            scale: 1.5,
            dropout: 0.5,
        }));
        let x = Var::randn(0f32, 1.0, (40, 5), &dev).unwrap();
        let dy = Tensor::randn(0f32, 1.0, (40, 6), &dev).unwrap();
        let (y, tape) = lin.forward_taped(x.as_tensor(), true).unwrap();
        let keep = tape
            .lora
            .as_ref()
            .unwrap()
            .1
            .clone()
            .expect("dropout kept its mask");
        let dropped = keep.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            dropped.contains(&0.0) && dropped.contains(&2.0),
            "{dropped:?}"
        );
        // The same product through autograd, with the same mask.
        let x_in = (x.as_tensor() * &keep).unwrap();
        let reference = (x.as_tensor().matmul(&w.t().unwrap()).unwrap()
            + (x_in.matmul(&a.t().unwrap()).unwrap() * 1.5)
                .unwrap()
                .matmul(&b.t().unwrap())
                .unwrap())
        .unwrap();
        assert!(max_abs_diff(&y, &reference) < 1e-4);
        let auto = (reference * &dy)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (dx, grads) = lin.backward(&tape, &dy, true).unwrap();
        let grads = grads.unwrap();
        for (got, want) in [
            (&dx.unwrap(), auto.get(x.as_tensor()).unwrap()),
            (&grads.a, auto.get(a.as_tensor()).unwrap()),
            (&grads.b, auto.get(b.as_tensor()).unwrap()),
        ] {
            let d = max_abs_diff(got, want);
            assert!(d < 1e-3, "{d}");
        }
    }

    #[test]
    fn the_training_forward_adds_the_same_delta() {
        let (mut lin, x, expected) = super::super::tests::adapted();
        let plain = lin.forward_train(&x, true);
        lin.add_transposed_copy().unwrap();
        let with_copy = lin.forward_train(&x, true);
        for y in [plain, with_copy] {
            let diff = max_abs_diff(&y.unwrap(), &expected);
            assert!(diff < 1e-4, "{diff}");
        }
    }
}
