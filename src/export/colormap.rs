//! Colormaps and colour scales shared by exported figures and the GUI's textures, so that a
//! figure shows exactly the colours seen on screen.

use serde::{Deserialize, Serialize};

/// A named colormap: a table of evenly spaced sRGB colours, linearly interpolated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colormap {
    /// matplotlib's viridis: dark blue to yellow, perceptually uniform, colour-blind safe.
    #[default]
    Viridis,
    /// matplotlib's magma: black through purple and orange to pale yellow.
    Magma,
    /// matplotlib's inferno: black through purple and red to yellow.
    Inferno,
    /// matplotlib's Greys: white for low values to black for high values (prints well).
    Greys,
    /// ColorBrewer's RdYlGn (as matplotlib draws it): dark red through yellow to dark green.
    /// For scores (0 fails, 1 succeeds), as in needle-in-a-haystack heatmaps; its luminance
    /// peaks in the middle, so it suits scores better than attention.
    #[serde(rename = "rdylgn")]
    RdYlGn,
}

impl Colormap {
    /// Every colormap, in menu order.
    pub const ALL: [Colormap; 5] = [
        Colormap::Viridis,
        Colormap::Magma,
        Colormap::Inferno,
        Colormap::Greys,
        Colormap::RdYlGn,
    ];

    /// Lowercase name, as in settings and sidecars (`viridis`).
    pub fn name(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Magma => "magma",
            Colormap::Inferno => "inferno",
            Colormap::Greys => "greys",
            Colormap::RdYlGn => "rdylgn",
        }
    }

    /// The colour at `t` in `[0, 1]` (clamped; NaN counts as 0), as sRGB bytes.
    pub fn rgb(self, t: f32) -> [u8; 3] {
        let table = self.table();
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let x = t * (table.len() - 1) as f32;
        // `x` is finite and within the table, so the casts stay in range.
        let i = (x.floor() as usize).min(table.len() - 2);
        let frac = x - i as f32;
        let (a, b) = (table[i], table[i + 1]);
        std::array::from_fn(|c| {
            (f32::from(a[c]) + (f32::from(b[c]) - f32::from(a[c])) * frac).round() as u8
        })
    }

    /// 33 colours at `t = 0, 1/32, …, 1`, sampled from matplotlib's 256-entry tables
    /// (interpolating them stays within 2/255 of the full table).
    fn table(self) -> &'static [[u8; 3]; 33] {
        match self {
            Colormap::Viridis => &VIRIDIS,
            Colormap::Magma => &MAGMA,
            Colormap::Inferno => &INFERNO,
            Colormap::Greys => &GREYS,
            Colormap::RdYlGn => &RD_YL_GN,
        }
    }
}

impl std::fmt::Display for Colormap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Colormap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Colormap::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Colormap::ALL.iter().map(|c| c.name()).collect();
                format!("unknown colormap {s:?}; choose one of {}", names.join(", "))
            })
    }
}

/// How values map to positions on the colour bar: the user's choice (explorer, `judgeq
/// figure --scale`) and the mapping a [`ColorScale`] applies.
///
/// Saved in figure sidecars as `linear`, `log` and `row_normalised`; the explorer's settings
/// from before this was one type (`Linear`, `Log`, `PerRow`) still load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScaleMode {
    /// Linear between `min` and `max`.
    #[serde(rename = "linear", alias = "Linear")]
    Linear,
    /// Linear in log10 between `min > 0` and `max`; values ≤ 0 take the lowest colour.
    /// Survives attention sinks: one huge value no longer flattens the rest.
    #[serde(rename = "log", alias = "Log")]
    Log,
    /// Each query row divided by its own maximum, then linear between `min` and `max`
    /// (fractions of the row maximum, usually 0 and 1).
    #[serde(rename = "row_normalised", alias = "PerRow")]
    PerRow,
}

impl ScaleMode {
    /// Every mode, in display order.
    pub const ALL: [ScaleMode; 3] = [ScaleMode::Log, ScaleMode::Linear, ScaleMode::PerRow];

