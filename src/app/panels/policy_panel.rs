//! The policy list (colours, which ones to compare) and the policy settings.

use egui::{ComboBox, DragValue, Sense, Ui, vec2};

use crate::app::palette::policy_colour;
use crate::app::session_view::BankStatus;
use crate::app::state::State;
use crate::attention::{Granularity, GroupOrder, GroupReduce, Pooling};
use crate::policy::{PolicyKind, PolicySettings};

/// One line about what a policy keeps, for tooltips.
fn describe(policy: PolicyKind) -> &'static str {
    match policy {
        PolicyKind::FullKv => "Keeps everything (the reference answer)",
        PolicyKind::StreamingLlm => "The first sink tokens and the most recent ones",
        PolicyKind::H2o => "The window plus the keys every prompt query attended to most",
        PolicyKind::H2oWindow => "The window plus the top keys by unpooled window attention",
        PolicyKind::SnapKv => "The window plus the top keys by pooled window attention",
        PolicyKind::PyramidKv => "SnapKV with larger budgets in early layers",
        PolicyKind::AdaKv => "SnapKV scores with budgets shared out between the heads of a layer",
        PolicyKind::JudgeQ => "The top keys by the soft tokens' attention (needs soft tokens)",
        PolicyKind::Oracle => "The top keys by the decoded answer's attention: the upper bound",
        PolicyKind::Random => "A seeded random subset",
    }
}

/// Draws the policy list and settings. `available` are the policies the session can rank.
pub fn policy_panel(
    ui: &mut Ui,
    state: &mut State,
    available: &[PolicyKind],
    bank: Option<&BankStatus>,
) {
    ui.heading("Policies");
    ui.weak("Ticked policies are compared in the metrics, curves and answers");
    for policy in PolicyKind::ALL {
        let enabled = available.is_empty() || available.contains(&policy);
        ui.horizontal(|ui| {
            let (swatch, _) = ui.allocate_exact_size(vec2(12.0, 12.0), Sense::hover());
            ui.painter().rect_filled(swatch, 2.0, policy_colour(policy));
            let mut on = state.compared.contains(&policy);
            let response = ui
                .add_enabled(enabled, egui::Checkbox::new(&mut on, policy.label()))
                .on_hover_text(describe(policy))
                .on_disabled_hover_text("This session has no soft tokens");
            if response.changed() {
                if on {
                    state.compared.push(policy);
                    state.compared.sort();
                } else {
                    state.compared.retain(|p| *p != policy);
                }
            }
        });
    }
    match bank {
        Some(BankStatus::Building) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Ranking keys for every policy…");
            });
        }
        Some(BankStatus::Failed(message)) => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("Policies unavailable: {message}"),
            );
        }
        Some(BankStatus::Ready) | None => {}
    }
    egui::CollapsingHeader::new("Settings")
        .default_open(true)
        .show(ui, |ui| settings_ui(ui, &mut state.policy));
}

