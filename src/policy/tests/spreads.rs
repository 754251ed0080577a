//! Spreads and orders on hand cases: the global top-k with ties, Ada-KV's tables against a
//! sort, one global share over every layer and head (KVzip's), orders that leave positions
//! unscored, and the errors a wrong order gives. Policies here are defined in the test and run
//! without registering: [`PolicyId::of`] is enough for [`select`].

use ndarray::{Array3, array, s};

use super::reference::ada_head_budgets;
use super::{Fixture, Rng, kept};
use crate::attention::{Pooling, QuerySource};
use crate::policy::head_shares::{Groups, HeadShares, global_top_counts};
use crate::policy::{
    Budget, Input, Order, OrderContext, Policy, PolicyError, PolicyId, PolicySettings, Protected,
    Spread, select,
};

/// Scores: the window rows' sums over a chosen range, after a chosen protected prefix, with a
/// chosen spread.
struct Scripted {
    protected: fn(&OrderContext) -> Protected,
    range: fn(&OrderContext) -> (usize, usize),
    spread: Spread,
}

impl Policy for Scripted {
    fn id(&self) -> &'static str {
        "scripted"
    }
    fn label(&self) -> &'static str {
        "Scripted"
    }
    fn summary(&self) -> &'static str {
        "A test policy"
    }
    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Window]
    }
    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let (start, end) = (self.range)(ctx);
        let sums = ctx.inputs().source_sums(QuerySource::Window, "test")?;
        let scores = sums.slice(s![.., .., start..end]).to_owned();
        Order::scored(ctx.prompt_len(), (self.protected)(ctx), start, scores)
    }
    fn spread(&self, _: &PolicySettings) -> Spread {
        self.spread
    }
}

/// The window plus one share over every layer and head, scored over `[0, n − w)`.
static GLOBAL: Scripted = Scripted {
    protected: |ctx| Protected::Window(ctx.window()),
    range: |ctx| (0, ctx.prompt_len() - ctx.window()),
    spread: Spread::Global,
};

fn unpooled(window: usize) -> PolicySettings {
    PolicySettings {
        window,
        pooling: Pooling::None,
        ..PolicySettings::default()
    }
}

fn run(
    policy: &'static dyn Policy,
    f: &Fixture,
    budget: usize,
    settings: &PolicySettings,
) -> Result<crate::policy::Selection, PolicyError> {
    let inputs = f.inputs();
    let budget = Budget::new(budget, inputs.prompt_len())?;
    select(PolicyId::of(policy), &inputs, budget, settings)
}

/// Every key of `rows`, descending.
fn merged(rows: &[(&[u32], &[u32])]) -> Vec<u32> {
    let mut all: Vec<u32> = rows
        .iter()
        .flat_map(|(keys, _)| keys.iter().copied())
        .collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    all
}

/// The naive count: sort every entry after each row's first `skip` by (key descending, position
/// ascending, row ascending) and count the first `k` per row.
fn sorted_top_counts(rows: &[(&[u32], &[u32])], skip: usize, k: usize) -> Vec<usize> {
    let mut entries: Vec<(u32, u32, usize)> = rows
        .iter()
        .enumerate()
        .flat_map(|(r, (keys, positions))| {
            keys.iter()
                .zip(positions.iter())
                .skip(skip)
                .map(move |(&key, &p)| (key, p, r))
        })
        .collect();
    entries.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut counts = vec![0; rows.len()];
    for &(_, _, r) in &entries[..k] {
        counts[r] += 1;
    }
    counts
}

