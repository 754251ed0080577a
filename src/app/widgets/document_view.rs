//! The prompt as text, token by token, with the tokens a policy keeps highlighted and the
//! marked spans (a needle, find matches) outlined in their colours.
//!
//! The text is laid out once per session and width; each frame only the highlights of the
//! tokens in view are painted behind it, so moving the budget slider costs a few rectangles.

use std::sync::Arc;

use egui::text::{LayoutJob, TextFormat};
use egui::{Align, Color32, FontId, Galley, Pos2, Rect, Sense, Stroke, Ui, Vec2, pos2, vec2};

use crate::app::marks::MarkedSpans;
use crate::session::{PromptLayout, SpanKind};

/// The prompt's tokens joined into one displayable string.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentText {
    text: String,
    /// Char range `[start, end)` of each token in `text`.
    token_chars: Vec<(usize, usize)>,
    /// Span kind of each token.
    kinds: Vec<SpanKind>,
}

impl DocumentText {
    /// Joins the prompt's token strings, replacing control characters (other than newlines and
    /// tabs) and showing empty tokens as a dot so that every token can be pointed at.
    pub fn new(prompt: &PromptLayout) -> Self {
        let mut text = String::new();
        let mut token_chars = Vec::with_capacity(prompt.tokens.len());
        let mut kinds = Vec::with_capacity(prompt.tokens.len());
        let mut chars = 0;
        for (position, token) in prompt.tokens.iter().enumerate() {
            let start = chars;
            let shown: String = if token.is_empty() {
                "·".to_owned()
            } else {
                token
                    .chars()
                    .filter(|&c| c != '\r')
                    .map(|c| {
                        if c.is_control() && c != '\n' && c != '\t' {
                            '·'
                        } else {
                            c
                        }
                    })
                    .collect()
            };
            chars += shown.chars().count();
            text.push_str(&shown);
            token_chars.push((start, chars));
            kinds.push(prompt.kind_at(position).unwrap_or(SpanKind::Scaffold));
        }
        Self {
            text,
            token_chars,
            kinds,
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.token_chars.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.token_chars.is_empty()
    }

    /// The joined text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The char range of token `index`.
    pub fn token_chars(&self, index: usize) -> Option<(usize, usize)> {
        self.token_chars.get(index).copied()
    }

    /// The layout job: one section per run of tokens of the same span kind.
    fn layout_job(&self, ui: &Ui, wrap_width: f32) -> LayoutJob {
        let mut job = LayoutJob::default();
        job.wrap.max_width = wrap_width;
        let font = FontId::proportional(13.0);
        let mut byte_of_char = self.text.char_indices().map(|(b, _)| b).collect::<Vec<_>>();
        byte_of_char.push(self.text.len());
        let mut run_start = 0;
        while run_start < self.kinds.len() {
            let kind = self.kinds[run_start];
            let run_end = (run_start..self.kinds.len())
                .find(|&i| self.kinds[i] != kind)
                .unwrap_or(self.kinds.len());
            let first_char = self.token_chars[run_start].0;
            let end_char = self.token_chars[run_end - 1].1;
            let (Some(&from), Some(&to)) =
                (byte_of_char.get(first_char), byte_of_char.get(end_char))
            else {
                break;
            };
            job.append(
                &self.text[from..to],
                0.0,
                span_format(ui, kind, font.clone()),
            );
            run_start = run_end;
        }
        job
    }
}

/// How a span kind is written: the document plainly, the question in the accent colour, the
/// chat scaffolding small, weak and italic.
fn span_format(ui: &Ui, kind: SpanKind, font: FontId) -> TextFormat {
    let visuals = ui.visuals();
    match kind {
        SpanKind::Document => TextFormat::simple(font, visuals.text_color()),
        SpanKind::Question => TextFormat {
            underline: Stroke::new(1.0, visuals.hyperlink_color.gamma_multiply(0.5)),
            ..TextFormat::simple(font, visuals.hyperlink_color)
        },
        SpanKind::Scaffold => TextFormat {
            italics: true,
            ..TextFormat::simple(FontId::monospace(11.0), visuals.weak_text_color())
        },
    }
}

/// The colour a span kind's text is written in (for legends).
pub fn span_colour(ui: &Ui, kind: SpanKind) -> Color32 {
    span_format(ui, kind, FontId::default()).color
}

/// Where one token (or the part of it on one row) sits in the galley.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenRect {
    /// Token position.
    pub token: usize,
    /// Galley-relative rectangle.
    pub rect: Rect,
}

/// The rectangles of every token in `galley`, which was laid out from `text`, sorted by row.
pub fn token_rects(text: &DocumentText, galley: &Galley) -> Vec<TokenRect> {
    let mut out: Vec<TokenRect> = Vec::with_capacity(text.len());
    let mut token = 0;
    let mut char_index = 0;
    for row in &galley.rows {
        let row_rect = row.rect();
        let mut push = |token: usize, rect: Rect| match out.last_mut() {
            Some(last) if last.token == token && (last.rect.min.y - rect.min.y).abs() < 0.5 => {
                last.rect = last.rect.union(rect);
            }
            _ => out.push(TokenRect { token, rect }),
        };
        let glyph_spans = row
            .glyphs
            .iter()
            .map(|g| (row.pos.x + g.pos.x, g.advance_width));
        let newline = row
            .ends_with_newline
            .then_some((row.pos.x + row.size.x, 6.0));
        for (x, width) in glyph_spans.chain(newline) {
            while token < text.len() && text.token_chars[token].1 <= char_index {
                token += 1;
            }
            if token < text.len() && text.token_chars[token].0 <= char_index {
                let rect = Rect::from_min_max(
                    pos2(x, row_rect.min.y),
                    pos2(x + width.max(1.0), row_rect.max.y),
                );
                push(token, rect);
            }
            char_index += 1;
        }
    }
    out
}

