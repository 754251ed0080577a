//! Fixed colours: one per policy, from the registry (strips, highlights, curves and the policy
//! list agree).

use egui::Color32;

use crate::policy::PolicyId;

/// The colour that marks `policy` everywhere in the explorer.
pub fn policy_colour(policy: PolicyId) -> Color32 {
    let [r, g, b] = policy.colour();
    Color32::from_rgb(r, g, b)
}
