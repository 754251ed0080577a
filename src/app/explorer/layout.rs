//! The frame's layout: menu, toolbar, status bar, side panels, central panels, the welcome
//! page and the dialogs.

use egui::{Color32, Context, RichText, Ui};

use super::Explorer;
use crate::app::command::Command;
use crate::app::export_flow::ExportFlow;
use crate::app::panels::compare_panel::{curves, metrics_table, overview_section};
use crate::app::panels::decode_panel::decode_panel;
use crate::app::panels::load_panel::{LoadStatus, load_panel};
use crate::app::panels::policy_panel::policy_panel;
use crate::app::panels::source_panels::source_panels;
use crate::app::panels::toolbar::{SessionShape, budget_slider, colour_controls, head_picker};
use crate::app::session_view::BankStatus;
use crate::app::state::{ThemeChoice, file_label};
use crate::export::Overwrite;

impl Explorer {
    pub(super) fn menu_bar(&mut self, ui: &mut Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open document…").clicked() {
                    self.commands.push(Command::PickDocument);
                }
                if ui.button("Open task figure…").clicked() {
                    self.commands.push(Command::PickTaskFigure);
                }
                if ui.button("Open model file…").clicked() {
                    self.commands.push(Command::PickModelFile);
                }
                if ui.button("Open model folder…").clicked() {
                    self.commands.push(Command::PickModelFolder);
                }
                if ui.button("Open soft tokens…").clicked() {
                    self.commands.push(Command::PickSoftTokens);
                }
                ui.separator();
                let has_session = self.view.is_some();
                if ui
                    .add_enabled(has_session, egui::Button::new("Export figure…"))
                    .clicked()
                {
                    self.commands.push(Command::ExportFigure);
                }
                if ui
                    .add_enabled(has_session, egui::Button::new("Export data…"))
                    .clicked()
                {
                    self.commands.push(Command::ExportData);
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.label("Theme");
                ui.radio_value(
                    &mut self.state.theme,
                    ThemeChoice::System,
                    "Follow the system",
                );
                ui.radio_value(&mut self.state.theme, ThemeChoice::Light, "Light");
                ui.radio_value(&mut self.state.theme, ThemeChoice::Dark, "Dark");
                ui.separator();
                ui.label("Colormap");
                for colormap in crate::export::Colormap::ALL {
                    ui.radio_value(&mut self.state.colour.colormap, colormap, colormap.name());
                }
                ui.separator();
                ui.checkbox(
                    &mut self.state.show_frame_time,
                    "Frame time in the status bar",
                );
                ui.checkbox(
                    &mut self.state.show_profiles,
                    "Score profiles under the heatmaps",
                );
                if ui.button("Show the whole key axis").clicked()
                    && let Some(view) = &mut self.view
                {
                    view.axis.reset();
                }
            });
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let has_session = self.view.is_some();
                if ui
                    .add_enabled(has_session, egui::Button::new("Export data…"))
                    .clicked()
                {
                    self.commands.push(Command::ExportData);
                }
                if ui
                    .add_enabled(has_session, egui::Button::new("Export figure…"))
                    .clicked()
                {
                    self.commands.push(Command::ExportFigure);
                }
                if self.export.is_writing() {
                    ui.spinner();
                    ui.label("Exporting…");
                }
            });
        });
    }

    pub(super) fn toolbar(&mut self, ui: &mut Ui) {
        let Some(view) = &mut self.view else {
            ui.horizontal(|ui| {
                ui.label(RichText::new("judgeq").strong());
                ui.weak("KV-cache eviction explorer: what SnapKV's window, Judge Q's soft tokens and the decoded answer attend to, and what each policy keeps");
            });
            return;
        };
        let info = &view.session.model;
        let shape = SessionShape {
            keys: view.keys(),
            layers: info.layers,
            heads: info.query_heads,
        };
        ui.horizontal_wrapped(|ui| {
            let before = self.state.budget;
            if budget_slider(
                ui,
                &mut self.state.budget,
                &mut self.state.budget_as_ratio,
                shape,
            ) || before != self.state.budget
            {
                self.budget_moved_at = Some(ui.input(|i| i.time));
            }
            view.set_budget(self.state.budget);
            ui.separator();
            head_picker(ui, &mut self.state.view, shape);
            ui.separator();
            colour_controls(ui, &mut self.state.colour);
        });
    }

    pub(super) fn status_bar(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            ui.label(&self.status);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if self.state.show_frame_time
                    && let Some(stats) = self.frame_times.stats()
                {
                    ui.weak(format!(
                        "frame {:.1} ms (p95 {:.1}, max {:.1})",
                        stats.mean_ms, stats.p95_ms, stats.max_ms
                    ))
                    .on_hover_text("Time the explorer's own code took per frame over the last frames (drawing and interaction, not the GPU)");
                }
            });
        });
    }

    pub(super) fn left_panel(&mut self, ui: &mut Ui) {
        let document = self
            .document
            .as_ref()
            .map(|d| (d.label.clone(), d.text.chars().count()));
        let status = LoadStatus {
            model: self
                .model
                .as_ref()
                .filter(|_| self.loaded_model.as_ref() == Some(&self.state.model)),
            document,
            job: self.job.as_ref(),
        };
        load_panel(ui, &mut self.state, &status, &mut self.commands);
        ui.separator();
        let ctx = ui.ctx().clone();
        let (available, bank) = match &mut self.view {
            Some(view) => (
                view.available_policies(&self.state.policy),
                Some(view.sync_bank(&self.state.policy, &self.state.needed_policies(), &ctx)),
            ),
            None => (Vec::new(), None),
        };
        policy_panel(ui, &mut self.state, &available, bank.as_ref());
    }

    pub(super) fn right_panel(&mut self, ui: &mut Ui) {
        let Some(view) = &mut self.view else {
            return;
        };
        let ctx = ui.ctx().clone();
        if let BankStatus::Failed(message) =
            view.sync_bank(&self.state.policy, &self.state.needed_policies(), &ctx)
        {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("Policies unavailable: {message}"),
            );
        }
        overview_section(ui, view, &mut self.state, &self.lut.1);
        ui.separator();
        metrics_table(ui, view, &self.state);
        ui.separator();
        curves(ui, view, &mut self.state);
        ui.separator();
        decode_panel(ui, view, &mut self.state, &mut self.commands);
    }

    pub(super) fn central(&mut self, ui: &mut Ui) {
        if let Some(error) = self.error.clone() {
            egui::Frame::new()
                .fill(ui.visuals().error_fg_color.gamma_multiply(0.15))
                .inner_margin(6.0)
                .corner_radius(4.0)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.colored_label(
                            ui.visuals().error_fg_color,
                            RichText::new(error).strong(),
                        );
                        if ui.small_button("Dismiss").clicked() {
                            self.commands.push(Command::DismissError);
                        }
                    });
                });
            ui.add_space(4.0);
        }
        let Some(view) = &mut self.view else {
            self.welcome(ui);
            return;
        };
        let ctx = ui.ctx().clone();
        view.sync_bank(&self.state.policy, &self.state.needed_policies(), &ctx);
        let height = ui.available_height();
        source_panels(ui, view, &mut self.state, &self.lut.1, height);
    }

    pub(super) fn welcome(&self, ui: &mut Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() * 0.25);
            ui.heading("Inspect what a KV-cache eviction policy keeps");
            ui.add_space(8.0);
            ui.label("1. Open a document (Open document… in the Load panel, or drop a .txt or .md file on the window)");
            ui.label("2. Type a question about it");
            ui.label("3. Press Run: the model reads the document once and records where its queries look");
            ui.add_space(8.0);
            ui.weak("Or open a needle heatmap of a judgeq tasks run (Open task figure… in the Load panel or the File menu) and click a cell to inspect its sample");
            ui.add_space(4.0);
            ui.weak("Then compare, on one key axis, the attention of the last prompt window (SnapKV), of Judge Q's soft tokens and of the decoded answer (the oracle), and drag the budget to see what each policy keeps");
        });
    }

    pub(super) fn confirm_dialog(&mut self, ctx: &Context) {
        let ExportFlow::Confirm { existing, .. } = &self.export else {
            return;
        };
        let names: Vec<String> = existing.iter().map(|p| file_label(p)).collect();
        let dir = existing
            .first()
            .and_then(|p| p.parent())
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let mut choice = None;
        egui::Modal::new(egui::Id::unique("confirm_overwrite")).show(ctx, |ui| {
            ui.set_max_width(420.0);
            ui.heading("Replace existing files?");
            ui.label(format!(
                "{} file{} already exist{} in {dir}:",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                if names.len() == 1 { "s" } else { "" }
            ));
            for name in names.iter().take(12) {
                ui.monospace(name);
            }
            if names.len() > 12 {
                ui.weak(format!("and {} more", names.len() - 12));
            }
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                if ui.button("Replace").clicked() {
                    choice = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    choice = Some(false);
                }
            });
        });
        match choice {
            Some(true) => {
                if let ExportFlow::Confirm { job, .. } = std::mem::take(&mut self.export) {
                    let repaint = ctx.clone();
                    self.export = ExportFlow::start(*job, Overwrite::Replace, move || {
                        repaint.request_repaint()
                    });
                }
            }
            Some(false) => {
                self.export = ExportFlow::Idle;
                self.status = "Export cancelled; nothing was written".to_owned();
            }
            None => {}
        }
    }

    pub(super) fn drop_overlay(&self, ctx: &Context) {
        if ctx.input(|i| i.raw.hovered_files.is_empty()) {
            return;
        }
        let screen = ctx.content_rect();
        let painter = ctx.layer_painter(egui::LayerId::new(
            egui::Order::Foreground,
            egui::Id::unique("drop"),
        ));
        painter.rect_filled(screen, 0.0, Color32::from_black_alpha(160));
        painter.text(
            screen.center(),
            egui::Align2::CENTER_CENTER,
            "Drop a .txt or .md file to use it as the document, or a task figure to open it",
            egui::FontId::proportional(22.0),
            Color32::WHITE,
        );
    }
}
