#!/usr/bin/env bash
# judgeq against kvpress 0.5.5 on one prompt: judgeq's keep masks (`judgeq evict`, one set per
# layer and KV head as kvpress keeps), kvpress's kept entries for the same token ids through the
# same GGUF file, and their agreement in OUT/kvpress/agreement.md. Run by hand after ./setup.sh;
# never in CI.
#
#   scripts/kvpress-compare/run.sh DOC QUESTION OUT [BUDGETS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
doc="$1" question="$2" out="$3" budgets="${4:-64,128,256}"
policies=knorm,keydiff,tova,lagkv,expected-attention,adakv-expected-attention

judgeq="${JUDGEQ:-$root/target/release/judgeq}"
[ -x "$judgeq" ] || (cd "$root" && cargo build --release)
"$judgeq" evict --doc "$doc" --question "$question" --policies "$policies" \
  --budgets "$budgets" --granularity kv-head-mean --no-answers --decode 8 \
  --out "$out/judgeq" --force
# CriticalKV over SnapKV with kvpress's SnapKVPress settings: window 64, average pooling of 5,
# one set per KV head from the mean over its group (pooling and the mean commute).
"$judgeq" evict --doc "$doc" --question "$question" --policies criticalkv-snapkv \
  --budgets "$budgets" --window 64 --pooling avg5 --granularity kv-head-mean --no-answers \
  --decode 8 --out "$out/judgeq-criticalkv" --force
# KVzip with kvpress's KVzipPress defaults (n_sink 4, chunk_size 2048): one share over every
# layer and KV head, scored per KV head (judgeq's kvzip_sinks and kvzip_chunk_size defaults).
"$judgeq" evict --doc "$doc" --question "$question" --policies kvzip \
  --budgets "$budgets" --granularity kv-head-mean --no-answers --decode 8 \
  --out "$out/judgeq-kvzip" --force
gguf="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["path"])' "$out/judgeq/manifest.json")"
"$here/.venv/bin/python" "$here/compare.py" --judgeq-out "$out/judgeq" --gguf "$gguf" \
  --out "$out/kvpress" --policies "$policies" --budgets "$budgets"
"$here/.venv/bin/python" "$here/compare.py" --judgeq-out "$out/judgeq-criticalkv" --gguf "$gguf" \
  --out "$out/kvpress-criticalkv" --policies criticalkv-snapkv --budgets "$budgets"
# ChunkKV (chunks of 20, ChunkKVPress's default) over SnapKV with the same settings; judgeq's
# mask is SnapKV's with chunk_size=20 (`snapkv-chunk` in eval and tasks).
"$judgeq" evict --doc "$doc" --question "$question" --policies snapkv --param chunk_size=20 \
  --budgets "$budgets" --window 64 --pooling avg5 --granularity kv-head-mean --no-answers \
  --decode 8 --out "$out/judgeq-chunk" --force
"$here/.venv/bin/python" "$here/compare.py" --judgeq-out "$out/judgeq-chunk" --gguf "$gguf" \
  --out "$out/kvpress-chunk" --policies snapkv-chunk --budgets "$budgets"
"$here/.venv/bin/python" "$here/compare.py" --judgeq-out "$out/judgeq-kvzip" --gguf "$gguf" \
  --out "$out/kvpress-kvzip" --policies kvzip --budgets "$budgets"