    /// Label for the picker.
    pub fn label(self) -> &'static str {
        match self {
            ScaleMode::Linear => "Linear",
            ScaleMode::Log => "Log",
            ScaleMode::PerRow => "Per row",
        }
    }

    /// Lowercase name, as on the command line (`log`, `linear`, `per-row`).
    pub fn name(self) -> &'static str {
        match self {
            ScaleMode::Linear => "linear",
            ScaleMode::Log => "log",
            ScaleMode::PerRow => "per-row",
        }
    }
}

impl std::fmt::Display for ScaleMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ScaleMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScaleMode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = ScaleMode::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown colour scale {s:?}; choose one of {}",
                    names.join(", ")
                )
            })
    }
}

/// A colour scale: value mapping, value range and colormap.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColorScale {
    /// Linear, log or per-row normalised.
    pub kind: ScaleMode,
    /// Value at the bottom of the colour bar (a fraction of the row maximum for
    /// [`ScaleMode::PerRow`]).
    pub min: f32,
    /// Value at the top of the colour bar.
    pub max: f32,
    /// The colours.
    pub colormap: Colormap,
}

impl ColorScale {
    /// A scale of `kind` whose range covers `values` (attention weights, so ≥ 0):
    /// linear `[0, max]`, log `[max(smallest positive, max·10⁻⁴), max]`, row-normalised `[0, 1]`.
    ///
    /// To keep attention sinks out of the range, leave their columns out of `values`.
    pub fn fit(kind: ScaleMode, colormap: Colormap, values: impl IntoIterator<Item = f32>) -> Self {
        let (mut smallest_positive, mut largest) = (f32::INFINITY, 0.0f32);
        for v in values.into_iter().filter(|v| v.is_finite()) {
            largest = largest.max(v);
            if v > 0.0 {
                smallest_positive = smallest_positive.min(v);
            }
        }
        let (min, max) = match kind {
            ScaleMode::PerRow => (0.0, 1.0),
            ScaleMode::Linear if largest > 0.0 => (0.0, largest),
            ScaleMode::Linear => (0.0, 1.0),
            ScaleMode::Log if largest > 0.0 => {
                let floor = smallest_positive.max(largest * 1e-4);
                if floor < largest {
                    (floor, largest)
                } else {
                    (largest / 10.0, largest)
                }
            }
            ScaleMode::Log => (1e-4, 1.0),
        };
        Self {
            kind,
            min,
            max,
            colormap,
        }
    }

    /// Checks the range: finite, `min < max`, and `min > 0` for a log scale.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.min.is_finite() && self.max.is_finite() && self.min < self.max) {
            return Err(format!(
                "colour range [{}, {}] must be finite with min < max",
                self.min, self.max
            ));
        }
        if self.kind == ScaleMode::Log && self.min <= 0.0 {
            return Err(format!(
                "a log colour scale needs min > 0, not {}",
                self.min
            ));
        }
        Ok(())
    }

    /// Position of `value` on the colour bar, in `[0, 1]`. `row_max` is the largest value of
    /// the value's query row and matters only for [`ScaleMode::PerRow`].
    pub fn position(&self, value: f32, row_max: f32) -> f32 {
        let t = match self.kind {
            ScaleMode::Linear => (value - self.min) / (self.max - self.min),
            ScaleMode::Log if value > 0.0 => {
                (value / self.min).log10() / (self.max / self.min).log10()
            }
            ScaleMode::Log => 0.0,
            ScaleMode::PerRow if row_max > 0.0 => {
                (value / row_max - self.min) / (self.max - self.min)
            }
            ScaleMode::PerRow => 0.0,
        };
        if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) }
    }

    /// The colour of `value` in a row whose maximum is `row_max`.
    pub fn color(&self, value: f32, row_max: f32) -> [u8; 3] {
        self.colormap.rgb(self.position(value, row_max))
    }
}

#[rustfmt::skip]
const VIRIDIS: [[u8; 3]; 33] = [
    [68, 1, 84], [71, 13, 96], [72, 24, 106], [72, 35, 116], [71, 45, 123], [69, 55, 129],
    [66, 64, 134], [62, 73, 137], [59, 82, 139], [55, 91, 141], [51, 99, 141], [47, 107, 142],
    [44, 114, 142], [41, 122, 142], [38, 130, 142], [35, 137, 142], [33, 145, 140], [31, 151, 139],
    [31, 159, 136], [33, 166, 133], [39, 173, 129], [49, 181, 123], [61, 188, 116], [76, 194, 108],
    [92, 200, 99], [110, 206, 88], [129, 211, 77], [149, 216, 64], [170, 220, 50], [192, 223, 37],
    [213, 226, 26], [234, 229, 26], [253, 231, 37],
];

