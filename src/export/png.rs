//! PNG figures: the SVG of [`crate::export::render_svg`] rasterised by resvg with egui's
//! bundled fonts, so the output is the same on every machine, with or without system fonts.

use resvg::{tiny_skia, usvg};

use crate::export::ExportError;
use crate::export::figure::{FigureSpec, SVG_MAX_COLUMNS, SVG_MAX_ROWS};
use crate::export::fonts::figure_fontdb;
use crate::export::png_encode::encode_rgb;
use crate::export::svg::{Layout, Resolution, draw};

/// Print resolution: the resolution of every PNG the explorer and the CLI export.
pub const PRINT_DPI: f32 = 300.0;
/// Lowest and highest resolution accepted, in dots per inch.
pub const DPI_RANGE: std::ops::RangeInclusive<f32> = 36.0..=2400.0;
/// Largest raster drawn, in pixels (about 400 MB of RGBA while drawing).
const MAX_PIXELS: u64 = 100_000_000;

/// Pixel size of the PNG that [`render_png`] makes of `spec` at `dpi`.
pub fn figure_pixels(spec: &FigureSpec, dpi: f32) -> Result<(u32, u32), ExportError> {
    spec.validate()?;
    check_dpi(dpi)?;
    let layout = Layout::new(spec)?;
    pixels((layout.width, layout.height), dpi)
}

/// Draws `spec` as a PNG at `dpi` (300 for print: a 180 mm figure is 2126 pixels wide).
///
/// This rasterises the figure's SVG; heatmaps are max-pooled to at most one cell per device
/// pixel first, so no single-key peak is lost to resampling. The file records its resolution
/// (`pHYs`), so layout programs place it at its physical size.
pub fn render_png(spec: &FigureSpec, dpi: f32) -> Result<Vec<u8>, ExportError> {
    spec.validate()?;
    check_dpi(dpi)?;
    let device = dpi / 72.0;
    let layout = Layout::new(spec)?.snapped(device);
    let (width, height) = pixels((layout.width, layout.height), dpi)?;
    let resolution = Resolution {
        rows: ((layout.heat_h * device).round() as usize).clamp(1, SVG_MAX_ROWS),
        columns: ((layout.heat_w * device).round() as usize).clamp(1, SVG_MAX_COLUMNS),
    };
    let svg = draw(spec, &layout, resolution)?;
    rasterise(&svg, (width, height), dpi)
}

/// Rasterises `svg` into a `width × height` PNG that records `dpi`, with the bundled fonts,
/// on opaque white.
pub(crate) fn rasterise(
    svg: &str,
    (width, height): (u32, u32),
    dpi: f32,
) -> Result<Vec<u8>, ExportError> {
    let options = usvg::Options {
        fontdb: figure_fontdb(),
        ..Default::default()
    };
    let tree =
        usvg::Tree::from_str(svg, &options).map_err(|e| ExportError::Render(e.to_string()))?;
    let mut pixmap = tiny_skia::Pixmap::new(width, height).ok_or_else(|| {
        ExportError::Render(format!("cannot allocate a {width} × {height} image"))
    })?;
    pixmap.fill(tiny_skia::Color::WHITE);
    let size = tree.size();
    let transform = tiny_skia::Transform::from_scale(
        width as f32 / size.width(),
        height as f32 / size.height(),
    );
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    // The background is opaque white, so premultiplied RGBA is plain RGBA: drop alpha.
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    encode_rgb(width as usize, height as usize, &rgb, Some(dpi))
}

/// Checks that `dpi` is within [`DPI_RANGE`].
pub(crate) fn check_dpi(dpi: f32) -> Result<(), ExportError> {
    if DPI_RANGE.contains(&dpi) {
        Ok(())
    } else {
        Err(ExportError::InvalidFigure(format!(
            "a resolution of {dpi} dpi is outside {}–{} dpi",
            DPI_RANGE.start(),
            DPI_RANGE.end()
        )))
    }
}

