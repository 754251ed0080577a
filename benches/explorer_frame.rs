//! Frame time of the explorer with an 8,192-token session (the default model's shape: 30
//! layers × 9 query heads, 32 window rows, 16 soft rows, 16 decoded rows), headless through
//! egui_kittest: one frame while the budget slider moves to a new value, one frame while the
//! key axis pans (also with 1,110 find matches and a needle marked on every panel), and the
//! tessellation of such a frame. The score profiles are shown (the default).
//!
//! `cargo bench --bench explorer_frame`. The explorer's own readout (the status bar's frame
//! time) is printed at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use egui_kittest::Harness;
use judgeq::app::AppOptions;
use judgeq::app::command::Command;
use judgeq::app::demo::{DemoEngine, DemoShape};
use judgeq::app::explorer::Explorer;
use judgeq::app::files::QueuedPicker;
use judgeq::app::marks::{MarkedSpans, mark_colour};
use judgeq::policy::PolicyId;
use judgeq::session::{SyntheticSpec, synthetic};

const KEYS: usize = 8192;

/// The explorer showing an 8,192-token synthetic session, its policy bank built.
fn loaded_explorer() -> Harness<'static, Explorer> {
    let spec = SyntheticSpec {
        seed: 1,
        layers: 30,
        query_heads: 9,
        kv_heads: 3,
        n_prompt: KEYS,
        window: 32,
        soft: 16,
        decoded: 16,
    };
    let session = Arc::new(synthetic(&spec).expect("a valid synthetic session"));
    let options = AppOptions {
        picker: Box::new(QueuedPicker::new()),
        restore_state: false,
        ..AppOptions::new(DemoEngine::new(DemoShape::default(), Duration::ZERO))
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1600.0, 1000.0))
        .build_eframe(move |cc| {
            Explorer::new(&cc.egui_ctx, None, options).expect("the worker thread starts")
        });
    harness.state_mut().show_session(session);
    harness.state_mut().state_mut().budget = 512;
    wait_for_bank(&mut harness);
    harness
}

/// Steps until the policy bank, the matrices and the curves are built, then settles.
fn wait_for_bank(harness: &mut Harness<'static, Explorer>) {
    for _ in 0..4000 {
        harness.step();
        let ready = harness
            .state()
            .view()
            .is_some_and(|v| v.is_bank_ready() && v.curves_ready());
        if ready {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..10 {
        harness.step();
    }
}

fn frames(c: &mut Criterion) {
    let mut harness = loaded_explorer();
    // Budgets a slider drag passes through: never the same twice in a row, so nothing is cached.
    let budgets: Vec<usize> = (0..97).map(|i| 16 + (i * 83) % (KEYS - 16)).collect();
    let mut next = 0;
    harness.state_mut().reset_frame_times();
    c.bench_function("frame while dragging the budget slider (8192 keys)", |b| {
        b.iter(|| {
            next = (next + 1) % budgets.len();
            harness.state_mut().state_mut().budget = budgets[next];
            harness.step();
        });
    });
    let drag_stats = harness.state().frame_stats();

    if let Some(view) = harness.state_mut().view_mut() {
        view.axis.set_range(1000.0, 3048.0);
    }
    harness.step();
    let mut direction = 1.0;
    harness.state_mut().reset_frame_times();
    c.bench_function("frame while panning 2048 of 8192 keys", |b| {
        b.iter(|| {
            if let Some(view) = harness.state_mut().view_mut() {
                if view.axis.end() >= KEYS as f64 || view.axis.start() <= 0.0 {
                    direction = -direction;
                }
                view.axis.pan(direction * 20.0);
            }
            harness.step();
        });
    });
    let pan_stats = harness.state().frame_stats();

    // Every policy compared: PyramidKV's and Ada-KV's metrics cost more per budget change.
    harness.state_mut().state_mut().compared = PolicyId::all();
    wait_for_bank(&mut harness);
    harness.state_mut().reset_frame_times();
    c.bench_function(
        "frame while dragging the budget slider, all ten policies (8192 keys)",
        |b| {
            b.iter(|| {
                next = (next + 1) % budgets.len();
                harness.state_mut().state_mut().budget = budgets[next];
                harness.step();
            });
        },
    );
    let all_stats = harness.state().frame_stats();

    // "w1" finds the synthetic document's tokens w10-w19, w100-w199 and w1000-w1999.
    harness.state_mut().set_find_query("w1");
    harness
        .state_mut()
        .push_command(Command::SetMarks(vec![MarkedSpans::new(
            "needle",
            mark_colour(0),
            std::iter::once(6000..6024),
        )]));
    if let Some(view) = harness.state_mut().view_mut() {
        view.axis.reset();
    }
    harness.step();
    harness.step();
    let found = harness
        .state()
        .view()
        .and_then(|v| v.find.matches().map(|m| m.len()))
        .unwrap_or(0);
    println!("find matches of \"w1\": {found}");
    harness.state_mut().reset_frame_times();
    c.bench_function(
        "frame while panning 2048 of 8192 keys with 1110 find matches and a needle",
        |b| {
            b.iter(|| {
                if let Some(view) = harness.state_mut().view_mut() {
                    if view.axis.is_reset() {
                        view.axis.set_range(1000.0, 3048.0);
                    }
                    if view.axis.end() >= KEYS as f64 || view.axis.start() <= 0.0 {
                        direction = -direction;
                    }
                    view.axis.pan(direction * 20.0);
                }
                harness.step();
            });
        },
    );
    let marked_stats = harness.state().frame_stats();

    let shapes = harness.output().shapes.clone();
    let ctx = harness.ctx.clone();
    c.bench_function("tessellation of one frame (8192 keys)", |b| {
        b.iter(|| ctx.tessellate(shapes.clone(), 1.0));
    });

    for (what, stats) in [
        ("budget drag", drag_stats),
        ("pan", pan_stats),
        ("budget drag, all ten policies", all_stats),
        ("pan with find matches and a needle", marked_stats),
    ] {
        if let Some(s) = stats {
            println!(
                "explorer readout, {what}: mean {:.2} ms, p95 {:.2} ms, max {:.2} ms over the last {} frames",
                s.mean_ms, s.p95_ms, s.max_ms, s.frames
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(6));
    targets = frames
}
criterion_main!(benches);
