//! Training outside candle's autograd (behind the `train` feature): a
//! block's forward that keeps what its backward needs (a tape), and that
//! backward written out by hand.
//!
//! Autograd makes each gradient edge a fresh zero tensor plus an add, and
//! walks views, reshapes and transposes as graph nodes of their own, each a
//! copy. Here each activation's gradient is computed once, and the per-head
//! norm, rope and transpose are one kernel each way ([`heads_norm_rope`]).
//! On the 270M model a LoRA step is 2–12% faster so (`lem bench train
//! --autograd` measures the difference). The autograd path
//! ([`Gemma3::layer_train`]) stays the reference the tests hold this to,
//! and the path for devices other than the CPU.

use super::model::{Gemma3, Layer};
use crate::models::fused_ops::gelu_mul;
use crate::models::fused_ops::train::{
    Heads, causal_softmax, causal_softmax_grad, gelu_mul_grad, heads_norm_rope,
    heads_norm_rope_grad, rms_norm_grad,
};
use crate::models::layers::RmsNorm;
use crate::models::linear::{Linear, LinearTape, LoraGrads};
use candle_core::Tensor;

/// What one block's backward needs from its forward, `[b·t, ·]` rows.
#[derive(Debug)]
pub struct LayerTape {
    b: usize,
    t: usize,
    x: Tensor,
    q: Tensor,
    k: Tensor,
    /// Rotated queries `[b, kv, group·t, d]`, keys and values `[b, kv, t, d]`.
    qr: Tensor,
    kr: Tensor,
    v: Tensor,
    probs: Tensor,
    attn: Tensor,
    x1: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
    linears: [LinearTape; 7],
}

/// The gradients of one block's adapters: `(A, dA)` and `(B, dB)` pairs,
/// keyed by the adapter tensors themselves.
pub type AdapterGrads = Vec<(Tensor, Tensor)>;

impl RmsNorm {
    fn grad(&self, x: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
        rms_norm_grad(x, &self.weight, dy, self.eps)
    }
}

impl Gemma3 {
    /// Whether [`Gemma3::layer_forward_taped`] and [`Gemma3::layer_backward`]
    /// serve this model: on the CPU, without attention softcapping.
    pub fn supports_taped_training(&self) -> bool {
        self.device.is_cpu() && self.config.attn_logit_softcapping.is_none()
    }

    /// Training outside autograd: block `i` on `x` `[b, t, hidden]` from
    /// position 0 (no graph is built), and its tape.
    pub fn layer_forward_taped(
        &self,
        i: usize,
        x: &Tensor,
        dropout: bool,
    ) -> candle_core::Result<(Tensor, LayerTape)> {
        let layer = &self.layers[i];
        let (b, t, hidden) = x.dims3()?;
        let (cos, sin) = self.rope_tables(layer, t)?;
        let a = &layer.self_attn;
        let x = x.reshape((b * t, hidden))?.contiguous()?;
        let h = layer.input_layernorm.forward_train(&x)?;
        let (q, tq) = a.q_proj.forward_taped(&h, dropout)?;
        let (k, tk) = a.k_proj.forward_taped(&h, dropout)?;
        let (v, tv) = a.v_proj.forward_taped(&h, dropout)?;
        let (qs, ks) = (self.heads(b, t, a.n_head), self.heads(b, t, a.n_kv));
        let group = a.n_head / a.n_kv;
        let qr = heads_norm_rope(&q, qs, &a.q_norm.weight, &cos, &sin, a.q_norm.eps)?.reshape((
            b,
            a.n_kv,
            group * t,
            a.head_dim,
        ))?;
        let kr = heads_norm_rope(&k, ks, &a.k_norm.weight, &cos, &sin, a.k_norm.eps)?;
        let v = v
            .reshape((b, t, a.n_kv, a.head_dim))?
            .transpose(1, 2)?
            .contiguous()?;
        let probs = causal_softmax(&qr.matmul(&kr.t()?)?, t, a.scale, a.window)?;
        let heads_out = probs
            .matmul(&v)?
            .reshape((b, a.n_head, t, a.head_dim))?
            .transpose(1, 2)?
            .reshape((b * t, a.n_head * a.head_dim))?;
        let (attn, to) = a.o_proj.forward_taped(&heads_out, dropout)?;
        let x1 = (&x + layer.post_attention_layernorm.forward_train(&attn)?)?;
        let h2 = layer.pre_feedforward_layernorm.forward_train(&x1)?;
        let m = &layer.mlp;
        let (gate, tg) = m.gate_proj.forward_taped(&h2, dropout)?;
        let (up, tu) = m.up_proj.forward_taped(&h2, dropout)?;
        let (down, td) = m.down_proj.forward_taped(&gelu_mul(&gate, &up)?, dropout)?;
        let y = (&x1 + layer.post_feedforward_layernorm.forward_train(&down)?)?;
        let tape = LayerTape {
            b,
            t,
            x,
            q,
            k,
            qr,
            kr,
            v,
            probs,
            attn,
            x1,
            gate,
            up,
            down,
            linears: [tq, tk, tv, to, tg, tu, td],
        };
        Ok((y.reshape((b, t, hidden))?, tape))
    }