/// Pixel size of a figure of `width × height` points at `dpi`; refuses absurdly large images.
pub(crate) fn pixels((width, height): (f32, f32), dpi: f32) -> Result<(u32, u32), ExportError> {
    let device = dpi / 72.0;
    let (width, height) = (
        (width * device).round() as u64,
        (height * device).round() as u64,
    );
    if width * height > MAX_PIXELS {
        return Err(ExportError::InvalidFigure(format!(
            "{width} × {height} pixels is too large an image; lower the resolution"
        )));
    }
    Ok((width.max(1) as u32, height.max(1) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::figure::PanelData;
    use crate::export::test_support::figure_spec;
    use crate::export::{Colormap, render_svg};

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).unwrap().to_rgb8()
    }

    /// Bounding box of an SVG element by id, in user units, found by usvg in the SVG itself.
    fn element_box(svg: &str, id: &str) -> resvg::usvg::Rect {
        let options = usvg::Options {
            fontdb: figure_fontdb(),
            ..Default::default()
        };
        let tree = usvg::Tree::from_str(svg, &options).unwrap();
        let node = tree.node_by_id(id).unwrap();
        let scale = 72.0 / 96.0; // usvg works in CSS pixels; our viewBox is in points.
        let b = node.abs_bounding_box();
        resvg::usvg::Rect::from_xywh(
            b.x() * scale,
            b.y() * scale,
            b.width() * scale,
            b.height() * scale,
        )
        .unwrap()
    }

    #[test]
    fn png_has_the_size_the_dpi_asks_for() {
        let spec = figure_spec(4, 8);
        let png = render_png(&spec, 300.0).unwrap();
        let image = decode(&png);
        // 180 mm at 300 dpi.
        assert_eq!(image.width(), 2126);
        let svg = render_svg(&spec).unwrap();
        let height_mm: f32 = svg
            .split("height=\"")
            .nth(1)
            .unwrap()
            .split("mm")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(image.height(), (height_mm / 25.4 * 300.0).round() as u32);
        assert_eq!(
            figure_pixels(&spec, 300.0).unwrap(),
            (image.width(), image.height())
        );
        // The pHYs chunk records 300 dpi (11811 pixels per metre).
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let reader = decoder.read_info().unwrap();
        let dims = reader.info().pixel_dims.unwrap();
        assert_eq!((dims.xppu, dims.unit), (11811, png::Unit::Meter));
        assert_eq!(decode(&render_png(&spec, 72.0).unwrap()).width(), 510);
    }

    #[test]
    fn pixels_under_a_cell_have_the_colormap_colour_of_its_value() {
        let mut spec = figure_spec(4, 8);
        spec.scale.colormap = Colormap::Magma;
        let PanelData::Heatmap(values) = &spec.panels[0].data else {
            panic!()
        };
        let values = values.clone();
        let dpi = 300.0;
        let image = decode(&render_png(&spec, dpi).unwrap());
        let svg = render_svg(&spec).unwrap();
        let heat = element_box(&svg, "heatmap-0");
        let px = dpi / 72.0;
        let (rows, cols) = values.dim();
        for (i, j) in [(0, 0), (1, 3), (2, 5), (3, 7)] {
            let x = (heat.x() + (j as f32 + 0.5) * heat.width() / cols as f32) * px;
            let y = (heat.y() + (i as f32 + 0.5) * heat.height() / rows as f32) * px;
            let got = image.get_pixel(x as u32, y as u32).0;
            let expected = spec.scale.color(values[[i, j]], 1.0);
            for c in 0..3 {
                assert!(
                    got[c].abs_diff(expected[c]) <= 1,
                    "cell ({i}, {j}): {got:?} vs {expected:?}"
                );
            }
        }
        // The colour bar is the colormap from 1 at the top to 0 at the bottom, in 256 rows.
        let bar = element_box(&svg, "colorbar");
        let cx = ((bar.x() + bar.width() / 2.0) * px) as u32;
        // The PNG puts the bar on the pixel grid, which may move it by up to a pixel (about one
        // of its 256 rows at this size): accept a neighbouring row.
        for row in [1usize, 50, 128, 200, 254] {
            let y = ((bar.y() + (row as f32 + 0.5) * bar.height() / 256.0) * px) as u32;
            let got = image.get_pixel(cx, y).0;
            let close = |r: usize| {
                let expected = Colormap::Magma.rgb((255 - r) as f32 / 255.0);
                (0..3).all(|c| got[c].abs_diff(expected[c]) <= 1)
            };
            assert!(
                (row - 1..=row + 1).any(close),
                "bar row {row}: {got:?} vs {:?}",
                Colormap::Magma.rgb((255 - row) as f32 / 255.0)
            );
        }
    }

    #[test]
    fn a_single_key_peak_survives_at_8k_keys() {
        let mut spec = figure_spec(8, 8192);
        let mut values = ndarray::Array2::<f32>::zeros((8, 8192));
        values[[3, 5001]] = 1.0;
        spec.panels[0].data = PanelData::Heatmap(values);
        let dpi = 150.0;
        let image = decode(&render_png(&spec, dpi).unwrap());
        let heat = element_box(&render_svg(&spec).unwrap(), "heatmap-0");
        let px = dpi / 72.0;
        let peak = spec.scale.colormap.rgb(1.0);
        let (x0, x1) = (
            (heat.x() * px).ceil() as u32,
            ((heat.x() + heat.width()) * px).floor() as u32,
        );
        let y = ((heat.y() + 3.5 * heat.height() / 8.0) * px) as u32;
        let hits: Vec<u32> = (x0..x1)
            .filter(|&x| image.get_pixel(x, y).0 == peak)
            .collect();
        assert!(!hits.is_empty(), "the peak vanished");
        // It sits where key 5001 is on the axis, within a pixel or two.
        let expected = (heat.x() + 5001.5 / 8192.0 * heat.width()) * px;
        assert!(
            hits.iter().all(|&x| (x as f32 - expected).abs() <= 2.0),
            "{hits:?} vs {expected}"
        );
    }

    #[test]
    fn absurd_resolutions_are_refused() {
        let spec = figure_spec(2, 8);
        assert!(matches!(
            render_png(&spec, 0.0),
            Err(ExportError::InvalidFigure(_))
        ));
        assert!(matches!(
            render_png(&spec, f32::NAN),
            Err(ExportError::InvalidFigure(_))
        ));
        assert!(
            render_png(&spec, 5000.0)
                .unwrap_err()
                .to_string()
                .contains("dpi")
        );
        let mut huge = spec;
        huge.width_mm = 600.0;
        assert!(
            render_png(&huge, 2400.0)
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }
}
