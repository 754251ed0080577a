//! Random: per layer and head, the first `B` positions of a seeded permutation of the prompt.
//!
//! The permutation of row `[layer, head]` is a Fisher–Yates shuffle driven by SplitMix64 seeded
//! from `(random_seed, layer, head)`, so a seed always gives the same sets, on every machine, and
//! a larger budget keeps a superset of a smaller one.

use crate::policy::params::{Count, Param};
use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings};
use crate::rng::SplitMix64;

/// Seed of the shuffles. Default 0.
pub static SEED: Count = Count {
    key: "random_seed",
    label: "Random seed",
    help: "Seed of the Random policy's shuffles",
    default: 0,
};

static PARAMS: [Param; 1] = [Param::Count(&SEED)];

/// A seeded random subset.
pub struct Random;

impl Policy for Random {
    fn id(&self) -> &'static str {
        "random"
    }

    fn label(&self) -> &'static str {
        "Random"
    }

    fn summary(&self) -> &'static str {
        "A seeded random subset"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        Vec::new()
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let (n, seed) = (ctx.prompt_len(), ctx.settings().get(&SEED));
        Order::per_row(ctx.layers(), ctx.heads(), n, |l, h| {
            permutation(n, seed, l, h)
        })
    }
}

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
