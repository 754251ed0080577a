//! Deterministic synthetic sessions with plausible attention, for tests, benchmarks and the
//! GUI's fake worker: no model, no files, the same arrays for the same [`SyntheticSpec`].
//!
//! Each query head `(layer, q)` attends to prompt key `j` from position `p` with weight
//! ```text
//! w(p, j) = sink·[j = 0] + exp(−(p − j)/τ)·[p − j ≤ 8τ] + floor_j + Σ needles at j
//! ```
//! normalised by the sum over every key the query sees. `τ ∈ [2, 16]` and the sink weight vary
//! per head; `floor_j` is a small per-key noise (about `2/n` per key); six "needle" keys per
//! layer and KV group sit in the document, shared by the group's query heads with per-head
//! strengths. Prompt queries see needles weakly, soft-token rows more, and each decoded row
//! focuses on one needle, so the decoded (oracle) rows differ from the window rows and the soft
//! rows sit in between, as Judge Q intends. Soft and decoded rows also attend to the appended
//! tokens before them (not prompt keys), so their prompt rows sum to less than 1. Window rows
//! sum to exactly 1, and [`Session::accumulated`] is exactly the column sums of every prompt
//! query's row (computed in closed form, without the `n × n` matrix).

use ndarray::{Array3, Array4, ArrayViewMut1, Axis};
use rayon::prelude::*;
use thiserror::Error;

use super::{
    Answer, InspectSettings, ModelInfo, PrefillCapture, PrefillInputs, PromptLayout,
    QueryStatistics, QuestionPlacement, Session, Span, SpanKind,
};

/// Shape and seed of a synthetic session. `Default` is the default model's shape
/// (SmolLM2-135M: 30 layers, 9 query heads, 3 KV heads) with a 512-token prompt, a 32-row
/// window, 32 soft rows and 16 decoded rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticSpec {
    /// Seed: the same seed gives the same session.
    pub seed: u64,
    /// Transformer layers.
    pub layers: usize,
    /// Query heads per layer.
    pub query_heads: usize,
    /// KV heads per layer; must divide `query_heads`.
    pub kv_heads: usize,
    /// Prompt tokens.
    pub n_prompt: usize,
    /// Window rows (the last `window` prompt queries); at most `n_prompt`.
    pub window: usize,
    /// Soft-token rows (0: the session has none).
    pub soft: usize,
    /// Decoded-token rows (the answer's length).
    pub decoded: usize,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            seed: 0,
            layers: 30,
            query_heads: 9,
            kv_heads: 3,
            n_prompt: 512,
            window: 32,
            soft: 32,
            decoded: 16,
        }
    }
}

/// A [`SyntheticSpec`] that describes no valid session.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("invalid synthetic session: {0}")]
pub struct SyntheticError(String);

