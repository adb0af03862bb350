//! Fused, differentiable CPU ops for training (behind the `train`
//! feature): RMSNorm, rope, causal (windowed) softmax, the per-head norm
//! and rope of the hand-written backward, and the backward of each, with
//! that of the shared [`super::gelu_mul`].
//!
//! candle's fused versions of these have no backward, and its composite
//! versions (`rms_norm_slow`, `rope_slow`, `softmax`, `gelu() * up`) build 5
//! to 10 graph nodes each, every one a full pass over its tensor and an
//! allocation, forward and backward: with 18 blocks that was most of a LoRA
//! step's time outside the matmuls. Each op here is one pass forward and
//! one or two backward. On other devices the composite versions are used.

use super::{f32s, out};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
pub use lem_kernels::math::exp_in_place;
use lem_kernels::math::gelu_mul_grad as gelu_mul_grad_kernel;
use rayon::prelude::*;

// ---------------------------------------------------------------- RMSNorm

/// `x / sqrt(mean(x²) + eps) · w` over the last dimension; `w` gets no gradient.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::ops::rms_norm_slow(x, w, eps);
    }
    x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps })
}

struct RmsNorm {
    eps: f32,
}

impl RmsNorm {
    fn inv_rms(&self, row: &[f32]) -> f32 {
        let ss: f32 = row.iter().map(|v| v * v).sum();
        1.0 / (ss / row.len() as f32 + self.eps).sqrt()
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "train-rms-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (f32s(xs, xl, "rms-norm")?, f32s(ws, wl, "rms-norm")?);
        let d = w.len();
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .for_each(|(yr, xr)| {
                let r = self.inv_rms(xr);
                for ((y, x), w) in yr.iter_mut().zip(xr).zip(w) {
                    *y = x * r * w;
                }
            });
        Ok(out(y, xl))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(rms_norm_grad(x, w, grad, self.eps)?), None))
    }
}

/// The gradient of [`rms_norm`] in `x` for the output's gradient `g`
/// (computed, not recorded in a graph).
pub fn rms_norm_grad(x: &Tensor, w: &Tensor, g: &Tensor, eps: f32) -> candle_core::Result<Tensor> {
    x.contiguous()?
        .apply_op3_no_bwd(&w.contiguous()?, &g.contiguous()?, &RmsNormGrad { eps })
}

/// `dx = r·w·g − x·r³·mean(x·w·g)`, `r = 1/rms(x)`.
struct RmsNormGrad {
    eps: f32,
}

impl CustomOp3 for RmsNormGrad {
    fn name(&self) -> &'static str {
        "train-rms-norm-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32s(xs, xl, "rms-norm-grad")?;
        let w = f32s(ws, wl, "rms-norm-grad")?;
        let g = f32s(gs, gl, "rms-norm-grad")?;
        let d = w.len();
        let norm = RmsNorm { eps: self.eps };
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(d)
            .zip(x.par_chunks(d).zip(g.par_chunks(d)))
            .for_each(|(dr, (xr, gr))| {
                let r = norm.inv_rms(xr);
                let s: f32 = xr.iter().zip(gr).zip(w).map(|((x, g), w)| x * g * w).sum();
                let k = r * r * r * s / d as f32;
                for (((dx, x), g), w) in dr.iter_mut().zip(xr).zip(gr).zip(w) {
                    *dx = r * w * g - x * k;
                }
            });
        Ok(out(dx, xl))
    }
}

// ------------------------------------------------------------------- Rope

/// Rotates `x` `[b, heads, t, d]` (halves layout, as Gemma) by `cos`/`sin`
/// `[t, d/2]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::rotary_emb::rope_slow(&x.contiguous()?, cos, sin);
    }
    x.contiguous()?.apply_op3(
        &cos.contiguous()?,
        &sin.contiguous()?,
        Rope { inverse: false },
    )
}

