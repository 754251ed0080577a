//! Methods named on the command line (`--policies` of `judgeq eval` and `judgeq tasks`): policy
//! ids or their named variants, at settings made from the shared options and `--param`.

use anyhow::Context as _;
use judgeq::eval::{Method, method_by_id, variant_ids};
use judgeq::policy::{Input, PolicySettings};

/// The settings every method starts from: `base` with each `--param KEY=VALUE` assigned.
pub fn with_params(mut base: PolicySettings, params: &[String]) -> anyhow::Result<PolicySettings> {
    for assignment in params {
        base.assign(assignment)
            .with_context(|| format!("--param {assignment}"))?;
    }
    Ok(base)
}

/// The method of every id at `base`, in the order given. An unknown id, or a method that ranks
/// with soft tokens when there are none (`with_soft` false), is an error naming it.
pub fn methods_by_id(
    ids: &[String],
    base: &PolicySettings,
    with_soft: bool,
) -> anyhow::Result<Vec<Method>> {
    ids.iter()
        .map(|id| {
            let id = id.trim();
            let method = method_by_id(id, base).with_context(|| {
                format!(
                    "unknown method `{id}`: use a policy id or one of {}",
                    variant_ids().join(", ")
                )
            })?;
            if method.policy.needs(&method.settings).contains(&Input::Soft) && !with_soft {
                anyhow::bail!(
                    "the `{id}` rows need soft tokens: pass --soft FILE (without --no-soft, the default model gets the shipped ones; other models need a file)"
                );
            }
            Ok(method)
        })
        .collect()
}
