#!/usr/bin/env bash
# Installs a private CUDA 13.0 toolchain from NVIDIA's PyPI wheels, for building judgeq with
# `--features cuda` on a machine without the CUDA toolkit (or without a GPU at all, as in CI).
#
#   eval "$(scripts/cuda-toolchain.sh)"          # nvcc, headers: enough for `cargo check`
#   eval "$(scripts/cuda-toolchain.sh --libs)"   # also cuBLAS, cuRAND, NVRTC: enough for `cargo build`
#
# The wheels go into $JUDGEQ_CUDA_PREFIX (default ~/.cache/judgeq/cuda-13.0, $XDG_CACHE_HOME
# honoured); a second run with the same set installs nothing. The wheels already lay their files
# out as a CUDA_HOME (bin/nvcc, include/, lib/, nvvm/); this script adds what the linker looks
# for: unversioned `lib*.so` names, and with --libs a link stub of the driver library
# (lib/stubs/libcuda.so, as the toolkit ships one), so the build links where no driver is
# installed. The stub is never loaded: the binary asks for libcuda.so.1, which only the NVIDIA
# driver provides.
#
# Progress goes to stderr; stdout is the environment to export: PATH, CUDA_HOME, CUDA_PATH,
# LD_LIBRARY_PATH (the libraries a cuda build of judgeq loads at run time), CUDA_COMPUTE_CAP
# (the GPU generation candle's kernels are compiled for: kept when set, else read from
# nvidia-smi, else 80) and CUDAFORGE_THREADS (nvcc jobs for those kernels: every core, where
# candle-kernels would use half).
set -euo pipefail

# CUDA 13.0: the first CUDA 13, whose PTX every CUDA 13 driver (580 and newer) loads; cudarc 0.19
# (candle 0.11) knows 11.4 to 13.4. The older -cu12 wheels hold no nvcc.
COMPILER_WHEELS=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-runtime==13.0.96
)
# The libraries candle links: cuBLAS and cuBLASLt (about 420 MB to download), cuRAND, NVRTC.
LIBRARY_WHEELS=(
    nvidia-cublas==13.0.2.14
    nvidia-curand==10.4.0.35
    nvidia-cuda-nvrtc==13.0.88
)
DEFAULT_COMPUTE_CAP=80

usage() {
    echo "usage: eval \"\$($0 [--libs])\"" >&2
    exit 2
}

with_libs=false
case "${1-}" in
    "") ;;
    --libs) with_libs=true ;;
    *) usage ;;
esac
[ $# -le 1 ] || usage

say() { echo "cuda-toolchain: $*" >&2; }
die() {
    say "$*"
    exit 1
}

prefix="${JUDGEQ_CUDA_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/judgeq/cuda-13.0}"
python="${PYTHON:-python3}"
wheels=("${COMPILER_WHEELS[@]}")
if $with_libs; then
    wheels+=("${LIBRARY_WHEELS[@]}")
fi

# True when the stamp lists every wanted wheel (a --libs install serves a plain run too).
installed() {
    local stamp="$1" wheel
    [ -f "$stamp" ] || return 1
    for wheel in "${wheels[@]}"; do
        grep -qxF "$wheel" "$stamp" || return 1
    done
}

# Installs the wheels in one pip call into a fresh folder (pip --target does not merge into an
# existing one), then swaps it in; the stamp lists what is installed.
install_wheels() {
    local stamp="$prefix/installed.txt"
    installed "$stamp" && return
    command -v "$python" >/dev/null || die "\`$python\` was not found; the wheels are installed with pip (set PYTHON to another interpreter)"
    mkdir -p "$prefix"
    rm -rf "$prefix/site.new"
    say "installing ${wheels[*]} into $prefix"
    "$python" -m pip install --no-deps --only-binary=:all: --disable-pip-version-check \
        --no-warn-script-location --root-user-action=ignore --quiet --target "$prefix/site.new" "${wheels[@]}" >&2 \
        || die "pip could not install the CUDA wheels into $prefix/site.new"
    rm -rf "$prefix/site" "$stamp"
    mv "$prefix/site.new" "$prefix/site"
    printf '%s\n' "${wheels[@]}" >"$stamp"
}

# Points `libNAME.so` at the versioned file a wheel ships (`libNAME.so.13`), as `-lNAME` needs.
link_unversioned() {
    local lib="$1" versioned
    for versioned in "$cuda_home/lib/lib$lib.so."*; do
        [ -e "$versioned" ] || die "no lib$lib.so.* in $cuda_home/lib"
        ln -sfn "${versioned##*/}" "$cuda_home/lib/lib$lib.so"
        return
    done
}

# Builds lib/stubs/libcuda.so: every driver API function that cuda.h declares, under the name
# it is exported by (after cuda.h's `cuX` -> `cuX_v2` renames) and its plain name, each
# returning CUDA_ERROR_STUB_LIBRARY (34). Soname libcuda.so.1, the driver's.
build_driver_stub() {
    local stubs="$cuda_home/lib/stubs"
    [ -f "$stubs/libcuda.so" ] && return
    local cc="${CC:-cc}"
    command -v "$cc" >/dev/null || die "no C compiler (\`$cc\`) to build the driver link stub"
    mkdir -p "$stubs"
    local names source
    names="$(
        {
            echo '#include <cuda.h>' | "$cc" -E -P -I"$cuda_home/include" -x c - |
                grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' || true
            grep -oE 'CUDAAPI[[:space:]]+cu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' "$cuda_home/include/cuda.h" |
                sed -E 's/^CUDAAPI[[:space:]]+//' || true
        } | tr -d ' \t(' | sort -u
    )"
    [ -n "$names" ] || die "found no driver functions in $cuda_home/include/cuda.h"
    source="$(mktemp --suffix=.c)"
    sed -E 's/.*/int &(void) { return 34; }/' <<<"$names" >"$source"
    "$cc" -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$source" \
        || die "could not build the driver link stub from $source"
    rm -f "$source"
    say "built a link stub of libcuda with $(wc -l <<<"$names") functions"
}

compute_cap() {
    if [ -n "${CUDA_COMPUTE_CAP-}" ]; then
        echo "$CUDA_COMPUTE_CAP"
        return
    fi
    local smi
    if smi="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1)" &&
        [[ "$smi" =~ ^[0-9]+\.[0-9]+$ ]]; then
        echo "${smi/./}"
        return
    fi
    say "no GPU found: compiling the kernels for compute capability $DEFAULT_COMPUTE_CAP (set CUDA_COMPUTE_CAP to change it)"
    echo "$DEFAULT_COMPUTE_CAP"
}

install_wheels
cuda_home="$prefix/site/nvidia/cu13"
[ -x "$cuda_home/bin/nvcc" ] || die "$cuda_home/bin/nvcc is missing; delete $prefix and run again"
ln -sfn lib "$cuda_home/lib64"
link_unversioned cudart
if $with_libs; then
    for lib in cublas cublasLt curand nvrtc; do
        link_unversioned "$lib"
    done
    build_driver_stub
fi
"$cuda_home/bin/nvcc" --version >/dev/null || die "$cuda_home/bin/nvcc does not run"

cat <<EOF
export PATH="$cuda_home/bin:\$PATH"
export CUDA_HOME="$cuda_home"
export CUDA_PATH="$cuda_home"
export LD_LIBRARY_PATH="$cuda_home/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export CUDA_COMPUTE_CAP="$(compute_cap)"
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
EOF
