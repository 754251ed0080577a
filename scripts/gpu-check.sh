#!/usr/bin/env bash
# The GPU checks and benchmarks in one go, on a bare machine with an NVIDIA GPU and no internet:
# builds judgeq with `--features cuda`, then runs, each under a time limit so that the whole
# takes at most 12 minutes (JUDGEQ_GPU_CHECK_SECONDS, default 720), and writes gpu-report.md:
#
#   1. CPU-vs-GPU agreement, f32 and bf16, on a tiny random model (`judgeq bench --agreement`);
#   2. the same on the default model (SmolLM2-135M-Instruct) when it is cached;
#   3. prefill time and peak GPU memory for Llama-3.1-8B's shapes (random weights in Hugging
#      Face layout, written by judgeq into a temporary folder) at 8K and 32K tokens, with and
#      without capture, against the arithmetic floor at the card's bf16 rate (printed);
#   4. the default model's `judgeq inspect` on an 8K-token document (the explorer's example
#      document 16 times, 8,084 tokens), GPU against CPU time.
#
#   scripts/gpu-check.sh [--report FILE] [--skip-build]
#   scripts/gpu-check.sh --dry-run-cpu [--report FILE] [--skip-build]
#
# --dry-run-cpu runs every step on the CPU with small sizes and a build without the feature
# (`--device cpu` where the GPU run says `cuda:0`): it proves the script's plumbing on a machine
# without a GPU. --skip-build uses target/release/judgeq as it is.
#
# What must be on the machine before it goes offline (nothing is downloaded here):
#   - the crates: vendoring is not possible for this project, so run `cargo fetch` in the
#     repository while online (the build then runs with --offline);
#   - CUDA's compiler and libraries: a CUDA toolkit (nvcc on PATH or CUDA_HOME), or the wheels
#     `scripts/cuda-toolchain.sh --libs` installed once while online (it installs nothing when
#     they are there);
#   - for steps 2 and 4, the default model in judgeq's cache (`judgeq fetch-model`, or the file
#     in $JUDGEQ_MODEL_DIR); without it those steps are skipped and the report says so.
#
# JUDGEQ_PEAK_TFLOPS sets the bf16 rate of the floor when the card is not one the script knows.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '/^#   scripts/p' "$0" | sed 's/^# *//' >&2
    exit "${1:-2}"
}

mode=gpu
report=gpu-report.md
build=true
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run-cpu) mode=cpu ;;
        --report)
            [ $# -ge 2 ] || usage
            report="$2"
            shift
            ;;
        --skip-build) build=false ;;
        -h | --help) usage 0 ;;
        *) usage ;;
    esac
    shift
done

say() { echo "gpu-check: $*" >&2; }
die() {
    say "$*"
    exit 1
}

budget="${JUDGEQ_GPU_CHECK_SECONDS:-720}"
started=$(date +%s)
remaining() { echo $((budget - ($(date +%s) - started))); }

work="$(mktemp -d)"
sampler=""
cleanup() {
    [ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export CARGO_NET_OFFLINE=true

# Sizes and device of each mode. The dry run keeps every command and shrinks the sizes.
if [ "$mode" = gpu ]; then
    command -v nvidia-smi >/dev/null ||
        die "nvidia-smi was not found: this needs an NVIDIA GPU and its driver (--dry-run-cpu checks the plumbing without one)"
    if ! command -v nvcc >/dev/null && [ -z "${CUDA_HOME-}" ]; then
        cuda_env="$(scripts/cuda-toolchain.sh --libs)" ||
            die "no CUDA compiler: install a CUDA toolkit, or run scripts/cuda-toolchain.sh --libs once while online"
        eval "$cuda_env"
    fi
    gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
    if [ -z "${CUDA_COMPUTE_CAP-}" ]; then
        cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1)"
        export CUDA_COMPUTE_CAP="${cap/./}"
    fi
    device=cuda:0
    features=(--features cuda)
    tiny_lengths=256,1024
    llama_layers=32
    llama_lengths=8192,32768
    doc_copies=16
    # Dense bf16 tensor-core rates (TFLOP/s, without sparsity) from NVIDIA's data sheets.
    case "$gpu_name" in
        *H100* | *H200*) rate=989 ;;
        *A100*) rate=312 ;;
        *L40S*) rate=362 ;;
        *L40*) rate=181 ;;
        *A10G* | *A10*) rate=125 ;;
        *L4*) rate=121 ;;
        *4090*) rate=165 ;;
        *) rate="" ;;
    esac
    rate="${JUDGEQ_PEAK_TFLOPS:-$rate}"
else
    gpu_name="none (dry run on the CPU)"
    device=cpu
    features=()
    tiny_lengths=64,128
    llama_layers=1
    llama_lengths=256,512
    doc_copies=1
    # A nominal rate: the dry run checks that the floor is printed, not the CPU's speed.
    rate="${JUDGEQ_PEAK_TFLOPS:-0.1}"
fi

# Build.
bin="${CARGO_TARGET_DIR:-target}/release/judgeq"
build_seconds="-"
if $build; then
    say "building: cargo build --release --offline ${features[*]}"
    t0=$(date +%s)
    cargo build --release --offline "${features[@]}" >"$work/build.log" 2>&1 || {
        tail -n 40 "$work/build.log" >&2
        die "the build failed (is the registry fetched? run \`cargo fetch\` while online)"
    }
    build_seconds=$(($(date +%s) - t0))
