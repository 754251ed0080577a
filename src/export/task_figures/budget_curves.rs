//! Score against budget for several methods: one line per method over a log₂ budget axis (or a
//! linear axis of ratios removed), with the full-cache score as a dashed reference line.

use serde::{Deserialize, Serialize};

use crate::export::ExportError;
use crate::export::svg_doc::{LABEL_SIZE, Svg, TICK_LEN, TICK_SIZE, fit_size, text_width};
use crate::export::task_figures::{HeatmapBox, Laid};
use crate::export::ticks::{format_tick, nice_ticks};
use crate::policy::Ratio;

/// Score against budget for several methods, with the full-cache score as a reference line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetCurves {
    /// A line above the plot (task and model, say); none when empty.
    pub title: String,
    /// What the scores are, for the y axis (`accuracy`, `F1`, `Rouge-L`).
    pub metric: String,
    /// KV entries kept per layer and head, strictly increasing: the x axis (empty when the
    /// budgets were asked as `ratios`).
    pub budgets: Vec<usize>,
    /// Ratios removed, strictly increasing: the x axis instead of `budgets` when budgets were
    /// asked as ratios (each sample keeps its own share).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    /// Each method's name and its score at every budget (`None` where it did not run).
    pub methods: Vec<(String, Vec<Option<f64>>)>,
    /// The full-cache score, drawn as a dashed line.
    pub full_kv: Option<f64>,
}

impl BudgetCurves {
    /// The x axis: each point's position (log₂ of the budget, or the ratio) and tick label.
    fn axis(&self) -> Vec<(f64, String)> {
        if self.ratios.is_empty() {
            self.budgets
                .iter()
                .map(|&b| ((b as f64).log2(), b.to_string()))
                .collect()
        } else {
            self.ratios
                .iter()
                .map(|&r| (r.removed(), r.to_string()))
                .collect()
        }
    }

    /// Checks the curves: positive increasing budgets (or increasing ratios, and then no
    /// budgets), named methods with one finite score (or `None`) per budget, a finite
    /// full-cache score.
    pub fn validate(&self) -> Result<(), ExportError> {
        let invalid = |reason: String| {
            Err(ExportError::InvalidFigure(format!(
                "the budget curves {:?}: {reason}",
                self.title
            )))
        };
        if !self.ratios.is_empty() {
            if !self.budgets.is_empty() || !self.ratios.is_sorted_by(|a, b| a < b) {
                return invalid(format!(
                    "the ratios {:?} must be strictly increasing, without budgets beside them",
                    self.ratios
                ));
            }
        } else if self.budgets.is_empty()
            || self.budgets.contains(&0)
            || !self.budgets.is_sorted_by(|a, b| a < b)
        {
            return invalid(format!(
                "the budgets {:?} must be positive and strictly increasing, at least one",
                self.budgets
            ));
        }
        if self.methods.is_empty() {
            return invalid("there are no methods".to_owned());
        }
        for (n, (name, scores)) in self.methods.iter().enumerate() {
            if name.trim().is_empty() {
                return invalid(format!("method {n} has no name"));
            }
            if self.methods[..n].iter().any(|(other, _)| other == name) {
                return invalid(format!("{name:?} is given twice"));
            }
            let axis = self.axis();
            if scores.len() != axis.len() {
                return invalid(format!(
                    "{name:?} has {} scores for {} budgets",
                    scores.len(),
                    axis.len()
                ));
            }
            if let Some((budget, score)) = axis
                .iter()
                .map(|(_, label)| label)
                .zip(scores)
                .find_map(|(b, s)| s.filter(|s| !s.is_finite()).map(|s| (b, s)))
            {
                return invalid(format!("{name:?} scores {score} at budget {budget}"));
            }
        }
        if let Some(full) = self.full_kv.filter(|s| !s.is_finite()) {
            return invalid(format!("the full-cache score is {full}"));
        }
        Ok(())
    }
}

/// Figure width in millimetres.
const WIDTH_MM: f32 = 120.0;
const MARGIN: f32 = 8.0;
const TITLE_SIZE: f32 = 9.5;
const LEGEND_SIZE: f32 = 6.5;
/// Length of the line sample in the legend.
const SAMPLE_W: f32 = 12.0;
const LINE_W: f32 = 1.2;
const MARKER_R: f32 = 1.8;
const GRID_RGB: &str = "#e3e3e3";
const FULL_KV_RGB: &str = "#444444";
const FULL_KV_DASH: &str = "4 2.5";
/// Okabe and Ito's colour-blind-safe palette, without its yellow (too light on white).
const PALETTE: [&str; 7] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
];

