//! [`PolicyBank`]: rankings precomputed once per session and settings, so that a budget change
//! re-derives every policy's mask and metrics without rescoring.
//!
//! Every policy's kept set at budget `B` is a prefix of one fixed ordering of the positions of
//! each `[layer, head]` row (window first for window policies, then the scored range by score,
//! earlier position first among equals). The bank stores, per ordering:
//! - the ordering itself (`O(n log n)` per row, once);
//! - `|first c ∩ oracle's first c|` for every `c`, so the hit rate of a uniform budget is one
//!   lookup;
//! - the prefix sums of each query head's decoded attention along its row's ordering, so the
//!   attention mass kept is one lookup.
//!
//! A budget change then costs `O(1)` per row for uniform budgets, `O(min(c, n − c))` per row for
//! PyramidKV's and Ada-KV's off-diagonal hit counts, `O(H log² n)` per layer for Ada-KV's
//! global top-k, and `O(n)` per row to write a mask.

use std::sync::{Mutex, PoisonError};

use ndarray::{Array2, Array3, ArrayView3, Axis, Zip};
use rayon::prelude::*;

use super::metrics::{PolicyMetrics, mean};
use super::ranking::{Rankings, rank_desc};
use super::selection::{note, require_sources};
use super::{PolicyError, PolicyKind, PolicySettings, ScoreInputs, Selection};
use super::{adakv, h2o, judgeq, oracle, pyramidkv, random, snapkv, streaming_llm};
use crate::attention::{KeepMask, Pooling, QuerySource, ScoreGrid, owning_head};

/// Which ordering a policy's kept sets are prefixes of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OrderKind {
    Streaming,
    Accumulated,
    Window { pooled: bool },
    Soft,
    Decoded,
    Random,
}

impl OrderKind {
    fn of(policy: PolicyKind) -> Option<OrderKind> {
        match policy {
            PolicyKind::FullKv => None,
            PolicyKind::StreamingLlm => Some(OrderKind::Streaming),
            PolicyKind::H2o => Some(OrderKind::Accumulated),
            PolicyKind::H2oWindow => Some(OrderKind::Window { pooled: false }),
            PolicyKind::SnapKv | PolicyKind::PyramidKv | PolicyKind::AdaKv => {
                Some(OrderKind::Window { pooled: true })
            }
            PolicyKind::JudgeQ => Some(OrderKind::Soft),
            PolicyKind::Oracle => Some(OrderKind::Decoded),
            PolicyKind::Random => Some(OrderKind::Random),
        }
    }
}

/// One ordering and its metric tables.
struct Order {
    kind: OrderKind,
    rankings: Rankings,
    /// Present when the session has decoded rows.
    tables: Option<MetricTables>,
}

/// Per-ordering tables for hit rate and attention mass.
struct MetricTables {
    /// `rows × (n + 1)`: `|first c of this ordering ∩ first c of the oracle's|`.
    diagonal_hits: Vec<u32>,
    /// `layers × query_heads × (n + 1)`: decoded attention of the query head on the first `c`
    /// positions of its owning row's ordering (accumulated in `f64`).
    mass_prefix: Vec<f32>,
}

/// What the oracle contributes to every metric.
struct OracleData {
    /// `rows × n`: the rank of each position in the oracle's ordering.
    rank_of: Vec<u32>,
}

/// Rankings of every requested policy for one session and settings, for live budgets.
pub struct PolicyBank {
    policies: Vec<PolicyKind>,
    settings: PolicySettings,
    layers: usize,
    heads: usize,
    query_heads: usize,
    group: usize,
    n: usize,
    window: usize,
    kv_entry_bytes: usize,
    orders: Vec<Order>,
    ada: Option<adakv::AdaTables>,
    /// Ada-KV's per-head budgets at the last budget asked for (a budget change asks twice:
    /// masks and metrics).
    ada_last: Mutex<Option<(usize, Array2<usize>)>>,
    /// The oracle's ranks, or why there are none (no decoded rows).
    oracle: Result<OracleData, PolicyError>,
}

