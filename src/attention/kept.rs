//! Per-key shares of a keep mask for the strips and the document highlights.

use ndarray::{Axis, s};

use crate::attention::{HeadView, KeepMask, Pick};

/// The mask head that owns query head `head`: the same head at query-head granularity, its
/// GQA group's KV head when the mask has fewer heads.
pub fn mask_head(head: usize, query_heads: usize, mask_heads: usize) -> usize {
    if mask_heads == 0 || query_heads == 0 {
        return 0;
    }
    if mask_heads >= query_heads {
        head.min(mask_heads - 1)
    } else {
        let group = query_heads.div_ceil(mask_heads);
        (head / group).min(mask_heads - 1)
    }
}

/// For every key, the share of the viewed (layer, head) pairs whose mask keeps it: 0 or 1 for
/// one layer and head, a fraction under an aggregate. `query_heads` is the model's query head
/// count (the view's heads are query heads; the mask's may be KV heads).
pub fn kept_share(mask: &KeepMask, view: HeadView, query_heads: usize) -> Vec<f32> {
    let (layers, mask_heads, keys) = mask.dim();
    if layers == 0 || mask_heads == 0 {
        return vec![0.0; keys];
    }
    let layer_range = match view.layer.index(layers) {
        Some(l) => l..l + 1,
        None => 0..layers,
    };
    let head_range = match view.head {
        Pick::One(h) => {
            let m = mask_head(
                h.min(query_heads.saturating_sub(1)),
                query_heads,
                mask_heads,
            );
            m..m + 1
        }
        Pick::All => 0..mask_heads,
    };
    let rows = mask.slice(s![layer_range, head_range, ..]);
    let count = (rows.len_of(Axis(0)) * rows.len_of(Axis(1))) as f32;
    let mut kept = vec![0u32; keys];
    for row in rows.lanes(Axis(2)) {
        for (total, &k) in kept.iter_mut().zip(row.iter()) {
            *total += u32::from(k);
        }
    }
    kept.into_iter()
        .map(|k| k as f32 / count.max(1.0))
        .collect()
}

/// Mean number of entries kept per (layer, head) of the view.
pub fn mean_kept(share: &[f32]) -> f32 {
    share.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::Reduce;
    use ndarray::Array3;

    fn mask() -> KeepMask {
        // 2 layers, 2 KV heads, 4 keys: layer l, head h keeps key k when k == l + h or k == 3.
        Array3::from_shape_fn((2, 2, 4), |(l, h, k)| k == l + h || k == 3)
    }

    #[test]
    fn query_heads_map_to_their_kv_head() {
        assert_eq!(mask_head(5, 6, 6), 5);
        assert_eq!(mask_head(5, 6, 2), 1);
        assert_eq!(mask_head(2, 6, 2), 0);
        assert_eq!(mask_head(9, 6, 2), 1);
        assert_eq!(mask_head(0, 0, 0), 0);
    }

    #[test]
    fn one_head_gives_its_own_mask_and_aggregates_give_shares() {
        let one = HeadView {
            layer: Pick::One(1),
            head: Pick::One(3), // query head 3 of 4 → KV head 1
            reduce: Reduce::Mean,
        };
        assert_eq!(kept_share(&mask(), one, 4), vec![0.0, 0.0, 1.0, 1.0]);
        let all = HeadView {
            layer: Pick::All,
            head: Pick::All,
            reduce: Reduce::Max,
        };
        // Key 0: (0,0); key 1: (0,1),(1,0); key 2: (1,1); key 3: all four.
        let share = kept_share(&mask(), all, 4);
        assert_eq!(share, vec![0.25, 0.5, 0.25, 1.0]);
        assert_eq!(mean_kept(&share), 2.0);
    }
}