#[rustfmt::skip]
const MAGMA: [[u8; 3]; 33] = [
    [0, 0, 4], [3, 3, 18], [10, 8, 34], [19, 13, 52], [29, 17, 71], [41, 17, 90],
    [54, 16, 107], [68, 15, 118], [81, 18, 124], [93, 23, 127], [106, 28, 129], [118, 33, 129],
    [131, 38, 129], [144, 42, 129], [156, 46, 127], [170, 51, 125], [183, 55, 121], [194, 59, 117],
    [207, 64, 112], [219, 71, 106], [229, 80, 100], [238, 91, 94], [244, 105, 92], [249, 120, 93],
    [251, 135, 97], [253, 150, 104], [254, 165, 113], [254, 180, 123], [254, 194, 135], [254, 209, 148],
    [253, 224, 161], [252, 238, 176], [252, 253, 191],
];

#[rustfmt::skip]
const INFERNO: [[u8; 3]; 33] = [
    [0, 0, 4], [4, 3, 18], [11, 7, 36], [21, 11, 55], [33, 12, 74], [47, 10, 91],
    [61, 9, 101], [74, 12, 107], [87, 16, 110], [100, 21, 110], [113, 25, 110], [125, 30, 109],
    [138, 34, 106], [151, 39, 102], [163, 44, 97], [176, 49, 91], [188, 55, 84], [198, 61, 77],
    [208, 69, 69], [218, 78, 60], [227, 89, 51], [235, 100, 41], [241, 113, 31], [246, 126, 20],
    [249, 140, 10], [251, 155, 6], [252, 170, 15], [251, 186, 31], [249, 201, 50], [245, 217, 73],
    [242, 232, 101], [243, 245, 134], [252, 255, 164],
];

#[rustfmt::skip]
const GREYS: [[u8; 3]; 33] = [
    [255, 255, 255], [251, 251, 251], [247, 247, 247], [244, 244, 244], [240, 240, 240], [234, 234, 234],
    [228, 228, 228], [223, 223, 223], [217, 217, 217], [210, 210, 210], [203, 203, 203], [196, 196, 196],
    [189, 189, 189], [179, 179, 179], [169, 169, 169], [159, 159, 159], [149, 149, 149], [141, 141, 141],
    [132, 132, 132], [123, 123, 123], [114, 114, 114], [106, 106, 106], [98, 98, 98], [90, 90, 90],
    [81, 81, 81], [70, 70, 70], [58, 58, 58], [47, 47, 47], [36, 36, 36], [27, 27, 27],
    [17, 17, 17], [8, 8, 8], [0, 0, 0],
];

