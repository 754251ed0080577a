//! `--help` text made from the policy registry: the ids `--policies` takes, the named variants
//! of `judgeq tasks`, and the parameters `--param` sets, so that a new policy shows up here
//! without this file naming it; and the `--ratios` text every subcommand with budgets shares.

use judgeq::eval::variant_ids;
use judgeq::policy::{Input, PolicyId, PolicySettings};

/// Help of `--ratios`, for every subcommand that takes `--budgets`.
pub const RATIOS_HELP: &str = "Budgets as ratios removed instead of --budgets, comma-separated: \
    the share of each prompt's KV entries evicted, in [0, 1) (kvpress's compression_ratio). A \
    prompt of n tokens (the whole prompt, question included: every key the policies rank) keeps \
    max(1, int(n·(1−r))) entries per layer and head, e.g. 0.75 keeps 250 of 1000";

/// Help of `judgeq evict --policies`.
pub fn policies_help() -> String {
    let all = PolicyId::all();
    let left_out: Vec<&str> = all
        .iter()
        .filter(|p| !p.compared_by_default())
        .map(|p| p.id())
        .collect();
    format!(
        "Policies to compare, comma-separated ({}) [default: all but {}; {} only with soft tokens]",
        ids(&all).join(", "),
        left_out.join(", "),
        needing_soft_tokens(&all).join(", ")
    )
}

/// Help of `judgeq tasks ... --policies`.
pub fn methods_help() -> String {
    let all = PolicyId::all();
    let methods: Vec<PolicyId> = all
        .iter()
        .copied()
        .filter(|&p| p != PolicyId::FULL_KV)
        .collect();
    format!(
        "Methods, comma-separated: policy ids ({}) or variants ({}); Full KV is always reported \
         [default: the Judge Q paper's comparison, {} only with soft tokens]",
        ids(&methods).join(", "),
        variant_ids().join(", "),
        needing_soft_tokens(&all).join(", ")
    )
}

/// Help of `judgeq eval --policies`.
pub fn eval_methods_help() -> String {
    format!(
        "Methods, comma-separated: policy ids ({}) or variants ({}) [default: the Judge Q paper's \
         comparison, its Judge Q rows only with --soft; {} need --soft]",
        ids(&PolicyId::all()).join(", "),
        variant_ids().join(", "),
        needing_soft_tokens(&PolicyId::all()).join(", ")
    )
}

/// Help of `--param`: every registered parameter, its policy, default and meaning.
pub fn params_help() -> String {
    let mut seen: Vec<&str> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    for policy in PolicyId::all() {
        for &param in policy.params() {
            if seen.contains(&param.key()) {
                continue;
            }
            seen.push(param.key());
            lines.push(format!(
                "{} ({}, {}, default {}): {}",
                param.key(),
                policy.label(),
                param.kind(),
                param.default_value(),
                param.help()
            ));
        }
    }
    format!(
        "A policy parameter, KEY=VALUE, repeatable; applied after the named flags. Known: {}",
        lines.join("; ")
    )
}

fn ids(policies: &[PolicyId]) -> Vec<&'static str> {
    policies.iter().map(|p| p.id()).collect()
}

fn needing_soft_tokens(policies: &[PolicyId]) -> Vec<&'static str> {
    let settings = PolicySettings::default();
    policies
        .iter()
        .filter(|p| p.needs(&settings).contains(&Input::Soft))
        .map(|p| p.id())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_what_the_registry_holds() {
        assert_eq!(
            policies_help(),
            "Policies to compare, comma-separated (full, streamingllm, h2o, h2o-window, snapkv, \
             pyramidkv, adakv, knorm, keydiff, tova, lagkv, expected-attention, \
             adakv-expected-attention, lookahead, kvzip, criticalkv-snapkv, judgeq, \
             criticalkv-judgeq, oracle, oracle-pooled, random) [default: all but knorm, keydiff, \
             tova, lagkv, expected-attention, adakv-expected-attention, lookahead, kvzip, \
             criticalkv-snapkv, criticalkv-judgeq, oracle-pooled, random; judgeq, \
             criticalkv-judgeq only with soft tokens]"
        );
        let methods = methods_help();
        assert!(methods.contains("(streamingllm, h2o, "), "{methods}");
        assert!(
            methods.contains("snapkv-nopool, snapkv-chunk, judgeq-window"),
            "{methods}"
        );
        let eval_methods = eval_methods_help();
        assert!(
            eval_methods.contains("(full, streamingllm, h2o, ")
                && eval_methods.contains("kvzip, criticalkv-snapkv, judgeq, ")
                && eval_methods.contains("judgeq-layer0-window")
                && eval_methods.ends_with("judgeq, criticalkv-judgeq need --soft]"),
            "{eval_methods}"
        );
        let params = params_help();
        for param in judgeq::policy::policies::params() {
            assert!(params.contains(param.key()), "{params}");
        }
        assert!(
            params.contains("sinks (StreamingLLM, a whole number, default 4)"),
            "{params}"
        );
    }
}
