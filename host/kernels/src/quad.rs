//! What every quantized product shares: one quad (four weight rows) against
//! every input row, four input rows at a time and then one by one, each
//! format supplying its row type and its `G`-row tiles.

/// How many four-row work items a weight of `n` rows makes.
pub fn quads(n: usize) -> usize {
    n.div_ceil(4)
}

/// A quantized format's input and kernels, as the driver needs them.
pub(crate) trait Tiles {
    /// One input row, as the kernels take it.
    type Row<'a>: Copy
    where
        Self: 'a;
    /// The format's name, for the panic message.
    const NAME: &'static str;
    /// Bytes of one weight row of the input's width.
    fn row_bytes(&self) -> usize;
    /// How many input rows.
    fn rows(&self) -> usize;
    /// Input row `i`.
    fn row(&self, i: usize) -> Self::Row<'_>;
    /// The products of `G` input rows with four weight rows: `[input][weight]`.
    fn tile<const G: usize>(
        kernel: crate::q8_0::Kernel,
        w: [&[u8]; 4],
        x: [Self::Row<'_>; G],
    ) -> [[f32; 4]; G];
}

/// Weight rows `4q..4q + 4` of `w` (`n` rows of `row_bytes`), a partial last
/// quad repeating its last row (the extra results are dropped), and how
/// many of them are real.
///
/// # Panics
/// If `w` is not `n` rows of `row_bytes` or `q` is past the last quad.
pub(crate) fn quad_rows<'w>(
    name: &str,
    w: &'w [u8],
    n: usize,
    q: usize,
    row_bytes: usize,
) -> ([&'w [u8]; 4], usize) {
    assert!(
        w.len() == n * row_bytes && q < quads(n),
        "{name}: weight of {} bytes is not {n} rows of {row_bytes}, or quad {q} is past it",
        w.len()
    );
    let first = 4 * q;
    let rows = std::array::from_fn(|r| {
        let j = (first + r).min(n - 1);
        &w[j * row_bytes..(j + 1) * row_bytes]
    });
    (rows, (n - first).min(4))
}

/// Calls `out(i, j, x_i · w_j)` for every input row `i` and the weight rows
/// `j` of quad `q`, those below `n`.
///
/// # Panics
/// If `w` is not `n` rows of the input's width or `q` is past the last quad.
pub(crate) fn quad<T: Tiles>(
    kernel: crate::q8_0::Kernel,
    w: &[u8],
    n: usize,
    q: usize,
    x: &T,
    mut out: impl FnMut(usize, usize, f32),
) {
    let (rows, live) = quad_rows(T::NAME, w, n, q, x.row_bytes());
    let first = 4 * q;
    let m = x.rows();
    let mut i = 0;
    while i + 4 <= m {
        let inputs: [_; 4] = std::array::from_fn(|g| x.row(i + g));
        for (g, dots) in T::tile(kernel, rows, inputs).into_iter().enumerate() {
            for (r, dot) in dots.into_iter().take(live).enumerate() {
                out(i + g, first + r, dot);
            }
        }
        i += 4;
    }
    for i in i..m {
        let [dots] = T::tile(kernel, rows, [x.row(i)]);
        for (r, dot) in dots.into_iter().take(live).enumerate() {
            out(i, first + r, dot);
        }
    }
}

/// Every product of `x` with the `n` rows of `w`, row-major, by quads.
#[cfg(test)]
pub(crate) fn products<T: Tiles>(
    kernel: crate::q8_0::Kernel,
    w: &[u8],
    n: usize,
    x: &T,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; x.rows() * n];
    for q in 0..quads(n) {
        quad(kernel, w, n, q, x, |i, j, v| out[i * n + j] = v);
    }
    out
}

/// Seeded values in ±1 (a small LCG: the tests need no crate).
#[cfg(test)]
pub(crate) fn seeded_values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