/// ColorBrewer's 11-class RdYlGn interpolated linearly in sRGB, as matplotlib builds it.
#[rustfmt::skip]
const RD_YL_GN: [[u8; 3]; 33] = [
    [165, 0, 38], [181, 15, 38], [196, 30, 39], [212, 45, 39], [222, 63, 46], [231, 82, 55],
    [240, 101, 64], [246, 121, 73], [248, 142, 82], [251, 162, 91], [253, 180, 102], [253, 196, 115],
    [254, 212, 128], [254, 226, 142], [254, 236, 158], [255, 245, 175], [255, 255, 191], [243, 250, 175],
    [231, 245, 158], [219, 240, 142], [204, 234, 131], [188, 227, 120], [172, 220, 110], [154, 212, 105],
    [134, 203, 102], [114, 194, 100], [92, 184, 97], [69, 173, 91], [45, 161, 85], [24, 149, 78],
    [16, 134, 71], [8, 119, 63], [0, 104, 55],
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative luminance of an sRGB colour (WCAG / Rec. 709 primaries).
    fn luminance([r, g, b]: [u8; 3]) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    }

    #[test]
    fn scale_names_parse_back() {
        for mode in ScaleMode::ALL {
            assert_eq!(mode.name().parse::<ScaleMode>().unwrap(), mode);
        }
        assert_eq!("Per-Row".parse::<ScaleMode>().unwrap(), ScaleMode::PerRow);
        let err = "cubic".parse::<ScaleMode>().unwrap_err();
        assert!(err.contains("log, linear, per-row"), "{err}");
    }

    #[test]
    fn scale_modes_save_as_in_sidecars_and_read_old_explorer_settings() {
        let saved: Vec<String> = ScaleMode::ALL
            .iter()
            .map(|mode| serde_json::to_string(mode).unwrap())
            .collect();
        assert_eq!(saved, [r#""log""#, r#""linear""#, r#""row_normalised""#]);
        for (text, mode) in [
            (r#""linear""#, ScaleMode::Linear),
            (r#""Linear""#, ScaleMode::Linear),
            (r#""log""#, ScaleMode::Log),
            (r#""Log""#, ScaleMode::Log),
            (r#""row_normalised""#, ScaleMode::PerRow),
            (r#""PerRow""#, ScaleMode::PerRow),
        ] {
            assert_eq!(
                serde_json::from_str::<ScaleMode>(text).unwrap(),
                mode,
                "{text}"
            );
        }
    }

    #[test]
    fn endpoints_are_matplotlibs() {
        assert_eq!(Colormap::Viridis.rgb(0.0), [68, 1, 84]);
        assert_eq!(Colormap::Viridis.rgb(1.0), [253, 231, 37]);
        assert_eq!(Colormap::Magma.rgb(0.0), [0, 0, 4]);
        assert_eq!(Colormap::Magma.rgb(1.0), [252, 253, 191]);
        assert_eq!(Colormap::Inferno.rgb(0.0), [0, 0, 4]);
        assert_eq!(Colormap::Inferno.rgb(1.0), [252, 255, 164]);
        assert_eq!(Colormap::Greys.rgb(0.0), [255, 255, 255]);
        assert_eq!(Colormap::Greys.rgb(1.0), [0, 0, 0]);
        // ColorBrewer's first, middle and last RdYlGn classes: #a50026, #ffffbf, #006837.
        assert_eq!(Colormap::RdYlGn.rgb(0.0), [165, 0, 38]);
        assert_eq!(Colormap::RdYlGn.rgb(0.5), [255, 255, 191]);
        assert_eq!(Colormap::RdYlGn.rgb(1.0), [0, 104, 55]);
        // Class 3 of 11 (#fdae61) sits at 0.3.
        let orange = Colormap::RdYlGn.rgb(0.3);
        for (c, want) in orange.iter().zip([253u8, 174, 97]) {
            assert!(c.abs_diff(want) <= 2, "{orange:?}");
        }
        // Out of range and NaN clamp to the ends.
        assert_eq!(Colormap::Viridis.rgb(-3.0), Colormap::Viridis.rgb(0.0));
        assert_eq!(Colormap::Viridis.rgb(7.0), Colormap::Viridis.rgb(1.0));
        assert_eq!(Colormap::Viridis.rgb(f32::NAN), Colormap::Viridis.rgb(0.0));
    }

    #[test]
    fn between_table_entries_it_stays_close_to_matplotlibs_full_table() {
        // Entries of matplotlib's 256-colour tables that fall between our 33 samples.
        let reference: [(Colormap, usize, [u8; 3]); 15] = [
            (Colormap::Viridis, 37, [70, 51, 127]),
            (Colormap::Viridis, 100, [42, 118, 142]),
            (Colormap::Viridis, 150, [33, 165, 133]),
            (Colormap::Viridis, 201, [115, 208, 86]),
            (Colormap::Viridis, 230, [189, 223, 38]),
            (Colormap::Magma, 37, [36, 18, 83]),
            (Colormap::Magma, 100, [137, 40, 129]),
            (Colormap::Magma, 150, [217, 70, 107]),
            (Colormap::Magma, 201, [253, 154, 106]),
            (Colormap::Magma, 230, [254, 207, 146]),
            (Colormap::Inferno, 37, [41, 11, 85]),
            (Colormap::Inferno, 100, [144, 37, 104]),
            (Colormap::Inferno, 150, [217, 77, 61]),
            (Colormap::Inferno, 201, [252, 159, 7]),
            (Colormap::Inferno, 230, [246, 215, 70]),
        ];
        for (map, index, expected) in reference {
            let got = map.rgb(index as f32 / 255.0);
            for c in 0..3 {
                assert!(
                    got[c].abs_diff(expected[c]) <= 2,
                    "{map} at {index}: {got:?} vs {expected:?}"
                );
            }
        }
    }

    #[test]
    fn luminance_is_monotonic() {
        // RdYlGn is diverging: its luminance peaks at the yellow middle.
        for map in Colormap::ALL.into_iter().filter(|&m| m != Colormap::RdYlGn) {
            let lum: Vec<f64> = (0..=1024)
                .map(|i| luminance(map.rgb(i as f32 / 1024.0)))
                .collect();
            let signed = |a: f64, b: f64| if map == Colormap::Greys { a - b } else { b - a };
            for (i, pair) in lum.windows(2).enumerate() {
                // Rounding to bytes may dip by one byte of one channel (matplotlib's own 8-bit
                // viridis does, by 0.0003 at entry 145; magma's red steps 254 -> 253 near the
                // top, 0.0019); never more.
                assert!(
                    signed(pair[0], pair[1]) > -2.5e-3,
                    "{map}: luminance drops at {i}/1024"
                );
            }
            for i in 0..(1024 - 32) {
                assert!(
                    signed(lum[i], lum[i + 32]) > 0.0,
                    "{map}: luminance does not rise over {i}..{}",
                    i + 32
                );
            }
            assert!(
                signed(lum[0], lum[1024]) > 0.6,
                "{map}: {} -> {}",
                lum[0],
                lum[1024]
            );
        }
    }

    #[test]
    fn names_parse_back() {
        for map in Colormap::ALL {
            assert_eq!(map.name().parse::<Colormap>().unwrap(), map);
        }
        assert!("jet".parse::<Colormap>().unwrap_err().contains("viridis"));
    }

    #[test]
    fn scales_map_values_as_documented() {
        let linear = ColorScale {
            kind: ScaleMode::Linear,
            min: 0.0,
            max: 0.5,
            colormap: Colormap::Viridis,
        };
        assert_eq!(linear.position(0.25, 1.0), 0.5);
        assert_eq!(linear.position(0.9, 1.0), 1.0);
        assert_eq!(linear.position(f32::NAN, 1.0), 0.0);

        let log = ColorScale {
            kind: ScaleMode::Log,
            min: 1e-4,
            max: 1.0,
            colormap: Colormap::Viridis,
        };
        assert!((log.position(1e-2, 1.0) - 0.5).abs() < 1e-6);
        assert_eq!(log.position(0.0, 1.0), 0.0);
        assert_eq!(log.position(1e-9, 1.0), 0.0);

        let rows = ColorScale {
            kind: ScaleMode::PerRow,
            min: 0.0,
            max: 1.0,
            colormap: Colormap::Magma,
        };
        assert_eq!(rows.position(0.02, 0.04), 0.5);
        assert_eq!(rows.position(0.04, 0.04), 1.0);
        assert_eq!(rows.position(0.0, 0.0), 0.0);
        assert_eq!(rows.color(0.04, 0.04), Colormap::Magma.rgb(1.0));
    }

    #[test]
    fn fitted_ranges_cover_the_values() {
        let values = [0.0, 0.5, 1e-9, 0.02, f32::NAN];
        let linear = ColorScale::fit(ScaleMode::Linear, Colormap::Viridis, values);
        assert_eq!((linear.min, linear.max), (0.0, 0.5));
        let log = ColorScale::fit(ScaleMode::Log, Colormap::Viridis, values);
        assert_eq!((log.min, log.max), (0.5 * 1e-4, 0.5));
        let log_narrow = ColorScale::fit(ScaleMode::Log, Colormap::Viridis, [0.3, 0.3]);
        assert!(log_narrow.min < log_narrow.max && log_narrow.validate().is_ok());
        let empty = ColorScale::fit(ScaleMode::Log, Colormap::Viridis, []);
        assert!(empty.validate().is_ok());
        let bad = ColorScale {
            kind: ScaleMode::Log,
            min: 0.0,
            max: 1.0,
            colormap: Colormap::Viridis,
        };
        assert!(bad.validate().unwrap_err().contains("min > 0"));
    }
}
