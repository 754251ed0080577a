//! The SVG text of every figure: a document in points with the bundled fonts named first,
//! and the shapes the figures are made of (text, rectangles, frames, lines, polylines,
//! markers, embedded PNG images and a colour bar).
//!
//! Units are PostScript points (1/72 inch) in the `viewBox`; the `width` and `height`
//! attributes give the physical size in millimetres.

use base64::Engine;

use crate::export::ExportError;
use crate::export::colormap::{ColorScale, ScaleMode};
use crate::export::png_encode::encode_rgb;
use crate::export::ticks::{format_tick, nice_ticks};

/// Font stacks: the bundled fonts first (what the PNG renderer loads), then common fallbacks.
pub(crate) const SANS: &str = "Ubuntu, 'Ubuntu Light', 'DejaVu Sans', Helvetica, Arial, sans-serif";
/// The monospace font stack.
pub(crate) const MONO: &str = "Hack, 'DejaVu Sans Mono', Menlo, Consolas, monospace";
/// Tick label size.
pub(crate) const TICK_SIZE: f32 = 6.5;
/// Axis label size.
pub(crate) const LABEL_SIZE: f32 = 7.0;
/// Tick length.
pub(crate) const TICK_LEN: f32 = 2.5;
/// Colour bar width.
pub(crate) const BAR_W: f32 = 7.0;
/// Average advance of a character in the sans font, in ems (a generous estimate).
const SANS_EM: f32 = 0.56;
/// Text colour.
pub(crate) const TEXT: &str = "#1a1a1a";
/// Frame, tick and axis colour.
pub(crate) const FRAME: &str = "#333333";
/// Frame stroke width.
pub(crate) const FRAME_WIDTH: f32 = 0.5;

/// A label on the colour bar: plain text or a power of ten.
pub(crate) enum BarLabel {
    /// Text as it is.
    Plain(String),
    /// `10` raised to this power.
    Power(i32),
}

impl BarLabel {
    /// Estimated width at the tick size.
    pub(crate) fn width(&self) -> f32 {
        match self {
            BarLabel::Plain(text) => text_width(text, TICK_SIZE),
            BarLabel::Power(k) => {
                text_width("10", TICK_SIZE) + text_width(&k.to_string(), TICK_SIZE * 0.7)
            }
        }
    }
}

/// Colour-bar ticks as (position in [0, 1], label).
pub(crate) fn bar_ticks(scale: &ColorScale) -> Vec<(f32, BarLabel)> {
    let (min, max) = (f64::from(scale.min), f64::from(scale.max));
    let position = |v: f64| scale.position(v as f32, 1.0);
    if scale.kind == ScaleMode::Log {
        let decades: Vec<i32> =
            ((min.log10().ceil() as i32)..=(max.log10().floor() as i32)).collect();
        if decades.len() >= 2 {
            let stride = decades.len().div_ceil(6);
            return decades
                .iter()
                .rev()
                .step_by(stride)
                .map(|&k| {
                    let label = match k {
                        0 => BarLabel::Plain("1".into()),
                        1 => BarLabel::Plain("10".into()),
                        _ => BarLabel::Power(k),
                    };
                    (position(10f64.powi(k)), label)
                })
                .collect();
        }
    }
    let ticks = nice_ticks(min, max, 5);
    let step = if ticks.len() >= 2 {
        ticks[1] - ticks[0]
    } else {
        (max - min).abs()
    };
    let ticks = if ticks.is_empty() {
        vec![min, max]
    } else {
        ticks
    };
    ticks
        .into_iter()
        .map(|v| (position(v), BarLabel::Plain(format_tick(v, step))))
        .collect()
}

/// The SVG text being built.
#[derive(Default)]
pub(crate) struct Svg {
    /// The text so far.
    pub(crate) out: String,
}

