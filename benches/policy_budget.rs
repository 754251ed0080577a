//! What one move of the GUI's budget slider costs on an 8,192-token prompt with the default
//! model's shape (30 layers, 9 query heads, 3 KV heads; 32 window rows, 32 soft rows, 64 decoded
//! rows): every policy's keep mask, as the explorer asks for it (`PolicyBank::select_live`,
//! which moves the previous budget's mask), plus `PolicyBank::evaluate` (hit rate, mass kept, KV
//! bytes) for every layer and head. A measured change either jumps from budget 64 to the
//! benchmark's budget (the larger budget needs the more work, in masks and metrics) or drags to it
//! from 3% below.
//! Also the one-off bank construction. The target is 16 ms per budget
//! change (one frame at 60 fps) on 2 cores. The session carries drawn keys, value norms and
//! query statistics so that kvpress's policies rank too; their heads are 16 wide (the model's
//! are 64) to keep the drawing quick, which makes ExpectedAttention's share of the bank
//! construction smaller than on the model, but not a budget change, which never rescores.
//!
//! Run: `cargo bench --bench policy_budget`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use judgeq::attention::{Granularity, GroupReduce};
use judgeq::policy::{PolicyBank, PolicyId, PolicySettings, ScoreInputs};
use judgeq::session::{
    PrefillCapture, RepeatCapture, Session, SyntheticSpec, synthetic, synthetic_prefill_inputs,
};

/// The budget a measured jump starts from: each measured iteration is one slider move from it to
/// the benchmark's budget (the move back is not timed).
const JUMP_FROM: usize = 64;

/// A measured drag moves the slider up by `1/DRAG_STEP` of the budget (about 3%): a small drag.
const DRAG_STEP: usize = 32;

fn session() -> Session {
    let spec = SyntheticSpec {
        seed: 1,
        layers: 30,
        query_heads: 9,
        kv_heads: 3,
        n_prompt: 8192,
        window: 32,
        soft: 32,
        decoded: 64,
    };
    let mut session = synthetic(&spec).expect("valid synthetic spec");
    let everything = PrefillCapture {
        keys: true,
        values: true,
        value_norms: true,
        projected_value_norms: true,
        query_statistics: true,
        lookahead: None,
        repeat: Some(RepeatCapture {
            n_sink: 4,
            chunk_size: 2048,
        }),
    };
    session.prefill_inputs = synthetic_prefill_inputs(&spec, 16, everything);
    // Draft rows for Lookahead Q-Cache: any rows over the prompt do (the soft tokens').
    session.lookahead = session.soft.clone();
    session
}

/// One budget change as the explorer makes it: every policy's live selection (its mask moved
/// from the previous budget) and the metrics of every policy.
fn budget_change(bank: &PolicyBank, budget: usize) {
    let budget = bank.budget(budget).expect("a budget of at least 1");
    for &policy in bank.policies() {
        black_box(bank.select_live(policy, budget).expect("selection"));
    }
    black_box(bank.evaluate(budget).expect("metrics"));
}

fn bench(c: &mut Criterion) {
    let session = session();
    let granularities = [
        ("query-head", PolicySettings::default()),
        (
            "kv-head",
            PolicySettings {
                granularity: Granularity::KvHead(GroupReduce::Mean),
                ..PolicySettings::default()
            },
        ),
    ];
    let mut group = c.benchmark_group("budget_change_8192");
    group.sample_size(20);
    for (name, settings) in &granularities {
        let inputs = ScoreInputs::from_session(&session);
        let bank = PolicyBank::new(&inputs, settings, &PolicyId::all()).expect("bank");
        for budget in [128, 512, 2048, 4096] {
            // Every measured change moves the slider from `from` to `budget`; moving it back is
            // the untimed set-up.
            for (kind, from) in [("jump", JUMP_FROM), ("drag", budget - budget / DRAG_STEP)] {
                let id = BenchmarkId::new(format!("{name}/{kind}"), budget);
                group.bench_with_input(id, &budget, |b, &budget| {
                    b.iter_batched(
                        || budget_change(&bank, from),
                        |()| budget_change(&bank, budget),
                        BatchSize::PerIteration,
                    );
                });
            }
        }
    }
    group.finish();

    let mut group = c.benchmark_group("bank_construction_8192");
    group.sample_size(10);
    for (name, settings) in &granularities {
        group.bench_function(*name, |b| {
            b.iter(|| {
                // Fresh inputs: the source sums are part of the construction.
                let inputs = ScoreInputs::from_session(&session);
                black_box(PolicyBank::new(&inputs, settings, &PolicyId::all()).expect("bank"))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