/// Builds the synthetic session `spec` describes.
pub fn synthetic(spec: &SyntheticSpec) -> Result<Session, SyntheticError> {
    let invalid = |what: String| Err(SyntheticError(what));
    if spec.layers == 0 || spec.query_heads == 0 || spec.n_prompt == 0 {
        return invalid("layers, query heads and prompt length must be at least 1".to_owned());
    }
    if spec.kv_heads == 0 || !spec.query_heads.is_multiple_of(spec.kv_heads) {
        return invalid(format!(
            "{} KV heads do not divide {} query heads",
            spec.kv_heads, spec.query_heads
        ));
    }
    if spec.window > spec.n_prompt {
        return invalid(format!(
            "a window of {} exceeds the prompt of {}",
            spec.window, spec.n_prompt
        ));
    }
    let n = spec.n_prompt;
    let rows = |source: Source, count: usize| -> Array4<f32> {
        let mut rows = Array4::<f32>::zeros((spec.layers, spec.query_heads, count, n));
        rows.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(l, mut layer)| {
                for (q, mut head_rows) in layer.outer_iter_mut().enumerate() {
                    let head = Head::new(spec, l, q);
                    for (r, row) in head_rows.outer_iter_mut().enumerate() {
                        head.fill_row(source, r, row);
                    }
                }
            });
        rows
    };
    let window = rows(
        Source::Window {
            first: n - spec.window,
        },
        spec.window,
    );
    let soft = (spec.soft > 0).then(|| rows(Source::Soft, spec.soft));
    let decoded = rows(Source::Decoded, spec.decoded);
    let mut accumulated = Array3::<f32>::zeros((spec.layers, spec.query_heads, n));
    accumulated
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(l, mut layer)| {
            for (q, out) in layer.outer_iter_mut().enumerate() {
                Head::new(spec, l, q).column_sums(out);
            }
        });
    Ok(Session {
        model: model_info(spec),
        prompt: prompt_layout(spec),
        settings: InspectSettings {
            window: spec.window,
            decode_tokens: spec.decoded,
            soft_tokens: (spec.soft > 0).then(|| format!("synthetic-soft-{}", spec.seed)),
            soft_count: spec.soft,
            soft_tokens_unfinished: None,
            placement: QuestionPlacement::default(),
            lookahead: None,
            repeat: None,
        },
        window,
        soft,
        decoded,
        lookahead: None,
        repeat: None,
        accumulated,
        answer: answer(spec),
        prefill_inputs: PrefillInputs::default(),
    })
}

/// What an inspection of `spec` would capture beyond attention rows when asked for `capture`,
/// with heads of dimension `head_dim` (even): keys, values and value norms drawn from the seed, and the
/// statistics of drawn query rows (rotary frequencies of θ = 10,000). Nothing that is not asked
/// for is made, so a synthetic session costs what it did unless a policy needs these.
pub fn synthetic_prefill_inputs(
    spec: &SyntheticSpec,
    head_dim: usize,
    capture: PrefillCapture,
) -> PrefillInputs {
    let (layers, kv_heads, n, d) = (spec.layers, spec.kv_heads, spec.n_prompt, head_dim);
    let draw = |salt: u64, a: usize, b: usize, c: usize| {
        let h = hash(spec.seed ^ salt, a as u64, b as u64, c as u64);
        2.0 * unit(h) as f32 - 1.0
    };
    let keys = capture.keys.then(|| {
        Array4::from_shape_fn((layers, kv_heads, n, d), |(l, g, j, i)| {
            draw(0x6b65, l, g, j * d + i) * (1.0 + i as f32 / d as f32)
        })
    });
    let values = capture.values.then(|| {
        Array4::from_shape_fn((layers, kv_heads, n, d), |(l, g, j, i)| {
            draw(0x7661, l, g, j * d + i)
        })
    });
    let value_norms = capture.value_norms.then(|| {
        Array3::from_shape_fn((layers, kv_heads, n), |(l, g, j)| {
            1.0 + 0.5 * draw(0x766e, l, g, j)
        })
    });
    let projected_value_norms = capture.projected_value_norms.then(|| {
        Array3::from_shape_fn((layers, spec.query_heads, n), |(l, h, j)| {
            4.0 + 2.0 * draw(0x706e, l, h, j)
        })
    });
    let query_statistics = capture.query_statistics.then(|| {
        let rows = Array4::from_shape_fn((layers, spec.query_heads, n, d), |(l, h, j, i)| {
            draw(0x7172, l, h, j * d + i) + if i % 4 == 0 { 1.0 } else { 0.0 }
        });
        let frequencies = (0..d / 2)
            .map(|i| 10_000f64.powf(-(2.0 * i as f64) / d as f64))
            .collect();
        QueryStatistics::from_rows(rows.view(), frequencies)
    });
    let repeat_scores = capture.repeat.map(|_| {
        Array3::from_shape_fn((layers, kv_heads, n), |(l, g, j)| {
            0.5 + 0.5 * draw(0x7270, l, g, j)
        })
    });
    PrefillInputs {
        keys,
        values,
        value_norms,
        projected_value_norms,
        query_statistics,
        repeat_scores,
    }
}