impl Svg {
    /// Opens a document `width_mm` wide and `height_mm` high whose `viewBox` is `width` ×
    /// `height` points, with a `<title>`, the sidecar JSON as `<metadata>` and a white
    /// background.
    pub(crate) fn open(
        &mut self,
        (width_mm, height_mm): (f32, f32),
        (width, height): (f32, f32),
        title: &str,
        metadata: &str,
    ) {
        self.out.push_str(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" \
             version=\"1.1\" width=\"{width_mm:.3}mm\" height=\"{height_mm:.3}mm\" viewBox=\"0 0 {width:.3} {height:.3}\" \
             font-family=\"{SANS}\" fill=\"{TEXT}\">\n<title>{}</title>\n<metadata id=\"judgeq-provenance\">{}</metadata>\n",
            escape(title),
            escape(metadata),
        ));
        self.rect(0.0, 0.0, width, height, "#ffffff", "none");
    }

    /// Closes the document and returns its text.
    pub(crate) fn close(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }

    /// Text anchored at (x, y) on its baseline; `extra` holds more attributes.
    pub(crate) fn text(
        &mut self,
        x: f32,
        y: f32,
        size: f32,
        anchor: &str,
        content: &str,
        extra: &str,
    ) {
        self.out.push_str(&format!(
            "<text x=\"{x:.3}\" y=\"{y:.3}\" font-size=\"{size:.3}\" text-anchor=\"{anchor}\" {extra}>{}</text>\n",
            escape(content)
        ));
    }

    /// Text rotated a quarter turn anticlockwise (reading upwards), anchored at (x, y).
    pub(crate) fn vertical_text(
        &mut self,
        x: f32,
        y: f32,
        size: f32,
        anchor: &str,
        content: &str,
        extra: &str,
    ) {
        self.out.push_str(&format!(
            "<text transform=\"translate({x:.3} {y:.3}) rotate(-90)\" font-size=\"{size:.3}\" text-anchor=\"{anchor}\" {extra}>{}</text>\n",
            escape(content)
        ));
    }

    /// A filled rectangle with a thin stroke (`none` for no stroke).
    pub(crate) fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: &str, stroke: &str) {
        self.out.push_str(&format!(
            "<rect x=\"{x:.3}\" y=\"{y:.3}\" width=\"{w:.3}\" height=\"{h:.3}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"0.5\"/>\n"
        ));
    }

    /// A frame whose stroke lies just outside the box, so it hides no edge cell.
    pub(crate) fn frame(&mut self, x: f32, y: f32, w: f32, h: f32) {
        let half = FRAME_WIDTH / 2.0;
        self.out.push_str(&format!(
            "<rect x=\"{:.3}\" y=\"{:.3}\" width=\"{:.3}\" height=\"{:.3}\" fill=\"none\" stroke=\"{FRAME}\" stroke-width=\"{FRAME_WIDTH}\"/>\n",
            x - half,
            y - half,
            w + FRAME_WIDTH,
            h + FRAME_WIDTH
        ));
    }

    /// A thin line in the frame colour.
    pub(crate) fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32) {
        self.out.push_str(&format!(
            "<line x1=\"{x1:.3}\" y1=\"{y1:.3}\" x2=\"{x2:.3}\" y2=\"{y2:.3}\" stroke=\"{FRAME}\" stroke-width=\"0.5\"/>\n"
        ));
    }

    /// A PNG stretched over a box without smoothing: each cell stays a sharp rectangle.
    pub(crate) fn image(&mut self, id: &str, x: f32, y: f32, w: f32, h: f32, png: &[u8]) {
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        self.out.push_str(&format!(
            "<image id=\"{id}\" x=\"{x:.3}\" y=\"{y:.3}\" width=\"{w:.3}\" height=\"{h:.3}\" preserveAspectRatio=\"none\" \
             image-rendering=\"optimizeSpeed\" style=\"image-rendering:pixelated\" xlink:href=\"data:image/png;base64,{data}\"/>\n"
        ));
    }

    /// A filled rectangle without stroke, with an id (a heatmap cell).
    pub(crate) fn cell(&mut self, id: &str, x: f32, y: f32, w: f32, h: f32, fill: &str) {
        self.out.push_str(&format!(
            "<rect id=\"{id}\" x=\"{x:.3}\" y=\"{y:.3}\" width=\"{w:.3}\" height=\"{h:.3}\" fill=\"{fill}\"/>\n"
        ));
    }

    /// A line of `width` points in `colour`, dashed when `dash` is given (`"3 2"`).
    pub(crate) fn stroke_line(
        &mut self,
        (x1, y1): (f32, f32),
        (x2, y2): (f32, f32),
        colour: &str,
        width: f32,
        dash: Option<&str>,
    ) {
        let dash = dash
            .map(|d| format!(" stroke-dasharray=\"{d}\""))
            .unwrap_or_default();
        self.out.push_str(&format!(
            "<line x1=\"{x1:.3}\" y1=\"{y1:.3}\" x2=\"{x2:.3}\" y2=\"{y2:.3}\" stroke=\"{colour}\" stroke-width=\"{width:.3}\"{dash}/>\n"
        ));
    }

    /// An open polyline through `points` in `colour`.
    pub(crate) fn polyline(&mut self, points: &[(f32, f32)], colour: &str, width: f32) {
        let points: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.3},{y:.3}"))
            .collect();
        self.out.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width:.3}\" stroke-linejoin=\"round\"/>\n",
            points.join(" ")
        ));
    }

    /// A filled circle with a white rim (a marker on a curve).
    pub(crate) fn marker(&mut self, x: f32, y: f32, radius: f32, colour: &str) {
        self.out.push_str(&format!(
            "<circle cx=\"{x:.3}\" cy=\"{y:.3}\" r=\"{radius:.3}\" fill=\"{colour}\" stroke=\"#ffffff\" stroke-width=\"0.4\"/>\n"
        ));
    }

    /// A vertical colour bar of `scale`'s colormap from 1 at the top to 0 at the bottom, with
    /// `ticks` on its right and `label` read upwards at `label_x`.
    pub(crate) fn colour_bar(
        &mut self,
        (x, top, h): (f32, f32, f32),
        scale: &ColorScale,
        ticks: &[(f32, BarLabel)],
        label: &str,
        label_x: f32,
    ) -> Result<(), ExportError> {
        let ramp: Vec<u8> = (0..256)
            .rev()
            .flat_map(|i| scale.colormap.rgb(i as f32 / 255.0))
            .collect();
        let png = encode_rgb(1, 256, &ramp, None)?;
        self.image("colorbar", x, top, BAR_W, h, &png);
        self.frame(x, top, BAR_W, h);
        for (t, tick) in ticks {
            let y = top + h * (1.0 - t);
            self.line(x + BAR_W, y, x + BAR_W + TICK_LEN, y);
            let lx = x + BAR_W + TICK_LEN + 1.5;
            let ly = y + TICK_SIZE * 0.35;
            match tick {
                BarLabel::Plain(text) => self.text(lx, ly, TICK_SIZE, "start", text, ""),
                BarLabel::Power(k) => {
                    let exponent = k.to_string().replacen('-', "−", 1);
                    self.out.push_str(&format!(
                        "<text x=\"{lx:.3}\" y=\"{ly:.3}\" font-size=\"{TICK_SIZE:.3}\">10<tspan baseline-shift=\"super\" font-size=\"{:.3}\">{exponent}</tspan></text>\n",
                        TICK_SIZE * 0.7
                    ));
                }
            }
        }
        let size = fit_size(label, LABEL_SIZE, h + 20.0);
        self.vertical_text(label_x, top + h / 2.0, size, "middle", label, "");
        Ok(())
    }
}

/// Estimated width of `text` in the sans font at `size`.
pub(crate) fn text_width(text: &str, size: f32) -> f32 {
    text.chars().count() as f32 * SANS_EM * size
}

/// `size`, reduced so that `text` fits in `available` points (never below 4 pt).
pub(crate) fn fit_size(text: &str, size: f32, available: f32) -> f32 {
    let natural = text_width(text, size);
    if natural <= available {
        size
    } else {
        (size * available / natural).max(4.0)
    }
}

/// `#rrggbb`.
pub(crate) fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Escapes text for XML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even when escaped.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(
            escape("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;\u{FFFD}"
        );
        assert_eq!(escape("it's\n"), "it&apos;s\n");
    }

    #[test]
    fn long_text_shrinks_to_fit_but_not_below_four_points() {
        assert_eq!(fit_size("short", 7.0, 100.0), 7.0);
        let size = fit_size(&"x".repeat(40), 7.0, 100.0);
        assert!((text_width(&"x".repeat(40), size) - 100.0).abs() < 1e-3);
        assert_eq!(fit_size(&"x".repeat(400), 7.0, 100.0), 4.0);
    }
}
