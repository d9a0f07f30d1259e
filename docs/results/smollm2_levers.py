"""Measure the embedding levers for the main job (MiniLM -> SmolLM2, SST-2): the fixed text pool,
the GGUF conversion cache, length bucketing, max tokens, dropping the blocks above the read-out
layer, int8 dynamic quantization, torch threads. (The read-out itself is chosen on validation by
``ternhd transfer``; its scores are in the main job's JSON.)

Writes docs/results/smollm2_levers.json. Run from the repository root:
    TERNHD_CACHE=$(mktemp -d) LEVER_COLD=1 LEVER_LAYER=9:mean LEVER_SAMPLE=100 python docs/results/smollm2_levers.py
(the committed run reused the main job's cache: LEVER_COLD=0, so the conversion there was already cached)
Timings depend on the machine's load: nproc, load average and torch threads are recorded with each.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ternhd.pipeline.datasets import cwd_data_dir, load_dataset, make_splits
from ternhd.pipeline.embed import HFEmbedder, gguf_to_hf, smollm2_gguf
from ternhd.pipeline.transfer import environment

OUT = Path(__file__).with_name("smollm2_levers.json")
SEEDS = (42, 123, 456)
res = {"what": __doc__, "environment": environment(), "levers": {}}


def save():
    OUT.write_text(json.dumps(res, indent=1, default=float))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


ds = load_dataset("sst2", data=cwd_data_dir())
need = 3000 + 500
splits_nopool = [make_splits(ds, s, 3000, 500, 500, 0.1) for s in SEEDS]
pool = int(np.ceil(1.1 * need))
splits = [make_splits(ds, s, 3000, 500, 500, 0.1, pool_size=pool) for s in SEEDS]


def union(sps):
    return sorted({t for sp in sps for t in sp.train[0] + sp.val[0] + sp.test[0] + sp.anchor})


U0, U = union(splits_nopool), union(splits)
res["levers"]["text_pool"] = {"distinct_texts_without_pool": len(U0), "distinct_texts_with_pool": len(U),
                              "pool_size": pool, "note": "3 seeds; every text embedded once"}
log("texts", len(U0), "->", len(U))

# 1. conversion (cold) and load (warm)
t = time.perf_counter()
gguf_to_hf(smollm2_gguf())
res["levers"]["gguf_convert_seconds_first_call"] = time.perf_counter() - t
res["levers"]["cache_was_cold"] = os.environ.get("LEVER_COLD", "unknown")
t = time.perf_counter()
gguf_to_hf(smollm2_gguf())
res["levers"]["gguf_convert_seconds_warm"] = time.perf_counter() - t
save()

# 2. throughput levers on a fixed random sample of texts of the pool
N_SAMPLE = int(os.environ.get("LEVER_SAMPLE", 300))
rng = np.random.default_rng(0)
sample = [U[i] for i in rng.choice(len(U), N_SAMPLE, replace=False)]


def timed(label, emb, texts, **extra):
    emb._load()
    t, c = time.perf_counter(), time.process_time()
    x = emb.embed(texts)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    res["levers"].setdefault("throughput", []).append(
        {"lever": label, "n": len(texts), "seconds": dt, "cpu_seconds": dc, "texts_per_s": len(texts) / dt,
         "torch_threads": torch.get_num_threads(), "loadavg": list(os.getloadavg()), **extra})
    log(label, f"{dt:.1f}s wall, {dc:.1f}s cpu")
    save()
    return x


class Unsorted(HFEmbedder):  # the no-bucketing baseline: batches in the given order
    def embed(self, texts):
        import ternhd.pipeline.embed as E
        orig = E.np.argsort
        E.np.argsort = lambda a, kind=None: np.arange(len(a))
        try:
            return super().embed(texts)
        finally:
            E.np.argsort = orig


CHOSEN = os.environ.get("LEVER_LAYER", "12:mean")
L, P = int(CHOSEN.split(":")[0]), CHOSEN.split(":")[1]
base = dict(progress=False, batch_size=64, pooling=P)
timed("30 layers, fp32, max 128 tokens, batches in input order", Unsorted("smollm2", max_length=128, **base), sample)
timed("30 layers, fp32, max 128 tokens, length-bucketed", HFEmbedder("smollm2", max_length=128, **base), sample)
timed("30 layers, fp32, max 64 tokens, bucketed", HFEmbedder("smollm2", **base), sample)
xf = timed(f"layer {L} (blocks above dropped), fp32, max 64, bucketed", HFEmbedder("smollm2", layer=L, **base), sample)
xq = timed(f"layer {L}, int8 dynamic quantization, max 64, bucketed",
           HFEmbedder("smollm2", layer=L, quantize="int8", **base), sample)
res["levers"]["int8_vs_fp32_cosine_mean"] = float(np.mean(np.sum(xq * xf, 1) / (np.linalg.norm(xq, axis=1) * np.linalg.norm(xf, axis=1))))
n0 = torch.get_num_threads()
torch.set_num_threads(1)
timed(f"layer {L}, fp32, 1 torch thread", HFEmbedder("smollm2", layer=L, **base), sample)
torch.set_num_threads(n0)
timed("MiniLM (teacher), 6 layers, fp32, max 64, bucketed", HFEmbedder("minilm", progress=False, batch_size=64), sample)
res["environment_end"] = environment()
save()
log("done")
