//! Colour scaling that survives attention sinks: the value range ignores the first keys, and a
//! log scale or per-row normalisation keeps weak attention visible next to strong attention.
//!
//! The scale is the export room's [`ColorScale`] with the export room's [`Colormap`], so an
//! exported figure has exactly the colours of the screen.

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::export::{ColorScale, Colormap, ScaleMode};

/// The user's colour choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ColourSettings {
    /// Mapping of values to the colour range.
    pub mode: ScaleMode,
    /// The first keys (attention sinks) left out when finding the range; they saturate.
    pub skip_sinks: usize,
    /// Decades shown by the log scale.
    pub decades: u32,
    /// The colours.
    pub colormap: Colormap,
}

impl Default for ColourSettings {
    fn default() -> Self {
        Self {
            mode: ScaleMode::Log,
            skip_sinks: 4,
            decades: 3,
            colormap: Colormap::Viridis,
        }
    }
}

/// A scale fitted to one matrix: maps each value to `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ColourScale {
    settings: ColourSettings,
    /// The export room's scale (range, mapping, colormap).
    scale: ColorScale,
    /// Largest value outside the sinks.
    high: f32,
    /// Largest value outside the sinks, per row (the row maximum of [`ScaleMode::PerRow`]).
    row_high: Vec<f32>,
}

impl ColourScale {
    /// Fits the scale to a queries × keys matrix.
    pub fn fit(matrix: &Array2<f32>, settings: ColourSettings) -> Self {
        let row_high = row_highs(matrix, settings.skip_sinks);
        let high = row_high.iter().copied().fold(0.0f32, f32::max);
        Self {
            settings,
            scale: export_scale(high, settings),
            high,
            row_high,
        }
    }

    /// Fits one range to several matrices (the three panels share a colour bar); each scale
    /// keeps its own rows' maxima for [`ScaleMode::PerRow`].
    pub fn fit_shared(
        matrices: &[Option<&Array2<f32>>],
        settings: ColourSettings,
    ) -> Vec<Option<Self>> {
        let rows: Vec<Option<Vec<f32>>> = matrices
            .iter()
            .map(|m| m.map(|m| row_highs(m, settings.skip_sinks)))
            .collect();
        let high = rows
            .iter()
            .flatten()
            .flatten()
            .copied()
            .fold(0.0f32, f32::max);
        let scale = export_scale(high, settings);
        rows.into_iter()
            .map(|row_high| {
                row_high.map(|row_high| Self {
                    settings,
                    scale,
                    high,
                    row_high,
                })
            })
            .collect()
    }

    /// The settings the scale was fitted with.
    pub fn settings(&self) -> ColourSettings {
        self.settings
    }

    /// Largest value outside the sinks.
    pub fn high(&self) -> f32 {
        self.high
    }

    /// Position of `value` of query row `row` in the colour range, in `[0, 1]`.
    pub fn unit(&self, row: usize, value: f32) -> f32 {
        let row_max = self.row_high.get(row).copied().unwrap_or(self.high);
        if self.high <= 0.0 {
            return 0.0;
        }
        self.scale.position(value, row_max)
    }

    /// The scale and values for an exported figure of `matrix` (this scale's rows, a range of
    /// its keys), coloured exactly as on screen. Per-row scaling is applied to the values here
    /// (each row divided by its maximum outside the sinks) and the figure gets a linear `0–1`
    /// scale, because the figure's own row maximum would include the sinks.
    pub fn for_figure(&self, matrix: ArrayView2<f32>) -> (Array2<f32>, ColorScale, String) {
        match self.settings.mode {
            ScaleMode::PerRow => {
                let mut values = matrix.to_owned();
                for (row, mut values) in values.axis_iter_mut(Axis(0)).enumerate() {
                    let high = self.row_high.get(row).copied().unwrap_or(0.0);
                    values.mapv_inplace(|v| if high > 0.0 { (v / high).min(1.0) } else { 0.0 });
                }
                let scale = ColorScale {
                    kind: ScaleMode::Linear,
                    min: 0.0,
                    max: 1.0,
                    colormap: self.settings.colormap,
                };
                (
                    values,
                    scale,
                    format!("attention / row maximum{}", self.sinks_note()),
                )
            }
            ScaleMode::Linear | ScaleMode::Log => (
                matrix.to_owned(),
                self.scale,
                format!("attention{}", self.sinks_note()),
            ),
        }
    }

    fn sinks_note(&self) -> String {
        match self.settings.skip_sinks {
            0 => String::new(),
            1 => " (key 0 left out of the range)".to_owned(),
            n => format!(" (keys 0–{} left out of the range)", n - 1),
        }
    }

    /// Tick positions along the colour bar (`[0, 1]`) and their labels.
    pub fn ticks(&self) -> Vec<(f32, String)> {
        match self.settings.mode {
            ScaleMode::Linear => [0.0, 0.5, 1.0]
                .into_iter()
                .map(|t| {
                    (
                        t,
                        format_value(self.scale.min + t * (self.scale.max - self.scale.min)),
                    )
                })
                .collect(),
            ScaleMode::PerRow => vec![
                (0.0, "0".to_owned()),
                (0.5, "½ row max".to_owned()),
                (1.0, "row max".to_owned()),
            ],
            ScaleMode::Log => {
                let decades = (self.scale.max / self.scale.min).log10().round().max(1.0) as i32;
                (0..=decades)
                    .map(|d| {
                        let value = self.scale.min * 10f32.powi(d);
                        (self.scale.position(value, 1.0), format_value(value))
                    })
                    .collect()
            }
        }
    }

