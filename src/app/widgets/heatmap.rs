//! A queries × keys heatmap drawn from GPU textures at the level of detail the view needs.
//!
//! The colours of one pyramid level are uploaded as tiles once; panning only moves the tiles
//! on screen. The textures are rebuilt only when the matrix (layer, head, aggregation), the
//! colour scale or the level (zoom bucket) changes.

use egui::{
    Color32, ColorImage, Context, Painter, Rect, Stroke, TextureHandle, TextureOptions, pos2,
};

use crate::app::key_viewport::KeyViewport;
use crate::app::lod::{MAX_TILE_COLUMNS, Pyramid, Tile, level_for, tiles};
use crate::export::ColourScale;

/// 256 colours sampled from a colormap, indexed by the value's place in the colour range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColourLut {
    colours: Vec<Color32>,
}

impl ColourLut {
    /// Samples `map` (`t` in `[0, 1]` to RGB) at 256 points.
    pub fn new(map: impl Fn(f32) -> [u8; 3]) -> Self {
        let colours = (0..256)
            .map(|i| {
                let [r, g, b] = map(i as f32 / 255.0);
                Color32::from_rgb(r, g, b)
            })
            .collect();
        Self { colours }
    }

    /// The colour at `t` in `[0, 1]` (clamped).
    pub fn at(&self, t: f32) -> Color32 {
        let i = (t.clamp(0.0, 1.0) * 255.0).round() as usize;
        self.colours.get(i).copied().unwrap_or(Color32::MAGENTA)
    }
}

/// Identifies what a set of textures shows; a change of any part means a new upload.
#[derive(Clone, Debug, PartialEq)]
struct Uploaded {
    matrix: u64,
    scale: ColourScale,
    lut: ColourLut,
    level: usize,
}

/// The textures of one heatmap panel.
#[derive(Default)]
pub struct HeatmapTextures {
    uploaded: Option<Uploaded>,
    tiles: Vec<(Tile, TextureHandle)>,
    uploads: u64,
}

impl HeatmapTextures {
    /// How many times textures were (re)built, for tests and the debug readout.
    pub fn uploads(&self) -> u64 {
        self.uploads
    }

    /// The pyramid level on screen.
    pub fn level(&self) -> Option<usize> {
        self.uploaded.as_ref().map(|u| u.level)
    }

    /// Makes sure the textures show `pyramid` (identified by `matrix`) in `scale` at the level
    /// that fits `axis` into `width_px` physical pixels.
    #[expect(
        clippy::too_many_arguments,
        reason = "what identifies the picture (name, matrix, scale, colours) and where it goes"
    )]
    pub fn update(
        &mut self,
        ctx: &Context,
        name: &str,
        matrix: u64,
        pyramid: &Pyramid,
        scale: &ColourScale,
        lut: &ColourLut,
        axis: &KeyViewport,
        width_px: f32,
    ) {
        let keys_per_pixel = axis.span() / f64::from(width_px.max(1.0));
        let level = level_for(keys_per_pixel).min(pyramid.top_level());
        let wanted = Uploaded {
            matrix,
            scale: scale.clone(),
            lut: lut.clone(),
            level,
        };
        if self.uploaded.as_ref() == Some(&wanted) {
            return;
        }
        let level_matrix = pyramid.level(level);
        let rows = level_matrix.nrows();
        let options = TextureOptions {
            magnification: egui::TextureFilter::Nearest,
            minification: egui::TextureFilter::Linear,
            ..TextureOptions::NEAREST
        };
        let columns = if rows == 0 { 0 } else { level_matrix.ncols() };
        self.tiles = tiles(columns, MAX_TILE_COLUMNS)
            .into_iter()
            .enumerate()
            .map(|(i, tile)| {
                let slice = tile.slice(level_matrix);
                let mut pixels = Vec::with_capacity(rows * tile.columns);
                for (row, values) in slice.outer_iter().enumerate() {
                    pixels.extend(values.iter().map(|&v| lut.at(scale.unit(row, v))));
                }
                let image = ColorImage::new([tile.columns, rows], pixels);
                let handle = ctx.load_texture(format!("{name}-{i}"), image, options);
                (tile, handle)
            })
            .collect();
        self.uploaded = Some(wanted);
        self.uploads += 1;
    }

    /// Paints the tiles into `rect` for the visible range of `axis`.
    pub fn paint(&self, painter: &Painter, rect: Rect, axis: &KeyViewport) {
        let Some(uploaded) = &self.uploaded else {
            return;
        };
        let painter = painter.with_clip_rect(rect.intersect(painter.clip_rect()));
        let x_of = |key: usize| rect.left() + (axis.fraction_of(key as f64) as f32) * rect.width();
        for (tile, handle) in &self.tiles {
            let (start, end) = tile.keys(uploaded.level, axis.keys());
            let full_end = start + (tile.columns << uploaded.level);
            let (left, right) = (x_of(start), x_of(full_end));
            if right < rect.left() || left > rect.right() || end <= start {
                continue;
            }
            let screen = Rect::from_min_max(pos2(left, rect.top()), pos2(right, rect.bottom()));
            let uv = Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0));
            painter.image(handle.id(), screen, uv, Color32::WHITE);
        }
    }
}

/// A thin vertical line over `rect` at key `key`.
pub fn paint_key_marker(
    painter: &Painter,
    rect: Rect,
    axis: &KeyViewport,
    key: usize,
    colour: Color32,
) {
    let left = rect.left() + axis.fraction_of(key as f64) as f32 * rect.width();
    let right = rect.left() + axis.fraction_of(key as f64 + 1.0) as f32 * rect.width();
    if right < rect.left() || left > rect.right() {
        return;
    }
    if right - left > 3.0 {
        let band = Rect::from_x_y_ranges(left..=right, rect.y_range());
        painter.rect_stroke(
            band,
            0.0,
            Stroke::new(1.0, colour),
            egui::StrokeKind::Inside,
        );
    } else {
        painter.vline(
            (left + right) / 2.0,
            rect.y_range(),
            Stroke::new(1.0, colour),
        );
    }
}