struct Rope {
    inverse: bool,
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "train-rope"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        cs: &CpuStorage,
        cl: &Layout,
        ss: &CpuStorage,
        sl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32s(xs, xl, "rope")?;
        let (cos, sin) = (f32s(cs, cl, "rope")?, f32s(ss, sl, "rope")?);
        let (_, _, t, d) = xl.shape().dims4()?;
        let half = d / 2;
        if cos.len() != t * half || sin.len() != t * half {
            candle_core::bail!("rope: tables are not [{t}, {half}]");
        }
        let sign = if self.inverse { -1.0 } else { 1.0 };
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(t * d)
            .zip(x.par_chunks(t * d))
            .for_each(|(yb, xb)| {
                for p in 0..t {
                    let (xr, yr) = (&xb[p * d..(p + 1) * d], &mut yb[p * d..(p + 1) * d]);
                    let (c, s) = (
                        &cos[p * half..(p + 1) * half],
                        &sin[p * half..(p + 1) * half],
                    );
                    for i in 0..half {
                        let (a, b) = (xr[i], xr[i + half]);
                        let si = sign * s[i];
                        yr[i] = a * c[i] - b * si;
                        yr[i + half] = b * c[i] + a * si;
                    }
                }
            });
        Ok(out(y, xl))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // A rotation's gradient is the inverse rotation of the gradient.
        let dx = grad.contiguous()?.apply_op3_no_bwd(
            cos,
            sin,
            &Rope {
                inverse: !self.inverse,
            },
        )?;
        Ok((Some(dx), None, None))
    }
}

// ------------------------------------------ per-head norm, rope, transpose

/// The values of CPU f32 tensors, read through their held storage: kernels
/// run outside any graph may take more inputs than a custom op's three.
fn cpu_f32s<'a, const N: usize>(
    held: &'a [(candle_core::StorageRef<'_>, &Layout); N],
    what: &str,
) -> candle_core::Result<[&'a [f32]; N]> {
    let mut out = [&[][..]; N];
    for (o, (storage, layout)) in out.iter_mut().zip(held) {
        *o = match &**storage {
            candle_core::Storage::Cpu(s) => f32s(s, layout, what)?,
            _ => candle_core::bail!("{what}: needs CPU tensors"),
        };
    }
    Ok(out)
}

/// Shape of one attention input: `b` sequences of `t` positions, `heads`
/// heads of width `d`.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    /// Sequences.
    pub b: usize,
    /// Positions.
    pub t: usize,
    /// Heads.
    pub heads: usize,
    /// Head width.
    pub d: usize,
}

/// Per-head RMSNorm (weight `w` `[d]`) then rope (`cos`/`sin` `[t, d/2]`),
/// from a projection's layout `[b·t, heads·d]` to attention's `[b, heads,
/// t, d]`, in one pass (the graph version makes a transposed copy, then a
/// normed one, then a rotated one). Outside any graph: the gradient is
/// [`heads_norm_rope_grad`].
pub fn heads_norm_rope(
    x: &Tensor,
    shape: Heads,
    w: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    eps: f32,
) -> candle_core::Result<Tensor> {
    let Heads { b, t, heads, d } = shape;
    let half = d / 2;
    let norm = RmsNorm { eps };
    let device = x.device().clone();
    let held = [x, w, cos, sin].map(Tensor::storage_and_layout);
    let [x, w, cos, sin] = cpu_f32s(&held, "heads-norm-rope")?;
    if x.len() != b * t * heads * d || w.len() != d || cos.len() < t * half || sin.len() < t * half
    {
        candle_core::bail!("heads-norm-rope: inputs do not match {shape:?}");
    }
    let mut y = vec![0f32; x.len()];
    // One output block [t, d] per (sequence, head).
    y.par_chunks_mut(t * d).enumerate().for_each(|(bh, yb)| {
        let (bi, hi) = (bh / heads, bh % heads);
        let mut normed = vec![0f32; d];
        for (p, yr) in yb.chunks_exact_mut(d).enumerate() {
            let row = ((bi * t + p) * heads + hi) * d;
            let xr = &x[row..row + d];
            let r = norm.inv_rms(xr);
            for ((n, x), w) in normed.iter_mut().zip(xr).zip(w) {
                *n = x * r * w;
            }
            let (c, s) = (&cos[p * half..][..half], &sin[p * half..][..half]);
            for i in 0..half {
                let (lo, up) = (normed[i], normed[i + half]);
                yr[i] = lo * c[i] - up * s[i];
                yr[i + half] = up * c[i] + lo * s[i];
            }
        }
    });
    drop(held);
    Tensor::from_vec(y, (b, heads, t, d), &device)
}

