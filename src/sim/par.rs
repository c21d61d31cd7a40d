//! Work split across the machine's cores: rayon's pool natively, in order on wasm (the page's
//! CPU engine is one wasm instance on one thread).
//!
//! Determinism: every split in `sim` is fixed by the problem size (batch pieces of
//! [`crate::sim::train::PIECE`] samples, score chunks of a fixed number of points), never by
//! the number of threads, and partial results are combined in piece order. A seed gives
//! bit-identical weights, samples and likelihoods on 1, 2 or 64 threads (tested in
//! `sim::train`).

/// `f` on every item, in parallel natively; the results in item order.
pub fn map<T, R, F>(items: &mut [T], f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(&mut T) -> R + Sync + Send,
{
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        items.par_iter_mut().map(f).collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        items.iter_mut().map(f).collect()
    }
}

/// `f(i, chunk_in, chunk_out)` on matching `n`-sized chunks of `input` and `output`, in
/// parallel natively.
pub fn zip_chunks<A, B, F>(input: &[A], output: &mut [B], n: usize, f: F)
where
    A: Sync,
    B: Send,
    F: Fn(&[A], &mut [B]) + Sync + Send,
{
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        input
            .par_chunks(n)
            .zip(output.par_chunks_mut(n))
            .for_each(|(a, b)| f(a, b));
    }
    #[cfg(target_arch = "wasm32")]
    {
        input
            .chunks(n)
            .zip(output.chunks_mut(n))
            .for_each(|(a, b)| f(a, b));
    }
}

/// `f` over `0..n`, in parallel natively; the results in index order.
pub fn map_range<R, F>(n: usize, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize) -> R + Sync + Send,
{
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        (0..n).into_par_iter().map(f).collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        (0..n).map(f).collect()
    }
}

/// Threads the native pool uses (1 on wasm).
pub fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        rayon::current_num_threads()
    }
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
}
