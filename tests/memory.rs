//! Memory: the estimate a run is checked against, hand-computed; the refusal when too little is
//! free; and the explorer's worker reporting a refusal as a message and serving the next
//! request.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use candle_core::{DType, Device};
use common::naive::tiny_config;
use common::tiny_checkpoint::{TinySpec, write_hf};
use judgeq::judgeq::shipped::SoftTokenChoice;
use judgeq::model::bench::llama31_8b_shape;
use judgeq::model::memory::EstimateShape;
use judgeq::model::{Capture, FreeMemory, LoadOptions, ModelError, RunPlan, Transformer};
use judgeq::worker::engine::ModelEngine;
use judgeq::worker::protocol::{Event, ModelSource, Request, SessionRequest, WorkerHandle};

/// 100 prompt rows into a cache of 120, 40 captured rows over 100 keys with column sums.
const PLAN: RunPlan = RunPlan {
    input_rows: 100,
    cache_positions: 120,
    captured_rows: 40,
    key_limit: 100,
    accumulate: true,
};

#[test]
fn the_estimate_of_a_tiny_model_on_the_cpu_matches_the_hand_computed_one() {
    // Tiny llama: hidden 32, FFN 48, 2 layers, 4 query heads over 2 KV heads of 8.
    let config = tiny_config();
    let shape = EstimateShape {
        config: &config,
        dtype: DType::F32,
        cpu: true,
        threads: 2,
    };
    let estimate = shape.estimate(&PLAN, 1000);
    // KV: 2 (keys, values) x 2 layers x 120 positions x 16 (2 heads x 8) x 4 bytes.
    assert_eq!(estimate.kv_cache, 30_720);
    // A row: 5 x 32 + 3 x 32 + 3 x 16 + 2 x 48 = 400 floats; 100 rows of 4 bytes.
    assert_eq!(estimate.activations, 160_000);
    // Fused blocks: 2^21 / 120 keys caps at 256 rows, the 100 rows fit in one block:
    // 100 x 120 scores x 4 bytes x 2 threads.
    assert_eq!(estimate.attention_block, 96_000);
    // 2 layers x 4 heads x 100 keys x (40 rows + 1 row of sums) x 4 bytes.
    assert_eq!(estimate.captured, 131_200);
    assert_eq!(estimate.device_bytes(), 30_720 + 160_000 + 96_000 + 131_200);
    assert_eq!(estimate.host_bytes(), 0);
    assert_eq!(estimate.device_total(), 1000 + estimate.device_bytes());
}

#[test]
fn the_estimate_on_a_gpu_in_bf16_keeps_captured_rows_in_host_memory() {
    let config = tiny_config();
    let shape = EstimateShape {
        config: &config,
        dtype: DType::BF16,
        cpu: false,
        threads: 2,
    };
    let estimate = shape.estimate(&PLAN, 0);
    assert_eq!(estimate.kv_cache, 15_360);
    // A row: 6 x 32 + 3 x 32 + 3 x 16 + 4 x 48 = 528 values of 2 bytes.
    assert_eq!(estimate.activations, 105_600);
    // Portable chunk: all 100 rows, 4 heads x 100 x 120 scores x (12 + 2 x 2) bytes.
    assert_eq!(estimate.attention_block, 768_000);
    assert_eq!(estimate.device_bytes(), 15_360 + 105_600 + 768_000);
    assert_eq!(estimate.host_bytes(), 131_200);
}

#[test]
fn llama_8b_at_32k_tokens_in_bf16_needs_about_27_gb_of_gpu_memory() {
    // The figure README's GPU section states: Llama-3.1-8B (vocabulary 128256) prefilling
    // 32,768 tokens with the bench's capture (32 window rows and the column sums).
    let config = llama31_8b_shape(32, 128_256);
    let shape = EstimateShape {
        config: &config,
        dtype: DType::BF16,
        cpu: false,
        threads: 1,
    };
    let n = 32_768;
    let capture = Capture::rows(n - 32, n).with_accumulation();
    // 8,030,261,248 parameters (blocks, norms, embeddings and head) of 2 bytes.
    let weights = 2 * 8_030_261_248;
    let estimate = shape.estimate(&RunPlan::prefill(n, n, &capture), weights);
    // 2 x 32 layers x 32768 x 1024 x 2 bytes.
    assert_eq!(estimate.kv_cache, 4_294_967_296);
    // (6 x 4096 + 3 x 4096 + 3 x 1024 + 4 x 14336) = 97,280 values per row.
    assert_eq!(estimate.activations, 97_280 * 32_768 * 2);
    // 2^24 / (32 x 32768) = 16 rows: 16,777,216 scores of 16 bytes.
    assert_eq!(estimate.attention_block, 268_435_456);
    // 32 layers x 32 heads x 32768 keys x 33 rows x 4 bytes, in host memory.
    assert_eq!(estimate.captured, 4_429_185_024);
    let gpu = estimate.device_total() as f64 / 1e9;
    assert!((26.9..27.1).contains(&gpu), "{gpu} GB");
}

