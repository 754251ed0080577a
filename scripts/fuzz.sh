#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a fixed number of executions and prints, per target, the
# executions, the seconds and whether it crashed. Needs cargo-fuzz (`cargo install cargo-fuzz`);
# RUSTC_BOOTSTRAP=1 lets a stable toolchain take the unstable flags cargo-fuzz passes.
#
# Coverage-guided without AddressSanitizer (`-s none`): judgeq and its readers are safe Rust, so
# what the fuzzer hunts is panics (a failed slice index, an `unwrap`), arithmetic overflow (the
# fuzz crate's profile turns overflow checks and debug assertions on), hangs and runaway memory,
# none of which needs ASan; without it each execution runs several times faster. The fuzz crate
# builds judgeq without its `gui` feature, so eframe, egui and wgpu are not built at all.
#
#   scripts/fuzz.sh [EXECS]        EXECS per reader target, default 1000000
#
# The chat-template target renders a template per execution and runs TEMPLATE_EXECS times
# (default EXECS / 10). Seeds are written first by `cargo run --example fuzz_seeds`; new inputs
# go to fuzz/corpus/TARGET, crashing ones to fuzz/artifacts/TARGET.
set -euo pipefail

execs="${1:-1000000}"
template_execs="${TEMPLATE_EXECS:-$((execs / 10))}"
cd "$(dirname "$0")/.."

cargo run --quiet --release --example fuzz_seeds -- fuzz/seeds

# target, longest input in bytes, executions
targets=(
    "gguf 65536 $execs"
    "hf_config 4096 $execs"
    "safetensors 65536 $execs"
    "soft_tokens 4096 $execs"
    "prompts 4096 $execs"
    "task_jsonl 4096 $execs"
    "chat_template 1024 $template_execs"
)

summary=()
failed=0
for entry in "${targets[@]}"; do
    read -r target max_len runs <<<"$entry"
    mkdir -p "fuzz/corpus/$target"
    start=$SECONDS
    status=ok
    # The fuzz crate builds into fuzz/target, whatever CARGO_TARGET_DIR says.
    if ! env -u CARGO_TARGET_DIR RUSTC_BOOTSTRAP=1 cargo fuzz run -s none "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -runs="$runs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1; then
        status="CRASH (see fuzz/artifacts/$target)"
        failed=1
    fi
    summary+=("$(printf '%-14s %10s execs %6ss  %s' "$target" "$runs" "$((SECONDS - start))" "$status")")
done

printf '%s\n' "${summary[@]}"
exit "$failed"