#[test]
fn global_top_counts_break_ties_by_position_then_row() {
    // Keys (descending) and positions per row; three rows.
    let rows: [(&[u32], &[u32]); 3] = [
        (&[9, 5, 5, 1], &[3, 0, 7, 2]),
        (&[5, 5, 4, 0], &[0, 4, 1, 9]),
        (&[8, 5, 2, 2], &[6, 4, 1, 5]),
    ];
    let all = merged(&rows);
    // Global order: 9(r0) 8(r2) | ties at 5: pos0 r0, pos0 r1, pos4 r1, pos4 r2, pos7 r0 | 4(r1) ...
    let expect = [
        (1, vec![1, 0, 0]),
        (2, vec![1, 0, 1]),
        (3, vec![2, 0, 1]),
        (4, vec![2, 1, 1]),
        (5, vec![2, 2, 1]),
        (6, vec![2, 2, 2]),
        (7, vec![3, 2, 2]),
        (8, vec![3, 3, 2]),
    ];
    for (k, counts) in expect {
        assert_eq!(global_top_counts(&rows, &all, 0, k), counts, "k = {k}");
    }
    assert_eq!(global_top_counts(&rows, &all, 0, 12), vec![4, 4, 4]);
    assert_eq!(global_top_counts(&rows, &all, 0, 0), vec![0, 0, 0]);
    // Each row's first entry left out: 5(r0 pos0) 5(r1 pos4) 5(r2 pos4) 5(r0 pos7) 4(r1) ...
    let expect = [(1, vec![1, 0, 0]), (3, vec![1, 1, 1]), (4, vec![2, 1, 1])];
    for (k, counts) in expect {
        assert_eq!(
            global_top_counts(&rows, &all, 1, k),
            counts,
            "skip 1, k = {k}"
        );
    }
}

#[test]
fn global_top_counts_agree_with_a_sort_on_random_tied_rows() {
    let mut rng = Rng(7);
    for case in 0..300 {
        let (row_count, len) = (1 + rng.below(5), 1 + rng.below(39));
        let levels = 1 + rng.below(5) as u32;
        let rows: Vec<(Vec<u32>, Vec<u32>)> = (0..row_count)
            .map(|_| {
                let mut entries: Vec<(u32, u32)> = (0..len as u32)
                    .map(|p| (rng.below(levels as usize) as u32, p))
                    .collect();
                entries.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                entries.into_iter().unzip()
            })
            .collect();
        let rows: Vec<(&[u32], &[u32])> = rows.iter().map(|(k, p)| (&k[..], &p[..])).collect();
        let all = merged(&rows);
        let skip = rng.below(len + 1);
        for k in 0..=row_count * (len - skip) {
            assert_eq!(
                global_top_counts(&rows, &all, skip, k),
                sorted_top_counts(&rows, skip, k),
                "case {case}, skip {skip}, k {k}"
            );
        }
    }
}

#[test]
fn ada_tables_agree_with_the_sorting_reference_on_tied_scores() {
    let (layers, heads, n, window) = (3, 4, 40, 5);
    let scored = n - window;
    let scores = Array3::from_shape_fn((layers, heads, scored), |(l, h, j)| {
        ((l * 7 + h * 3 + j * 5) % 4) as f32
    });
    let order = Order::scored(n, Protected::Window(window), 0, scores.clone()).unwrap();
    let tables = HeadShares::new(&order, Groups::PerLayer).unwrap();
    for budget in window + 1..n {
        for alpha in [0.0, 0.2, 0.5, 1.0] {
            assert_eq!(
                tables.head_adaptive(budget, window, alpha),
                ada_head_budgets(&scores, budget, window, alpha),
                "budget {budget}, alpha {alpha}"
            );
        }
    }
}

