//! The parts every decoder family here shares: RMSNorm, rotary position
//! tables, per-sequence key/value caches, causal masks and the attention of
//! a prompt against its cache. A family file ([`super::gemma3`],
//! [`super::llama`]) arranges them into its block.

use candle_core::{DType, Device, Tensor};

/// RMSNorm, multiplying by `weight` as stored (Gemma's GGUF weights are
/// already `1 + w`; see [`super::weights::Weights::norm`]).
#[derive(Debug, Clone)]
pub(crate) struct RmsNorm {
    pub(crate) weight: Tensor,
    pub(crate) eps: f32,
}

impl RmsNorm {
    pub(crate) fn new(weight: Tensor, eps: f64) -> Self {
        RmsNorm {
            weight,
            eps: eps as f32,
        }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps)
    }

    /// The same, differentiable (candle's fused one has no backward).
    #[cfg(feature = "train")]
    pub(crate) fn forward_train(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        super::fused_ops::train::rms_norm(x, &self.weight, self.eps)
    }
}

/// Cosine and sine tables for positions `0..len`.
#[derive(Debug, Clone)]
pub(crate) struct Rope {
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
    /// Rotate adjacent pairs `(x0, x1), (x2, x3)...` (llama.cpp's "normal"
    /// rope, which Llama GGUFs are converted for) instead of the two halves.
    interleaved: bool,
}

impl Rope {
    pub(crate) fn new(
        head_dim: usize,
        base: f64,
        len: usize,
        device: &Device,
    ) -> candle_core::Result<Self> {
        Self::with_factors(head_dim, base, len, None, false, device)
    }

    /// Tables whose frequencies are divided by per-frequency `factors` (Llama
    /// 3.1's `rope_freqs`), rotating pairs or halves.
    pub(crate) fn with_factors(
        head_dim: usize,
        base: f64,
        len: usize,
        factors: Option<&[f32]>,
        interleaved: bool,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let inv: Vec<f32> = (0..head_dim)
            .step_by(2)
            .enumerate()
            .map(|(k, i)| {
                let f = 1.0 / base.powf(i as f64 / head_dim as f64) as f32;
                f / factors.and_then(|fs| fs.get(k)).copied().unwrap_or(1.0)
            })
            .collect();
        let inv = Tensor::from_vec(inv, (1, head_dim / 2), device)?;
        let pos = Tensor::arange(0u32, len as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((len, 1))?;
        let freqs = pos.matmul(&inv)?;
        Ok(Rope {
            cos: freqs.cos()?,
            sin: freqs.sin()?,
            interleaved,
        })
    }

    fn rotate(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        if self.interleaved {
            candle_nn::rotary_emb::rope_i(&x.contiguous()?, cos, sin)
        } else {
            candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)
        }
    }

    /// Rotates `x` [b, heads, t, d] for positions `start..start+t` (one start for all rows).
    pub(crate) fn apply(&self, x: &Tensor, start: usize) -> candle_core::Result<Tensor> {
        let t = x.dim(2)?;
        let cos = self.cos.narrow(0, start, t)?;
        let sin = self.sin.narrow(0, start, t)?;
        self.rotate(x, &cos, &sin)
    }

    /// [`Rope::apply`], differentiable, positions `0..t` (halves only).
    #[cfg(feature = "train")]
    pub(crate) fn apply_train(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let t = x.dim(2)?;
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        super::fused_ops::train::rope(x, &cos, &sin)
    }

    /// Rotates `x` [b, heads, 1, d], row `i` at `positions[i]`.
    pub(crate) fn apply_each(&self, x: &Tensor, positions: &Tensor) -> candle_core::Result<Tensor> {
        let b = x.dim(0)?;
        let cos = self.cos.index_select(positions, 0)?.reshape((b, 1, ()))?;
        let sin = self.sin.index_select(positions, 0)?.reshape((b, 1, ()))?;
        self.rotate(x, &cos, &sin)
    }
}

/// One sequence's key/value cache: per layer, preallocated `[1, kv, cap, d]`.
#[derive(Debug)]
pub struct KvCache {
    pub(crate) layers: Vec<(Tensor, Tensor)>,
    pub(crate) len: usize,
    pub(crate) capacity: usize,
}