    /// The backward of block `i` for its output's gradient `dy` `[b, t,
    /// hidden]`: the input's gradient (when `want_dx`) and the adapters'.
    pub fn layer_backward(
        &self,
        i: usize,
        tape: &LayerTape,
        dy: &Tensor,
        want_dx: bool,
    ) -> candle_core::Result<(Option<Tensor>, AdapterGrads)> {
        let layer = &self.layers[i];
        let LayerTape { b, t, .. } = *tape;
        let hidden = dy.dim(2)?;
        let (cos, sin) = self.rope_tables(layer, t)?;
        let a = &layer.self_attn;
        let m = &layer.mlp;
        let [tq, tk, tv, to, tg, tu, td] = &tape.linears;
        let mut grads = AdapterGrads::new();
        let mut back = |lin: &Linear, tape: &LinearTape, dy: &Tensor, want: bool| {
            let (dx, g) = lin.backward(tape, dy, want)?;
            if let (Some(LoraGrads { a: da, b: db }), Some(l)) = (g, lin.lora()) {
                grads.push((l.a.clone(), da));
                grads.push((l.b.clone(), db));
            }
            candle_core::Result::Ok(dx)
        };
        let need = |dx: Option<Tensor>| {
            dx.ok_or_else(|| candle_core::Error::Msg("no input gradient".into()))
        };

        // MLP: y = x1 + norm(down(gelu(gate)·up)), gate and up of norm(x1).
        let dy = dy.reshape((b * t, hidden))?;
        let d_down = layer.post_feedforward_layernorm.grad(&tape.down, &dy)?;
        let d_gated = need(back(&m.down_proj, td, &d_down, true)?)?;
        let (d_gate, d_up) = gelu_mul_grad(&tape.gate, &tape.up, &d_gated)?;
        let dh2 = (need(back(&m.gate_proj, tg, &d_gate, true)?)?
            + need(back(&m.up_proj, tu, &d_up, true)?)?)?;
        let dx1 = (&dy + layer.pre_feedforward_layernorm.grad(&tape.x1, &dh2)?)?;

        // Attention: x1 = x + norm(o(softmax(q·kᵀ)·v)).
        let d_attn = layer.post_attention_layernorm.grad(&tape.attn, &dx1)?;
        let group = a.n_head / a.n_kv;
        let d_heads = need(back(&a.o_proj, to, &d_attn, true)?)?
            .reshape((b, t, a.n_head, a.head_dim))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, a.n_kv, group * t, a.head_dim))?;
        let d_probs = d_heads.matmul(&tape.v.t()?)?;
        let dv = tape
            .probs
            .t()?
            .matmul(&d_heads)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * t, a.n_kv * a.head_dim))?;
        let d_scores = causal_softmax_grad(&tape.probs, &d_probs, t, a.scale, a.window)?;
        let dqr = d_scores.matmul(&tape.kr)?;
        let dkr = d_scores.t()?.matmul(&tape.qr)?;
        let (qs, ks) = (self.heads(b, t, a.n_head), self.heads(b, t, a.n_kv));
        let dq = heads_norm_rope_grad(
            &tape.q,
            qs,
            &a.q_norm.weight,
            &cos,
            &sin,
            &dqr,
            a.q_norm.eps,
        )?;
        let dk = heads_norm_rope_grad(
            &tape.k,
            ks,
            &a.k_norm.weight,
            &cos,
            &sin,
            &dkr,
            a.k_norm.eps,
        )?;
        let mut dh: Option<Tensor> = None;
        for (lin, tape, d) in [
            (&a.q_proj, tq, &dq),
            (&a.k_proj, tk, &dk),
            (&a.v_proj, tv, &dv),
        ] {
            if let Some(g) = back(lin, tape, d, want_dx)? {
                dh = Some(match dh {
                    None => g,
                    Some(sum) => (sum + g)?,
                });
            }
        }
        let dx = match dh {
            Some(dh) => {
                let dx = (dx1 + layer.input_layernorm.grad(&tape.x, &dh)?)?;
                Some(dx.reshape((b, t, hidden))?)
            }
            None => None,
        };
        Ok((dx, grads))
    }

    /// The backward of the final norm: `dy` at its output to `x`, both
    /// `[b, t, hidden]`.
    pub fn final_norm_backward(&self, x: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
        self.norm.grad(x, dy)
    }

    fn heads(&self, b: usize, t: usize, heads: usize) -> Heads {
        Heads {
            b,
            t,
            heads,
            d: self.config.head_dim,
        }
    }

    fn rope_tables(&self, layer: &Layer, t: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let rope = if layer.sliding {
            &self.rope_local
        } else {
            &self.rope_global
        };
        Ok((rope.cos.narrow(0, 0, t)?, rope.sin.narrow(0, 0, t)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::linear::Lora;
    use crate::models::weights::Weights;
    use crate::testing::{max_abs, max_abs_diff, tiny_config, write_weights};
    use candle_core::{Device, Var};

    /// A tiny model with an adapter (non-zero `B`) on every projection of
    /// every block, and the adapters' variables.
    fn tiny_adapted(transposed: bool) -> (Gemma3, Vec<Var>) {
        let dir = tempfile::tempdir().unwrap();
        let c = tiny_config();
        let path = write_weights(dir.path(), &c, 7);
        let weights = Weights::safetensors(&[path], &Device::Cpu).unwrap();
        let mut model = Gemma3::load(c, &weights, 16).unwrap();
        if transposed {
            model.keep_transposed_copies(usize::MAX).unwrap();
        }
        let mut vars = Vec::new();
        for (k, (_, lin)) in model.linears_mut().into_iter().enumerate() {
            let (out, inp) = lin.dims().unwrap();
            let a =
                Var::from_tensor(&crate::testing::seeded_matrix(3, inp, 11 + k as u64)).unwrap();
            let b =
                Var::from_tensor(&crate::testing::seeded_matrix(out, 3, 97 + k as u64)).unwrap();
            lin.set_lora(Some(Lora {
                a: a.as_tensor().clone(),
                b: b.as_tensor().clone(),
                scale: 0.7,
                dropout: 0.0,
            }));
            vars.extend([a, b]);
        }
        (model, vars)
    }

    #[test]
    fn taped_blocks_match_autograd_in_value_and_every_gradient() {
        // t = 6 > the sliding window of 4, so the window is exercised;
        // block 0 is sliding, block 2 global.
        for transposed in [false, true] {
            let (model, vars) = tiny_adapted(transposed);
            let hidden = model.config().hidden_size;
            let masks = model.train_masks(6).unwrap();
            for i in [0, 2] {
                let x = Var::randn(0f32, 1.0, (2, 6, hidden), &Device::Cpu).unwrap();
                let dy = Tensor::randn(0f32, 1.0, (2, 6, hidden), &Device::Cpu).unwrap();
                let reference = model.layer_train(i, x.as_tensor(), &masks, false).unwrap();
                let auto = (&reference * &dy)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();

                let (y, tape) = model.layer_forward_taped(i, x.as_tensor(), false).unwrap();
                let d = max_abs_diff(&y, &reference);
                assert!(d < 1e-4, "block {i}: outputs differ by {d}");
                let (dx, grads) = model.layer_backward(i, &tape, &dy, true).unwrap();
                let d = max_abs_diff(&dx.unwrap(), auto.get(x.as_tensor()).unwrap());
                assert!(d < 1e-3, "block {i}: input gradients differ by {d}");
                assert_eq!(
                    grads.len(),
                    14,
                    "every adapter of the block has its gradients"
                );
                for (param, g) in &grads {
                    let want = auto.get(param).expect("autograd reached the adapter");
                    let d = max_abs_diff(g, want);
                    let scale = max_abs(want);
                    assert!(
                        d < 1e-3 * scale.max(1.0),
                        "block {i}: adapter gradients differ by {d}"
                    );
                    assert!(vars.iter().any(|v| v.as_tensor().id() == param.id()));
                }
                let (none, grads) = model.layer_backward(i, &tape, &dy, false).unwrap();
                assert!(none.is_none());
                assert_eq!(grads.len(), 14);
            }
        }
    }

    #[test]
    fn the_final_norm_backward_matches_autograd() {
        let (model, _) = tiny_adapted(false);
        let hidden = model.config().hidden_size;
        let x = Var::randn(0f32, 1.0, (2, 5, hidden), &Device::Cpu).unwrap();
        let dy = Tensor::randn(0f32, 1.0, (2, 5, hidden), &Device::Cpu).unwrap();
        let y = model.final_norm_train(x.as_tensor()).unwrap();
        let auto = (y * &dy).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = model.final_norm_backward(x.as_tensor(), &dy).unwrap();
        assert!(max_abs_diff(&dx, auto.get(x.as_tensor()).unwrap()) < 1e-4);
    }
}
