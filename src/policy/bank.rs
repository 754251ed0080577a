//! [`PolicyBank`]: every policy's order prepared once per session and settings, so that a
//! budget change re-derives every policy's mask and metrics without rescoring.
//!
//! Every policy's kept set at budget `B` is a prefix of its order in each `[layer, head]` row
//! ([`super::Order`]), at the counts its spread gives ([`super::Spread`]). The bank prepares each
//! policy through the [`super::Policy`] trait only, and stores, per distinct order (policies
//! that order alike share one):
//! - `|first c ∩ oracle's first c|` for every `c`, so the hit rate of a uniform budget is one
//!   lookup;
//! - the prefix sums of each query head's decoded attention along its row's ordering, so the
//!   attention mass kept is one lookup.
//!
//! A budget change then costs `O(1)` per row for uniform budgets, `O(min(c, n − c))` per row for
//! non-uniform counts' off-diagonal hits, one search per row for a spread by score
//! ([`super::head_shares`]), and for a live mask ([`PolicyBank::select_live`]) the entries
//! between the old and the new count of each row, or `O(n)` when writing it afresh is cheaper.
//!
//! A two-stage order (CriticalKV, [`Order::two_stage`]) keeps no prefix, so it has no tables:
//! its metrics are counted from its kept set at each budget, `O(n)` per row, over a copy of the
//! decoded attention the bank keeps only for such orders.

use std::sync::Arc;

use ndarray::{Array2, ArrayView3, Axis, Zip};
use rayon::prelude::*;

use super::interface::OrderContext;
use super::metrics::{PolicyMetrics, mean};
use super::policies::oracle::Oracle;
use super::prepared::{Prepared, require};
use super::ranking::Rankings;
use super::{Budget, Order, PolicyError, PolicyId, PolicySettings, ScoreInputs, Selection};
use crate::attention::{QuerySource, ScoreGrid, owning_head};

/// One distinct order and its metric tables.
struct OrderTables {
    order: Order,
    /// Absent when no policy of the bank selects a proper prefix of it (Full KV), or when the
    /// session has no decoded rows.
    tables: Option<MetricTables>,
}

/// Per-order tables for hit rate and attention mass.
struct MetricTables {
    /// `rows × (n + 1)`: `|first c of this ordering ∩ first c of the oracle's|`.
    diagonal_hits: Vec<u32>,
    /// `layers × query_heads × (n + 1)`: decoded attention of the query head on the first `c`
    /// positions of its owning row's ordering (accumulated in `f64`).
    mass_prefix: Vec<f32>,
}

/// What the oracle contributes to every metric.
struct OracleData {
    /// The oracle's order.
    order: Order,
    /// `rows × n`: the rank of each position in the oracle's ordering.
    rank_of: Vec<u32>,
}

/// Every requested policy prepared for one session and settings, for live budgets.
pub struct PolicyBank {
    policies: Vec<PolicyId>,
    prepared: Vec<Prepared>,
    settings: PolicySettings,
    layers: usize,
    heads: usize,
    query_heads: usize,
    group: usize,
    n: usize,
    kv_entry_bytes: usize,
    orders: Vec<OrderTables>,
    /// The decoded attention, kept only when some policy's order is two-stage (its metrics are
    /// counted from its kept set).
    decoded: Option<DecodedRows>,
    /// The oracle's ranks, or why there are none (no decoded rows).
    oracle: Result<OracleData, PolicyError>,
}

impl PolicyBank {
    /// Orders once everything `policies` need (the Oracle's order is always built when the
    /// session has decoded rows: the hit rate needs it). `O(n log n)` per row and distinct
    /// order; run it off the UI thread.
    pub fn new(
        inputs: &ScoreInputs,
        settings: &PolicySettings,
        policies: &[PolicyId],
    ) -> Result<Self, PolicyError> {
        settings.validate()?;
        inputs.check()?;
        let mut unique: Vec<PolicyId> = Vec::new();
        for &policy in policies {
            require(policy, inputs, settings)?;
            if !unique.contains(&policy) {
                unique.push(policy);
            }
        }
        let ctx = OrderContext::new(inputs, settings);
        let prepared = unique
            .iter()
            .map(|&policy| Prepared::new(policy, &ctx))
            .collect::<Result<Vec<_>, _>>()?;
        let decoded = inputs.source_sums(
            QuerySource::Decoded,
            "the hit rate and the attention mass kept",
        );
        let oracle_order = match decoded {
            Ok(_) => Some(ctx.order_of(&Oracle)?),
            Err(_) => None,
        };
        let mut orders: Vec<OrderTables> = Vec::new();
        let candidates = prepared.iter().map(|p| &p.order).chain(&oracle_order);
        for order in candidates {
            if !orders.iter().any(|o| o.order.same(order)) {
                orders.push(OrderTables {
                    order: order.clone(),
                    tables: None,
                });
            }
        }
        let (layers, heads, query_heads, n) = (
            inputs.layers(),
            inputs.heads(settings),
            inputs.query_heads(),
            inputs.prompt_len(),
        );
        let group = query_heads / inputs.kv_heads().max(1);
        let two_stage = prepared.iter().any(|p| p.order.is_two_stage());
        let decoded_copy = match (&decoded, two_stage) {
            (Ok(decoded), true) => Some(DecodedRows::new(decoded)),
            _ => None,
        };
        let oracle = match (decoded, &oracle_order) {
            (Ok(decoded), Some(oracle_order)) => Ok(attach_metric_tables(
                &mut orders,
                &prepared,
                oracle_order,
                decoded,
                settings,
                group,
            )),
            (Err(e), _) => Err(e),
            (Ok(_), None) => Err(PolicyError::NotInBank(PolicyId::ORACLE)),
        };
        Ok(Self {
            policies: unique,
            prepared,
            settings: settings.clone(),
            layers,
            heads,
            query_heads,
            group,
            n,
            kv_entry_bytes: inputs.kv_entry_bytes(),
            orders,
            decoded: decoded_copy,
            oracle,
        })
    }

