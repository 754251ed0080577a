//! Comparing policies: the layers × heads overview, the metrics table at the current budget and
//! the curves of the metrics against the budget.

use egui::{RichText, Ui};
use egui_plot::{Line, Plot, VLine};
use ndarray::Array2;

use crate::app::palette::policy_colour;
use crate::app::session_view::SessionView;
use crate::app::state::{GridMetric, State};
use crate::app::widgets::heatmap::ColourLut;
use crate::app::widgets::overview_grid::{GridPick, overview_grid};
use crate::attention::Pick;
use crate::attention::mask_head;
use crate::policy::policies::oracle;
use crate::policy::{PolicyId, PolicyMetrics};

/// One policy's metric per `[layer, head]` as a query-head grid (KV-head metrics repeated over
/// their group).
fn metric_grid(
    metrics: &PolicyMetrics,
    metric: GridMetric,
    layers: usize,
    query_heads: usize,
) -> Array2<f32> {
    let values = match metric {
        GridMetric::HitRate => &metrics.hit_rate,
        GridMetric::MassKept => &metrics.mass_kept,
    };
    let mask_heads = values.ncols();
    Array2::from_shape_fn((layers, query_heads), |(l, h)| {
        values
            .get([l, mask_head(h, query_heads, mask_heads)])
            .copied()
            .unwrap_or(f32::NAN)
    })
}

/// The overview grid of the focus policy's metric per head; clicking picks the panels' head.
pub fn overview_section(ui: &mut Ui, view: &mut SessionView, state: &mut State, lut: &ColourLut) {
    let budget = view.budget();
    ui.horizontal_wrapped(|ui| {
        let label = ui.label(RichText::new("Heads").strong());
        egui::ComboBox::from_id_salt("grid_metric")
            .selected_text(state.grid_metric.label())
            .width(80.0)
            .show_ui(ui, |ui| {
                for m in [GridMetric::HitRate, GridMetric::MassKept] {
                    ui.selectable_value(&mut state.grid_metric, m, m.label());
                }
            })
            .response
            .labelled_by(label.id);
        ui.label(format!(
            "of {} at budget {budget}",
            state.focus_policy.label()
        ));
    });
    let info = &view.session.model;
    let (layers, heads) = (info.layers, info.query_heads);
    let metrics = match view.metrics(budget) {
        Some(Ok(all)) => all.iter().find(|m| m.policy == state.focus_policy).cloned(),
        _ => None,
    };
    let values = match &metrics {
        Some(m) => metric_grid(m, state.grid_metric, layers, heads),
        None => Array2::from_elem((layers, heads), f32::NAN),
    };
    let label = format!(
        "{} of {}",
        state.grid_metric.label(),
        state.focus_policy.label()
    );
    match overview_grid(
        ui,
        &values,
        lut,
        (state.view.layer, state.view.head),
        &label,
    ) {
        Some(GridPick::Head { layer, head }) => {
            state.view.layer = Pick::One(layer);
            state.view.head = Pick::One(head);
        }
        Some(GridPick::Layer(layer)) => {
            state.view.layer = Pick::One(layer);
            state.view.head = Pick::All;
        }
        None => {}
    }
    ui.weak("Layers down, heads across; click a head to show it, a layer number for all its heads");
}