/// The gradient of [`heads_norm_rope`] in `x`: `dy` `[b, heads, t, d]`
/// rotated back and through the norm, in `x`'s layout `[b·t, heads·d]`.
pub fn heads_norm_rope_grad(
    x: &Tensor,
    shape: Heads,
    w: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    dy: &Tensor,
    eps: f32,
) -> candle_core::Result<Tensor> {
    let Heads { b, t, heads, d } = shape;
    let half = d / 2;
    let norm = RmsNorm { eps };
    let device = x.device().clone();
    let dy = dy.contiguous()?;
    let held = [x, w, cos, sin, &dy].map(Tensor::storage_and_layout);
    let [x, w, cos, sin, dy] = cpu_f32s(&held, "heads-norm-rope-grad")?;
    if x.len() != b * t * heads * d
        || dy.len() != x.len()
        || w.len() != d
        || cos.len() < t * half
        || sin.len() < t * half
    {
        candle_core::bail!("heads-norm-rope-grad: inputs do not match {shape:?}");
    }
    let mut dx = vec![0f32; x.len()];
    // One output row [heads·d] per (sequence, position).
    dx.par_chunks_mut(heads * d)
        .enumerate()
        .for_each(|(bp, dr)| {
            let (bi, p) = (bp / t, bp % t);
            let (c, s) = (&cos[p * half..][..half], &sin[p * half..][..half]);
            let mut gn = vec![0f32; d];
            for (hi, out) in dr.chunks_exact_mut(d).enumerate() {
                let at = ((bi * heads + hi) * t + p) * d;
                let g = &dy[at..at + d];
                // The normed row's gradient: the gradient rotated back.
                for i in 0..half {
                    let (lo, up) = (g[i], g[i + half]);
                    gn[i] = lo * c[i] + up * s[i];
                    gn[i + half] = up * c[i] - lo * s[i];
                }
                let xr = &x[(bp * heads + hi) * d..][..d];
                let r = norm.inv_rms(xr);
                let dot: f32 = xr.iter().zip(&gn).zip(w).map(|((x, g), w)| x * g * w).sum();
                let k = r * r * r * dot / d as f32;
                for (((o, x), g), w) in out.iter_mut().zip(xr).zip(&gn).zip(w) {
                    *o = r * w * g - x * k;
                }
            }
        });
    drop(held);
    Tensor::from_vec(dx, (b * t, heads * d), &device)
}

// ----------------------------------------------------- causal softmax

/// `softmax(scale·x + mask)` over the last dimension of scores
/// `[..., rows, l]` from position 0, where row `r` is the query at position
/// `r % t` and may see keys `k ≤ r % t` (within `window` when given).
pub fn causal_softmax(
    x: &Tensor,
    t: usize,
    scale: f64,
    window: Option<usize>,
) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(CausalSoftmax {
        t,
        scale: scale as f32,
        window,
    })
}

#[derive(Clone, Copy)]
struct CausalSoftmax {
    t: usize,
    scale: f32,
    window: Option<usize>,
}

impl CausalSoftmax {
    /// Visible keys of query row `r`: `from..=q`.
    fn visible(&self, r: usize) -> (usize, usize) {
        let q = r % self.t;
        let from = match self.window {
            Some(w) if q + 1 > w => q + 1 - w,
            _ => 0,
        };
        (from, q)
    }
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "train-causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32s(s, l, "causal-softmax")?;
        let len = l.shape().dims().last().copied().unwrap_or(1);
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(len)
            .zip(x.par_chunks(len))
            .enumerate()
            .for_each(|(r, (yr, xr))| {
                let (from, to) = self.visible(r);
                let to = to.min(len - 1);
                let max = xr[from..=to]
                    .iter()
                    .fold(f32::NEG_INFINITY, |m, v| m.max(*v))
                    * self.scale;
                yr[from..=to].copy_from_slice(&xr[from..=to]);
                let sum = exp_in_place(&mut yr[from..=to], self.scale, max);
                let k = 1.0 / sum;
                for y in &mut yr[from..=to] {
                    *y *= k;
                }
            });
        Ok(out(y, l))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dx = y.apply_op2_no_bwd(&grad.contiguous()?, &CausalSoftmaxGrad(*self))?;
        Ok(Some(dx))
    }
}