impl PolicyBank {
    /// Scores and ranks once everything `policies` need (the Oracle's ordering is always built
    /// when the session has decoded rows: the hit rate needs it). `O(n log n)` per row and
    /// ordering; run it off the UI thread.
    pub fn new(
        inputs: &ScoreInputs,
        settings: &PolicySettings,
        policies: &[PolicyKind],
    ) -> Result<Self, PolicyError> {
        settings.validate()?;
        inputs.check()?;
        let mut unique: Vec<PolicyKind> = Vec::new();
        for &policy in policies {
            require_sources(policy, inputs)?;
            if !unique.contains(&policy) {
                unique.push(policy);
            }
        }
        let (layers, heads, query_heads, n) = (
            inputs.layers(),
            inputs.heads(settings),
            inputs.query_heads(),
            inputs.prompt_len(),
        );
        let window = inputs.window(settings);
        let decoded = inputs.source_sums(
            QuerySource::Decoded,
            "the hit rate and the attention mass kept",
        );
        let mut kinds: Vec<OrderKind> = Vec::new();
        let wanted = unique.iter().filter_map(|&p| OrderKind::of(p));
        for kind in wanted.chain(decoded.is_ok().then_some(OrderKind::Decoded)) {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        let with_ada = unique.contains(&PolicyKind::AdaKv);
        let mut orders = Vec::with_capacity(kinds.len());
        let mut ada = None;
        for kind in kinds {
            let (rankings, tables) = build_order(kind, inputs, settings, with_ada)?;
            ada = ada.or(tables);
            orders.push(Order {
                kind,
                rankings,
                tables: None,
            });
        }
        let group = query_heads / inputs.kv_heads().max(1);
        let oracle =
            decoded.and_then(|decoded| attach_metric_tables(&mut orders, decoded, settings, group));
        Ok(Self {
            policies: unique,
            settings: settings.clone(),
            layers,
            heads,
            query_heads,
            group,
            n,
            window,
            kv_entry_bytes: inputs.kv_entry_bytes(),
            orders,
            ada,
            ada_last: Mutex::new(None),
            oracle,
        })
    }

    /// The policies this bank answers for, in the order given (duplicates removed).
    pub fn policies(&self) -> &[PolicyKind] {
        &self.policies
    }

    /// The settings the bank was built with.
    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    /// Prompt tokens.
    pub fn prompt_len(&self) -> usize {
        self.n
    }

    /// What `policy` keeps at `budget`: exactly [`super::select`]'s answer, in `O(n)` per row.
    pub fn select(&self, policy: PolicyKind, budget: usize) -> Result<Selection, PolicyError> {
        let kept = self.kept(policy, budget)?;
        let mask = match self.order(policy) {
            Some(order) => prefix_mask(&order.rankings, &kept, self.n),
            None => Array3::from_elem((self.layers, self.heads, self.n), true),
        };
        let note = note(policy, budget, self.n, &self.settings, &kept);
        Ok(Selection {
            policy,
            budget,
            mask,
            kept,
            note,
        })
    }

    /// Hit rate, attention mass kept and KV bytes of every policy of the bank at `budget`.
    /// Needs decoded rows (the Oracle's kept set is the hit rate's reference).
    pub fn evaluate(&self, budget: usize) -> Result<Vec<PolicyMetrics>, PolicyError> {
        if budget == 0 {
            return Err(PolicyError::ZeroBudget);
        }
        let oracle = self.oracle.as_ref().map_err(Clone::clone)?;
        self.policies
            .par_iter()
            .map(|&policy| self.metrics(policy, budget, oracle))
            .collect()
    }

    fn order(&self, policy: PolicyKind) -> Option<&Order> {
        let kind = OrderKind::of(policy)?;
        self.orders.iter().find(|o| o.kind == kind)
    }

    /// Entries kept per `[layer, head]`.
    fn kept(&self, policy: PolicyKind, budget: usize) -> Result<Array2<usize>, PolicyError> {
        if budget == 0 {
            return Err(PolicyError::ZeroBudget);
        }
        if !self.policies.contains(&policy) {
            return Err(PolicyError::NotInBank(policy));
        }
        let (n, w) = (self.n, self.window);
        let uniform = |c: usize| Array2::from_elem((self.layers, self.heads), c);
        if budget >= n || policy == PolicyKind::FullKv {
            return Ok(uniform(n));
        }
        if policy.keeps_window(self.settings.judgeq_keep_window) && budget <= w {
            return Ok(uniform(budget));
        }
        Ok(match policy {
            PolicyKind::PyramidKv => {
                let (per_layer, _) =
                    pyramidkv::layer_budgets(n, budget, w, self.layers, self.settings.pyramid_beta);
                Array2::from_shape_fn((self.layers, self.heads), |(l, _)| per_layer[l])
            }
            PolicyKind::AdaKv => match &self.ada {
                Some(tables) => self.ada_budgets(tables, budget),
                None => return Err(PolicyError::NotInBank(policy)),
            },
            _ => uniform(budget),
        })
    }

    /// Ada-KV's per-head budgets at `budget` (`w < budget < n`), reusing the last answer.
    fn ada_budgets(&self, tables: &adakv::AdaTables, budget: usize) -> Array2<usize> {
        let mut last = self.ada_last.lock().unwrap_or_else(PoisonError::into_inner);
        match &*last {
            Some((cached, kept)) if *cached == budget => kept.clone(),
            _ => {
                let kept = tables.head_budgets(budget, self.window, self.settings.ada_floor_alpha);
                *last = Some((budget, kept.clone()));
                kept
            }
        }
    }

    fn metrics(
        &self,
        policy: PolicyKind,
        budget: usize,
        oracle: &OracleData,
    ) -> Result<PolicyMetrics, PolicyError> {
        let kept = self.kept(policy, budget)?;
        let target = budget.min(self.n);
        let order = self.order(policy);
        let mut hit_rate = Array2::<f32>::ones((self.layers, self.heads));
        let mut mass_kept = Array2::<f32>::ones((self.layers, self.query_heads));
        if let Some((order, tables)) = order.and_then(|o| o.tables.as_ref().map(|t| (o, t))) {
            let n = self.n;
            Zip::indexed(&mut hit_rate).par_for_each(|(l, h), rate| {
                let row = l * self.heads + h;
                let ranking = order.rankings.row(l, h);
                let rank_of = &oracle.rank_of[row * n..(row + 1) * n];
                let diagonal = tables.diagonal_hits[row * (n + 1) + target] as usize;
                *rate =
                    hits(ranking, rank_of, kept[[l, h]], target, diagonal) as f32 / target as f32;
            });
            for ((l, q), share) in mass_kept.indexed_iter_mut() {
                let prefix = &tables.mass_prefix[(l * self.query_heads + q) * (n + 1)..][..n + 1];
                let c = kept[[l, owning_head(self.settings.granularity, q, self.group)]];
                *share = if prefix[n] > 0.0 {
                    prefix[c] / prefix[n]
                } else {
                    1.0
                };
            }
        }
        Ok(PolicyMetrics {
            policy,
            budget,
            mean_hit_rate: mean(hit_rate.view()),
            mean_mass_kept: mean(mass_kept.view()),
            hit_rate,
            mass_kept,
            kv_bytes: kept.sum() * self.kv_entry_bytes,
            note: note(policy, budget, self.n, &self.settings, &kept),
        })
    }
}

/// The ordering of `kind`, and Ada-KV's tables when `with_ada` and the ordering is SnapKV's.
fn build_order(
    kind: OrderKind,
    inputs: &ScoreInputs,
    settings: &PolicySettings,
    with_ada: bool,
) -> Result<(Rankings, Option<adakv::AdaTables>), PolicyError> {
    let (layers, heads, n) = (inputs.layers(), inputs.heads(settings), inputs.prompt_len());
    let window = inputs.window(settings);
    let rankings = match kind {
        OrderKind::Streaming => repeated(layers, heads, &streaming_llm::ranking(n, settings.sinks)),
        OrderKind::Accumulated => window_first(&h2o::scores(inputs, settings)?, n, window),
        OrderKind::Window { pooled } => {
            let pooling = if pooled {
                settings.pooling
            } else {
                Pooling::None
            };
            let scores = snapkv::scores(inputs, settings, pooling, "SnapKV")?;
            let rankings = window_first(&scores, n, window);
            let tables =
                (pooled && with_ada).then(|| adakv::AdaTables::new(&scores, &rankings, window));
            return Ok((rankings, tables));
        }
        OrderKind::Soft => {
            let scores = judgeq::scores(inputs, settings)?;
            if settings.judgeq_keep_window {
                window_first(&scores, n, window)
            } else {
                whole(&scores)
            }
        }
        OrderKind::Decoded => whole(&oracle::scores(inputs, settings)?),
        OrderKind::Random => random_rankings(layers, heads, n, settings.random_seed),
    };
    Ok((rankings, None))
}

/// Gives every ordering its hit-rate and mass tables against the Oracle's ordering.
fn attach_metric_tables(
    orders: &mut [Order],
    decoded: &ScoreGrid,
    settings: &PolicySettings,
    group: usize,
) -> Result<OracleData, PolicyError> {
    let oracle_rankings = orders
        .iter()
        .find(|o| o.kind == OrderKind::Decoded)
        .map(|o| &o.rankings)
        .ok_or(PolicyError::NotInBank(PolicyKind::Oracle))?;
    let rank_of = inverse(oracle_rankings);
    let tables: Vec<MetricTables> = orders
        .iter()
        .map(|order| MetricTables {
            diagonal_hits: diagonal_hits(&order.rankings, oracle_rankings, &rank_of),
            mass_prefix: mass_prefix(&order.rankings, decoded.view(), settings, group),
        })
        .collect();
    for (order, tables) in orders.iter_mut().zip(tables) {
        order.tables = Some(tables);
    }
    Ok(OracleData { rank_of })
}

/// `|first c of ranking ∩ first target of the oracle's|`, given `diagonal` = the same with
/// `c = target`, counted over the fewest positions: the prefix, the suffix, or the span between
/// `c` and `target`. `rank_of` is the oracle's rank of each position.
fn hits(ranking: &[u32], rank_of: &[u32], c: usize, target: usize, diagonal: usize) -> usize {
    let n = ranking.len();
    let in_oracle = |span: &[u32]| {
        span.iter()
            .filter(|&&p| (rank_of[p as usize] as usize) < target)
            .count()
    };
    let from_diagonal = c.abs_diff(target);
    if from_diagonal <= c.min(n - c) {
        if c >= target {
            diagonal + in_oracle(&ranking[target..c])
        } else {
            diagonal - in_oracle(&ranking[c..target])
        }
    } else if c <= n - c {
        in_oracle(&ranking[..c])
    } else {
        target - in_oracle(&ranking[c..])
    }
}

/// The same ordering in every row.
fn repeated(layers: usize, heads: usize, order: &[u32]) -> Rankings {
    Rankings {
        n: order.len(),
        heads,
        data: order.repeat(layers * heads),
    }
}

/// Window positions from the most recent back, then the scored range `[0, n − w)` by score.
/// `scores` is `[layers, heads, n − w]`.
fn window_first(scores: &ScoreGrid, n: usize, window: usize) -> Rankings {
    let (layers, heads, _) = scores.dim();
    let mut data = vec![0u32; layers * heads * n];
    data.par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(row, out)| {
            let (l, h) = (row / heads, row % heads);
            let recent = (n - window..n).rev().map(|p| p as u32);
            let ranked = rank_desc(scores.index_axis(Axis(0), l).index_axis(Axis(0), h));
            for (slot, pos) in out.iter_mut().zip(recent.chain(ranked)) {
                *slot = pos;
            }
        });
    Rankings { n, heads, data }
}

