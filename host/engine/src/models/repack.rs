//! Lossless re-encoding of quantized weights into a format candle decodes
//! faster on the CPU.
//!
//! candle 0.11 has SIMD dot products for Q8_0 but only a scalar one for Q5_0
//! (`vec_dot_unopt`): on Gemma 3 270M the Q5_0 projections (17% of the bytes
//! read per decoded token) took a quarter of decode time. A Q5_0 block is
//! `d · (q − 16)` with 5-bit `q`; `q − 16` fits an `i8`, so the same block is
//! exactly a Q8_0 block with the same `d`. Both formats take their dot
//! product against a Q8_0-quantized input, so the results agree bit for bit
//! per block; only the order of the float sums differs.

use candle_core::quantized::{GgmlDType, QTensor, ggml_file};
use candle_core::{Device, Result};

const BLOCK: usize = 32;
const Q5_0_BYTES: usize = 2 + 4 + BLOCK / 2;
const Q8_0_BYTES: usize = 2 + BLOCK;

/// `q` re-encoded for faster CPU decoding where that is lossless (Q5_0 →
/// Q8_0); any other tensor, or one on another device, is returned as it is.
pub fn for_cpu_decode(q: QTensor) -> Result<QTensor> {
    if q.dtype() != GgmlDType::Q5_0 || !matches!(q.device(), Device::Cpu) {
        return Ok(q);
    }
    let bytes = q5_0_to_q8_0(&q.data()?)?;
    ggml_file::qtensor_from_ggml(
        GgmlDType::Q8_0,
        &bytes,
        q.shape().dims().to_vec(),
        &Device::Cpu,
    )
}

/// Q5_0 blocks (`d: f16, qh: u32 le, qs: [u8; 16]`) as Q8_0 blocks
/// (`d: f16, qs: [i8; 32]`). Element `j < 16` is the low nibble of `qs[j]`
/// with bit `j` of `qh` as its fifth bit; element `j + 16` is the high nibble
/// with bit `j + 16`.
fn q5_0_to_q8_0(raw: &[u8]) -> Result<Vec<u8>> {
    if !raw.len().is_multiple_of(Q5_0_BYTES) {
        candle_core::bail!("Q5_0 data of {} bytes is not whole blocks", raw.len());
    }
    let mut out = Vec::with_capacity(raw.len() / Q5_0_BYTES * Q8_0_BYTES);
    for block in raw.chunks_exact(Q5_0_BYTES) {
        let (d, rest) = block.split_at(2);
        let (qh, qs) = rest.split_at(4);
        let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
        out.extend_from_slice(d);
        let fifth = |bit: usize| (((qh >> bit) & 1) << 4) as u8;
        for (j, &byte) in qs.iter().enumerate() {
            out.push((((byte & 0x0F) | fifth(j)) as i8 - 16) as u8);
        }
        for (j, &byte) in qs.iter().enumerate() {
            out.push((((byte >> 4) | fifth(j + 16)) as i8 - 16) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_abs_diff, seeded_matrix};
    use candle_core::Module;
    use candle_core::Tensor;
    use candle_core::quantized::QMatMul;

    fn seeded(rows: usize, cols: usize) -> Tensor {
        seeded_matrix(rows, cols, 0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn q5_0_becomes_the_same_values_in_q8_0() {
        let w = seeded(8, 96);
        let q5 = QTensor::quantize(&w, GgmlDType::Q5_0).unwrap();
        let before = q5.dequantize(&Device::Cpu).unwrap();
        let q8 = for_cpu_decode(q5).unwrap();
        assert_eq!(q8.dtype(), GgmlDType::Q8_0);
        assert_eq!(q8.shape().dims(), &[8, 96]);
        let after = q8.dequantize(&Device::Cpu).unwrap();
        assert_eq!(max_abs_diff(&before, &after), 0.0);
    }

    #[test]
    fn products_agree_with_the_scalar_q5_0_path() {
        let w = seeded(64, 128);
        let x = seeded(3, 128);
        let q5 = QTensor::quantize(&w, GgmlDType::Q5_0).unwrap();
        let slow = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q5_0).unwrap())
            .unwrap()
            .forward(&x);
        let fast = QMatMul::from_qtensor(for_cpu_decode(q5).unwrap())
            .unwrap()
            .forward(&x);
        let diff = max_abs_diff(&slow.unwrap(), &fast.unwrap());
        assert!(diff < 1e-4, "{diff}");
    }

    #[test]
    fn other_formats_are_left_alone() {
        let q = QTensor::quantize(&seeded(4, 256), GgmlDType::Q4K).unwrap();
        assert_eq!(for_cpu_decode(q).unwrap().dtype(), GgmlDType::Q4K);
    }
}
