//! Random: per layer and head, the first `B` positions of a seeded permutation of the prompt.
//!
//! The permutation of row `[layer, head]` is a Fisher–Yates shuffle driven by SplitMix64 seeded
//! from `(random_seed, layer, head)`, so a seed always gives the same sets, on every machine, and
//! a larger budget keeps a superset of a smaller one.

use ndarray::Array3;

use crate::attention::KeepMask;
use crate::rng::SplitMix64;

/// The seeded permutation of `0..n` for row `[layer, head]`.
pub(crate) fn permutation(n: usize, seed: u64, layer: usize, head: usize) -> Vec<u32> {
    let mut rng = SplitMix64::new(
        seed ^ (layer as u64).wrapping_mul(0xA24B_AED4_963E_E407)
            ^ (head as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25),
    );
    // The first draw is skipped: the permutations have always started from the second.
    rng.next_u64();
    let mut order: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut order);
    order
}

/// The kept set for `B < n`.
pub(crate) fn select(layers: usize, heads: usize, n: usize, budget: usize, seed: u64) -> KeepMask {
    let mut mask = Array3::from_elem((layers, heads, n), false);
    for l in 0..layers {
        for h in 0..heads {
            for &pos in permutation(n, seed, l, h).iter().take(budget) {
                mask[[l, h, pos as usize]] = true;
            }
        }
    }
    mask
}
