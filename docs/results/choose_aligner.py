"""Choose the aligner for the main job on VALIDATION (never the test split).

For each aligner and seed: fit on the 500 anchor pairs, encode both sides (D = 4096), logistic
regression trained on the teacher's aligned HDC training vectors (C chosen on the teacher's
validation vectors), scored on the STUDENT's aligned validation vectors. Uses the cached embeddings
of the main job (same splits, same read-out chosen on validation).

    python docs/results/choose_aligner.py [--dataset sst2] [--teacher minilm] [--student smollm2@auto]
(the committed run: --student smollm2@9:mean, the read-out the main job chose on validation)
Writes docs/results/aligner_validation_<dataset>_<teacher>_<student>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ternhd.encoder import HDCEncoder
from ternhd.pipeline.align import ALIGNERS, make_aligner
from ternhd.pipeline.classify import LogRegClassifier
from ternhd.pipeline.datasets import cwd_data_dir
from ternhd.pipeline.transfer import TransferConfig, environment, prepare

ap = argparse.ArgumentParser()
ap.add_argument("--dataset", default="sst2")
ap.add_argument("--teacher", default="minilm")
ap.add_argument("--student", default="smollm2@auto")
ap.add_argument("--aligners", default="procrustes,cca,contrastive")
a = ap.parse_args()
data_root = cwd_data_dir()
cfg = TransferConfig(teacher=a.teacher, student=a.student, dataset=a.dataset, progress=False,
                     data=None if data_root is None else str(data_root))
data = prepare(cfg, log=lambda m: print(m, file=sys.stderr))
res = {"what": __doc__, "config": {"dataset": a.dataset, "teacher": a.teacher, "student": a.student},
       "readout_selection": data[0].selection, "environment": environment(), "val_transfer": {}, "seconds": {}}
for name in [n for n in a.aligners.split(",") if n in ALIGNERS]:
    accs, t0 = [], time.perf_counter()
    for sd in data:
        te, st, y = sd.teacher, sd.student, sd.labels
        al = make_aligner(name, seed=sd.split.seed).fit(te["anchor"], st["anchor"])
        enc = HDCEncoder(al.out_dim, dim=cfg.dim, tau=cfg.tau, seed=sd.split.seed)
        h = lambda x, f: enc.encode(np.ascontiguousarray(f(x), dtype=np.float32), packed=True)
        clf = LogRegClassifier(dim=cfg.dim, seed=sd.split.seed).fit_select(
            h(te["train"], al.transform_teacher), y["train"], h(te["val"], al.transform_teacher), y["val"])
        accs.append(clf.score(h(st["val"], al.transform_student), y["val"]))
    res["val_transfer"][name] = {"mean": float(np.mean(accs)), "per_seed": accs}
    res["seconds"][name] = time.perf_counter() - t0
    print(name, res["val_transfer"][name], file=sys.stderr)
res["chosen"] = max(res["val_transfer"], key=lambda k: res["val_transfer"][k]["mean"])
safe = lambda s: "".join(c if c.isalnum() else "-" for c in s)
out = Path(__file__).with_name(f"aligner_validation_{a.dataset}_{safe(a.teacher)}_{safe(a.student)}.json")
out.write_text(json.dumps(res, indent=1, default=float))
print(out, res["chosen"])
