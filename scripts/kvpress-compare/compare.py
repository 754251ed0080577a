"""Compares judgeq's keep masks with kvpress 0.5.5's kept entries on one prompt.

Reads a `judgeq evict` output folder (its manifest's prompt token ids and its
`keep_<policy>_<budget>.npy` masks, made with `--granularity kv-head-mean`, so one set per
layer and KV head as kvpress keeps), runs the same prompt through the same GGUF file with
transformers and each kvpress press at the compression ratio that keeps exactly `budget`
entries per head (`n_kept = int(n * (1 - ratio))`, kvpress's ScorerPress definition), and
writes kvpress's kept entries in the same layout (`kvpress_<policy>_<budget>.npy`, bool
`[layers, kv_heads, n]`) and a table of the agreement per policy and budget.

Kept entries are read as kvpress decides them: a ScorerPress keeps `scores.topk(n_kept)` of
the scores its `score` returns (recorded here per layer), and AdaKVPress and KVzipPress mask the
entries they store in each attention module's `masked_key_indices`.

KVzipPress shares one budget over every layer and KV head: it runs at the ratio that prunes
exactly `layers·kv_heads·(n − budget)` entries (`int(numel · ratio)`), the same total as judgeq's
`budget` per row. It loads the tokenizer (for its chat template and its repeat prompts) from the
model's `name_or_path`, which for a GGUF file holds no tokenizer files, so the GGUF file's
tokenizer is handed to it instead.

Run by hand (see README.md); never in CI.
"""

import argparse
import contextlib
import json
import pathlib
import sys
from unittest import mock

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from kvpress import (
    AdaKVPress,
    ChunkKVPress,
    CriticalKVPress,
    ExpectedAttentionPress,
    KeyDiffPress,
    KnormPress,
    KVzipPress,
    LagKVPress,
    SnapKVPress,
    TOVAPress,
)
from kvpress.presses import kvzip_press
from kvpress.utils import compute_n_kept

# judgeq's policy id -> the kvpress press with its defaults, at a compression ratio.
PRESSES = {
    "knorm": lambda ratio: KnormPress(compression_ratio=ratio),
    "keydiff": lambda ratio: KeyDiffPress(compression_ratio=ratio),
    "tova": lambda ratio: TOVAPress(compression_ratio=ratio),
    "lagkv": lambda ratio: LagKVPress(compression_ratio=ratio),
    "expected-attention": lambda ratio: ExpectedAttentionPress(compression_ratio=ratio),
    "adakv-expected-attention": lambda ratio: AdaKVPress(
        ExpectedAttentionPress(compression_ratio=ratio)
    ),
    # CriticalKVPress's defaults (epsilon 1e-4, first_stage_ratio 0.5) over SnapKVPress's
    # (window_size 64, kernel_size 5): judgeq runs it with --window 64 --pooling avg5
    # --granularity kv-head-mean (see README.md).
    "criticalkv-snapkv": lambda ratio: CriticalKVPress(SnapKVPress(compression_ratio=ratio)),
    # ChunkKVPress's default chunk_length 20 over SnapKVPress's defaults, with the same judgeq
    # settings as CriticalKV's.
    "snapkv-chunk": lambda ratio: ChunkKVPress(SnapKVPress(compression_ratio=ratio)),
    # KVzipPress's defaults (n_sink 4, chunk_size 2048, layerwise False, no KVzip+
    # normalisation), at the ratio of `global_ratio_for`.
    "kvzip": lambda ratio: KVzipPress(compression_ratio=ratio),
}

# Presses that mask entries in `masked_key_indices` instead of returning scores.
MASKING = (AdaKVPress, KVzipPress)

# Policies whose judgeq mask comes from another policy id run with a parameter (see run.sh).
JUDGEQ_POLICY = {"snapkv-chunk": "snapkv"}


def ratio_for(n: int, budget: int) -> float:
    """The compression ratio whose n_kept is exactly `budget` for `n` keys."""
    ratio = 1.0 - (budget + 0.5) / n
    if compute_n_kept(n, ratio) != budget:
        sys.exit(f"no compression ratio keeps exactly {budget} of {n} entries")
    return ratio