impl KvCache {
    /// An empty cache of `layers` layers, `kv` heads of width `head_dim`.
    pub(crate) fn new(
        layers: usize,
        kv: usize,
        head_dim: usize,
        capacity: usize,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let zeros = || Tensor::zeros((1, kv, capacity, head_dim), DType::F32, device);
        let layers = (0..layers)
            .map(|_| Ok((zeros()?, zeros()?)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(KvCache {
            layers,
            len: 0,
            capacity,
        })
    }

    /// Tokens cached so far (the next token's position).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left.
    pub fn remaining(&self) -> usize {
        self.capacity - self.len
    }

    /// Forgets every position from `len` on (what was written there is
    /// overwritten by the next tokens): a look ahead, taken back.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Refuses a prefill of `tokens` this cache cannot take.
    pub(crate) fn check_prefill(&self, tokens: &[u32]) -> Result<(), crate::EngineError> {
        if tokens.is_empty() {
            return Err(crate::EngineError::BadInput("empty prompt".into()));
        }
        if tokens.len() > self.remaining() {
            return Err(crate::EngineError::ContextFull {
                needed: self.len + tokens.len(),
                capacity: self.capacity,
            });
        }
        Ok(())
    }

    /// Refuses a decode step that is not one token per cache, or that a
    /// full cache cannot take.
    pub(crate) fn check_decode(
        tokens: &[u32],
        caches: &[&mut KvCache],
    ) -> Result<(), crate::EngineError> {
        if tokens.len() != caches.len() || tokens.is_empty() {
            return Err(crate::EngineError::BadInput(
                "decode needs one token per cache".into(),
            ));
        }
        if let Some(c) = caches.iter().find(|c| c.remaining() == 0) {
            return Err(crate::EngineError::ContextFull {
                needed: c.len + 1,
                capacity: c.capacity,
            });
        }
        Ok(())
    }
}

/// Keys and values enter the cache rounded to f16, as in llama.cpp's default
/// f16 cache: with it, greedy decoding of the reference GGUF agrees with
/// llama.cpp token for token (without it, from the 19th token on).
fn round_f16(x: &Tensor) -> candle_core::Result<Tensor> {
    x.to_dtype(DType::F16)?.to_dtype(DType::F32)
}

/// Additive mask [t, start + t] for queries at `start..start+t`: causal, and
/// within `window` tokens (the query itself included) when given.
pub(crate) fn mask(
    t: usize,
    start: usize,
    window: Option<usize>,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let l = start + t;
    let data: Vec<f32> = (0..t)
        .flat_map(|i| {
            let qpos = start + i;
            (0..l).map(move |j| {
                let visible = j <= qpos && window.is_none_or(|w| qpos - j < w);
                if visible { 0.0 } else { f32::NEG_INFINITY }
            })
        })
        .collect();
    Tensor::from_vec(data, (t, l), device)
}

/// Attention of one sequence: q [1, heads, t, d] against keys/values
/// [1, kv, l, d]; `mask` [t, l] is 0 where allowed and -inf elsewhere;
/// `softcap` caps scores as `c·tanh(s/c)`. Query heads share their key/value
/// head by reshaping, not copying. Returns [1, heads, t, d].
pub(crate) fn attend(
    q: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    mask: Option<&Tensor>,
    n_kv: usize,
    scale: f64,
    softcap: Option<f64>,
) -> candle_core::Result<Tensor> {
    let (_, n_head, t, head_dim) = q.dims4()?;
    let group = n_head / n_kv;
    let q = q.contiguous()?.reshape((1, n_kv, group * t, head_dim))?;
    let mut scores = (q.matmul(&keys.contiguous()?.t()?)? * scale)?;
    if let Some(cap) = softcap {
        scores = ((scores / cap)?.tanh()? * cap)?;
    }
    if let Some(mask) = mask {
        let l = mask.dim(1)?;
        let mask = mask
            .unsqueeze(0)?
            .broadcast_as((group, t, l))?
            .reshape((group * t, l))?;
        scores = scores.broadcast_add(&mask)?;
    }
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    probs
        .matmul(&values.contiguous()?)?
        .reshape((1, n_head, t, head_dim))
}

/// What one layer's attention needs beyond its tensors: heads, the score
/// scale, a softcap and a sliding window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttentionShape {
    pub(crate) n_head: usize,
    pub(crate) n_kv: usize,
    pub(crate) head_dim: usize,
    pub(crate) scale: f64,
    pub(crate) softcap: Option<f64>,
    pub(crate) window: Option<usize>,
}

/// A prompt's attention in layer `layer` of one sequence: `k`, `v`
/// `[1, kv, t, d]` enter the cache at `start`, rounded to f16 (see
/// [`round_f16`]); `q` `[1, heads, t, d]` attends rows `0..start + t` under
/// `mask` `[t, start + t]`. Returns `[1, t, heads·d]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prompt_attention(
    cache: &KvCache,
    layer: usize,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    start: usize,
    mask: &Tensor,
    shape: &AttentionShape,
) -> candle_core::Result<Tensor> {
    let t = q.dim(2)?;
    let (k_cache, v_cache) = &cache.layers[layer];
    k_cache.slice_set(&round_f16(k)?, 2, start)?;
    v_cache.slice_set(&round_f16(v)?.contiguous()?, 2, start)?;
    let keys = k_cache.narrow(2, 0, start + t)?;
    let values = v_cache.narrow(2, 0, start + t)?;
    attend(
        q,
        &keys,
        &values,
        Some(mask),
        shape.n_kv,
        shape.scale,
        shape.softcap,
    )?
    .transpose(1, 2)?
    .reshape((1, t, shape.n_head * shape.head_dim))
}

