//! Small hand-made sessions and figures for the export tests.

use ndarray::{Array2, Array3, Array4};

use crate::export::{
    ColorScale, Colormap, FigureSpec, KeptStrip, KeyAxis, Panel, PanelData, Provenance, QueryAxis,
    ScaleMode, Selector,
};

use crate::session::{
    Answer, InspectSettings, ModelInfo, PrefillInputs, PromptLayout, QuestionPlacement, Session,
    Span, SpanKind,
};

/// A 2-layer, 4-query-head, 2-KV-head session over a 10-token prompt with 3 window queries,
/// 4 decoded tokens and, when `with_soft`, 2 soft tokens. Values are distinct per element.
pub(crate) fn tiny_session(with_soft: bool) -> Session {
    let (layers, heads, n) = (2, 4, 10);
    let tokens: Vec<String> = [
        "<|im_start|>",
        "user",
        "\n",
        "The",
        " cat",
        " sat",
        ".",
        " Who",
        " sat",
        "?",
    ]
    .map(str::to_owned)
    .to_vec();
    let rows = |queries: usize, salt: f32| {
        Array4::from_shape_fn((layers, heads, queries, n), |(l, h, q, k)| {
            salt + (l * 1000 + h * 100 + q * 10 + k) as f32 / 4096.0
        })
    };
    Session {
        model: ModelInfo {
            id: "tiny-test".into(),
            architecture: "llama".into(),
            path: "/models/tiny.gguf".into(),
            weights_sha256: "ab".repeat(32),
            layers,
            query_heads: heads,
            kv_heads: 2,
            head_dim: 8,
            hidden_size: 32,
            max_context: 128,
            kv_entry_bytes: 64,
        },
        prompt: PromptLayout {
            text: tokens.concat(),
            ids: (0..n as u32).map(|i| 100 + i).collect(),
            tokens,
            spans: vec![
                Span {
                    kind: SpanKind::Scaffold,
                    start: 0,
                    end: 3,
                },
                Span {
                    kind: SpanKind::Document,
                    start: 3,
                    end: 7,
                },
                Span {
                    kind: SpanKind::Question,
                    start: 7,
                    end: 10,
                },
            ],
        },
        settings: InspectSettings {
            window: 3,
            decode_tokens: 4,
            soft_tokens: with_soft.then(|| "/soft/tiny.safetensors".to_owned()),
            soft_count: if with_soft { 2 } else { 0 },
            soft_tokens_unfinished: None,
            placement: QuestionPlacement::End,
            lookahead: None,
            repeat: None,
        },
        window: rows(3, 0.0),
        soft: with_soft.then(|| rows(2, 0.25)),
        decoded: rows(4, 0.5),
        lookahead: None,
        repeat: None,
        accumulated: Array3::from_shape_fn((layers, heads, n), |(l, h, k)| {
            (l + h + k) as f32 * 0.125
        }),
        answer: Answer {
            ids: vec![7, 8, 9],
            tokens: vec!["The".into(), " cat".into(), ".".into()],
            text: "The cat.".into(),
        },
        prefill_inputs: PrefillInputs::default(),
    }
}

/// Three panels of `rows × keys` over keys `100..100 + keys`, values in `[0, 1)` distinct per
/// cell, a linear `[0, 1]` viridis scale, kept strips under the first and last panels that
/// keep the first two and last two keys, and token labels.
pub(crate) fn figure_spec(rows: usize, keys: usize) -> FigureSpec {
    let heatmap = |salt: usize| {
        PanelData::Heatmap(Array2::from_shape_fn((rows, keys), |(i, j)| {
            ((i * 7919 + j * 104_729 + salt * 31) % 1000) as f32 / 1000.0
        }))
    };
    let kept = |policy: &str| {
        Some(KeptStrip {
            policy: policy.into(),
            kept: (0..keys)
                .map(|k| if k < 2 || k + 2 >= keys { 1.0 } else { 0.0 })
                .collect(),
        })
    };
    let words = [" The", " cat", " sat", " on", " the", " mat", ".", "\n"];
    FigureSpec {
        title: None,
        panels: vec![
            Panel {
                title: "Last-window queries (SnapKV)".into(),
                data: heatmap(0),
                queries: QueryAxis {
                    label: "query position".into(),
                    first: 100 + keys - rows,
                },
                kept: kept("SnapKV"),
            },
            Panel {
                title: "Soft tokens (Judge Q)".into(),
                data: heatmap(1),
                queries: QueryAxis {
                    label: "soft token".into(),
                    first: 0,
                },
                kept: None,
            },
            Panel {
                title: "Decoded tokens (oracle)".into(),
                data: heatmap(2),
                queries: QueryAxis {
                    label: "decoded token".into(),
                    first: 0,
                },
                kept: kept("Oracle"),
            },
        ],
        keys: KeyAxis {
            start: 100,
            end: 100 + keys,
            tokens: Some(
                (0..keys)
                    .map(|k| words[k % words.len()].to_owned())
                    .collect(),
            ),
        },
        scale: ColorScale {
            kind: ScaleMode::Linear,
            min: 0.0,
            max: 1.0,
            colormap: Colormap::Viridis,
        },
        value_label: "attention".into(),
        budget: Some(4),
        width_mm: FigureSpec::DEFAULT_WIDTH_MM,
        provenance: Provenance {
            model_id: "tiny-test".into(),
            weights_sha256: "ab".repeat(32),
            layer: Selector::Index(1),
            head: Selector::Mean,
            settings: serde_json::json!({ "window": 4, "pooling": "none" }),
        },
    }
}