fi
[ -x "$bin" ] || die "$bin is missing: build first, or drop --skip-build"

model="${JUDGEQ_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/judgeq/models}/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$model" ] || model=""

# The report, written as the steps finish.
{
    echo "# judgeq GPU check"
    echo
    echo "- mode: $mode ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- GPU: $gpu_name"
    if [ "$mode" = gpu ]; then
        echo "- driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1), compute capability ${CUDA_COMPUTE_CAP}"
        echo "- nvcc: $(nvcc --version 2>/dev/null | tail -n 1 || echo unknown)"
    fi
    echo "- CPU: $(nproc) cores"
    echo "- build: cargo build --release --offline ${features[*]} (${build_seconds} s)"
    echo "- bf16 rate assumed for the floor: ${rate:-unknown (set JUDGEQ_PEAK_TFLOPS)} TFLOP/s"
    echo "- default model: ${model:-not cached, its steps are skipped}"
} >"$report"

# Peak memory.used of the GPU (MiB) while a step runs, sampled by nvidia-smi every 100 ms.
start_sampler() {
    [ "$mode" = gpu ] || return 0
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$work/smi.log" 2>/dev/null &
    sampler=$!
}
stop_sampler() {
    [ -n "$sampler" ] || return 0
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    sampler=""
    echo "nvidia-smi peak memory.used during the step: $(sort -n "$work/smi.log" | tail -n 1) MiB"
}

# step TITLE LIMIT_SECONDS COMMAND...: runs the command under the smaller of its limit and the
# time left (keeping 20 s for the report), and appends its command, output and time.
step() {
    local title="$1" limit="$2"
    shift 2
    local left=$(($(remaining) - 20))
    [ "$left" -lt "$limit" ] && limit="$left"
    {
        echo
        echo "## $title"
        echo
        echo '```'
        echo "\$ $(printf '%q ' "$@")"
    } >>"$report"
    if [ "$limit" -le 0 ]; then
        echo "skipped: the 12 minutes are spent" >>"$report"
        echo '```' >>"$report"
        say "$title: skipped, no time left"
        return 0
    fi
    say "$title (at most ${limit} s)"
    start_sampler
    local t0 status=0
    t0=$(date +%s%N)
    timeout "$limit" "$@" >"$work/step.log" 2>"$work/step.err" || status=$?
    local seconds
    seconds=$(awk -v t0="$t0" -v t1="$(date +%s%N)" 'BEGIN { printf "%.1f", (t1 - t0) / 1e9 }')
    {
        cat "$work/step.log"
        if [ "$status" -ne 0 ]; then
            tail -n 20 "$work/step.err"
            if [ "$status" -eq 124 ]; then
                echo "TIMED OUT after ${limit} s"
            else
                echo "FAILED with exit status $status"
            fi
        fi
        stop_sampler
        echo "wall time: ${seconds} s"
        echo '```'
    } >>"$report"
}

skip() {
    printf '\n## %s\n\nskipped: %s\n' "$1" "$2" >>"$report"
    say "$1: skipped ($2)"
}

# 1 and 2: agreement with the CPU in f32, the compared run on the device in f32 then bf16.
for dtype in f32 bf16; do
    step "Agreement, tiny random model: $dtype on $device against f32 on the CPU" 60 \
        "$bin" bench --agreement --random-weights --shape tiny --lengths "$tiny_lengths" \
        --device cpu --dtype f32 --against-device "$device" --against-dtype "$dtype"
done
for dtype in f32 bf16; do
    if [ -n "$model" ]; then
        step "Agreement, default model: $dtype on $device against f32 on the CPU" 120 \
            "$bin" bench --agreement --model "$model" \
            --device cpu --dtype f32 --against-device "$device" --against-dtype "$dtype"
    else
        skip "Agreement, default model: $dtype on $device" "the default model is not cached"
    fi
done

# 3: Llama-3.1-8B's shapes, plain and with capture, against the floor; one step per length so
# that a slow long prompt cannot take the short one's figures with it.
floor=()
[ -z "$rate" ] || floor=(--peak-tflops "$rate")
llama_dtype=bf16
[ "$mode" = gpu ] || llama_dtype=f32
for length in ${llama_lengths//,/ }; do
    step "Prefill of $length tokens, Llama-3.1-8B's shapes ($llama_layers of 32 layers, random weights), $llama_dtype on $device" 240 \
        "$bin" bench --random-weights --shape llama-3.1-8b --layers "$llama_layers" \
        --lengths "$length" --device "$device" --dtype "$llama_dtype" "${floor[@]}"
done

# 4: the default model's inspect on a long document, on the device and on the CPU. The
# document is the explorer's example document 16 times: 8,084 prompt tokens, which with the 32
# shipped soft tokens fit the model's 8,192.
if [ -n "$model" ]; then
    doc="$work/document.txt"
    for _ in $(seq "$doc_copies"); do
        cat src/app/demo_document.md
        echo
    done >"$doc"
    for where in "$device" cpu; do
        step "inspect, default model on $where: $doc_copies copies of the example document" 150 \
            "$bin" inspect --model "$model" --doc "$doc" --question "What happened to the bridge?" \
            --device "$where" --out "$work/inspect-$where" --decode 16
        rm -rf "$work/inspect-$where"
    done
else
    skip "inspect, default model" "the default model is not cached"
fi

printf '\ntotal wall time: %s s of %s\n' "$(($(date +%s) - started))" "$budget" >>"$report"
say "wrote $report"
