//! The policy list (colours, which ones to compare) and the policy settings.

use egui::{ComboBox, DragValue, Sense, Ui, vec2};

use crate::app::palette::policy_colour;
use crate::app::session_view::BankStatus;
use crate::app::state::State;
use crate::attention::{Granularity, GroupOrder, GroupReduce, Pooling};
use crate::policy::params::Param;
use crate::policy::{PolicyId, PolicySettings, policies};

/// Draws the policy list and settings. `available` are the policies the session can rank; a
/// policy whose missing inputs the inspection captures on request (keys, value norms, query
/// statistics, lookahead drafts) can still be ticked, and the next inspection captures them.
pub fn policy_panel(
    ui: &mut Ui,
    state: &mut State,
    available: &[PolicyId],
    bank: Option<&BankStatus>,
) {
    ui.heading("Policies");
    ui.weak("Ticked policies are compared in the metrics, curves and answers");
    for policy in PolicyId::all() {
        let ranked = available.is_empty() || available.contains(&policy);
        let inputs = policy.needs(&state.policy);
        let capturable = inputs.iter().any(|input| input.on_request());
        let enabled = ranked || capturable;
        let needs: Vec<&str> = inputs.iter().map(|input| input.describe()).collect();
        ui.horizontal(|ui| {
            let (swatch, _) = ui.allocate_exact_size(vec2(12.0, 12.0), Sense::hover());
            ui.painter().rect_filled(swatch, 2.0, policy_colour(policy));
            let mut on = state.compared.contains(&policy);
            let response = ui
                .add_enabled(enabled, egui::Checkbox::new(&mut on, policy.label()))
                .on_hover_text(policy.summary())
                .on_disabled_hover_text(format!("This session has no {}", needs.join(" or ")));
            if !ranked && on {
                ui.weak("inspect again").on_hover_text(format!(
                    "The next inspection captures its {}",
                    needs.join(" and ")
                ));
            }
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

            for &param in policies::params() {
                let label = ui.label(param.label());
                param_control(ui, settings, param)
                    .labelled_by(label.id)
                    .on_hover_text(param.help());
                ui.end_row();
            }
        });
    if ui.button("Reset to defaults").clicked() {
        *settings = PolicySettings::default();
    }
}

/// The control of one policy parameter: a checkbox, or a drag value within its range.
fn param_control(ui: &mut Ui, settings: &mut PolicySettings, param: Param) -> egui::Response {
    match param {
        Param::Switch(p) => {
            let mut on = settings.get(p);
            let response = ui.checkbox(&mut on, "");
            if response.changed() {
                settings.set(p, on);
            }
            response
        }
        Param::Count(p) => {
            let mut n = settings.get(p);
            let response = ui.add(DragValue::new(&mut n));
            if response.changed() {
                settings.set(p, n);
            }
            response
        }
        Param::Number(p) => {
            let mut x = settings.get(p);
            let response = ui.add(DragValue::new(&mut x).range(p.min..=p.max).speed(p.step));
            if response.changed() {
                settings.set(p, x);
            }
            response
        }
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
