//! Scores to probabilities for one block of attention rows, in f32, written so that the
//! compiler vectorises it (a branch-free `exp`, reductions over 16 independent lanes) and compiled
//! three times: for AVX-512, for AVX2 with FMA, and for the baseline, picked at run time.

use super::simd::exp_nonpositive;

const LANES: usize = 16;

/// Largest element (`-inf` for an empty slice).
#[inline(always)]
fn max_of(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = if x > *lane { x } else { *lane };
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    lanes.iter().fold(tail, |m, &x| if x > m { x } else { m })
}

/// Replaces each element by `exp(x - max)` and returns their sum.
#[inline(always)]
fn exp_and_sum(xs: &mut [f32], max: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk.iter_mut()) {
            let e = exp_nonpositive(*x - max);
            *x = e;
            *lane += e;
        }
    }
    let mut tail = 0.0;
    for x in chunks.into_remainder() {
        *x = exp_nonpositive(*x - max);
        tail += *x;
    }
    lanes.iter().sum::<f32>() + tail
}

/// Softmax of `xs` in place, adding the first `sums.len()` probabilities into `sums` in the same
/// pass. Entries at `-inf` get probability 0; a row that is entirely `-inf` becomes all zeros.
#[inline(always)]
fn softmax_in_place(xs: &mut [f32], sums: &mut [f32]) {
    let max = max_of(xs);
    if max == f32::NEG_INFINITY {
        xs.fill(0.0);
        return;
    }
    let inv = 1.0 / exp_and_sum(xs, max);
    let (summed, rest) = xs.split_at_mut(sums.len().min(xs.len()));
    for (x, sum) in summed.iter_mut().zip(sums.iter_mut()) {
        *x *= inv;
        *sum += *x;
    }
    for x in rest.iter_mut() {
        *x *= inv;
    }
}

/// One block of score rows `[rows, keys]` of one query head, and where its probabilities go.
pub(crate) struct RowBlock<'a> {
    /// Scaled scores, turned into probabilities in place.
    pub scores: &'a mut [f32],
    /// Keys per row (row stride).
    pub keys: usize,
    /// Keys visible to the block's first row (its position + 1); row `i` sees `first_visible + i`.
    pub first_visible: usize,
    /// Which of the first `keep.len()` keys may be attended (decoding under eviction).
    pub keep: Option<&'a [bool]>,
    /// First row of the block whose probabilities are captured.
    pub first_captured: usize,
    /// Keys per captured row (row stride of `captured`).
    pub key_limit: usize,
    /// Captured rows, `key_limit` each, zero-initialised.
    pub captured: &'a mut [f32],
    /// Sums over the block's rows of the first `min(key_limit, keys)` probabilities.
    pub column_sums: Option<&'a mut [f32]>,
}

/// Masks, normalises, captures and sums one block (see [`RowBlock`]).
pub(crate) fn normalise_rows(block: RowBlock) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { normalise_rows_avx512(block) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { normalise_rows_avx2(block) };
        }
    }
    normalise_rows_portable(block)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn normalise_rows_avx512(block: RowBlock) {
    normalise_rows_portable(block)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn normalise_rows_avx2(block: RowBlock) {
    normalise_rows_portable(block)
}

#[inline(always)]
fn normalise_rows_portable(block: RowBlock) {
    let limit = block.key_limit.min(block.keys);
    let mut captured = block.captured.chunks_exact_mut(block.key_limit.max(1));
    let mut column_sums = block.column_sums;
    for (i, row) in block.scores.chunks_exact_mut(block.keys).enumerate() {
        if let Some(keep) = block.keep {
            for (x, &kept) in row.iter_mut().zip(keep) {
                *x = if kept { *x } else { f32::NEG_INFINITY };
            }
        }
        let (seen, unseen) = row.split_at_mut(block.first_visible + i);
        softmax_in_place(seen, column_sums.as_deref_mut().unwrap_or_default());
        unseen.fill(0.0);
        if i >= block.first_captured
            && let Some(dst) = captured.next()
        {
            dst[..limit].copy_from_slice(&row[..limit]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_matches_f64_and_zeroes_masked_entries() {
        let mut row: Vec<f32> = (0..37)
            .map(|i| ((i * 7919) % 23) as f32 * 0.37 - 4.0)
            .collect();
        row[3] = f32::NEG_INFINITY;
        row[36] = f32::NEG_INFINITY;
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let total: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
        let want: Vec<f64> = row
            .iter()
            .map(|&x| (x as f64 - max).exp() / total)
            .collect();
        let mut sums = vec![1.0f32; 30];
        softmax_in_place(&mut row, &mut sums);
        for (g, w) in row.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-7, "{g} vs {w}");
        }
        for (s, p) in sums.iter().zip(&row) {
            assert_eq!(*s, 1.0 + p);
        }
        assert_eq!(row[3], 0.0);
        assert_eq!(row[36], 0.0);
        let mut masked = vec![f32::NEG_INFINITY; 20];
        softmax_in_place(&mut masked, &mut []);
        assert!(masked.iter().all(|&p| p == 0.0));
    }
}
