//! The task runner on a tiny random model: one prefill per sample whatever the sweep, resume
//! after Ctrl-C, and the kvpress layout of the files it writes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::sync::Mutex;

use common::tiny_checkpoint::{TinySpec, write_hf};
use judgeq::eval::Method;
use judgeq::model::{LoadOptions, Model};
use judgeq::policy::{AskedBudget, PolicyId, PolicySettings, Ratio};
use judgeq::progress::{Progress, Silent, Stage};
use judgeq::session::QuestionPlacement;
use judgeq::tasks::journal::{
    self, JOURNAL_FORMAT, Journal, RunHeader, RunModel, Shard, method_records,
};
use judgeq::tasks::outputs::{SUMMARY_FILES, press_folder_name, write_outputs};
use judgeq::tasks::runner::{RunSettings, run};
use judgeq::tasks::{Metric, TaskSample};

fn tiny_model() -> (common::tiny_checkpoint::TinyCheckpoint, Model) {
    let ck = write_hf(&TinySpec {
        max_positions: 1024,
        ..TinySpec::llama()
    });
    let model = Model::load(&ck.path, &LoadOptions::default(), &Silent).unwrap();
    (ck, model)
}

/// Four samples with a "needle" in the context and an answer the metric looks for.
fn samples() -> Vec<TaskSample> {
    (0..4)
        .map(|i| {
            let needle = format!("the code is {}{}", i, i + 3);
            let context = format!("hay hay hay {needle} hay hay hay hay hay end");
            let start = context.find(&needle).unwrap();
            TaskSample {
                index: i,
                id: format!("toy/{i}"),
                task: if i % 2 == 0 { "even" } else { "odd" }.into(),
                evidence: std::iter::once(start..start + needle.len()).collect(),
                context,
                question: "what is the code?".into(),
                answer_prefix: "the code is".into(),
                answers: vec![format!("{}{}", i, i + 3)],
                max_new_tokens: 4,
                metric: Metric::StringMatchAll,
                fields: vec![("depth".into(), (i * 25).to_string())],
            }
        })
        .collect()
}

fn settings() -> RunSettings {
    let base = PolicySettings {
        window: 4,
        ..PolicySettings::default()
    };
    let method = |policy: PolicyId| Method {
        id: policy.id().into(),
        label: policy.label().into(),
        policy,
        settings: base.clone(),
    };
    RunSettings {
        methods: vec![method(PolicyId::SNAPKV), method(PolicyId::STREAMING_LLM)],
        budgets: vec![8, 16],
        ratios: Vec::new(),
        window: 4,
        placement: QuestionPlacement::End,
    }
}

fn header(model: &Model, settings: &RunSettings) -> RunHeader {
    RunHeader {
        format: JOURNAL_FORMAT,
        program_version: "test".into(),
        task_set: "toy".into(),
        data_dir: "tiny".into(),
        spec: serde_json::json!({"samples": 4}),
        model: RunModel {
            id: model.info.id.clone(),
            weights_sha256: model.info.weights_sha256.clone(),
        },
        soft_tokens: None,
        methods: method_records(&settings.methods),
        budgets: settings.budgets.clone(),
        ratios: settings.ratios.clone(),
        window: settings.window,
        placement: settings.placement,
        samples: 4,
        shard: Shard::WHOLE,
    }
}

/// Counts finished prefills and cancels once `cancel_after` of them have finished.
struct Counting {
    prefills: Mutex<usize>,
    cancel_after: Option<usize>,
}

impl Counting {
    fn new(cancel_after: Option<usize>) -> Self {
        Self {
            prefills: Mutex::new(0),
            cancel_after,
        }
    }
    fn prefills(&self) -> usize {
        *self.prefills.lock().unwrap()
    }
}

impl Progress for Counting {
    fn update(&self, stage: &Stage, done: usize, total: usize) {
        if *stage == Stage::Prefill && done == total {
            *self.prefills.lock().unwrap() += 1;
        }
    }
    fn is_cancelled(&self) -> bool {
        self.cancel_after.is_some_and(|n| self.prefills() >= n)
    }
}