/// SplitMix64's mix of a seed and three coordinates.
fn hash(seed: u64, a: u64, b: u64, c: u64) -> u64 {
    crate::rng::mix(
        seed.wrapping_add(a.wrapping_mul(crate::rng::GOLDEN_GAMMA))
            .wrapping_add(b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
            .wrapping_add(c.wrapping_mul(0x1656_67B1_9E37_79F9)),
    )
}

/// Uniform in `[0, 1)` from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Which rows are drawn.
#[derive(Clone, Copy)]
enum Source {
    /// Prompt queries at positions `first + r`.
    Window { first: usize },
    /// Soft token `r` at position `n + r`.
    Soft,
    /// Decoded token `r` at position `n + r`.
    Decoded,
}

/// Needles seen by prompt queries, soft rows and decoded rows (times the head's strength).
const PROMPT_NEEDLE: f64 = 0.6;
const SOFT_NEEDLE: f64 = 1.2;
const DECODED_NEEDLE: f64 = 1.5;
const NEEDLES: usize = 6;

/// Everything one synthetic head needs.
struct Head {
    n: usize,
    sink: f64,
    /// `exp(−d/τ)` for `d ≤ 8τ`.
    local: Vec<f64>,
    /// Per-key floor noise.
    floor: Vec<f64>,
    /// `(position, strength)` of the group's needles for this head.
    needles: Vec<(usize, f64)>,
}

impl Head {
    /// Head `q` of layer `layer` of the session `spec` describes.
    fn new(spec: &SyntheticSpec, layer: usize, q: usize) -> Head {
        let (seed, n) = (spec.seed, spec.n_prompt);
        let (l, qh) = (layer as u64, q as u64);
        let group = (q / (spec.query_heads / spec.kv_heads)) as u64;
        let tau = 2.0 + 14.0 * unit(hash(seed, l, qh, 1));
        let reach = (8.0 * tau).ceil() as usize;
        let local = (0..=reach).map(|d| (-(d as f64) / tau).exp()).collect();
        let floor = (0..n)
            .map(|j| (0.5 + unit(hash(seed, l, qh, 1000 + j as u64))) * 2.0 / n as f64)
            .collect();
        let span = n.saturating_sub(spec.window).saturating_sub(n / 16).max(1);
        let needles = (0..NEEDLES as u64)
            .map(|k| {
                let pos =
                    (n / 16 + (hash(seed, l, group, 100 + k) % span as u64) as usize).min(n - 1);
                (pos, 0.5 + unit(hash(seed, l, qh, 200 + k)))
            })
            .collect();
        Head {
            n,
            sink: 2.0 + 3.0 * unit(hash(seed, l, qh, 2)),
            local,
            floor,
            needles,
        }
    }

    fn local(&self, d: usize) -> f64 {
        self.local.get(d).copied().unwrap_or(0.0)
    }

    /// The weight key `j` gets from a query at `p`, needles excluded.
    fn base(&self, p: usize, j: usize) -> f64 {
        let sink = if j == 0 { self.sink } else { 0.0 };
        sink + self.local(p - j) + self.floor[j]
    }

    /// Writes row `r` of `source` (prompt keys only, normalised over every key seen).
    fn fill_row(&self, source: Source, r: usize, mut row: ArrayViewMut1<f32>) {
        let (p, needle_scale, appended) = match source {
            Source::Window { first } => (first + r, vec![PROMPT_NEEDLE; NEEDLES], 0),
            Source::Soft => (self.n + r, vec![SOFT_NEEDLE; NEEDLES], r + 1),
            Source::Decoded => {
                let focus = (0..NEEDLES)
                    .map(|k| DECODED_NEEDLE * if k == r % NEEDLES { 4.0 } else { 1.0 })
                    .collect();
                (self.n + r, focus, r + 1)
            }
        };
        let last = p.min(self.n - 1);
        let mut weights: Vec<f64> = (0..=last).map(|j| self.base(p, j)).collect();
        for (k, &(pos, strength)) in self.needles.iter().enumerate() {
            if pos <= last {
                weights[pos] += needle_scale[k] * strength;
            }
        }
        let to_appended: f64 = (0..appended).map(|d| self.local(d)).sum();
        let total = weights.iter().sum::<f64>() + to_appended;
        row.fill(0.0);
        for (out, w) in row.iter_mut().zip(&weights) {
            *out = (w / total) as f32;
        }
    }

    /// Column sums over every prompt query `p ∈ [0, n)` of the window-source rows, in closed
    /// form: `Σ_p w(p, j) / Z_p`.
    fn column_sums(&self, mut out: ArrayViewMut1<f32>) {
        let n = self.n;
        let mut needle_at = vec![0.0; n];
        for &(pos, strength) in &self.needles {
            needle_at[pos] += PROMPT_NEEDLE * strength;
        }
        // Z_p = sink + Σ_{d ≤ p} local(d) + Σ_{j ≤ p} (floor_j + needle_j).
        let mut z = Vec::with_capacity(n);
        let (mut local_sum, mut key_sum) = (0.0, 0.0);
        for (p, (floor, needle)) in self.floor.iter().zip(&needle_at).enumerate() {
            local_sum += self.local(p);
            key_sum += floor + needle;
            z.push(self.sink + local_sum + key_sum);
        }
        // S_j = Σ_{p ≥ j} 1/Z_p.
        let mut suffix = vec![0.0; n + 1];
        for p in (0..n).rev() {
            suffix[p] = suffix[p + 1] + 1.0 / z[p];
        }
        for (j, slot) in out.iter_mut().enumerate() {
            let sink = if j == 0 { self.sink } else { 0.0 };
            let constant = (sink + self.floor[j] + needle_at[j]) * suffix[j];
            let local: f64 = (0..self.local.len().min(n - j))
                .map(|d| self.local[d] / z[j + d])
                .sum();
            *slot = (constant + local) as f32;
        }
    }
}

fn model_info(spec: &SyntheticSpec) -> ModelInfo {
    let head_dim = 64;
    ModelInfo {
        id: format!("synthetic-{}", spec.seed),
        architecture: "llama".to_owned(),
        path: "synthetic".to_owned(),
        weights_sha256: format!("{:064x}", hash(spec.seed, 0, 0, 0)),
        layers: spec.layers,
        query_heads: spec.query_heads,
        kv_heads: spec.kv_heads,
        head_dim,
        hidden_size: spec.query_heads * head_dim,
        max_context: spec.n_prompt + spec.soft + spec.decoded,
        kv_entry_bytes: 2 * head_dim * std::mem::size_of::<f32>(),
    }
}

/// Scaffold, document, question and scaffold again, each token named after its position.
fn prompt_layout(spec: &SyntheticSpec) -> PromptLayout {
    let n = spec.n_prompt;
    let head = n.min(3);
    let tail = (n - head).min(2);
    let question = (n - head - tail) / 8;
    let doc_end = n - tail - question;
    let spans: Vec<Span> = [
        (SpanKind::Scaffold, 0, head),
        (SpanKind::Document, head, doc_end),
        (SpanKind::Question, doc_end, n - tail),
        (SpanKind::Scaffold, n - tail, n),
    ]
    .into_iter()
    .filter(|&(_, start, end)| end > start)
    .map(|(kind, start, end)| Span { kind, start, end })
    .collect();
    let tokens: Vec<String> = (0..n)
        .map(|j| {
            match spans
                .iter()
                .find(|s| s.start <= j && j < s.end)
                .map(|s| s.kind)
            {
                Some(SpanKind::Document) => format!(" w{j}"),
                Some(SpanKind::Question) => format!(" q{j}"),
                _ => format!("<s{j}>"),
            }
        })
        .collect();
    PromptLayout {
        text: tokens.concat(),
        ids: (0..n)
            .map(|j| (hash(spec.seed, 7, j as u64, 0) % 49_152) as u32)
            .collect(),
        tokens,
        spans,
    }
}

fn answer(spec: &SyntheticSpec) -> Answer {
    let tokens: Vec<String> = (0..spec.decoded).map(|i| format!(" a{i}")).collect();
    Answer {
        ids: (0..spec.decoded)
            .map(|i| (hash(spec.seed, 8, i as u64, 0) % 49_152) as u32)
            .collect(),
        text: tokens.concat(),
        tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SyntheticSpec {
        SyntheticSpec {
            seed: 5,
            layers: 2,
            query_heads: 4,
            kv_heads: 2,
            n_prompt: 97,
            window: 8,
            soft: 4,
            decoded: 6,
        }
    }

    #[test]
    fn same_seed_same_session_other_seed_other_rows() {
        let a = synthetic(&small()).unwrap();
        let b = synthetic(&small()).unwrap();
        assert_eq!(a.window, b.window);
        assert_eq!(a.decoded, b.decoded);
        assert_eq!(a.accumulated, b.accumulated);
        let c = synthetic(&SyntheticSpec { seed: 6, ..small() }).unwrap();
        assert_ne!(a.window, c.window);
    }

    #[test]
    fn shapes_and_row_sums() {
        let spec = small();
        let s = synthetic(&spec).unwrap();
        assert_eq!(s.window.dim(), (2, 4, 8, 97));
        assert_eq!(s.soft.as_ref().unwrap().dim(), (2, 4, 4, 97));
        assert_eq!(s.decoded.dim(), (2, 4, 6, 97));
        assert_eq!(s.accumulated.dim(), (2, 4, 97));
        assert_eq!(s.prompt.len(), 97);
        assert_eq!(s.answer.ids.len(), 6);
        assert_eq!(
            s.prompt
                .spans
                .iter()
                .map(|s| s.end - s.start)
                .sum::<usize>(),
            97
        );
        for row in s.window.lanes(Axis(3)) {
            assert!(
                (row.sum() - 1.0).abs() < 1e-5,
                "window rows see only prompt keys"
            );
        }
        for row in s
            .decoded
            .lanes(Axis(3))
            .into_iter()
            .chain(s.soft.as_ref().unwrap().lanes(Axis(3)))
        {
            assert!(row.sum() < 1.0 && row.sum() > 0.5);
            assert!(row.iter().all(|&v| v >= 0.0));
        }
        // Window row r sits at position n − w + r and sees no later key.
        assert_eq!(s.window[[0, 0, 0, 97 - 8 + 1]], 0.0);
        assert!(s.window[[0, 0, 0, 97 - 8]] > 0.0);
    }

    #[test]
    fn accumulated_is_the_column_sum_of_every_prompt_row() {
        let spec = SyntheticSpec {
            window: 97,
            soft: 0,
            ..small()
        };
        let s = synthetic(&spec).unwrap();
        assert!(s.soft.is_none());
        // With the window covering the prompt, the window rows are every prompt query's row.
        let sums = s.window.sum_axis(Axis(2));
        for (a, b) in sums.iter().zip(s.accumulated.iter()) {
            assert!((a - b).abs() < 1e-4 * b.max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn bad_specs_are_errors() {
        assert!(
            synthetic(&SyntheticSpec {
                kv_heads: 3,
                ..small()
            })
            .is_err()
        );
        assert!(
            synthetic(&SyntheticSpec {
                n_prompt: 0,
                ..small()
            })
            .is_err()
        );
        assert!(
            synthetic(&SyntheticSpec {
                window: 98,
                ..small()
            })
            .is_err()
        );
        assert!(
            synthetic(&SyntheticSpec {
                kv_heads: 0,
                ..small()
            })
            .is_err()
        );
    }
}
