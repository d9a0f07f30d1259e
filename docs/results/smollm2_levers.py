"""Measure the embedding levers for the main job (MiniLM -> SmolLM2, SST-2) and choose SmolLM2's
read-out (layer, pooling), the aligner and the int8 question on VALIDATION only.

Writes docs/results/smollm2_levers.json. Run from the repository root:
    TERNHD_CACHE=$(mktemp -d) python docs/results/smollm2_levers.py
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

from ternhd.encoder import HDCEncoder
from ternhd.pipeline.align import make_aligner
from ternhd.pipeline.classify import LogRegClassifier
from ternhd.pipeline.datasets import cwd_data_dir, load_dataset, make_splits
from ternhd.pipeline.embed import HFEmbedder, gguf_to_hf, smollm2_gguf
from ternhd.pipeline.transfer import environment

OUT = Path(__file__).with_name("smollm2_levers.json")
SEEDS = (42, 123, 456)
res = {"what": __doc__, "environment": environment(), "levers": {}, "readout": {}, "aligner": {}, "int8": {}}


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
res["levers"]["gguf_convert_seconds_cold"] = time.perf_counter() - t
t = time.perf_counter()
gguf_to_hf(smollm2_gguf())
res["levers"]["gguf_convert_seconds_warm"] = time.perf_counter() - t
save()

# 2. throughput levers on a fixed random sample of 600 texts of the pool
rng = np.random.default_rng(0)
sample = [U[i] for i in rng.choice(len(U), 600, replace=False)]


def timed(label, emb, texts, **extra):
    emb._load()
    t = time.perf_counter()
    emb.embed(texts)
    dt = time.perf_counter() - t
    res["levers"].setdefault("throughput_600_texts", []).append(
        {"lever": label, "seconds": dt, "texts_per_s": len(texts) / dt, "torch_threads": torch.get_num_threads(),
         "loadavg": list(os.getloadavg()), **extra})
    log(label, f"{dt:.1f}s")
    save()


class Unsorted(HFEmbedder):  # the no-bucketing baseline: batches in the given order
    def embed(self, texts):
        import ternhd.pipeline.embed as E
        orig = np.argsort
        E.np.argsort = lambda a, kind=None: np.arange(len(a))
        try:
            return super().embed(texts)
        finally:
            E.np.argsort = orig


base = dict(progress=False, batch_size=64)
timed("full 30 layers, fp32, max 128 tokens, unsorted batches", Unsorted("smollm2", max_length=128, **base), sample)
timed("full 30 layers, fp32, max 128 tokens, length-bucketed", HFEmbedder("smollm2", max_length=128, **base), sample)
timed("full 30 layers, fp32, max 64, bucketed", HFEmbedder("smollm2", **base), sample)
for L in (12, 18):
    timed(f"layer {L} (blocks above dropped), fp32, max 64, bucketed", HFEmbedder("smollm2", layer=L, **base), sample)
    timed(f"layer {L}, int8 dynamic, max 64, bucketed", HFEmbedder("smollm2", layer=L, quantize="int8", **base), sample)
n0 = torch.get_num_threads()
torch.set_num_threads(1)
timed("layer 12, fp32, 1 torch thread", HFEmbedder("smollm2", layer=12, **base), sample)
torch.set_num_threads(n0)
timed("MiniLM (teacher), 6 layers, fp32, max 64, bucketed", HFEmbedder("minilm", **base), sample)

# 3. read-out on validation: one pass of the full model gives every layer
LAYERS = [3, 6, 9, 12, 15, 18, 21, 24, 27, -1]
choices = [(L, p) for L in LAYERS for p in ("mean", "last")]
t = time.perf_counter()
allx = HFEmbedder("smollm2", progress=False, batch_size=64).embed_multi(U, choices)
res["levers"]["full_model_all_layers_pool_seconds"] = time.perf_counter() - t
t = time.perf_counter()
teach = HFEmbedder("minilm", progress=False, batch_size=64).embed(U)
res["levers"]["minilm_pool_seconds"] = time.perf_counter() - t
save()
row = {t: i for i, t in enumerate(U)}


def val_transfer(xt, xs, sp, align="procrustes", dim=4096, C=0.1):
    """Transfer accuracy on the VALIDATION split: classifier on the teacher's aligned HDC train vectors,
    tested on the student's validation vectors; also the student's own HDC validation accuracy."""
    g = lambda x, part: x[[row[t] for t in part]]
    al = make_aligner(align, seed=sp.seed).fit(g(xt, sp.anchor), g(xs, sp.anchor))
    enc = HDCEncoder(al.out_dim, dim=dim, tau=0.3, seed=sp.seed)
    th = enc.encode(al.transform_teacher(g(xt, sp.train[0])), packed=True)
    sv = enc.encode(al.transform_student(g(xs, sp.val[0])), packed=True)
    clf = LogRegClassifier(dim=dim, C=C).fit(th, sp.train[1])
    enc_s = HDCEncoder(xs.shape[1], dim=dim, tau=0.3, seed=sp.seed)
    own = LogRegClassifier(dim=dim, C=C).fit(enc_s.encode(g(xs, sp.train[0]), packed=True), sp.train[1])
    return {"val_transfer": clf.score(sv, sp.val[1]),
            "val_student_own": own.score(enc_s.encode(g(xs, sp.val[0]), packed=True), sp.val[1])}


for c in choices:
    r = [val_transfer(teach, allx[c], sp) for sp in splits]
    res["readout"][f"{c[0]}:{c[1]}"] = {k: float(np.mean([x[k] for x in r])) for k in r[0]}
    log(c, res["readout"][f"{c[0]}:{c[1]}"])
    save()
best = max(res["readout"], key=lambda k: res["readout"][k]["val_transfer"])
res["readout_choice"] = {"chosen": best, "criterion": "mean validation transfer accuracy over seeds 42,123,456 "
                         "(procrustes, D=4096, logreg C=0.1); the test split is not used"}
log("best readout", best)
save()
L, P = best.split(":")
xs = allx[(int(L), P)]
for al in ("procrustes", "cca", "contrastive"):
    r = [val_transfer(teach, xs, sp, align=al) for sp in splits]
    res["aligner"][al] = {k: float(np.mean([x[k] for x in r])) for k in r[0]}
    log(al, res["aligner"][al])
    save()
res["aligner_choice"] = max(res["aligner"], key=lambda k: res["aligner"][k]["val_transfer"])
save()
if int(L) > 0:
    t = time.perf_counter()
    xq = HFEmbedder("smollm2", layer=int(L), pooling=P, quantize="int8", progress=False).embed(U)
    res["int8"]["seconds_pool"] = time.perf_counter() - t
    al = res["aligner_choice"]
    r = [val_transfer(teach, xq, sp, align=al) for sp in splits]
    res["int8"]["val"] = {k: float(np.mean([x[k] for x in r])) for k in r[0]}
    res["int8"]["fp32_val"] = res["aligner"][al]
    res["int8"]["cosine_fp32_int8_mean"] = float(np.mean(np.sum(xq * xs, 1) / (np.linalg.norm(xq, axis=1) * np.linalg.norm(xs, axis=1))))
    log("int8", res["int8"])
res["environment_end"] = environment()
save()
log("done")
