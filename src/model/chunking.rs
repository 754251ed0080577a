//! How many query rows one attention block takes, and how many scores that block holds: the
//! only attention buffer whose size depends on the prompt's length squared, kept bounded here.
//!
//! A block of `rows` query rows over `keys` keys holds `rows x keys` scores per query head (the
//! fused CPU kernel, one head per task and thread) or `heads x rows x keys` (the portable path,
//! every head of the chunk at once). Both sizes aim at a fixed number of elements, so a block
//! holds at most that many scores, or one row per head when a single row is longer: the buffer
//! grows linearly with the prompt, never as `n x n`.

/// Scores of one fused attention block (`rows x keys`) are kept near this many elements (8 MiB
/// per thread, in L3): measured on a 2-core AVX-512 machine, blocks of 128 to 256 rows run the
/// score matmul at 80-87 GFLOP/s per thread where 32-row blocks reach 60 (each block repacks the
/// keys it reads).
pub(crate) const FUSED_BLOCK_ELEMENTS: usize = 1 << 21;
/// Row limits of one fused attention block.
pub(crate) const FUSED_BLOCK_ROWS: (usize, usize) = (128, 256);
/// Scores of one portable attention chunk (`heads x rows x keys`) are kept near this many
/// elements (64 MiB in f32).
pub(crate) const PORTABLE_CHUNK_ELEMENTS: usize = 1 << 24;
/// Most query rows of one portable chunk.
pub(crate) const PORTABLE_CHUNK_ROWS: usize = 4096;

/// Query rows per attention block over `keys` keys for a model of `heads` query heads, with
/// the fused kernel or the portable path.
pub(crate) fn block_rows(fused: bool, keys: usize, heads: usize) -> usize {
    let keys = keys.max(1);
    if fused {
        (FUSED_BLOCK_ELEMENTS / keys).clamp(FUSED_BLOCK_ROWS.0, FUSED_BLOCK_ROWS.1)
    } else {
        (PORTABLE_CHUNK_ELEMENTS / (keys * heads.max(1))).clamp(1, PORTABLE_CHUNK_ROWS)
    }
}

/// Scores one block of `rows` query rows over `keys` keys holds at once: `rows x keys` for the
/// fused kernel (per thread), `heads x rows x keys` for the portable path.
pub(crate) fn block_scores(fused: bool, rows: usize, keys: usize, heads: usize) -> usize {
    if fused {
        rows * keys
    } else {
        heads * rows * keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Llama-3.1-8B's 32 query heads, SmolLM2-135M's 9, and a one-head model.
    const HEADS: [usize; 3] = [32, 9, 1];

    /// Prompt lengths from a few tokens to 128K.
    fn lengths() -> impl Iterator<Item = usize> {
        [
            1, 7, 100, 512, 1000, 4096, 8192, 10_000, 16_384, 32_768, 65_536, 131_072,
        ]
        .into_iter()
    }

    #[test]
    fn fused_blocks_hold_at_most_two_million_scores_or_128_rows() {
        for keys in lengths() {
            let rows = block_rows(true, keys, 32);
            assert!((128..=256).contains(&rows), "{keys} keys: {rows} rows");
            let scores = block_scores(true, rows, keys, 32);
            // The formula: at most 2^21 scores, unless 128 rows of `keys` are more.
            assert!(scores <= (1 << 21).max(128 * keys), "{keys} keys: {scores}");
        }
        // Hand-computed: 2^21 / 8192 = 256 rows, / 16384 = 128, / 32768 = 64 -> raised to 128.
        assert_eq!(block_rows(true, 8192, 32), 256);
        assert_eq!(block_rows(true, 16_384, 32), 128);
        assert_eq!(block_rows(true, 32_768, 32), 128);
        assert_eq!(block_rows(true, 12_000, 32), 174);
    }

    #[test]
    fn portable_chunks_hold_at_most_sixteen_million_scores_or_one_row_per_head() {
        for heads in HEADS {
            for keys in lengths() {
                let rows = block_rows(false, keys, heads);
                assert!((1..=4096).contains(&rows), "{heads} heads, {keys} keys");
                let scores = block_scores(false, rows, keys, heads);
                assert!(
                    scores <= (1 << 24).max(heads * keys),
                    "{heads} heads, {keys} keys: {scores}"
                );
            }
        }
        // Hand-computed for Llama-3.1-8B (32 heads): 2^24 / (32 x 32768) = 16 rows at 32K
        // (64 MiB of f32 scores), 32 rows at 16K, 64 at 8K.
        assert_eq!(block_rows(false, 32_768, 32), 16);
        assert_eq!(block_rows(false, 16_384, 32), 32);
        assert_eq!(block_rows(false, 8192, 32), 64);
        // 2^24 / (32 x 131072) = 4; a million keys leave one row.
        assert_eq!(block_rows(false, 131_072, 32), 4);
        assert_eq!(block_rows(false, 1 << 20, 32), 1);
    }

    #[test]
    fn from_16k_keys_on_a_block_holds_at_most_a_sixteenth_of_the_square() {
        for heads in HEADS {
            for n in [16_384, 32_768, 131_072] {
                for fused in [true, false] {
                    let rows = block_rows(fused, n, heads);
                    let scores = block_scores(fused, rows, n, heads);
                    let square = heads * n * n;
                    assert!(
                        scores * 16 <= square,
                        "{heads} heads, {n} keys, fused {fused}: {scores} of {square}"
                    );
                }
            }
        }
    }
}
