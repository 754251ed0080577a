//! PyramidKV's per-layer budgets (KVCache-Factory `PyramidKVCluster.update_kv` @ffac160):
//! decreasing linearly from the first layer to the last.
//!
//! With `base = B − w`, `N` layers and β (default 20), in integers as the reference:
//! ```text
//! min = ⌊base / β⌋,  max = 2·base − min
//! if max ≥ n − w:  max = n − w,  min = 2·base − max
//! steps = ⌊(max − min) / (N − 1)⌋          (0 for a single layer)
//! layer l selects cap_l = max − l·steps entries, plus the window
//! ```
//! Fallbacks as the reference: a prompt shorter than `2·base` gets uniform SnapKV budgets; a
//! prompt no longer than `B` is kept whole (handled with every policy). Quirk kept on purpose:
//! the integer `steps` makes the layers' mean exceed the nominal budget (B = 128, w = 32,
//! N = 32: cap_0 = 188, cap_31 = 33, mean selected 110.5 instead of 96); the selection's note
//! reports the actual budgets.

/// Which branch of the reference schedule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Schedule {
    /// `n < 2(B − w)`: every layer keeps `B` (uniform SnapKV).
    Uniform,
    /// The pyramid: layer budgets `w + cap_l`.
    Pyramid,
}

/// Entries kept per layer (window included) for `w < B < n`, and the branch that gave them.
pub(crate) fn layer_budgets(
    n: usize,
    budget: usize,
    window: usize,
    layers: usize,
    beta: f64,
) -> (Vec<usize>, Schedule) {
    let base = budget - window;
    if n < 2 * base {
        return (vec![budget; layers], Schedule::Uniform);
    }
    let mut min_num = (base as f64 / beta).floor() as usize;
    let mut max_num = 2 * base - min_num;
    if max_num >= n - window {
        max_num = n - window;
        min_num = (2 * base).saturating_sub(max_num);
    }
    let steps = if layers > 1 {
        max_num.saturating_sub(min_num) / (layers - 1)
    } else {
        0
    };
    let kept = (0..layers)
        .map(|l| window + max_num.saturating_sub(l * steps))
        .collect();
    (kept, Schedule::Pyramid)
}