/// Every position by score; `scores` is `[layers, heads, n]`.
fn whole(scores: &ScoreGrid) -> Rankings {
    let n = scores.dim().2;
    window_first(scores, n, 0)
}

fn random_rankings(layers: usize, heads: usize, n: usize, seed: u64) -> Rankings {
    let mut data = vec![0u32; layers * heads * n];
    data.par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(row, out)| {
            out.copy_from_slice(&random::permutation(n, seed, row / heads, row % heads));
        });
    Rankings { n, heads, data }
}

/// Rank of every position in every row.
fn inverse(rankings: &Rankings) -> Vec<u32> {
    let n = rankings.n;
    let mut rank_of = vec![0u32; rankings.data.len()];
    rank_of
        .par_chunks_mut(n.max(1))
        .zip(rankings.data.par_chunks(n.max(1)))
        .for_each(|(ranks, order)| {
            for (i, &p) in order.iter().enumerate() {
                ranks[p as usize] = i as u32;
            }
        });
    rank_of
}

/// `|first c of rankings ∩ first c of oracle|` for `c = 0..=n`, per row.
fn diagonal_hits(rankings: &Rankings, oracle: &Rankings, oracle_rank: &[u32]) -> Vec<u32> {
    let n = rankings.n;
    let own_rank = inverse(rankings);
    let mut hits = vec![0u32; (rankings.data.len() / n.max(1)) * (n + 1)];
    hits.par_chunks_mut(n + 1)
        .enumerate()
        .for_each(|(row, out)| {
            let range = row * n..(row + 1) * n;
            let (mine, theirs) = (&rankings.data[range.clone()], &oracle.data[range.clone()]);
            let (my_rank, their_rank) = (&own_rank[range.clone()], &oracle_rank[range]);
            for i in 0..n {
                let (x, o) = (mine[i] as usize, theirs[i] as usize);
                let gained = u32::from(their_rank[x] as usize <= i)
                    + u32::from(my_rank[o] as usize <= i)
                    - u32::from(x == o);
                out[i + 1] = out[i] + gained;
            }
        });
    hits
}