/// One new token per sequence in layer `layer`: row `i` of `k`, `v`
/// `[b, kv, 1, d]` enters cache `i` at its length, rounded to f16, and row
/// `i` of `q` `[b, heads, 1, d]` attends that cache's rows within the window
/// (one fused op per sequence on the CPU, see [`super::decode_attention`]).
/// Returns `[b, 1, heads·d]`; the caches' lengths are not advanced.
pub(crate) fn token_attention(
    caches: &[&mut KvCache],
    layer: usize,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    shape: &AttentionShape,
) -> candle_core::Result<Tensor> {
    let b = caches.len();
    let (k, v) = (round_f16(k)?, round_f16(v)?.contiguous()?);
    let mut outs = Vec::with_capacity(b);
    for (i, cache) in caches.iter().enumerate() {
        let pos = cache.len;
        let (k_cache, v_cache) = &cache.layers[layer];
        k_cache.slice_set(&k.narrow(0, i, 1)?, 2, pos)?;
        v_cache.slice_set(&v.narrow(0, i, 1)?, 2, pos)?;
        let from = match shape.window {
            Some(w) if pos + 1 > w => pos + 1 - w,
            _ => 0,
        };
        let len = pos + 1 - from;
        let q = q.narrow(0, i, 1)?;
        outs.push(if q.device().is_cpu() {
            super::decode_attention::attend(
                &q,
                k_cache,
                v_cache,
                from,
                len,
                shape.scale as f32,
                shape.softcap.map(|c| c as f32),
            )?
        } else {
            let keys = k_cache.narrow(2, from, len)?;
            let values = v_cache.narrow(2, from, len)?;
            attend(
                &q,
                &keys,
                &values,
                None,
                shape.n_kv,
                shape.scale,
                shape.softcap,
            )?
        });
    }
    Tensor::cat(&outs, 0)?.reshape((b, 1, shape.n_head * shape.head_dim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_causal_and_windowed() {
        let m = mask(3, 2, Some(3), &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let allowed: Vec<Vec<bool>> = m
            .iter()
            .map(|r| r.iter().map(|v| *v == 0.0).collect())
            .collect();
        assert_eq!(allowed[0], [true, true, true, false, false]);
        assert_eq!(allowed[1], [false, true, true, true, false]);
        assert_eq!(allowed[2], [false, false, true, true, true]);
    }
}