fn settings_ui(ui: &mut Ui, settings: &mut PolicySettings) {
    egui::Grid::new("policy_settings")
        .num_columns(2)
        .spacing([8.0, 4.0])
        .show(ui, |ui| {
            let label = ui.label("Window");
            ui.add(DragValue::new(&mut settings.window).range(0..=4096))
                .labelled_by(label.id)
                .on_hover_text("Recent entries SnapKV, H2O, PyramidKV and Ada-KV always keep");
            ui.end_row();

            let label = ui.label("Pooling");
            ui.horizontal(|ui| {
                let kernel = match settings.pooling {
                    Pooling::None => 7,
                    other => odd(other.kernel()),
                };
                ComboBox::from_id_salt("pooling")
                    .selected_text(pooling_name(settings.pooling))
                    .width(60.0)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut settings.pooling, Pooling::None, "none");
                        ui.selectable_value(&mut settings.pooling, Pooling::Max { kernel }, "max");
                        ui.selectable_value(&mut settings.pooling, Pooling::Avg { kernel }, "avg");
                    })
                    .response
                    .labelled_by(label.id);
                if let Pooling::Max { kernel } | Pooling::Avg { kernel } = &mut settings.pooling {
                    ComboBox::from_label("kernel")
                        .selected_text(kernel.to_string())
                        .width(40.0)
                        .show_ui(ui, |ui| {
                            for k in [3, 5, 7, 9, 11, 15, 21, 31] {
                                ui.selectable_value(kernel, k, k.to_string());
                            }
                        });
                }
            });
            ui.end_row();

            let label = ui.label("Granularity");
            ComboBox::from_id_salt("granularity")
                .selected_text(granularity_name(settings.granularity))
                .width(150.0)
                .show_ui(ui, |ui| {
                    for g in [
                        Granularity::QueryHead,
                        Granularity::KvHead(GroupReduce::Mean),
                        Granularity::KvHead(GroupReduce::Max),
                    ] {
                        ui.selectable_value(&mut settings.granularity, g, granularity_name(g));
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();

            if matches!(settings.granularity, Granularity::KvHead(_)) {
                let label = ui.label("Group reduce");
                ComboBox::from_id_salt("group_order")
                    .selected_text(match settings.group_order {
                        GroupOrder::BeforePooling => "before pooling",
                        GroupOrder::AfterPooling => "after pooling",
                    })
                    .show_ui(ui, |ui| {
                        ui.selectable_value(
                            &mut settings.group_order,
                            GroupOrder::BeforePooling,
                            "before pooling",
                        );
                        ui.selectable_value(
                            &mut settings.group_order,
                            GroupOrder::AfterPooling,
                            "after pooling",
                        );
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
            }

            let label = ui.label("Sinks");
            ui.add(DragValue::new(&mut settings.sinks).range(0..=64))
                .labelled_by(label.id)
                .on_hover_text("First tokens StreamingLLM always keeps");
            ui.end_row();

            let label = ui.label("Judge Q");
            ui.checkbox(&mut settings.judgeq_keep_window, "keeps the window too")
                .labelled_by(label.id);
            ui.end_row();

            let label = ui.label("Judge Q window layers");
            ui.add(DragValue::new(&mut settings.judgeq_window_layers).range(0..=128))
                .labelled_by(label.id)
                .on_hover_text("The first this many layers rank keys by the last window's attention instead of the soft tokens' (0: the paper's method)");
            ui.end_row();

            let label = ui.label("Oracle");
        ui.checkbox(&mut settings.oracle_pooling, "pooled (variant)")
            .labelled_by(label.id)
            .on_hover_text("Off (the Judge Q paper's hit rate): the oracle ranks the decoded tokens' raw attention. On: it is smoothed with the same pooling as the other methods first, so pooling itself does not count as a miss");
        ui.end_row();

        let label = ui.label("PyramidKV β");
            ui.add(
                DragValue::new(&mut settings.pyramid_beta)
                    .range(1.0..=100.0)
                    .speed(0.5),
            )
            .labelled_by(label.id);
            ui.end_row();

            let label = ui.label("Ada-KV floor α");
            ui.add(
                DragValue::new(&mut settings.ada_floor_alpha)
                    .range(0.0..=1.0)
                    .speed(0.01),
            )
            .labelled_by(label.id);
            ui.end_row();

            let label = ui.label("Random seed");
            ui.add(DragValue::new(&mut settings.random_seed))
                .labelled_by(label.id);
            ui.end_row();
        });
    if ui.button("Reset to defaults").clicked() {
        *settings = PolicySettings::default();
    }
}

/// The nearest odd kernel at or above `kernel`.
fn odd(kernel: usize) -> usize {
    if kernel.is_multiple_of(2) {
        kernel + 1
    } else {
        kernel
    }
}

fn pooling_name(pooling: Pooling) -> &'static str {
    match pooling {
        Pooling::None => "none",
        Pooling::Max { .. } => "max",
        Pooling::Avg { .. } => "avg",
    }
}

fn granularity_name(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::QueryHead => "per query head",
        Granularity::KvHead(GroupReduce::Mean) => "per KV head (mean)",
        Granularity::KvHead(GroupReduce::Max) => "per KV head (max)",
    }
}