/// Prefix sums of each query head's decoded attention along its owning row's ordering.
fn mass_prefix(
    rankings: &Rankings,
    decoded: ArrayView3<f32>,
    settings: &PolicySettings,
    group: usize,
) -> Vec<f32> {
    let (layers, query_heads, n) = decoded.dim();
    let mut prefix = vec![0f32; layers * query_heads * (n + 1)];
    prefix
        .par_chunks_mut(n + 1)
        .enumerate()
        .for_each(|(row, out)| {
            let (l, q) = (row / query_heads, row % query_heads);
            let mass = decoded.index_axis(Axis(0), l);
            let mass = mass.index_axis(Axis(0), q);
            let mut total = 0f64;
            for (slot, &p) in out[1..]
                .iter_mut()
                .zip(rankings.row(l, owning_head(settings.granularity, q, group)))
            {
                total += f64::from(mass[p as usize]);
                *slot = total as f32;
            }
        });
    prefix
}

/// Mask keeping the first `kept[l, h]` positions of every row's ordering.
fn prefix_mask(rankings: &Rankings, kept: &Array2<usize>, n: usize) -> KeepMask {
    let (layers, heads) = kept.dim();
    let mut mask = Array3::from_elem((layers, heads, n), false);
    mask.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(l, mut layer)| {
            for (h, mut row) in layer.outer_iter_mut().enumerate() {
                let c = kept[[l, h]].min(n);
                let order = rankings.row(l, h);
                if let Some(slice) = row.as_slice_mut() {
                    if c <= n / 2 {
                        for &p in &order[..c] {
                            slice[p as usize] = true;
                        }
                    } else {
                        slice.fill(true);
                        for &p in &order[c..] {
                            slice[p as usize] = false;
                        }
                    }
                }
            }
        });
    mask
}
