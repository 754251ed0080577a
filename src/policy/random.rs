//! Random: per layer and head, the first `B` positions of a seeded permutation of the prompt.
//!
//! The permutation of row `[layer, head]` is a Fisher–Yates shuffle driven by SplitMix64 seeded
//! from `(random_seed, layer, head)`, so a seed always gives the same sets, on every machine, and
//! a larger budget keeps a superset of a smaller one.

use ndarray::Array3;

use crate::attention::KeepMask;

/// One step of SplitMix64.
fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seeded permutation of `0..n` for row `[layer, head]`.
pub(crate) fn permutation(n: usize, seed: u64, layer: usize, head: usize) -> Vec<u32> {
    let mut state = seed
        ^ (layer as u64).wrapping_mul(0xA24B_AED4_963E_E407)
        ^ (head as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25);
    split_mix(&mut state);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = ((u128::from(split_mix(&mut state)) * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
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
