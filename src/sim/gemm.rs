//! Batch-major blocked matrix products for the MLP: `matrixmultiply`'s packed, register-tiled
//! sgemm, with runtime-detected AVX/FMA kernels natively and its simd128 micro-kernel on wasm
//! (`.cargo/config.toml` builds the page with `+simd128`). The blocked path sums in another
//! order than the scalar reference (`sim::mlp`, per-sample dot products): the tests compare
//! the two to a relative + absolute tolerance (`sim::mlp` tests).

/// A strided view of an `rows × cols` matrix: element (r, c) is `data[r·rs + c·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// C ← β·C + A·B, with A `m × k`, B `k × n` and C `m × n` row-major (row stride `ldc`).
/// Panics if a view is too short for its shape (the only unsafe block relies on that).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(m: usize, k: usize, n: usize, a: View, b: View, beta: f32, c: &mut [f32], ldc: usize) {
    assert!(a.fits(m, k), "sgemm: A is too short for {m} × {k}");
    assert!(b.fits(k, n), "sgemm: B is too short for {k} × {n}");
    assert!(ldc >= n, "sgemm: ldc {ldc} < n {n}");
    assert!(
        m == 0 || n == 0 || (m - 1) * ldc + n <= c.len(),
        "sgemm: C is too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n].iter_mut().for_each(|v| *v *= beta);
        }
        return;
    }
    kernel(m, k, n, a, b, beta, c, ldc);
}

#[allow(clippy::too_many_arguments)]
fn kernel(m: usize, k: usize, n: usize, a: View, b: View, beta: f32, c: &mut [f32], ldc: usize) {
    // SAFETY: every index the kernel touches, (i·rs + p·cs) for i < rows and p < cols of each
    // operand and i·ldc + j for C, is in bounds by the asserts above; C does not alias A or B
    // (a `&mut` cannot alias the two `&`s).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgemm_matches_the_triple_loop_on_ragged_shapes_and_strides() {
        for &(m, k, n) in &[(1, 1, 1), (7, 13, 5), (37, 29, 64), (130, 3, 2)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 23) as f32 - 11.0) / 7.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 19) as f32 - 9.0) / 5.0)
                .collect();
            // B given transposed (n × k row-major), C with a wider row stride and β = 1.
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let ldc = n + 3;
            let mut c = vec![0.5f32; m * ldc];
            sgemm(
                m,
                k,
                n,
                View::rows(&a, k),
                View::transposed(&bt, k),
                1.0,
                &mut c,
                ldc,
            );
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = 0.5
                        + (0..k)
                            .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                            .sum::<f64>();
                    let got = f64::from(c[i * ldc + j]);
                    assert!(
                        (got - want).abs() <= 1e-5 * want.abs() + 1e-5,
                        "{m}×{k}×{n}"
                    );
                }
                assert_eq!(c[i * ldc + n], 0.5, "the padding of C is untouched");
            }
        }
    }
}