/// The curves, laid out.
pub(super) struct CurvesLayout<'a> {
    curves: &'a BudgetCurves,
    width: f32,
    height: f32,
    title_baseline: Option<f32>,
    plot_x: f32,
    plot_y: f32,
    plot_w: f32,
    plot_h: f32,
    /// The y range and its ticks.
    low: f64,
    high: f64,
    y_ticks: Vec<f64>,
    legend_x: f32,
}

impl<'a> CurvesLayout<'a> {
    /// Lays out `curves`.
    pub(super) fn new(curves: &'a BudgetCurves) -> Result<Self, ExportError> {
        curves.validate()?;
        let (low, high, y_ticks) = y_range(curves);
        let width = WIDTH_MM / 25.4 * 72.0;
        let mut y = MARGIN;
        let title_baseline = (!curves.title.trim().is_empty()).then(|| {
            let baseline = y + TITLE_SIZE;
            y += TITLE_SIZE + 6.0;
            baseline
        });
        let step = y_step(&y_ticks);
        let widest_tick = y_ticks
            .iter()
            .map(|&v| text_width(&format_tick(v, step), TICK_SIZE))
            .fold(0.0, f32::max);
        let plot_x = MARGIN + LABEL_SIZE + 3.0 + widest_tick + 1.5 + TICK_LEN;
        let legend_w = legend_names(curves)
            .map(|name| SAMPLE_W + 3.0 + text_width(name, LEGEND_SIZE))
            .fold(0.0, f32::max)
            .min(width * 0.3);
        let legend_x = width - MARGIN - legend_w;
        let plot_w = legend_x - 10.0 - plot_x;
        let plot_h = (plot_w * 0.62).max(legend_rows(curves) as f32 * LEGEND_SIZE * 1.6);
        let plot_y = y + 2.0;
        y = plot_y + plot_h + TICK_LEN + 2.0 + TICK_SIZE + LABEL_SIZE + 4.0;
        Ok(Self {
            curves,
            width,
            height: y + MARGIN,
            title_baseline,
            plot_x,
            plot_y,
            plot_w,
            plot_h,
            low,
            high,
            y_ticks,
            legend_x,
        })
    }

    /// The x of an axis position (see [`BudgetCurves::axis`]): a little inside the plot's
    /// edges; the middle when there is one budget.
    fn x(&self, position: f64) -> f32 {
        let axis = self.curves.axis();
        let (first, last) = (axis[0].0, axis[axis.len() - 1].0);
        let t = if last > first {
            (position - first) / (last - first)
        } else {
            0.5
        };
        let pad = self.plot_w * 0.05;
        self.plot_x + pad + t as f32 * (self.plot_w - 2.0 * pad)
    }

    /// The y of a score.
    fn y(&self, score: f64) -> f32 {
        let t = (score - self.low) / (self.high - self.low);
        self.plot_y + self.plot_h * (1.0 - t as f32)
    }
}