def global_ratio_for(numel: int, kept: int) -> float:
    """The compression ratio that prunes exactly `numel − kept` of `numel` entries at once
    (KVzipPress's `int(numel · ratio)`)."""
    ratio = (numel - kept + 0.5) / numel
    if int(numel * ratio) != numel - kept:
        sys.exit(f"no compression ratio prunes exactly {numel - kept} of {numel} entries")
    return ratio


def full_cache_keys(model, ids: torch.Tensor) -> list:
    """Every layer's keys of an uncompressed prefill, [kv_heads, n, head_dim] each."""
    cache = DynamicCache()
    with torch.no_grad():
        model(input_ids=ids, past_key_values=cache, use_cache=True)
    return [cache.layers[i].keys[0].clone() for i in range(model.config.num_hidden_layers)]


def kept_from_cache(full_keys: list, cache, n: int) -> np.ndarray:
    """The positions a press kept, found by matching each kept key with the uncompressed
    prefill's keys (a press that gathers keys keeps them bit for bit): bool [layers, kv_heads, n]."""
    layers = len(full_keys)
    kv_heads = full_keys[0].shape[0]
    kept = np.zeros((layers, kv_heads, n), dtype=bool)
    for layer in range(layers):
        compressed = cache.layers[layer].keys[0]
        for head in range(kv_heads):
            position = {row.numpy().tobytes(): i for i, row in enumerate(full_keys[layer][head])}
            for row in compressed[head]:
                match = position.get(row.numpy().tobytes())
                if match is None:
                    sys.exit(f"layer {layer} head {head}: a kept key matches no prefill key")
                kept[layer, head, match] = True
    return kept


def kvpress_kept(model, tokenizer, ids: torch.Tensor, policy: str, budget: int, full_keys: list):
    """kvpress's kept entries of `policy` at `budget`: bool [layers, kv_heads, n], and the
    press's scores [layers, kv_heads, n] where it ranks each head's entries by one score (else
    None)."""
    n = ids.shape[1]
    layers = model.config.num_hidden_layers
    kv_heads = model.config.num_key_value_heads
    if policy == "kvzip":
        press = PRESSES[policy](global_ratio_for(layers * kv_heads * n, layers * kv_heads * budget))
        # KVzipPress loads its tokenizer from the model's name_or_path: give it the GGUF's.
        tokenizer_source = mock.patch.object(
            kvzip_press.AutoTokenizer, "from_pretrained", lambda *_, **__: tokenizer
        )
    else:
        press = PRESSES[policy](ratio_for(n, budget))
        tokenizer_source = contextlib.nullcontext()
    kept = np.zeros((layers, kv_heads, n), dtype=bool)
    recorded = {}
    if not isinstance(press, KVzipPress):
        scorer = press.press if isinstance(press, (AdaKVPress, ChunkKVPress)) else press
        original_score = scorer.score

        def recording_score(module, hidden_states, keys, values, attentions, kwargs):
            scores = original_score(module, hidden_states, keys, values, attentions, kwargs)
            recorded[module.layer_idx] = scores.detach().clone()
            return scores

        scorer.score = recording_score
    cache = DynamicCache()
    with torch.no_grad(), tokenizer_source, press(model):
        model(input_ids=ids, past_key_values=cache, use_cache=True)
    if isinstance(press, ChunkKVPress):
        # ChunkKV gathers whole chunks, fewer than n_kept entries when the budget is not a
        # whole number of chunks: read what it kept from the compressed cache.
        return kept_from_cache(full_keys, cache, n), None
    attention = [layer.self_attn for layer in model.model.layers]
    for layer in range(layers):
        if isinstance(press, MASKING):
            _, heads, positions = attention[layer].masked_key_indices
            kept[layer] = True
            kept[layer, heads.cpu().numpy(), positions.cpu().numpy()] = False
            del attention[layer].masked_key_indices
        else:
            scores = recorded[layer][0]
            top = scores.topk(compute_n_kept(n, press.compression_ratio), dim=-1).indices
            for head in range(kv_heads):
                kept[layer, head, top[head].cpu().numpy()] = True
    if isinstance(press, MASKING):
        return kept, None
    scores = np.stack([recorded[layer][0].float().numpy() for layer in range(layers)])
    return kept, scores


