//! The registry: every policy, one file each, in display order, with its colour in the
//! explorer. The CLI (`--policies`, `--param`, `--help`), the explorer (policy lists, colours,
//! settings, saved state), `eval` and `judgeq tasks` (ids and named variants) and the exports
//! (ids, labels, parameters in manifests) all read this list and nothing else.
//!
//! Adding a policy: write `<name>.rs` here with one type implementing [`Policy`], then add its
//! `mod` line and its [`REGISTRY`] line below. Nothing else needs to change (ARCHITECTURE.md
//! walks through an example; `first_b.rs`, registered in test builds only, is that example).

pub mod adakv;
pub mod adakv_expected_attention;
pub mod criticalkv_judgeq;
pub mod criticalkv_snapkv;
pub mod expected_attention;
pub mod full_kv;
pub mod h2o;
pub mod h2o_window;
pub mod judgeq;
pub mod keydiff;
pub mod knorm;
pub mod kvzip;
pub mod lagkv;
pub mod lookahead;
pub mod oracle;
pub mod pyramidkv;
pub mod random;
pub mod snapkv;
pub mod streaming_llm;
pub mod tova;

#[cfg(test)]
pub(crate) mod first_b;

use std::sync::OnceLock;

use super::PolicyId;
use super::interface::{Policy, Variant};
use super::params::Param;

/// One registered policy and how the explorer and the CLI show it.
pub struct Registered {
    /// The policy.
    pub policy: &'static dyn Policy,
    /// Its colour in the explorer's strips, curves and lists (RGB).
    pub colour: [u8; 3],
    /// Whether `judgeq evict` compares it when no `--policies` are given.
    pub compared_by_default: bool,
}

/// `policy` in colour `colour`, compared by default.
const fn entry(policy: &'static dyn Policy, colour: [u8; 3]) -> Registered {
    Registered {
        policy,
        colour,
        compared_by_default: true,
    }
}

impl Registered {
    /// The same entry, left out of `judgeq evict`'s default comparison.
    const fn not_by_default(self) -> Registered {
        Registered {
            compared_by_default: false,
            ..self
        }
    }
}

/// Every policy, in display order: one line each.
pub static REGISTRY: &[Registered] = &[
    entry(&full_kv::FullKv, [150, 150, 150]),
    entry(&streaming_llm::StreamingLlm, [31, 119, 180]),
    entry(&h2o::H2o, [255, 127, 14]),
    entry(&h2o_window::H2oWindow, [188, 189, 34]),
    entry(&snapkv::SnapKv, [44, 160, 44]),
    entry(&pyramidkv::PyramidKv, [140, 86, 75]),
    entry(&adakv::AdaKv, [227, 119, 194]),
    entry(&knorm::Knorm, [166, 118, 29]).not_by_default(),
    entry(&keydiff::KeyDiff, [102, 166, 30]).not_by_default(),
    entry(&tova::Tova, [231, 41, 138]).not_by_default(),
    entry(&lagkv::LagKv, [230, 171, 2]).not_by_default(),
    entry(&expected_attention::ExpectedAttention, [27, 158, 119]).not_by_default(),
    entry(
        &adakv_expected_attention::AdaKvExpectedAttention,
        [117, 112, 179],
    )
    .not_by_default(),
    entry(&lookahead::Lookahead, [0, 128, 128]).not_by_default(),
    entry(&kvzip::Kvzip, [90, 90, 200]).not_by_default(),
    entry(&criticalkv_snapkv::CriticalKvSnapKv, [102, 194, 165]).not_by_default(),
    entry(&judgeq::JudgeQ, [214, 39, 40]),
    entry(&criticalkv_judgeq::CriticalKvJudgeQ, [252, 141, 98]).not_by_default(),
    entry(&oracle::Oracle, [148, 103, 189]),
    entry(&oracle::PooledOracle, [197, 176, 213]).not_by_default(),
    entry(&random::Random, [23, 190, 207]).not_by_default(),
    #[cfg(test)]
    entry(&first_b::FirstB, [120, 120, 40]).not_by_default(),
];

/// The colour of a policy missing from the registry.
pub(crate) const UNREGISTERED_COLOUR: [u8; 3] = [128, 128, 128];

/// The policies the crate names in its own defaults (the explorer's first comparison, the
/// figure's strips, Full KV beside every task table, the Oracle behind the hit rate).
impl PolicyId {
    /// Full KV.
    pub const FULL_KV: PolicyId = PolicyId::of(&full_kv::FullKv);
    /// StreamingLLM.
    pub const STREAMING_LLM: PolicyId = PolicyId::of(&streaming_llm::StreamingLlm);
    /// H2O at prefill.
    pub const H2O: PolicyId = PolicyId::of(&h2o::H2o);
    /// H2O over the last window.
    pub const H2O_WINDOW: PolicyId = PolicyId::of(&h2o_window::H2oWindow);
    /// SnapKV.
    pub const SNAPKV: PolicyId = PolicyId::of(&snapkv::SnapKv);
    /// PyramidKV.
    pub const PYRAMIDKV: PolicyId = PolicyId::of(&pyramidkv::PyramidKv);
    /// Ada-KV.
    pub const ADAKV: PolicyId = PolicyId::of(&adakv::AdaKv);
    /// Lookahead Q-Cache.
    pub const LOOKAHEAD: PolicyId = PolicyId::of(&lookahead::Lookahead);
    /// KVzip.
    pub const KVZIP: PolicyId = PolicyId::of(&kvzip::Kvzip);
    /// Judge Q.
    pub const JUDGEQ: PolicyId = PolicyId::of(&judgeq::JudgeQ);
    /// The Oracle.
    pub const ORACLE: PolicyId = PolicyId::of(&oracle::Oracle);
    /// Random.
    pub const RANDOM: PolicyId = PolicyId::of(&random::Random);
}

/// Every registered policy's parameters, in registry order, each key once.
pub fn params() -> &'static [Param] {
    static PARAMS: OnceLock<Vec<Param>> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let mut all: Vec<Param> = Vec::new();
        for param in REGISTRY.iter().flat_map(|r| r.policy.params()) {
            if !all.iter().any(|p| p.key() == param.key()) {
                all.push(*param);
            }
        }
        all
    })
}

/// The registered parameter with `key`.
pub fn param(key: &str) -> Option<Param> {
    params().iter().copied().find(|p| p.key() == key)
}

/// Every registered policy's named variants, in registry order, with their policy.
pub fn variants() -> Vec<(PolicyId, &'static Variant)> {
    REGISTRY
        .iter()
        .flat_map(|r| {
            r.policy
                .variants()
                .iter()
                .map(move |v| (PolicyId::of(r.policy), v))
        })
        .collect()
}