    /// One line describing the scale, for tooltips.
    pub fn describe(&self) -> String {
        let mapping = match self.settings.mode {
            ScaleMode::Linear => format!("linear 0 – {}", format_value(self.scale.max)),
            ScaleMode::Log => format!(
                "log {} – {}",
                format_value(self.scale.min),
                format_value(self.scale.max)
            ),
            ScaleMode::PerRow => "each row 0 – its maximum".to_owned(),
        };
        format!("{mapping}, {}{}", self.settings.colormap, self.sinks_note())
    }
}

/// The largest value of each row outside the first `skip_sinks` keys.
fn row_highs(matrix: &Array2<f32>, skip_sinks: usize) -> Vec<f32> {
    let skip = skip_sinks.min(matrix.ncols().saturating_sub(1));
    matrix
        .axis_iter(Axis(0))
        .map(|row| {
            row.iter()
                .skip(skip)
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0f32, f32::max)
        })
        .collect()
}

/// The export room's scale for values up to `high`.
fn export_scale(high: f32, settings: ColourSettings) -> ColorScale {
    let colormap = settings.colormap;
    match settings.mode {
        ScaleMode::Linear if high > 0.0 => ColorScale {
            kind: ScaleMode::Linear,
            min: 0.0,
            max: high,
            colormap,
        },
        ScaleMode::Log if high > 0.0 => ColorScale {
            kind: ScaleMode::Log,
            min: high * 10f32.powi(-(settings.decades.clamp(1, 12) as i32)),
            max: high,
            colormap,
        },
        mode => ColorScale::fit(mode, colormap, []),
    }
}

/// A compact number for axis labels: `0.25`, `3.1e-4`.
pub fn format_value(value: f32) -> String {
    if value == 0.0 {
        "0".to_owned()
    } else if (0.01..1000.0).contains(&value.abs()) {
        let s = format!("{value:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{value:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn matrix() -> Array2<f32> {
        // Key 0 is a sink with most of the attention.
        array![[0.9, 0.05, 0.01, 0.001], [0.5, 0.2, 0.1, 0.0]]
    }

    fn settings(mode: ScaleMode, decades: u32) -> ColourSettings {
        ColourSettings {
            mode,
            skip_sinks: 1,
            decades,
            colormap: Colormap::Viridis,
        }
    }

    #[test]
    fn sinks_are_left_out_of_the_range_and_saturate() {
        let scale = ColourScale::fit(&matrix(), settings(ScaleMode::Linear, 3));
        assert_eq!(scale.high(), 0.2);
        assert_eq!(scale.unit(0, 0.9), 1.0);
        assert!((scale.unit(1, 0.1) - 0.5).abs() < 1e-6);
        assert_eq!(scale.unit(1, 0.0), 0.0);
    }

    #[test]
    fn log_scale_spans_the_chosen_decades() {
        let scale = ColourScale::fit(&matrix(), settings(ScaleMode::Log, 2));
        assert!((scale.unit(0, 0.2) - 1.0).abs() < 1e-6);
        assert!((scale.unit(0, 0.02) - 0.5).abs() < 1e-5);
        assert_eq!(scale.unit(0, 0.000_02), 0.0);
        let ticks = scale.ticks();
        assert_eq!(ticks.len(), 3);
        assert_eq!(ticks[0].1, "2.0e-3");
        assert_eq!(ticks[2].1, "0.2");
        assert!((ticks[1].0 - 0.5).abs() < 1e-5);
    }

    #[test]
    fn per_row_normalises_each_row_to_its_own_max_outside_the_sinks() {
        let scale = ColourScale::fit(&matrix(), settings(ScaleMode::PerRow, 3));
        assert!((scale.unit(0, 0.05) - 1.0).abs() < 1e-6);
        assert!((scale.unit(1, 0.1) - 0.5).abs() < 1e-6);
        assert_eq!(scale.unit(0, 0.9), 1.0);
    }

    #[test]
    fn figures_get_the_screen_colours() {
        for mode in ScaleMode::ALL {
            let m = matrix();
            let scale = ColourScale::fit(&m, settings(mode, 3));
            let (values, figure_scale, label) = scale.for_figure(m.view());
            assert!(label.starts_with("attention"));
            for ((r, c), &v) in m.indexed_iter() {
                let on_screen = scale.settings().colormap.rgb(scale.unit(r, v));
                let row_max = values.row(r).iter().copied().fold(0.0f32, f32::max);
                assert_eq!(
                    figure_scale.color(values[[r, c]], row_max),
                    on_screen,
                    "{mode:?} at {r},{c}"
                );
            }
        }
    }

    #[test]
    fn shared_scales_take_the_largest_range_and_keep_their_rows() {
        let small = array![[0.0, 0.1, 0.05]];
        let large = matrix();
        let scales = ColourScale::fit_shared(
            &[Some(&small), None, Some(&large)],
            settings(ScaleMode::PerRow, 3),
        );
        assert!(scales[1].is_none());
        let (a, c) = (scales[0].as_ref().unwrap(), scales[2].as_ref().unwrap());
        assert_eq!(a.high(), 0.2);
        assert_eq!(c.high(), 0.2);
        assert!((a.unit(0, 0.05) - 0.5).abs() < 1e-6);
        let linear = ColourScale::fit_shared(
            &[Some(&small), Some(&large)],
            settings(ScaleMode::Linear, 3),
        );
        assert!((linear[0].as_ref().unwrap().unit(0, 0.1) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn an_all_zero_matrix_maps_to_the_bottom() {
        let scale = ColourScale::fit(&Array2::zeros((2, 3)), ColourSettings::default());
        assert_eq!(scale.unit(0, 0.0), 0.0);
        assert_eq!(scale.unit(5, 1.0), 0.0);
    }
}
