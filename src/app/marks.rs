//! Marked spans: labelled lists of token ranges (a needle, the matches of the find box) drawn
//! on the key axis of every panel and in the prompt view, each list in its own colour.

use std::ops::Range;

use egui::Color32;

use crate::app::key_viewport::KeyViewport;

/// Colour of the find box's matches.
pub const FIND_COLOUR: Color32 = Color32::from_rgb(255, 200, 0);

/// Colours for marked lists, in order: saturated hues that differ from every policy's colour
/// and from [`FIND_COLOUR`], the first (a needle's) the furthest from all of them.
pub const MARK_COLOURS: [Color32; 4] = [
    Color32::from_rgb(255, 0, 255),
    Color32::from_rgb(140, 235, 0),
    Color32::from_rgb(0, 215, 255),
    Color32::from_rgb(255, 80, 20),
];

/// The colour for the `index`-th marked list (cycling through [`MARK_COLOURS`]).
pub fn mark_colour(index: usize) -> Color32 {
    MARK_COLOURS[index % MARK_COLOURS.len()]
}

/// A labelled list of token ranges `[start, end)` on the key axis.
///
/// Ranges are kept sorted, with both their starts and their ends strictly increasing: empty
/// ranges and ranges inside another one are dropped when the list is made. Ranges may overlap
/// (two find matches can share a token) and are otherwise kept apart, one per item to step
/// through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkedSpans {
    /// What the ranges are, for the legend (e.g. `needle`).
    pub label: String,
    /// Colour of the ticks, outlines, bands and prompt highlights.
    pub colour: Color32,
    ranges: Vec<Range<usize>>,
}

