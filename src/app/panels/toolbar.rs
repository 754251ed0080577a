//! The row above the panels: the budget slider, the layer and head pickers, and colour
//! scaling. It is drawn first in the frame so every panel below uses its values in the same
//! frame.

use egui::{ComboBox, DragValue, RichText, Slider, Ui};

use crate::app::session_view::min_budget;
use crate::attention::{HeadView, Pick, Reduce};
use crate::export::{ColourSettings, ScaleMode};
use crate::policy::Ratio;

/// Shape of the loaded session that the controls need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionShape {
    /// Prompt tokens (keys).
    pub keys: usize,
    /// Layers.
    pub layers: usize,
    /// Query heads per layer.
    pub heads: usize,
}

/// The budget slider: log scale from a few entries to the prompt length, and beside it the
/// toggle `as_ratio` that shows the budget as the share of the prompt's entries removed too
/// (`B = 742 (ratio 0.50)`) and lets that ratio be set (kvpress's rule, [`Ratio::kept`]); the
/// slider moves in entries either way. Returns whether the budget changed.
pub fn budget_slider(
    ui: &mut Ui,
    budget: &mut usize,
    as_ratio: &mut bool,
    shape: SessionShape,
) -> bool {
    let low = min_budget(shape.keys);
    let high = shape.keys.max(low);
    *budget = (*budget).clamp(low, high);
    let label = ui.label(RichText::new("Budget").strong());
    ui.spacing_mut().slider_width = 260.0;
    let response = ui
        .add(Slider::new(budget, low..=high).logarithmic(true).integer())
        .labelled_by(label.id)
        .on_hover_text("Entries kept per layer and head (window included). Drag to see what each policy keeps; the model is not run again.");
    ui.checkbox(as_ratio, "as ratio").on_hover_text(
        "Show and set the budget as the share of the prompt's KV entries removed (kvpress's \
         compression_ratio): a ratio r keeps int(n·(1−r)) of the n entries per head",
    );
    if !*as_ratio {
        ui.weak(format!(
            "of {} entries per head ({:.0}%)",
            shape.keys,
            100.0 * *budget as f64 / shape.keys.max(1) as f64
        ));
        return response.changed();
    }
    let mut removed = Ratio::of_kept(*budget, shape.keys);
    ui.label(format!("B = {budget} (ratio {removed:.2})"));
    let label = ui.label("ratio removed");
    let set = ui
        .add(
            DragValue::new(&mut removed)
                .range(0.0..=0.999)
                .speed(0.002)
                .fixed_decimals(2),
        )
        .labelled_by(label.id)
        .on_hover_text(format!("Of the {} entries per head", shape.keys))
        .changed();
    if set && let Ok(ratio) = Ratio::new(removed) {
        *budget = ratio.kept(shape.keys).clamp(low, high);
    }
    response.changed() || set
}

/// Pickers for the layer, the head and how "All" combines them.
pub fn head_picker(ui: &mut Ui, view: &mut HeadView, shape: SessionShape) {
    pick_combo(ui, "Layer", &mut view.layer, shape.layers, "All layers");
    pick_combo(ui, "Head", &mut view.head, shape.heads, "All heads");
    let aggregated = view.layer == Pick::All || view.head == Pick::All;
    ui.add_enabled_ui(aggregated, |ui| {
        let label = ui.label("Combine");
        ComboBox::from_id_salt("combine")
            .selected_text(view.reduce.label())
            .width(60.0)
            .show_ui(ui, |ui| {
                for reduce in Reduce::ALL {
                    ui.selectable_value(&mut view.reduce, reduce, reduce.label());
                }
            })
            .response
            .labelled_by(label.id)
            .on_hover_text("How several layers or heads are combined into one map");
    });
}

fn pick_combo(ui: &mut Ui, label: &str, pick: &mut Pick, count: usize, all_label: &str) {
    let shown = match pick.index(count) {
        Some(i) => i.to_string(),
        None => all_label.to_owned(),
    };
    let label = ui.label(label);
    ComboBox::from_id_salt(("pick", label.id))
        .selected_text(shown)
        .width(80.0)
        .height(400.0)
        .show_ui(ui, |ui| {
            ui.selectable_value(pick, Pick::All, all_label);
            for i in 0..count {
                ui.selectable_value(pick, Pick::One(i), i.to_string());
            }
        })
        .response
        .labelled_by(label.id);
}

/// Colour scaling controls: mode, sinks left out of the range, decades of the log scale.
pub fn colour_controls(ui: &mut Ui, colour: &mut ColourSettings) {
    let label = ui.label("Colour");
    ComboBox::from_id_salt("colour_scale")
        .selected_text(colour.mode.label())
        .width(70.0)
        .show_ui(ui, |ui| {
            for mode in ScaleMode::ALL {
                ui.selectable_value(&mut colour.mode, mode, mode.label());
            }
        })
        .response
        .labelled_by(label.id)
        .on_hover_text(
            "Log and per-row scales keep weak attention visible next to attention sinks",
        );
    let label = ui.label("ignore first");
    ui.add(
        DragValue::new(&mut colour.skip_sinks)
            .range(0..=64)
            .suffix(" keys"),
    )
    .labelled_by(label.id)
    .on_hover_text(
        "Leave the first keys (attention sinks) out of the colour range; they show at full colour",
    );
    if colour.mode == ScaleMode::Log {
        let label = ui.label("range");
        ui.add(
            DragValue::new(&mut colour.decades)
                .range(1..=8)
                .suffix(" decades"),
        )
        .labelled_by(label.id);
    }
}