/// The y range and its ticks: 0 to 1 for scores within them, else a nice range around every
/// score and 0.
fn y_range(curves: &BudgetCurves) -> (f64, f64, Vec<f64>) {
    let values: Vec<f64> = curves
        .methods
        .iter()
        .flat_map(|(_, scores)| scores.iter().flatten().copied())
        .chain(curves.full_kv)
        .collect();
    let low = values.iter().copied().fold(0.0, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    if low >= 0.0 && high <= 1.0 {
        return (0.0, 1.0, nice_ticks(0.0, 1.0, 5));
    }
    let ticks = nice_ticks(low, high, 5);
    let step = y_step(&ticks).max(f64::MIN_POSITIVE);
    let (low, high) = ((low / step).floor() * step, (high / step).ceil() * step);
    (low, high, nice_ticks(low, high, 5))
}

/// The step between ticks.
fn y_step(ticks: &[f64]) -> f64 {
    match ticks {
        [a, b, ..] => b - a,
        _ => 1.0,
    }
}

/// The names in the legend: every method, then the full cache when drawn.
fn legend_names(curves: &BudgetCurves) -> impl Iterator<Item = &str> {
    curves
        .methods
        .iter()
        .map(|(name, _)| name.as_str())
        .chain(curves.full_kv.map(|_| "Full KV"))
}

fn legend_rows(curves: &BudgetCurves) -> usize {
    legend_names(curves).count()
}

impl Laid for CurvesLayout<'_> {
    fn size_mm(&self) -> (f32, f32) {
        (WIDTH_MM, self.height / 72.0 * 25.4)
    }

    fn size(&self) -> (f32, f32) {
        (self.width, self.height)
    }

    fn heatmaps(&self) -> Vec<HeatmapBox> {
        Vec::new()
    }

    fn draw(&self, svg: &mut Svg) -> Result<(), ExportError> {
        let curves = self.curves;
        if let Some(baseline) = self.title_baseline {
            let size = fit_size(&curves.title, TITLE_SIZE, self.width - 2.0 * MARGIN);
            svg.text(
                self.width / 2.0,
                baseline,
                size,
                "middle",
                &curves.title,
                "",
            );
        }
        let (left, right) = (self.plot_x, self.plot_x + self.plot_w);
        let bottom = self.plot_y + self.plot_h;

        // Horizontal grid lines and y ticks.
        let step = y_step(&self.y_ticks);
        for &v in &self.y_ticks {
            let y = self.y(v);
            svg.stroke_line((left, y), (right, y), GRID_RGB, 0.4, None);
            svg.line(left - TICK_LEN, y, left, y);
            let label = format_tick(v, step);
            svg.text(
                left - TICK_LEN - 1.5,
                y + TICK_SIZE * 0.35,
                TICK_SIZE,
                "end",
                &label,
                "",
            );
        }
        // Budget ticks, thinned where the labels would collide.
        let mut last_end = f32::NEG_INFINITY;
        for (position, label) in curves.axis() {
            let x = self.x(position);
            svg.line(x, bottom, x, bottom + TICK_LEN);
            let half = text_width(&label, TICK_SIZE) / 2.0;
            if x - half > last_end + 2.0 {
                let baseline = bottom + TICK_LEN + 1.0 + TICK_SIZE * 0.8;
                svg.text(x, baseline, TICK_SIZE, "middle", &label, "");
                last_end = x + half;
            }
        }
        svg.frame(left, self.plot_y, self.plot_w, self.plot_h);
        let label_y = bottom + TICK_LEN + 2.0 + TICK_SIZE + LABEL_SIZE + 1.0;
        svg.text(
            (left + right) / 2.0,
            label_y,
            LABEL_SIZE,
            "middle",
            if curves.ratios.is_empty() {
                "budget (KV entries per layer and head, log scale)"
            } else {
                "ratio of each prompt's KV entries removed"
            },
            "",
        );
        let size = fit_size(&curves.metric, LABEL_SIZE, self.plot_h + 20.0);
        let centre = self.plot_y + self.plot_h / 2.0;
        svg.vertical_text(
            MARGIN + LABEL_SIZE * 0.85,
            centre,
            size,
            "middle",
            &curves.metric,
            "",
        );

        if let Some(full) = curves.full_kv {
            let y = self.y(full);
            svg.stroke_line((left, y), (right, y), FULL_KV_RGB, 1.0, Some(FULL_KV_DASH));
        }
        for (n, (_, scores)) in curves.methods.iter().enumerate() {
            let colour = PALETTE[n % PALETTE.len()];
            // A missing score breaks the line; each run of scores is one polyline.
            let points: Vec<Option<(f32, f32)>> = curves
                .axis()
                .iter()
                .zip(scores)
                .map(|((position, _), s)| s.map(|s| (self.x(*position), self.y(s))))
                .collect();
            for run in points.split(Option::is_none) {
                let run: Vec<(f32, f32)> = run.iter().flatten().copied().collect();
                if run.len() >= 2 {
                    svg.polyline(&run, colour, LINE_W);
                }
            }
            for &(x, y) in points.iter().flatten() {
                svg.marker(x, y, MARKER_R, colour);
            }
        }

        // The legend, right of the plot.
        let legend_w = self.width - MARGIN - self.legend_x;
        for (n, name) in legend_names(curves).enumerate() {
            let y = self.plot_y + LEGEND_SIZE + n as f32 * LEGEND_SIZE * 1.6;
            let (x0, x1) = (self.legend_x, self.legend_x + SAMPLE_W);
            let line_y = y - LEGEND_SIZE * 0.35;
            if n < curves.methods.len() {
                let colour = PALETTE[n % PALETTE.len()];
                svg.stroke_line((x0, line_y), (x1, line_y), colour, LINE_W, None);
                svg.marker((x0 + x1) / 2.0, line_y, MARKER_R, colour);
            } else {
                svg.stroke_line(
                    (x0, line_y),
                    (x1, line_y),
                    FULL_KV_RGB,
                    1.0,
                    Some(FULL_KV_DASH),
                );
            }
            let size = fit_size(name, LEGEND_SIZE, legend_w - SAMPLE_W - 3.0);
            svg.text(x1 + 3.0, y, size, "start", name, "");
        }
        Ok(())
    }
}