impl MarkedSpans {
    /// A list of `ranges` (in any order) labelled `label`, drawn in `colour`.
    pub fn new(
        label: impl Into<String>,
        colour: Color32,
        ranges: impl IntoIterator<Item = Range<usize>>,
    ) -> Self {
        let mut ranges: Vec<Range<usize>> =
            ranges.into_iter().filter(|r| r.start < r.end).collect();
        ranges.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut kept: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
        for range in ranges {
            if kept.last().is_none_or(|last| range.end > last.end) {
                kept.push(range);
            }
        }
        Self {
            label: label.into(),
            colour,
            ranges: kept,
        }
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[Range<usize>] {
        &self.ranges
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are no ranges.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of distinct tokens the ranges cover.
    pub fn tokens(&self) -> usize {
        let mut covered = 0;
        let mut reached = 0;
        for range in &self.ranges {
            let start = range.start.max(reached);
            covered += range.end.saturating_sub(start);
            reached = reached.max(range.end);
        }
        covered
    }

    /// Whether some range holds `token`.
    pub fn contains(&self, token: usize) -> bool {
        let first = self.ranges.partition_point(|r| r.end <= token);
        self.ranges.get(first).is_some_and(|r| r.start <= token)
    }

    /// The ranges that lie within the first `keys` keys, cut at `keys` (marks set for a longer
    /// prompt than the one shown).
    pub fn clipped(&self, keys: usize) -> Self {
        let ranges = self
            .ranges
            .iter()
            .filter(|r| r.start < keys)
            .map(|r| r.start..r.end.min(keys));
        Self::new(self.label.clone(), self.colour, ranges)
    }

    /// The index of the range after (`forward`) or before `current`, wrapping around; from no
    /// current range, the first (or the last). `None` when the list is empty.
    pub fn step(&self, current: Option<usize>, forward: bool) -> Option<usize> {
        let count = self.ranges.len();
        if count == 0 {
            return None;
        }
        Some(match (current, forward) {
            (None, true) => 0,
            (None, false) => count - 1,
            (Some(i), true) => (i.min(count - 1) + 1) % count,
            (Some(i), false) => (i.min(count - 1) + count - 1) % count,
        })
    }

    /// The range the view of `axis` is centred on, if any (the one holding the middle key).
    pub fn centred_in(&self, axis: &KeyViewport) -> Option<usize> {
        let middle = ((axis.start() + axis.end()) / 2.0).floor().max(0.0) as usize;
        let first = self.ranges.partition_point(|r| r.end <= middle);
        self.ranges
            .get(first)
            .filter(|r| r.start <= middle)
            .map(|_| first)
    }
}

/// Keys in view after stepping to a range while the whole axis was shown.
pub const FOCUS_SPAN: f64 = 128.0;

/// Shows range `range` on `axis`: centred at the current zoom (zoomed in to [`FOCUS_SPAN`]
/// keys first when the whole axis was in view, where centring alone would not move it), or
/// zoomed out to hold it with a margin when it is wider than the view.
pub fn show_range(axis: &mut KeyViewport, range: &Range<usize>) {
    let length = range.end.saturating_sub(range.start) as f64;
    if axis.is_reset() {
        let centre = (range.start + range.end) as f64 / 2.0;
        let half = FOCUS_SPAN / 2.0;
        axis.set_range(centre - half, centre + half);
    }
    if length * 1.25 > axis.span() {
        let margin = length * 0.25;
        axis.set_range(range.start as f64 - margin, range.end as f64 + margin);
    } else {
        let half = axis.span() / 2.0;
        let centre = (range.start + range.end) as f64 / 2.0;
        axis.set_range(centre - half, centre + half);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(ranges: Vec<Range<usize>>) -> MarkedSpans {
        MarkedSpans::new("test", FIND_COLOUR, ranges)
    }

    #[test]
    fn ranges_are_sorted_and_nested_or_empty_ones_dropped() {
        let marked = spans(vec![7..9, 2..3, 0..5, 4..4, 4..6, 8..9]);
        assert_eq!(marked.ranges(), &[0..5, 4..6, 7..9]);
        // 0..5 ∪ 4..6 ∪ 7..9 = 0,1,2,3,4,5,7,8.
        assert_eq!(marked.tokens(), 8);
        assert_eq!(marked.len(), 3);
    }

    #[test]
    fn membership_matches_a_scan_of_every_range() {
        let marked = spans(vec![1..3, 2..5, 9..10, 20..24]);
        for token in 0..30 {
            let naive = marked.ranges().iter().any(|r| r.contains(&token));
            assert_eq!(marked.contains(token), naive, "token {token}");
        }
    }

    #[test]
    fn clipping_cuts_ranges_at_the_prompt_end() {
        let marked = spans(vec![2..4, 8..14, 20..22]);
        assert_eq!(marked.clipped(10).ranges(), &[2..4, 8..10]);
        assert_eq!(marked.clipped(0).ranges(), &[] as &[Range<usize>]);
    }

    #[test]
    fn stepping_wraps_in_both_directions() {
        let marked = spans(vec![0..1, 5..6, 9..10]);
        assert_eq!(marked.step(None, true), Some(0));
        assert_eq!(marked.step(None, false), Some(2));
        assert_eq!(marked.step(Some(2), true), Some(0));
        assert_eq!(marked.step(Some(0), false), Some(2));
        assert_eq!(marked.step(Some(1), true), Some(2));
        assert_eq!(spans(Vec::new()).step(None, true), None);
    }

    #[test]
    fn showing_a_range_centres_it_or_zooms_out_to_hold_it() {
        let mut axis = KeyViewport::new(1000);
        axis.set_range(0.0, 100.0);
        show_range(&mut axis, &(500..510));
        assert_eq!((axis.start(), axis.end()), (455.0, 555.0));
        let marked = spans(vec![300..310, 500..510]);
        assert_eq!(marked.centred_in(&axis), Some(1));
        show_range(&mut axis, &(100..300));
        assert_eq!((axis.start(), axis.end()), (50.0, 350.0));
        assert_eq!(marked.centred_in(&axis), None);
        // From the whole axis, the view zooms in around the range.
        axis.reset();
        show_range(&mut axis, &(500..510));
        assert_eq!((axis.start(), axis.end()), (441.0, 569.0));
        axis.reset();
        show_range(&mut axis, &(0..400));
        assert_eq!((axis.start(), axis.end()), (0.0, 600.0));
    }
}
