//! The one view of the key axis that the three panels, their kept strips and the ruler share:
//! the visible key range (zoom and pan) and the key under the pointer. (An exported figure's
//! fixed key range is [`crate::export::KeyAxis`].)

use egui::{Response, Ui, Vec2};

/// Narrowest view, in keys.
const MIN_SPAN: f64 = 8.0;

/// The visible range `[start, end)` of prompt keys and the hovered key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyViewport {
    keys: usize,
    start: f64,
    end: f64,
    /// The key under the pointer in any widget on this axis this frame, if any.
    pub hovered: Option<usize>,
    /// The hovered key of the previous frame.
    last_hovered: Option<usize>,
}

impl KeyViewport {
    /// The whole axis of `keys` keys in view.
    pub fn new(keys: usize) -> Self {
        Self {
            keys,
            start: 0.0,
            end: keys as f64,
            hovered: None,
            last_hovered: None,
        }
    }

    /// Starts a frame: the hover of the frame that ends is remembered for widgets drawn before
    /// the hovered one.
    pub fn begin_frame(&mut self) {
        self.last_hovered = self.hovered.take();
    }

    /// The key to mark in every widget: hovered this frame, else last frame.
    pub fn marked(&self) -> Option<usize> {
        self.hovered.or(self.last_hovered)
    }

    /// Number of keys on the axis.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// First visible key position (fractional).
    pub fn start(&self) -> f64 {
        self.start
    }

    /// One past the last visible key position (fractional).
    pub fn end(&self) -> f64 {
        self.end
    }

    /// Visible keys.
    pub fn span(&self) -> f64 {
        self.end - self.start
    }

    /// Whether the whole axis is in view.
    pub fn is_reset(&self) -> bool {
        self.start <= 0.0 && self.end >= self.keys as f64
    }

    /// Shows the whole axis.
    pub fn reset(&mut self) {
        self.start = 0.0;
        self.end = self.keys as f64;
    }

    /// Shows `[start, end)`, clamped to the axis and to the narrowest span.
    pub fn set_range(&mut self, start: f64, end: f64) {
        let total = self.keys as f64;
        let min_span = MIN_SPAN.min(total);
        let span = (end - start).clamp(min_span, total.max(min_span));
        let start = start.clamp(0.0, (total - span).max(0.0));
        self.start = start;
        self.end = start + span;
    }

    /// Moves the view by `keys` (positive: towards later keys).
    pub fn pan(&mut self, keys: f64) {
        self.set_range(self.start + keys, self.end + keys);
    }

    /// Zooms by `factor` (above 1: zoom in) keeping the key at `anchor` (fraction of the width,
    /// 0 = left edge) in place.
    pub fn zoom(&mut self, factor: f64, anchor: f64) {
        if !factor.is_finite() || factor <= 0.0 {
            return;
        }
        let anchor = anchor.clamp(0.0, 1.0);
        let pivot = self.start + anchor * self.span();
        let span = self.span() / factor;
        self.set_range(pivot - anchor * span, pivot - anchor * span + span);
    }

    /// Centres the view on `key` without changing the zoom.
    pub fn centre_on(&mut self, key: usize) {
        let half = self.span() / 2.0;
        let centre = key as f64 + 0.5;
        self.set_range(centre - half, centre + half);
    }

    /// The key position at fraction `x` of the width (0 = left edge).
    pub fn key_at(&self, x: f64) -> Option<usize> {
        let key = self.start + x * self.span();
        (key >= 0.0 && key < self.keys as f64 && (0.0..=1.0).contains(&x)).then_some(key as usize)
    }

    /// Fraction of the width where key position `key` (fractional) lies.
    pub fn fraction_of(&self, key: f64) -> f64 {
        (key - self.start) / self.span().max(f64::MIN_POSITIVE)
    }

    /// Applies the pointer gestures on a widget drawn over this axis: drag or horizontal scroll
    /// to pan, vertical scroll or pinch to zoom around the pointer, double-click to show the
    /// whole axis. Records the hovered key.
    pub fn interact(&mut self, ui: &Ui, response: &Response) {
        let rect = response.rect;
        let width = f64::from(rect.width().max(1.0));
        if response.dragged() {
            self.pan(-f64::from(response.drag_delta().x) / width * self.span());
        }
        if response.double_clicked() {
            self.reset();
        }
        let Some(pointer) = response.hover_pos() else {
            return;
        };
        let fraction = f64::from(pointer.x - rect.left()) / width;
        let (scroll, zoom) = ui.input(|i| (i.smooth_scroll_delta, i.zoom_delta()));
        if scroll != Vec2::ZERO || zoom != 1.0 {
            let factor = f64::from(zoom) * (f64::from(scroll.y) * 0.004).exp();
            self.zoom(factor, fraction);
            self.pan(-f64::from(scroll.x) / width * self.span());
            ui.ctx().input_mut(|i| i.smooth_scroll_delta = Vec2::ZERO);
        }
        self.hovered = self.key_at(fraction);
    }

    /// Fits the axis to a new key count, keeping the view where possible.
    pub fn resize(&mut self, keys: usize) {
        if keys != self.keys {
            *self = Self::new(keys);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_keeps_the_anchor_key_in_place() {
        let mut axis = KeyViewport::new(8192);
        let before = axis.key_at(0.25);
        axis.zoom(4.0, 0.25);
        assert_eq!(axis.span(), 2048.0);
        assert_eq!(axis.key_at(0.25), before);
        axis.zoom(1e9, 0.5);
        assert_eq!(axis.span(), MIN_SPAN);
        axis.zoom(1e-9, 0.5);
        assert!(axis.is_reset());
    }

    #[test]
    fn pan_stops_at_the_ends() {
        let mut axis = KeyViewport::new(100);
        axis.set_range(10.0, 30.0);
        axis.pan(-50.0);
        assert_eq!((axis.start(), axis.end()), (0.0, 20.0));
        axis.pan(1000.0);
        assert_eq!((axis.start(), axis.end()), (80.0, 100.0));
        assert_eq!(axis.key_at(1.0), None);
        assert_eq!(axis.key_at(0.999), Some(99));
    }

    #[test]
    fn centring_and_fractions_round_trip() {
        let mut axis = KeyViewport::new(1000);
        axis.set_range(0.0, 100.0);
        axis.centre_on(500);
        assert!((axis.fraction_of(500.5) - 0.5).abs() < 1e-9);
        axis.resize(1000);
        assert_eq!(axis.span(), 100.0);
        axis.resize(10);
        assert!(axis.is_reset());
    }

    #[test]
    fn a_tiny_axis_cannot_be_zoomed_past_its_length() {
        let mut axis = KeyViewport::new(3);
        axis.zoom(10.0, 0.5);
        assert_eq!((axis.start(), axis.end()), (0.0, 3.0));
    }
}