/// The gradient of [`causal_softmax`] in its input, from its output `y`
/// and the output's gradient `g` (computed, not recorded in a graph).
pub fn causal_softmax_grad(
    y: &Tensor,
    g: &Tensor,
    t: usize,
    scale: f64,
    window: Option<usize>,
) -> candle_core::Result<Tensor> {
    let op = CausalSoftmax {
        t,
        scale: scale as f32,
        window,
    };
    y.contiguous()?
        .apply_op2_no_bwd(&g.contiguous()?, &CausalSoftmaxGrad(op))
}

/// `dx = scale · y · (g − Σ g·y)`.
struct CausalSoftmaxGrad(CausalSoftmax);

impl CustomOp2 for CausalSoftmaxGrad {
    fn name(&self) -> &'static str {
        "train-causal-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        ys: &CpuStorage,
        yl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, g) = (f32s(ys, yl, "softmax-grad")?, f32s(gs, gl, "softmax-grad")?);
        let len = yl.shape().dims().last().copied().unwrap_or(1);
        let scale = self.0.scale;
        let mut dx = vec![0f32; y.len()];
        dx.par_chunks_mut(len)
            .zip(y.par_chunks(len).zip(g.par_chunks(len)))
            .enumerate()
            .for_each(|(r, (dr, (yr, gr)))| {
                let (from, to) = self.0.visible(r);
                let to = to.min(len - 1);
                let dot: f32 = yr[from..=to]
                    .iter()
                    .zip(&gr[from..=to])
                    .map(|(y, g)| y * g)
                    .sum();
                for i in from..=to {
                    dr[i] = scale * yr[i] * (gr[i] - dot);
                }
            });
        Ok(out(dx, yl))
    }
}

// ------------------------------------------------------------- GELU gate

/// The gradients of [`super::gelu_mul`] in `gate` and `up` for the output's
/// gradient `g`, made in one pass (computed, not recorded in a graph).
pub fn gelu_mul_grad(
    gate: &Tensor,
    up: &Tensor,
    g: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let both =
        gate.contiguous()?
            .apply_op3_no_bwd(&up.contiguous()?, &g.contiguous()?, &GeluMulGrad)?;
    Ok((both.get(0)?, both.get(1)?))
}

/// `[d_gate, d_up]` = `[g·up·gelu'(gate), g·gelu(gate)]`.
struct GeluMulGrad;