    /// The policies this bank answers for, in the order given (duplicates removed).
    pub fn policies(&self) -> &[PolicyId] {
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

    /// `asked` entries per layer and head as a [`Budget`] over this bank's prompt.
    pub fn budget(&self, asked: usize) -> Result<Budget, PolicyError> {
        Budget::new(asked, self.n)
    }

    /// What `policy` keeps at `budget`: exactly [`super::select`]'s answer, in `O(n)` per row.
    pub fn select(&self, policy: PolicyId, budget: Budget) -> Result<Selection, PolicyError> {
        budget.check_prompt(self.n)?;
        Ok(self.prepared(policy)?.select(budget, &self.settings))
    }

    /// [`PolicyBank::select`] for a live budget (the explorer's slider): the answer is shared,
    /// and once every holder of the previous answer for `policy` has dropped it, its mask memory
    /// is reused, changing only the entries between the two budgets' counts.
    pub fn select_live(
        &self,
        policy: PolicyId,
        budget: Budget,
    ) -> Result<Arc<Selection>, PolicyError> {
        budget.check_prompt(self.n)?;
        Ok(self.prepared(policy)?.select_live(budget, &self.settings))
    }

    /// Hit rate, attention mass kept and KV bytes of every policy of the bank at `budget`.
    /// Needs decoded rows (the Oracle's kept set is the hit rate's reference).
    pub fn evaluate(&self, budget: Budget) -> Result<Vec<PolicyMetrics>, PolicyError> {
        budget.check_prompt(self.n)?;
        let oracle = self.oracle.as_ref().map_err(Clone::clone)?;
        Ok(self
            .prepared
            .par_iter()
            .map(|prepared| self.metrics(prepared, budget, oracle))
            .collect())
    }

    fn prepared(&self, policy: PolicyId) -> Result<&Prepared, PolicyError> {
        self.prepared
            .iter()
            .find(|p| p.policy == policy)
            .ok_or(PolicyError::NotInBank(policy))
    }

    fn metrics(&self, prepared: &Prepared, budget: Budget, oracle: &OracleData) -> PolicyMetrics {
        let kept = prepared.kept(budget);
        let target = budget.entries();
        let tables = self
            .orders
            .iter()
            .find(|o| o.order.same(&prepared.order))
            .and_then(|o| o.tables.as_ref());
        let mut hit_rate = Array2::<f32>::ones((self.layers, self.heads));
        let mut mass_kept = Array2::<f32>::ones((self.layers, self.query_heads));
        if let (true, Some(decoded)) = (prepared.order.is_two_stage(), &self.decoded) {
            let (hits, mass) = self.counted_metrics(prepared, &kept, target, oracle, decoded);
            hit_rate = hits;
            mass_kept = mass;
        } else if let Some(tables) = tables {
            let n = self.n;
            let rankings = prepared.order.rankings();
            Zip::indexed(&mut hit_rate).par_for_each(|(l, h), rate| {
                let row = l * self.heads + h;
                let ranking = rankings.row(l, h);
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
        PolicyMetrics {
            policy: prepared.policy,
            budget,
            mean_hit_rate: mean(hit_rate.view()),
            mean_mass_kept: mean(mass_kept.view()),
            hit_rate,
            mass_kept,
            kv_bytes: kept.sum() * self.kv_entry_bytes,
            note: prepared.note(budget, &kept, &self.settings),
        }
    }
}

impl PolicyBank {
    /// Hit rate per row and attention mass kept per query head of a two-stage order at counts
    /// `kept`, counted from its kept set: the share of the oracle's first `target` positions
    /// kept, and the decoded attention on the kept positions over all of it. `O(n)` per row.
    fn counted_metrics(
        &self,
        prepared: &Prepared,
        kept: &Array2<usize>,
        target: usize,
        oracle: &OracleData,
        decoded: &DecodedRows,
    ) -> (Array2<f32>, Array2<f32>) {
        let n = self.n;
        // The query heads each row's kept set serves.
        let mut served: Vec<Vec<usize>> = vec![Vec::new(); self.heads];
        for q in 0..self.query_heads {
            served[owning_head(self.settings.granularity, q, self.group)].push(q);
        }
        let oracle_rankings = oracle.order.rankings();
        // The mask of the same counts, when the live selection has it.
        let live = prepared.live_at(kept);
        // One pass per row: mark its kept set once (or read it from the live mask), count the
        // oracle's first `target` among the marks and sum the served query heads' decoded
        // attention on them, each row on its own thread with its own marks.
        let per_row: Vec<(f32, Vec<f32>)> = (0..self.layers * self.heads)
            .into_par_iter()
            .map_init(
                || vec![false; n],
                |scratch, row| {
                    let (l, h) = (row / self.heads, row % self.heads);
                    let live_row = live
                        .as_ref()
                        .and_then(|s| s.mask.slice(ndarray::s![l, h, ..]).to_slice());
                    let marks: &[bool] = match live_row {
                        Some(marks) => marks,
                        None => {
                            scratch.fill(false);
                            prepared.order.mark_kept(l, h, kept[[l, h]], scratch);
                            scratch
                        }
                    };
                    let hits = oracle_rankings.row(l, h)[..target]
                        .iter()
                        .filter(|&&p| marks[p as usize])
                        .count();
                    let shares = served[h]
                        .iter()
                        .map(|&q| {
                            let (values, total) = decoded.row(l * self.query_heads + q);
                            if total > 0.0 {
                                (masked_sum(marks, values) / total) as f32
                            } else {
                                1.0
                            }
                        })
                        .collect();
                    (hits as f32 / target as f32, shares)
                },
            )
            .collect();
        let mut hit_rate = Array2::<f32>::zeros((self.layers, self.heads));
        let mut mass_kept = Array2::<f32>::ones((self.layers, self.query_heads));
        for (row, (hits, shares)) in per_row.into_iter().enumerate() {
            let (l, h) = (row / self.heads, row % self.heads);
            hit_rate[[l, h]] = hits;
            for (&q, share) in served[h].iter().zip(shares) {
                mass_kept[[l, q]] = share;
            }
        }
        (hit_rate, mass_kept)
    }
}

/// The sum of `values` where `marks` is set, in `f64`, over eight running sums (so that the
/// additions need not wait for each other).
fn masked_sum(marks: &[bool], values: &[f32]) -> f64 {
    const LANES: usize = 8;
    let mut sums = [0f64; LANES];
    let (marks_body, marks_tail) = marks.split_at(marks.len() / LANES * LANES);
    let (values_body, values_tail) = values.split_at(marks_body.len());
    for (k, v) in marks_body
        .chunks_exact(LANES)
        .zip(values_body.chunks_exact(LANES))
    {
        for lane in 0..LANES {
            sums[lane] += f64::from(v[lane] * f32::from(u8::from(k[lane])));
        }
    }
    let tail: f64 = marks_tail
        .iter()
        .zip(values_tail)
        .map(|(&k, &v)| if k { f64::from(v) } else { 0.0 })
        .sum();
    sums.iter().sum::<f64>() + tail
}

/// The decoded attention as flat `[layers × query_heads]` rows of `n`, with each row's total.
struct DecodedRows {
    n: usize,
    values: Vec<f32>,
    totals: Vec<f64>,
}

impl DecodedRows {
    fn new(decoded: &ScoreGrid) -> Self {
        let n = decoded.dim().2;
        let values: Vec<f32> = decoded.iter().copied().collect();
        let totals = values
            .chunks(n.max(1))
            .map(|row| row.iter().map(|&v| f64::from(v)).sum())
            .collect();
        Self { n, values, totals }
    }

    /// Row `row` (`layer · query_heads + query head`) and its total.
    fn row(&self, row: usize) -> (&[f32], f64) {
        (
            &self.values[row * self.n..(row + 1) * self.n],
            self.totals[row],
        )
    }
}

/// Gives every order some policy selects proper prefixes of its hit-rate and mass tables
/// against the Oracle's order.
fn attach_metric_tables(
    orders: &mut [OrderTables],
    prepared: &[Prepared],
    oracle: &Order,
    decoded: &ScoreGrid,
    settings: &PolicySettings,
    group: usize,
) -> OracleData {
    let oracle_rankings = oracle.rankings();
    let rank_of = inverse(oracle_rankings);
    let needed = |order: &Order| {
        prepared
            .iter()
            .any(|p| p.order.same(order) && !p.keeps_everything() && !order.is_two_stage())
            || order.same(oracle)
    };
    let tables: Vec<Option<MetricTables>> = orders
        .iter()
        .map(|o| {
            needed(&o.order).then(|| MetricTables {
                diagonal_hits: diagonal_hits(o.order.rankings(), oracle_rankings, &rank_of),
                mass_prefix: mass_prefix(o.order.rankings(), decoded.view(), settings, group),
            })
        })
        .collect();
    for (order, tables) in orders.iter_mut().zip(tables) {
        order.tables = tables;
    }
    OracleData {
        order: oracle.clone(),
        rank_of,
    }
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
