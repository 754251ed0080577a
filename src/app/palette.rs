//! Fixed colours: one per policy (strips, highlights, curves and the policy list agree).

use egui::Color32;

use crate::policy::PolicyKind;

/// The colour that marks `policy` everywhere in the explorer.
pub fn policy_colour(policy: PolicyKind) -> Color32 {
    match policy {
        PolicyKind::FullKv => Color32::from_rgb(150, 150, 150),
        PolicyKind::StreamingLlm => Color32::from_rgb(31, 119, 180),
        PolicyKind::H2o => Color32::from_rgb(255, 127, 14),
        PolicyKind::H2oWindow => Color32::from_rgb(188, 189, 34),
        PolicyKind::SnapKv => Color32::from_rgb(44, 160, 44),
        PolicyKind::PyramidKv => Color32::from_rgb(140, 86, 75),
        PolicyKind::AdaKv => Color32::from_rgb(227, 119, 194),
        PolicyKind::JudgeQ => Color32::from_rgb(214, 39, 40),
        PolicyKind::Oracle => Color32::from_rgb(148, 103, 189),
        PolicyKind::Random => Color32::from_rgb(23, 190, 207),
    }
}