/// What the user did in the document view this frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DocumentResponse {
    /// Token under the pointer.
    pub hovered: Option<usize>,
    /// Token clicked.
    pub clicked: Option<usize>,
}

/// Tokens to highlight: `strength[position]` in `[0, 1]` scales the colour's opacity
/// (1: kept; a fraction: kept by that share of heads).
pub struct Highlight<'a> {
    /// Highlight colour.
    pub colour: Color32,
    /// Opacity per token.
    pub strength: &'a [f32],
}

struct Laid {
    width: u32,
    dark: bool,
    galley: Arc<Galley>,
    rects: Vec<TokenRect>,
}

/// The scrolling text view with its cached layout.
pub struct DocumentView {
    text: Arc<DocumentText>,
    laid: Option<Laid>,
}

impl DocumentView {
    /// A view of `text`.
    pub fn new(text: Arc<DocumentText>) -> Self {
        Self { text, laid: None }
    }

    /// The text shown.
    pub fn text(&self) -> &DocumentText {
        &self.text
    }

    /// Lays out (when the width or theme changed) and shows the text, with `highlight` behind
    /// the kept tokens, the tokens of `marks` underlined and outlined in each list's colour, a
    /// frame around `marked`, scrolled to `scroll_to` when given.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        highlight: Option<&Highlight<'_>>,
        marks: &[&MarkedSpans],
        marked: Option<usize>,
        scroll_to: Option<usize>,
    ) -> DocumentResponse {
        let mut out = DocumentResponse::default();
        egui::ScrollArea::vertical()
            .id_salt("document_view")
            .auto_shrink([false, false])
            .show_viewport(ui, |ui, viewport| {
                let width = ui.available_width().max(50.0);
                let laid = self.layout(ui, width);
                let (rect, response) =
                    ui.allocate_exact_size(vec2(width, laid.galley.size().y), Sense::click());
                let origin = rect.min;
                let visible = viewport.translate(origin.to_vec2());
                let painter = ui.painter_at(rect);
                let first = laid
                    .rects
                    .partition_point(|r| r.rect.max.y + origin.y < visible.min.y);
                let in_view = laid.rects[first..]
                    .iter()
                    .take_while(|r| r.rect.min.y + origin.y <= visible.max.y);
                if let Some(highlight) = highlight {
                    for r in in_view.clone() {
                        let strength = highlight.strength.get(r.token).copied().unwrap_or(0.0);
                        if strength > 0.0 {
                            let fill = highlight.colour.gamma_multiply(0.2 + 0.55 * strength);
                            painter.rect_filled(r.rect.translate(origin.to_vec2()), 2.0, fill);
                        }
                    }
                }
                painter.galley(origin, Arc::clone(&laid.galley), ui.visuals().text_color());
                for r in in_view {
                    for list in marks.iter().filter(|list| list.contains(r.token)) {
                        paint_mark(&painter, r.rect.translate(origin.to_vec2()), list.colour);
                    }
                }
                if let Some(marked) = marked {
                    let stroke = Stroke::new(1.5, ui.visuals().strong_text_color());
                    for r in laid.rects.iter().filter(|r| r.token == marked) {
                        let screen = r.rect.translate(origin.to_vec2()).expand(1.0);
                        painter.rect_stroke(screen, 2.0, stroke, egui::StrokeKind::Outside);
                    }
                }
                if let Some(pointer) = response.hover_pos() {
                    out.hovered = token_at(&laid.rects, pointer - origin.to_vec2());
                    if response.clicked() {
                        out.clicked = out.hovered;
                    }
                }
                if let Some(target) = scroll_to
                    && let Some(r) = laid.rects.iter().find(|r| r.token == target)
                {
                    ui.scroll_to_rect(r.rect.translate(origin.to_vec2()), Some(Align::Center));
                }
            });
        out
    }

    fn layout(&mut self, ui: &Ui, width: f32) -> &Laid {
        let key_width = width.round() as u32;
        let dark = ui.visuals().dark_mode;
        let laid = match self.laid.take() {
            Some(laid) if laid.width == key_width && laid.dark == dark => laid,
            _ => {
                let galley = ui.painter().layout_job(self.text.layout_job(ui, width));
                let rects = token_rects(&self.text, &galley);
                Laid {
                    width: key_width,
                    dark,
                    galley,
                    rects,
                }
            }
        };
        self.laid.insert(laid)
    }
}

/// A marked token: a thin outline and a bold underline in the list's colour.
fn paint_mark(painter: &egui::Painter, rect: Rect, colour: Color32) {
    painter.rect_stroke(
        rect.expand(0.5),
        2.0,
        Stroke::new(1.0, colour),
        egui::StrokeKind::Outside,
    );
    let underline = Rect::from_x_y_ranges(rect.x_range(), rect.bottom() - 2.5..=rect.bottom());
    painter.rect_filled(underline, 0.0, colour);
}

/// The token whose rectangle holds `pos` (galley-relative).
fn token_at(rects: &[TokenRect], pos: Pos2) -> Option<usize> {
    let first = rects.partition_point(|r| r.rect.max.y < pos.y);
    rects[first..]
        .iter()
        .take_while(|r| r.rect.min.y <= pos.y)
        .find(|r| r.rect.expand2(Vec2::new(0.5, 0.0)).contains(pos))
        .map(|r| r.token)
}