#[test]
fn a_global_share_goes_to_the_highest_scores_of_every_row() {
    // Two layers, one head, n = 6, window 1, budget 3: 2 rows × (3 − 1) = 4 scored picks.
    let window = array![
        [[9.0, 8.0, 7.0, 6.0, 5.0, 0.0]],
        [[1.0, 1.0, 1.0, 1.0, 1.0, 0.0]]
    ];
    let f = Fixture::uniform(window, 1);
    let selection = run(&GLOBAL, &f, 3, &unpooled(1)).unwrap();
    assert_eq!(selection.kept, array![[5], [1]]);
    assert_eq!(kept(&selection.mask, 0, 0), vec![0, 1, 2, 3, 5]);
    assert_eq!(kept(&selection.mask, 1, 0), vec![5]);
    assert_eq!(
        selection.kept.sum(),
        2 * 3,
        "the same total as the per-head budget"
    );
    assert_eq!(
        selection.note.as_deref(),
        Some("per-head budgets 1 to 5, mean 3.0 (one share over every layer and head)")
    );
    // Ties: three 5s, then the zeros by position (1 in layer 1 before 2 in layer 0).
    let tied = array![
        [[5.0, 5.0, 0.0, 0.0, 0.0, 0.0]],
        [[5.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    ];
    let f = Fixture::uniform(tied, 1);
    let selection = run(&GLOBAL, &f, 3, &unpooled(1)).unwrap();
    assert_eq!(kept(&selection.mask, 0, 0), vec![0, 1, 5]);
    assert_eq!(kept(&selection.mask, 1, 0), vec![0, 1, 5]);
    // At or below the window the shared rules apply.
    let clamped = run(&GLOBAL, &f, 1, &unpooled(1)).unwrap();
    assert_eq!(clamped.kept, array![[1], [1]]);
    assert!(clamped.note.unwrap().contains("equals the window"));
}

#[test]
fn positions_outside_the_scored_range_come_last_in_order() {
    // No window; scores over [2, 5) of 6 positions: 2, 3, 4 by score, then 0, 1, 5.
    static MIDDLE: Scripted = Scripted {
        protected: |_| Protected::Nothing,
        range: |_| (2, 5),
        spread: Spread::PerHead,
    };
    let f = Fixture::uniform(array![[[9.0, 9.0, 1.0, 3.0, 2.0, 9.0]]], 1);
    let s = unpooled(0);
    let picks: Vec<Vec<usize>> = (1..=5)
        .map(|b| kept(&run(&MIDDLE, &f, b, &s).unwrap().mask, 0, 0))
        .collect();
    assert_eq!(
        picks,
        vec![
            vec![3],
            vec![3, 4],
            vec![2, 3, 4],
            vec![0, 2, 3, 4],
            vec![0, 1, 2, 3, 4]
        ]
    );
}

#[test]
fn a_wrong_order_is_a_clear_error() {
    // Scores over the window's own positions.
    static OVERLAP: Scripted = Scripted {
        protected: |ctx| Protected::Window(ctx.window()),
        range: |ctx| (0, ctx.prompt_len()),
        spread: Spread::PerHead,
    };
    let f = Fixture::uniform(array![[[1.0, 2.0, 3.0, 4.0]]], 1);
    assert!(matches!(
        run(&OVERLAP, &f, 2, &unpooled(1)),
        Err(PolicyError::InvalidOrder(_))
    ));
    // A spread by score over a fixed order.
    struct FixedAdaptive;
    impl Policy for FixedAdaptive {
        fn id(&self) -> &'static str {
            "fixed-adaptive"
        }
        fn label(&self) -> &'static str {
            "Fixed adaptive"
        }
        fn summary(&self) -> &'static str {
            "A test policy"
        }
        fn needs(&self, _: &PolicySettings) -> Vec<Input> {
            Vec::new()
        }
        fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
            let n = ctx.prompt_len() as u32;
            Order::same_in_every_row(ctx.layers(), ctx.heads(), (0..n).rev().collect())
        }
        fn spread(&self, _: &PolicySettings) -> Spread {
            Spread::HeadAdaptive { floor_alpha: 0.2 }
        }
    }
    let err = run(&FixedAdaptive, &f, 2, &unpooled(1)).unwrap_err();
    assert!(
        matches!(&err, PolicyError::InvalidOrder(m) if m.contains("Fixed adaptive")),
        "{err}"
    );
    // Fixed orders must list every position once.
    assert!(matches!(
        Order::same_in_every_row(1, 1, vec![0, 1, 1]),
        Err(PolicyError::InvalidOrder(_))
    ));
    assert!(matches!(
        Order::per_row(1, 2, 3, |_, h| if h == 0 {
            vec![2, 1, 0]
        } else {
            vec![0, 1]
        }),
        Err(PolicyError::InvalidOrder(_))
    ));
}