/// Bytes as `12.3 MB`.
fn format_bytes(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// The metrics table at the current budget for the compared policies.
pub fn metrics_table(ui: &mut Ui, view: &mut SessionView, state: &State) {
    let budget = view.budget();
    ui.label(RichText::new(format!("Metrics at budget {budget}")).strong());
    let metrics = match view.metrics(budget) {
        Some(Ok(all)) => all,
        Some(Err(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, message);
            return;
        }
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Ranking keys…");
            });
            return;
        }
    };
    egui::Grid::new("metrics_table").striped(true).num_columns(4).show(ui, |ui| {
        ui.label("Policy").on_hover_text("Hover a policy for how its budget was applied, when that needs saying");
        let (hit_rate, oracle) = if state.policy.get(&oracle::POOLED) {
            ("Hit rate (pooled oracle)", "the oracle's kept entries, its scores pooled like the others' (a variant)")
        } else {
            ("Hit rate", "the oracle's kept entries (the decoded tokens' raw attention, the Judge Q paper's definition)")
        };
        ui.label(hit_rate).on_hover_text(format!("Share of {oracle} this policy also keeps (mean over layers and heads)"));
        ui.label("Mass kept").on_hover_text("Share of the decoded tokens' attention that falls on kept entries");
        ui.label("KV kept").on_hover_text("Cache size of the kept entries");
        ui.end_row();
        for policy in PolicyId::all().into_iter().filter(|p| state.compared.contains(p)) {
            let Some(m) = metrics.iter().find(|m| m.policy == policy) else {
                continue;
            };
            let name = ui.label(RichText::new(policy.label()).color(policy_colour(policy)));
            if let Some(note) = &m.note {
                name.on_hover_text(note);
            }
            ui.label(format!("{:.3}", m.mean_hit_rate));
            ui.label(format!("{:.3}", m.mean_mass_kept));
            ui.label(format_bytes(m.kv_bytes));
            ui.end_row();
        }
    });
}

/// Which metric the curves plot.
fn curve_value(m: &PolicyMetrics, metric: GridMetric, layer: Option<usize>) -> f64 {
    let grid = match metric {
        GridMetric::HitRate => &m.hit_rate,
        GridMetric::MassKept => &m.mass_kept,
    };
    match layer {
        Some(l) if l < grid.nrows() => f64::from(grid.row(l).mean().unwrap_or(f32::NAN)),
        _ => f64::from(match metric {
            GridMetric::HitRate => m.mean_hit_rate,
            GridMetric::MassKept => m.mean_mass_kept,
        }),
    }
}

/// Curves of the grid metric against the budget for the compared policies.
pub fn curves(ui: &mut Ui, view: &mut SessionView, state: &mut State) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("{} against budget", state.grid_metric.label())).strong());
        ui.checkbox(&mut state.curves_per_layer, "selected layer only");
    });
    let ctx = ui.ctx().clone();
    let Some(points) = view.curves(&ctx) else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Computing curves…");
        });
        return;
    };
    let points = match points.as_ref() {
        Ok(points) => points,
        Err(message) => {
            ui.colored_label(ui.visuals().error_fg_color, message);
            return;
        }
    };
    let layer = if state.curves_per_layer {
        state.view.layer.index(view.session.model.layers)
    } else {
        None
    };
    let budget = view.budget();
    let metric = state.grid_metric;
    let compared: Vec<PolicyId> = PolicyId::all()
        .into_iter()
        .filter(|p| state.compared.contains(p))
        .collect();
    let marker = ui.visuals().weak_text_color();
    ui.weak(match layer {
        Some(l) => format!(
            "Layer {l}, mean over its heads; colours as in the table, hover a line for its name"
        ),
        None => "Mean over layers and heads; colours as in the table, hover a line for its name"
            .to_owned(),
    });
    Plot::new("budget_curves")
        .height(190.0)
        .x_axis_label("budget (log scale)")
        .x_axis_formatter(|mark, _| format!("{:.0}", 2f64.powf(mark.value)))
        .include_y(0.0)
        .include_y(1.0)
        .allow_scroll(false)
        .show(ui, |plot| {
            for policy in compared {
                let series: Vec<[f64; 2]> = points
                    .iter()
                    .filter_map(|p| {
                        let m = p.metrics.iter().find(|m| m.policy == policy)?;
                        Some([(p.budget as f64).log2(), curve_value(m, metric, layer)])
                    })
                    .collect();
                plot.line(
                    Line::new(policy.label(), series)
                        .color(policy_colour(policy))
                        .width(2.0),
                );
            }
            plot.vline(VLine::new("", (budget.asked() as f64).log2()).color(marker));
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_in_round_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(12_300), "12.3 kB");
        assert_eq!(format_bytes(4_500_000), "4.5 MB");
    }
}