/// Every file under `dir` but the journal, by relative path.
fn output_files(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() != journal::JOURNAL_FILE {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_sweep_costs_one_prefill_per_sample() {
    let (_ck, model) = tiny_model();
    let settings = settings();
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), header(&model, &settings), false).unwrap();
    let counting = Counting::new(None);
    let outcome = run(
        &model,
        &samples(),
        None,
        &settings,
        &mut journal,
        &counting,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!((outcome.evaluated, outcome.cancelled), (4, false));
    assert_eq!(
        counting.prefills(),
        4,
        "2 policies x 2 budgets must share one prefill"
    );
    let (_, results) = journal::read(dir.path()).unwrap();
    for result in &results {
        assert!(result.skipped.is_none(), "{:?}", result.skipped);
        assert_eq!(result.cells.len(), 4);
        assert!(result.evidence_tokens > 0);
        for cell in &result.cells {
            let kept = cell.evidence_kept.unwrap();
            assert!((0.0..=1.0).contains(&kept));
            assert_eq!(cell.evidence_kept_by_layer.len(), 2);
            // Every layer has as many heads, so the layers' mean is the overall hit rate.
            let by_layer = &cell.hit_rate_by_layer;
            assert_eq!(by_layer.len(), 2);
            let layers_mean = (by_layer[0] + by_layer[1]) / 2.0;
            assert!(
                (layers_mean - cell.hit_rate).abs() < 1e-6,
                "{by_layer:?} against {}",
                cell.hit_rate
            );
        }
    }
}

#[test]
fn resuming_after_ctrl_c_gives_the_tables_of_an_uninterrupted_run() {
    let (_ck, model) = tiny_model();
    let settings = settings();
    let samples = samples();

    let whole = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(whole.path(), header(&model, &settings), false).unwrap();
    run(
        &model,
        &samples,
        None,
        &settings,
        &mut journal,
        &Silent,
        &|_, _| {},
    )
    .unwrap();
    let (h, results) = journal::read(whole.path()).unwrap();
    write_outputs(whole.path(), &h, &results).unwrap();

    let stopped = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(stopped.path(), header(&model, &settings), false).unwrap();
    // Ctrl-C as the second sample's prefill ends: that sample is dropped, the first kept.
    let outcome = run(
        &model,
        &samples,
        None,
        &settings,
        &mut journal,
        &Counting::new(Some(2)),
        &|_, _| {},
    )
    .unwrap();
    assert!(outcome.cancelled);
    assert_eq!(outcome.evaluated, 1);
    drop(journal);
    let mut journal = Journal::resume(stopped.path(), header(&model, &settings)).unwrap();
    let outcome = run(
        &model,
        &samples,
        None,
        &settings,
        &mut journal,
        &Silent,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!((outcome.resumed, outcome.evaluated), (1, 3));
    let (h, results) = journal::read(stopped.path()).unwrap();
    write_outputs(stopped.path(), &h, &results).unwrap();

    let (a, b) = (output_files(whole.path()), output_files(stopped.path()));
    assert_eq!(a, b);
    for file in SUMMARY_FILES {
        assert!(a.contains_key(file), "{file} in {:?}", a.keys());
    }
    // StreamingLLM against SnapKV on the four samples, at both budgets, for each metric.
    let paired = String::from_utf8(a["paired.csv"].clone()).unwrap();
    for budget in [8, 16] {
        for metric in ["score", "hit_rate", "mass_kept", "matched_prefix"] {
            let row = format!("\nstreamingllm,snapkv,{budget},,{metric},4,");
            assert!(paired.contains(&row), "{row} in {paired}");
        }
    }
    let summary = String::from_utf8(a["summary.md"].clone()).unwrap();
    assert!(
        summary.contains("## Against SnapKV, sample by sample"),
        "{summary}"
    );
    let hit_rates = String::from_utf8(a["hit_rate_by_layer.csv"].clone()).unwrap();
    assert!(hit_rates.starts_with("method,budget,layer,hit_rate,ratio\nsnapkv,8,0,"));
    let folder = press_folder_name(&h, "snapkv", Some(AskedBudget::Entries(8)));
    for file in ["predictions.csv", "metrics.json", "config.yaml"] {
        assert!(
            a.contains_key(&format!("{folder}/{file}")),
            "{folder}/{file} in {:?}",
            a.keys()
        );
    }
    let predictions = String::from_utf8(a[&format!("{folder}/predictions.csv")].clone()).unwrap();
    assert!(predictions.starts_with("index,id,task,depth,question,answer_prefix,answer,predicted_answer,score,compression_ratio,budget"));
    assert_eq!(predictions.lines().count(), 5, "{predictions}");
}

#[test]
fn a_ratio_run_keeps_each_samples_share_and_matches_the_equal_budgets() {
    let (_ck, model) = tiny_model();
    let ratio = |r: f64| Ratio::new(r).unwrap();
    let by_ratio = RunSettings {
        budgets: Vec::new(),
        ratios: vec![ratio(0.5), ratio(0.75)],
        ..settings()
    };
    let ratio_dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(ratio_dir.path(), header(&model, &by_ratio), false).unwrap();
    run(
        &model,
        &samples(),
        None,
        &by_ratio,
        &mut journal,
        &Silent,
        &|_, _| {},
    )
    .unwrap();
    let (h, ratio_results) = journal::read(ratio_dir.path()).unwrap();

    // The same samples at every entry count those ratios resolve to, asked in entries.
    let mut kept: Vec<usize> = ratio_results
        .iter()
        .flat_map(|r| r.cells.iter().map(|c| c.budget))
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let by_budget = RunSettings {
        budgets: kept,
        ..settings()
    };
    let budget_dir = tempfile::tempdir().unwrap();
    let mut journal =
        Journal::create(budget_dir.path(), header(&model, &by_budget), false).unwrap();
    run(
        &model,
        &samples(),
        None,
        &by_budget,
        &mut journal,
        &Silent,
        &|_, _| {},
    )
    .unwrap();
    let (_, budget_results) = journal::read(budget_dir.path()).unwrap();

    for (with_ratio, with_budget) in ratio_results.iter().zip(&budget_results) {
        let n = with_ratio.prompt_tokens;
        assert_eq!(with_ratio.cells.len(), 4);
        for cell in &with_ratio.cells {
            let r = cell.ratio.unwrap();
            // kvpress: int(n · (1 − r)), computed here by hand.
            let want = (n as f64 * (1.0 - r.removed())).floor() as usize;
            assert_eq!(cell.budget, want, "{} tokens at ratio {r}", n);
            let twin = with_budget
                .cells
                .iter()
                .find(|c| c.method == cell.method && c.budget == cell.budget)
                .unwrap();
            assert_eq!(twin.ratio, None);
            assert_eq!(
                (
                    &cell.predicted_answer,
                    cell.hit_rate,
                    cell.compression_ratio
                ),
                (
                    &twin.predicted_answer,
                    twin.hit_rate,
                    twin.compression_ratio
                )
            );
        }
    }

    write_outputs(ratio_dir.path(), &h, &ratio_results).unwrap();
    let files = output_files(ratio_dir.path());
    let folder = press_folder_name(&h, "snapkv", Some(AskedBudget::Removed(ratio(0.5))));
    assert!(folder.ends_with("__snapkv__0.50__query_aware"), "{folder}");
    let config = String::from_utf8(files[&format!("{folder}/config.yaml")].clone()).unwrap();
    assert!(
        config.contains("budget: null\ncompression_ratio: 0.5\n"),
        "{config}"
    );
    let summary = String::from_utf8(files["summary.csv"].clone()).unwrap();
    assert!(summary.lines().next().unwrap().ends_with(",samples,ratio"));
    // One row per method, ratio and task (two tasks and their average) besides Full KV's.
    let snapkv_at_half: Vec<&str> = summary
        .lines()
        .filter(|l| l.starts_with("snapkv,") && l.ends_with(",0.5"))
        .collect();
    assert_eq!(snapkv_at_half.len(), 3, "{summary}");
    let markdown = String::from_utf8(files["summary.md"].clone()).unwrap();
    assert!(
        markdown.contains("| method | ratio 0.50 | ratio 0.75 |"),
        "{markdown}"
    );
}