def tie_aware_share(ours: np.ndarray, theirs: np.ndarray, scores: np.ndarray) -> float:
    """Per layer and KV head, the share of judgeq's kept entries whose kvpress score is at
    least the lowest score kvpress keeps (1 when judgeq's set is one of the equally valid
    top-k sets of kvpress's scores, whichever way each side breaks ties); the mean."""
    lowest_kept = np.where(theirs, scores, np.inf).min(axis=-1, keepdims=True)
    valid = (ours & (scores >= lowest_kept)).sum(axis=-1)
    return float((valid / np.maximum(ours.sum(axis=-1), 1)).mean())


def agreement(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Per layer and KV head: the share of kvpress's kept entries judgeq keeps too, and the
    Jaccard overlap; their means and minima, and the share of heads with identical sets."""
    both = (ours & theirs).sum(axis=-1)
    shared = both / np.maximum(theirs.sum(axis=-1), 1)
    jaccard = both / np.maximum((ours | theirs).sum(axis=-1), 1)
    return {
        "mean_shared": float(shared.mean()),
        "min_shared": float(shared.min()),
        "mean_jaccard": float(jaccard.mean()),
        "identical_heads": float((ours == theirs).all(axis=-1).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgeq-out", type=pathlib.Path, required=True,
                        help="a `judgeq evict --granularity kv-head-mean` output folder")
    parser.add_argument("--gguf", type=pathlib.Path, required=True,
                        help="the GGUF file judgeq ran (its manifest names it)")
    parser.add_argument("--out", type=pathlib.Path, required=True,
                        help="folder for kvpress's masks and the agreement table")
    parser.add_argument("--policies", default=",".join(PRESSES))
    parser.add_argument("--budgets", default="64,128,256")
    args = parser.parse_args()

    manifest = json.loads((args.judgeq_out / "manifest.json").read_text())
    ids = torch.tensor([manifest["prompt"]["ids"]])
    n = ids.shape[1]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(
        str(args.gguf.parent),
        gguf_file=args.gguf.name,
        dtype=torch.float32,
        attn_implementation="sdpa",
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(args.gguf.parent), gguf_file=args.gguf.name)
    args.out.mkdir(parents=True, exist_ok=True)
    full_keys = full_cache_keys(model, ids)
    rows = []
    for policy in args.policies.split(","):
        for budget in (int(b) for b in args.budgets.split(",")):
            ours = np.load(args.judgeq_out / f"keep_{JUDGEQ_POLICY.get(policy, policy)}_{budget}.npy")
            theirs, scores = kvpress_kept(model, tokenizer, ids, policy, budget, full_keys)
            if ours.shape != theirs.shape:
                sys.exit(f"{policy} @ {budget}: judgeq's mask is {ours.shape}, kvpress's "
                         f"{theirs.shape}: run judgeq evict with --granularity kv-head-mean")
            np.save(args.out / f"kvpress_{policy}_{budget}.npy", theirs)
            tie_aware = None if scores is None else tie_aware_share(ours, theirs, scores)
            rows.append({"policy": policy, "budget": budget, **agreement(ours, theirs),
                         "tie_aware": tie_aware})
            print(rows[-1], flush=True)
    lines = [
        f"prompt of {n} tokens, model {manifest['model']['id']}, kvpress 0.5.5",
        "",
        "| policy | budget | share of kvpress's kept entries judgeq keeps (mean over layer, KV head) | minimum | Jaccard | identical heads | judgeq's kept entries among kvpress's top scores, ties counted |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['budget']} | {r['mean_shared']:.4f} | {r['min_shared']:.4f} "
            f"| {r['mean_jaccard']:.4f} | {r['identical_heads']:.3f} "
            f"| {'—' if r['tie_aware'] is None else format(r['tie_aware'], '.4f')} |"
        )
    (args.out / "agreement.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
