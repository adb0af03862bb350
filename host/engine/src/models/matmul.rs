//! f32 matrix products on the CPU for training (behind the `train`
//! feature): the projections' taped forward and backward
//! ([`super::linear::Linear::forward_taped`], which Gemma 3's hand-written
//! backward runs) and lem-train's fused output loss. They go through the
//! same `gemm` crate as candle's matmul, without its two costs on this
//! path: candle zero-fills every output before the product overwrites it
//! (the outputs of a LoRA step on the 270M model come to about 1.3 GB), and
//! it cannot add a product into an existing buffer, which the fused loss
//! does 64 times a step.

use candle_core::{CpuStorage, DType, Layout, Storage, Tensor};

/// `a · b` for 2-D tensors (either may be a view: transposed, narrowed).
/// f32 CPU tensors go straight to `gemm`; anything else to candle.
pub fn matmul(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let ((m, k), (k2, n)) = (a.dims2()?, b.dims2()?);
    if !direct(a, b) || k != k2 {
        return a.matmul(b);
    }
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    // SAFETY: `product` writes all m × n values (it does not read them).
    unsafe {
        product(a, b, out.as_mut_ptr(), false)?;
        out.set_len(m * n);
    }
    Tensor::from_vec(out, (m, n), a.device())
}

/// `c += a · b`, `c` row-major `[m, n]`, `a` and `b` 2-D f32 CPU tensors.
pub fn matmul_acc(a: &Tensor, b: &Tensor, c: &mut [f32]) -> candle_core::Result<()> {
    let ((m, k), (k2, n)) = (a.dims2()?, b.dims2()?);
    if !direct(a, b) || k != k2 || c.len() != m * n {
        candle_core::bail!(
            "matmul_acc: [{m}, {k}] · [{k2}, {n}] into {} values (needs f32 CPU tensors)",
            c.len()
        );
    }
    // SAFETY: c holds the m × n values `product` reads and writes.
    unsafe { product(a, b, c.as_mut_ptr(), true) }
}

fn direct(a: &Tensor, b: &Tensor) -> bool {
    a.device().is_cpu() && b.device().is_cpu() && a.dtype() == DType::F32 && b.dtype() == DType::F32
}

/// `dst (+)= a · b` with `dst` row-major `[m, n]`.
///
/// # Safety
/// `dst` must be valid for m × n writes, and for reads when `read_dst`.
unsafe fn product(
    a: &Tensor,
    b: &Tensor,
    dst: *mut f32,
    read_dst: bool,
) -> candle_core::Result<()> {
    let ((m, k), (_, n)) = (a.dims2()?, b.dims2()?);
    let (sa, la) = a.storage_and_layout();
    let (sb, lb) = b.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(da)), Storage::Cpu(CpuStorage::F32(db))) = (&*sa, &*sb)
    else {
        candle_core::bail!("matmul: needs f32 CPU tensors");
    };
    let (lhs, [lhs_rs, lhs_cs]) = operand(da, la, m, k)?;
    let (rhs, [rhs_rs, rhs_cs]) = operand(db, lb, k, n)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    let parallelism = match threads > 1 {
        true => gemm::Parallelism::Rayon(threads),
        false => gemm::Parallelism::None,
    };
    // SAFETY: `operand` checked that every element the strides reach lies
    // in its slice; the caller vouches for dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            read_dst,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            if read_dst { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// A 2-D operand's values from its first element, and its `[row, column]`
/// strides, after checking that every element lies in the storage.
fn operand<'a>(
    data: &'a [f32],
    layout: &Layout,
    rows: usize,
    cols: usize,
) -> candle_core::Result<(&'a [f32], [isize; 2])> {
    let (s, start) = (layout.stride(), layout.start_offset());
    let last = match rows * cols {
        0 => 0,
        _ => (rows - 1) * s[0] + (cols - 1) * s[1] + 1,
    };
    if start + last > data.len() {
        candle_core::bail!("matmul: a view reaches past its storage");
    }
    Ok((&data[start..], [s[0] as isize, s[1] as isize]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_abs_diff, seeded_matrix};

    #[test]
    fn products_match_candle_on_views_and_accumulate() {
        let a = seeded_matrix(37, 70, 1);
        let w = seeded_matrix(90, 70, 2);
        let head = seeded_matrix(3, 70, 4);
        let narrowed = Tensor::cat(&[&head, &w], 0)
            .unwrap()
            .narrow(0, 3, 90)
            .unwrap();
        for b in [
            w.t().unwrap(),
            narrowed.t().unwrap(),
            w.t().unwrap().contiguous().unwrap(),
        ] {
            let want = a.matmul(&b).unwrap();
            assert!(max_abs_diff(&matmul(&a, &b).unwrap(), &want) < 1e-4);
            for lhs in [a.clone(), a.t().unwrap().contiguous().unwrap().t().unwrap()] {
                let start = seeded_matrix(37, 90, 7);
                let mut c = start.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                matmul_acc(&lhs, &b, &mut c).unwrap();
                let got = Tensor::from_vec(c, (37, 90), &candle_core::Device::Cpu).unwrap();
                assert!(max_abs_diff(&got, &(start + &want).unwrap()) < 1e-4);
            }
        }
        let mut short = vec![0f32; 5];
        assert!(matmul_acc(&a, &w.t().unwrap(), &mut short).is_err());
    }
}
