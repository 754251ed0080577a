//! `judgeq evict --ratios` on a tiny random model: each ratio keeps kvpress's
//! `int(n · (1 − r))` entries of the prompt, and the run gives the same keep masks and metrics
//! as `--budgets` with those counts, its outputs saying which kind was asked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::tiny_checkpoint::{TinySpec, write_hf};
use ndarray::Array3;
use ndarray_npy::read_npy;

const DOCUMENT: &str = "The bridge closed in October after engineers found two corroded \
bearings. New bearings take eleven weeks to make, so it reopens on 14 March.\n";
const QUESTION: &str = "When does the bridge reopen?";

fn evict(model: &Path, doc: &Path, out: &Path, budget_args: &[&str]) -> Output {
    let mut args = vec![
        "evict".to_owned(),
        "--doc".into(),
        doc.display().to_string(),
        "--question".into(),
        QUESTION.into(),
        "--window".into(),
        "4".into(),
        "--decode".into(),
        "4".into(),
        "--policies".into(),
        "snapkv,h2o,streamingllm".into(),
        "--model".into(),
        model.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(budget_args.iter().map(|s| (*s).to_owned()));
    let output = Command::new(env!("CARGO_BIN_EXE_judgeq"))
        .args(&args)
        .output()
        .expect("the judgeq binary runs");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `metrics.csv`'s lines.
fn metrics(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn ratios_keep_kvpress_counts_and_match_the_equal_budgets() {
    let model = write_hf(&TinySpec {
        max_positions: 512,
        vocab: 263,
        ..TinySpec::llama()
    });
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, DOCUMENT).unwrap();

    let by_ratio = dir.path().join("by-ratio");
    let output = evict(&model.path, &doc, &by_ratio, &["--ratios", "0.5,0.75"]);
    let table = String::from_utf8_lossy(&output.stdout).into_owned();

    // The prompt's length, from a mask's key axis; the counts computed here by hand.
    let any_mask = std::fs::read_dir(&by_ratio)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("keep_snapkv_"))
        .unwrap();
    let mask: Array3<u8> = read_npy(by_ratio.join(&any_mask)).unwrap();
    let n = mask.dim().2;
    let half = n / 2; // int(n · 0.5)
    let quarter = n / 4; // int(n · 0.25)
    assert!(quarter >= 4 && half > quarter, "prompt of {n} tokens");
    for (ratio, kept) in [("0.50", half), ("0.75", quarter)] {
        let label = format!("ratio {ratio} (kept {kept})");
        assert!(table.contains(&label), "no `{label}` in:\n{table}");
    }

    let budgets = format!("{half},{quarter}");
    let by_budget = dir.path().join("by-budget");
    evict(&model.path, &doc, &by_budget, &["--budgets", &budgets]);

    for policy in ["snapkv", "h2o", "streamingllm"] {
        for kept in [half, quarter] {
            let name = format!("keep_{policy}_{kept}.npy");
            let a: Array3<u8> = read_npy(by_ratio.join(&name)).unwrap();
            let b: Array3<u8> = read_npy(by_budget.join(&name)).unwrap();
            assert_eq!(a, b, "{name}");
        }
    }

    // Same rows, the last column (`ratio`) filled only where ratios were asked.
    let (with_ratio, with_budget) = (metrics(&by_ratio), metrics(&by_budget));
    assert_eq!(with_ratio[0], with_budget[0]);
    assert!(with_ratio[0].ends_with(",note,ratio"), "{}", with_ratio[0]);
    assert_eq!(with_ratio.len(), 1 + 3 * 2);
    for (a, b) in with_ratio[1..].iter().zip(&with_budget[1..]) {
        let kept = a.split(',').nth(1).unwrap();
        let ratio = if kept == half.to_string() {
            "0.5"
        } else {
            "0.75"
        };
        assert!(b.ends_with(','), "{b}");
        assert_eq!(*a, format!("{b}{ratio}"));
    }

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(by_ratio.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["eviction"]["budgets"],
        serde_json::json!([half, quarter])
    );
    assert_eq!(
        manifest["eviction"]["ratios"],
        serde_json::json!([0.5, 0.75])
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(by_budget.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["eviction"].get("ratios").is_none());
}