impl CustomOp3 for GeluMulGrad {
    fn name(&self) -> &'static str {
        "train-gelu-mul-grad"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        us: &CpuStorage,
        ul: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let gate = f32s(gs, gl, "gelu-mul-grad")?;
        let up = f32s(us, ul, "gelu-mul-grad")?;
        let d = f32s(ds, dl, "gelu-mul-grad")?;
        let n = gate.len();
        let mut both = vec![0f32; 2 * n];
        let (dg, du) = both.split_at_mut(n);
        const C: usize = 4096;
        dg.par_chunks_mut(C)
            .zip(du.par_chunks_mut(C))
            .zip(
                gate.par_chunks(C)
                    .zip(up.par_chunks(C).zip(d.par_chunks(C))),
            )
            .for_each(|((dg, du), (g, (u, d)))| gelu_mul_grad_kernel(dg, du, g, u, d));
        let mut dims = vec![2];
        dims.extend_from_slice(gl.shape().dims());
        Ok((CpuStorage::F32(both), Shape::from(dims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::fused_ops::gelu_mul;
    use crate::testing::max_abs_diff as max_diff;
    use candle_core::{D, Device, Var};

    /// Value and input gradient of `fused` match those of `reference`
    /// under a random linear functional of the output.
    fn check(
        shape: &[usize],
        fused: impl Fn(&Tensor) -> Tensor,
        reference: impl Fn(&Tensor) -> Tensor,
    ) {
        let x = Var::randn(0f32, 1.0, shape, &Device::Cpu).unwrap();
        let (a, b) = (fused(x.as_tensor()), reference(x.as_tensor()));
        assert!(
            max_diff(&a, &b) < 1e-4,
            "values differ by {}",
            max_diff(&a, &b)
        );
        let probe = Tensor::randn(0f32, 1.0, a.shape(), &Device::Cpu).unwrap();
        let ga = (a * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (b * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let d = max_diff(ga.get(&x).unwrap(), gb.get(&x).unwrap());
        assert!(d < 1e-3, "gradients differ by {d}");
    }

    #[test]
    fn rms_norm_matches_the_composite() {
        let w = Tensor::randn(0f32, 1.0, 16, &Device::Cpu).unwrap();
        check(
            &[3, 5, 16],
            |x| rms_norm(x, &w, 1e-6).unwrap(),
            |x| candle_nn::ops::rms_norm_slow(x, &w, 1e-6).unwrap(),
        );
    }

    #[test]
    fn rope_matches_the_composite() {
        let cos = Tensor::randn(0f32, 1.0, (7, 4), &Device::Cpu).unwrap();
        let sin = Tensor::randn(0f32, 1.0, (7, 4), &Device::Cpu).unwrap();
        check(
            &[2, 3, 7, 8],
            |x| rope(x, &cos, &sin).unwrap(),
            |x| candle_nn::rotary_emb::rope_slow(x, &cos, &sin).unwrap(),
        );
    }

    #[test]
    fn heads_norm_rope_matches_transpose_norm_rope_and_its_gradient() {
        let (b, t, heads, d) = (2, 5, 3, 8);
        let shape = Heads { b, t, heads, d };
        let w = Tensor::randn(0f32, 1.0, d, &Device::Cpu).unwrap();
        let cos = Tensor::randn(0f32, 1.0, (t, d / 2), &Device::Cpu).unwrap();
        let sin = Tensor::randn(0f32, 1.0, (t, d / 2), &Device::Cpu).unwrap();
        let x = Var::randn(0f32, 1.0, (b * t, heads * d), &Device::Cpu).unwrap();
        let composite = rope(
            &rms_norm(
                &x.as_tensor()
                    .reshape((b, t, heads, d))
                    .unwrap()
                    .transpose(1, 2)
                    .unwrap(),
                &w,
                1e-6,
            )
            .unwrap(),
            &cos,
            &sin,
        )
        .unwrap();
        let fused = heads_norm_rope(x.as_tensor(), shape, &w, &cos, &sin, 1e-6).unwrap();
        assert!(max_diff(&fused, &composite) < 1e-5);
        let dy = Tensor::randn(0f32, 1.0, (b, heads, t, d), &Device::Cpu).unwrap();
        let auto = (composite * &dy)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let dx = heads_norm_rope_grad(x.as_tensor(), shape, &w, &cos, &sin, &dy, 1e-6).unwrap();
        let diff = max_diff(&dx, auto.get(x.as_tensor()).unwrap());
        assert!(diff < 1e-4, "gradients differ by {diff}");
    }

    #[test]
    fn causal_softmax_matches_mask_then_softmax() {
        let (t, group) = (6, 2);
        for window in [None, Some(3)] {
            let mask: Vec<f32> = (0..group * t)
                .flat_map(|r| {
                    let q = r % t;
                    (0..t).map(move |k| {
                        let ok = k <= q && window.is_none_or(|w| q - k < w);
                        if ok { 0.0 } else { f32::NEG_INFINITY }
                    })
                })
                .collect();
            let mask = Tensor::from_vec(mask, (group * t, t), &Device::Cpu).unwrap();
            check(
                &[2, 1, group * t, t],
                |x| causal_softmax(x, t, 0.5, window).unwrap(),
                |x| {
                    let s = (x * 0.5).unwrap().broadcast_add(&mask).unwrap();
                    candle_nn::ops::softmax(&s, D::Minus1).unwrap()
                },
            );
        }
    }

    #[test]
    fn gelu_mul_matches_the_composite() {
        let up = Var::randn(0f32, 1.0, (4, 9), &Device::Cpu).unwrap();
        check(
            &[4, 9],
            |g| gelu_mul(g, up.as_tensor()).unwrap(),
            |g| (g.gelu().unwrap() * up.as_tensor()).unwrap(),
        );
        // And the gradient that reaches `up`.
        let gate = Tensor::randn(0f32, 1.0, (4, 9), &Device::Cpu).unwrap();
        let a = gelu_mul(&gate, up.as_tensor()).unwrap().sum_all().unwrap();
        let b = (gate.gelu().unwrap() * up.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap();
        let (ga, gb) = (a.backward().unwrap(), b.backward().unwrap());
        assert!(max_diff(ga.get(&up).unwrap(), gb.get(&up).unwrap()) < 1e-4);
    }
}