#[test]
fn a_run_is_refused_when_the_device_has_less_free_than_it_needs() {
    let config = tiny_config();
    let cpu = EstimateShape {
        config: &config,
        dtype: DType::F32,
        cpu: true,
        threads: 2,
    }
    .estimate(&PLAN, 1000);
    let needed = cpu.device_bytes();
    let tight = FreeMemory {
        device: Some(needed - 1),
        host: Some(needed - 1),
    };
    match cpu.check(&tight, "the CPU") {
        Err(ModelError::OutOfMemory {
            device,
            needed: Some(n),
            available: Some(a),
            ..
        }) => assert_eq!((device.as_str(), n, a), ("the CPU", needed, needed - 1)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let message = cpu.check(&tight, "the CPU").unwrap_err().to_string();
    assert!(
        message.starts_with("not enough memory on the CPU: this run needs 0.00 GB more"),
        "{message}"
    );
    assert!(message.contains("captured rows 0.00 GB"), "{message}");
    let enough = FreeMemory {
        device: Some(needed),
        host: Some(needed),
    };
    assert!(cpu.check(&enough, "the CPU").is_ok());
    let unknown = FreeMemory {
        device: None,
        host: None,
    };
    assert!(cpu.check(&unknown, "the CPU").is_ok());

    // On a GPU the captured rows need host memory: a roomy GPU and a tight host refuse.
    let gpu = EstimateShape {
        config: &config,
        dtype: DType::BF16,
        cpu: false,
        threads: 1,
    }
    .estimate(&PLAN, 0);
    let host_tight = FreeMemory {
        device: Some(1 << 40),
        host: Some(1000),
    };
    let message = gpu.check(&host_tight, "cuda:0").unwrap_err().to_string();
    assert!(
        message.starts_with(
            "not enough memory on the host: this run needs 0.00 GB more (captured rows 0.00 GB)"
        ),
        "{message}"
    );
    match gpu.check(&host_tight, "cuda:0") {
        Err(ModelError::OutOfMemory {
            device,
            needed: Some(131_200),
            ..
        }) => assert_eq!(device, "the host"),
        other => panic!("expected a host refusal, got {other:?}"),
    }
}

#[test]
fn a_transformer_checks_its_own_weights_and_refuses_a_run_no_machine_holds() {
    let model = Transformer::random(tiny_config(), 3, Device::Cpu, DType::F32).unwrap();
    // Embeddings 64 x 32 (tied head), 2 blocks of 2 x 32 + 32 x 32 + 2 x 16 x 32 + 32 x 32 +
    // 3 x 48 x 32 values, the final norm 32: 17,568 floats.
    let small = model.check_memory(&PLAN).unwrap();
    assert_eq!(small.weights, 17_568 * 4);
    // Every row of 2^20 tokens over all keys: 2 x 4 x 2^40 x 4 bytes, 32 TiB.
    let huge = RunPlan {
        input_rows: 1 << 20,
        cache_positions: 1 << 20,
        captured_rows: 1 << 20,
        key_limit: 1 << 20,
        accumulate: false,
    };
    match model.check_memory(&huge) {
        Err(ModelError::OutOfMemory {
            needed: Some(n),
            available: Some(a),
            ..
        }) => {
            assert!(n > a && n >= 1 << 45, "{n} > {a}")
        }
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(_) if !cfg!(target_os = "linux") => {} // free memory unknown: nothing to refuse
        Ok(estimate) => panic!("a 32 TiB run was accepted: {estimate:?}"),
    }
}

fn inspect_request(document: String, window: usize) -> SessionRequest {
    SessionRequest {
        document,
        document_path: None,
        question: "What is it?".to_owned(),
        placement: Default::default(),
        answer_prefix: String::new(),
        marks: Vec::new(),
        soft_tokens: SoftTokenChoice::None,
        window,
        decode_tokens: 4,
        capture: Default::default(),
    }
}

fn final_event(worker: &mut WorkerHandle) -> Event {
    loop {
        let event = worker.wait(Duration::from_secs(120)).expect("an event");
        if event.is_final() {
            return event;
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_worker_reports_a_refused_run_as_a_message_and_serves_the_next_one() {
    let spec = TinySpec {
        max_positions: 1 << 21,
        ..TinySpec::llama()
    };
    let checkpoint = write_hf(&spec);
    let mut worker =
        WorkerHandle::spawn(ModelEngine::new(LoadOptions::default()), Arc::new(|| {})).unwrap();
    worker.submit(|job| Request::LoadModel {
        job,
        source: ModelSource::Path(checkpoint.path.clone()),
    });
    match final_event(&mut worker) {
        Event::ModelReady { memory, .. } => {
            assert!(memory.is_some_and(|m| !m.gpu && m.bytes > 0), "{memory:?}")
        }
        other => panic!("expected the model, got {other:?}"),
    }

    // A million one-byte tokens, every one of them a captured window row over the whole
    // prompt: 2 layers x 4 heads x 10^12 floats, which no machine has free.
    let huge = "a".repeat(1_000_000);
    worker.submit(|job| Request::Inspect {
        job,
        request: inspect_request(huge, 1_000_000),
    });
    match final_event(&mut worker) {
        Event::Failed { message, .. } => {
            assert!(
                message.starts_with("not enough memory on the CPU"),
                "{message}"
            );
            assert!(message.contains("captured rows"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    worker.submit(|job| Request::Inspect {
        job,
        request: inspect_request("A short document about a bridge.".to_owned(), 4),
    });
    match final_event(&mut worker) {
        Event::SessionReady {
            session, memory, ..
        } => {
            assert_eq!(session.window.dim().2, 4);
            assert!(memory.is_some_and(|m| m.bytes > 0), "{memory:?}");
        }
        other => panic!("expected a session after the refusal, got {other:?}"),
    }
}
