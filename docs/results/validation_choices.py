"""Settings of the main job chosen on VALIDATION (never the test split), on the main job's cached
embeddings (same splits, same read-out chosen on validation).

Stages (each writes its own JSON next to this file, so a later stage can be rerun alone):

* ``centering`` — why SmolLM2's centroid ceiling sat at chance, and the per-side preprocessing
  (none / mean / standardize, statistics from each side's anchor rows) chosen by validation transfer
  of the forward direction with the current default aligner.
  -> ``centering_validation_<dataset>_<teacher>_<student>.json``
* ``aligners`` — every aligner of ``ternhd.pipeline.align.ALIGNERS``, both directions (teacher ->
  student and student -> teacher), with the chosen preprocessing: validation transfer (fixed C = 0.1,
  classifiers trained on the teacher's training vectors only; the choice), then the test numbers
  (transfer, ceiling, efficiency, above chance, alignment metrics among 500 test pairs) of every
  aligner, so the table shows what each buys. The chosen aligner per direction = the best mean
  validation transfer (logistic regression).
  -> ``aligner_by_direction_<dataset>_<teacher>_<student>.json``
* ``grid`` — the joint choice of aligner x alignment stage (float embeddings / HDC vectors) per
  direction, on validation only, with the pipeline's own chooser (``choose_alignment``, the one
  ``ternhd transfer --align auto --align-stage auto`` runs): every aligner of ``AUTO_ALIGNERS`` (or
  ``--aligners``) x both stages.
  -> ``alignment_grid_<dataset>_<teacher>_<student><tag>.json``

    TERNHD_CACHE=... TERNHD_DATA=... python docs/results/validation_choices.py [--stages centering,aligners]
        [--dataset sst2] [--teacher minilm] [--student smollm2@auto] [--aligners a,b,...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ternhd.encoder import HDCEncoder
from ternhd.pipeline.align import ALIGNERS
from ternhd.pipeline.classify import CentroidClassifier
from ternhd.pipeline.datasets import cwd_data_dir
from ternhd.pipeline.transfer import (
    AUTO_ALIGNERS,
    CENTERINGS,
    NOT_AUTO,
    NOT_AUTO_PAIRS,
    STAGES,
    TransferConfig,
    centered,
    choose_alignment,
    environment,
    prepare,
    summarize,
    swapped,
    transfer_metrics,
    validation_transfer,
)

HERE = Path(__file__).resolve().parent


def log(m: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {m}", file=sys.stderr, flush=True)


def safe(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in s)


def diagnose(x: np.ndarray, y: np.ndarray, dim: int, seed: int) -> dict:
    """How much of one side's embeddings is a vector shared by every text, and what it does to the
    HDC vectors and to the class prototypes. ``x``: float (N, d) training rows, ``y`` their labels."""
    x64 = x.astype(np.float64)
    mu = x64.mean(0)
    sq = (x64 ** 2).sum(1).mean()
    e = (x64 ** 2).mean(0)
    top = np.argsort(e)[::-1][:5]
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(x), 2000), rng.integers(0, len(x), 2000)
    keep = i != j
    i, j = i[keep], j[keep]

    def pair_cos(z):
        zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return float((zn[i] * zn[j]).sum(1).mean())

    out = {"n_rows": int(len(x)), "width": int(x.shape[1]),
           "mean_vector_share_of_energy": float((mu ** 2).sum() / sq),
           "top5_dims": [int(k) for k in top], "top5_dims_share_of_energy": float(e[top].sum() / e.sum()),
           "top5_dims_abs_mean_over_median_dim_rms": [float(abs(mu[k]) / np.median(np.sqrt(e))) for k in top],
           "random_pair_cosine": {"raw": pair_cos(x64), "mean_centered": pair_cos(x64 - mu)}}
    for mode in ("none", "mean"):
        z = x if mode == "none" else (x64 - mu).astype(np.float32)
        enc = HDCEncoder(x.shape[1], dim=dim, tau=0.3, seed=seed)
        h = enc.encode(np.ascontiguousarray(z, dtype=np.float32), packed=True)
        protos = CentroidClassifier(dim, tau=0.0).fit(h, y).prototypes_
        from ternhd.packing import unpack_ternary

        p = unpack_ternary(protos, dim).astype(np.float64)
        pn = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
        out.setdefault("class_prototype_cosine", {})[mode] = float(pn[0] @ pn[1])
    return out


def stage_centering(data, cfg, a, res_common) -> str:
    res = dict(res_common, what="centering: cause of the chance-level centroid ceiling, and the choice on validation",
               criterion=f"mean validation transfer accuracy over the seeds and both classifiers (logistic "
                         f"regression C=0.1, centroid prototypes tau=0), forward direction ({a.teacher} -> "
                         f"{a.student}), aligner {cfg.align}; statistics from each side's anchor rows; test split "
                         f"not used", diagnosis={}, validation={})
    for side in ("teacher", "student"):
        sd = data[0]
        res["diagnosis"][side] = diagnose(getattr(sd, side)["train"], sd.labels["train"], cfg.dim, sd.split.seed)
        log(f"diagnosis {side}: {json.dumps(res['diagnosis'][side])[:400]}")
    for mode in CENTERINGS:
        per = {"forward": [], "reverse": []}
        for sd in data:
            c = centered(sd, mode)
            per["forward"].append(validation_transfer(c, cfg.align, cfg.dim, cfg.tau, proj_seed=sd.split.seed))
            per["reverse"].append(validation_transfer(swapped(c), cfg.align, cfg.dim, cfg.tau,
                                                      proj_seed=sd.split.seed))
        res["validation"][mode] = {d: {"summary": summarize(v), "per_seed": v} for d, v in per.items()}
        f = res["validation"][mode]["forward"]["summary"]
        log(f"center={mode}: forward val transfer {f['transfer']}, ceiling {f['ceiling']}")
    score = {m: float(np.mean([res["validation"][m]["forward"]["summary"]["transfer"][c]["mean"]
                               for c in ("logreg", "centroid")])) for m in CENTERINGS}
    res["score"] = score
    res["chosen"] = max(CENTERINGS, key=lambda m: (score[m], -CENTERINGS.index(m)))
    out = HERE / f"centering_validation_{a.dataset}_{safe(a.teacher)}_{safe(a.student)}.json"
    out.write_text(json.dumps(res, indent=1, default=float))
    log(f"{out.name}: chosen {res['chosen']} {score}")
    return res["chosen"]


def stage_aligners(data, cfg, a, res_common, center: str) -> None:
    out = HERE / f"aligner_by_direction_{a.dataset}_{safe(a.teacher)}_{safe(a.student)}{a.tag}.json"
    res = json.loads(out.read_text()) if out.exists() and a.resume else {}
    res.update(res_common, what="aligner x direction: chosen on validation, test numbers of every aligner",
               center=center, criterion="mean validation transfer accuracy over the seeds (logistic regression "
               "C=0.1 trained on the teacher's aligned HDC training vectors only, scored on the student's "
               "aligned validation vectors); test split not used for the choice")
    res.setdefault("directions", {})
    names = [n for n in a.aligners.split(",") if n in ALIGNERS] if a.aligners else list(ALIGNERS)
    dirs = {"forward": f"{a.teacher} -> {a.student}", "reverse": f"{a.student} -> {a.teacher}"}
    cdata = [centered(sd, center) for sd in data]
    for d in a.directions.split(","):
        dd = res["directions"].setdefault(d, {"pair": dirs[d], "aligners": {}})
        seeds = [c if d == "forward" else swapped(c) for c in cdata]
        ceilings = {}
        for name in names:
            if name in dd["aligners"]:
                continue
            t0 = time.perf_counter()
            val, test = [], []
            for sd in seeds:
                val.append(validation_transfer(sd, name, cfg.dim, cfg.tau, proj_seed=sd.split.seed, ceiling=False))
                m = transfer_metrics(sd, name, cfg.dim, cfg.tau, proj_seed=sd.split.seed,
                                     ceiling=ceilings.get(sd.split.seed), aligned_ceiling=False)
                ceilings[sd.split.seed] = m["ceiling"]
                m["seed"] = sd.split.seed
                test.append(m)
            dd["aligners"][name] = {
                "validation": {"summary": summarize(val), "per_seed": val},
                "test": {"summary": summarize([{k: v for k, v in r.items() if k != "seed"} for r in test]),
                         "per_seed": test},
                "seconds": time.perf_counter() - t0}
            v = dd["aligners"][name]["validation"]["summary"]["transfer"]["logreg"]["mean"]
            t = dd["aligners"][name]["test"]["summary"]["transfer"]["logreg"]["mean"]
            log(f"{d} {name}: val {v:.3f} test {t:.3f} ({time.perf_counter() - t0:.0f}s)")
            out.write_text(json.dumps(res, indent=1, default=float))  # after every aligner: a kill keeps the rest
        done = list(dd["aligners"])
        val = {n: dd["aligners"][n]["validation"]["summary"]["transfer"]["logreg"]["mean"] for n in done}
        dd["chosen"] = max(done, key=lambda n: (val[n], -done.index(n)))
        log(f"{d}: chosen {dd['chosen']}")
        out.write_text(json.dumps(res, indent=1, default=float))


def stage_merge(a) -> None:
    """Merge the aligner stage's partial files (``--tag``: one process per direction or per share of
    the aligners) into one JSON, choose per direction over all aligners, and remove the parts."""
    parts = sorted(HERE.glob(f"aligner_by_direction_{a.dataset}_{safe(a.teacher)}_{safe(a.student)}-*.json"))
    if not parts:
        return
    merged: dict = {}
    for f in parts:
        r = json.loads(f.read_text())
        base = {k: v for k, v in r.items() if k not in ("directions", "environment")}
        merged.update({k: v for k, v in base.items() if k not in merged})
        merged.setdefault("environment", {}).setdefault("parts", {})[f.name] = r.get("environment")
        for d, dd in r["directions"].items():
            md = merged.setdefault("directions", {}).setdefault(d, {"pair": dd["pair"], "aligners": {}})
            for name, v in dd["aligners"].items():
                md["aligners"].setdefault(name, v)
    order = [n for n in ALIGNERS]
    for d, md in merged["directions"].items():
        md["aligners"] = dict(sorted(md["aligners"].items(), key=lambda kv: order.index(kv[0])))
        done = list(md["aligners"])
        val = {n: md["aligners"][n]["validation"]["summary"]["transfer"]["logreg"]["mean"] for n in done}
        md["chosen"] = max(done, key=lambda n: (val[n], -done.index(n)))
        log(f"merge {d}: chosen {md['chosen']} among {done}")
    out = HERE / f"aligner_by_direction_{a.dataset}_{safe(a.teacher)}_{safe(a.student)}.json"
    out.write_text(json.dumps(merged, indent=1, default=float))
    for f in parts:
        f.unlink()


def _aligner_results(a) -> dict:
    """The aligner stage's directions, merged over its files (one per direction when run in parallel)."""
    dirs = {}
    for f in sorted(HERE.glob(f"aligner_by_direction_{a.dataset}_{safe(a.teacher)}_*.json")):
        for d, dd in json.loads(f.read_text())["directions"].items():
            dirs[d] = dict(dd, file=f.name)
    return dirs


def _run_aligner(sd_list, name, cfg, stage):
    val, test = [], []
    for sd in sd_list:
        val.append(validation_transfer(sd, name, cfg.dim, cfg.tau, proj_seed=sd.split.seed, ceiling=False,
                                       stage=stage))
        m = transfer_metrics(sd, name, cfg.dim, cfg.tau, proj_seed=sd.split.seed, aligned_ceiling=False, stage=stage)
        m["seed"] = sd.split.seed
        test.append(m)
    return {"validation": {"summary": summarize(val), "per_seed": val},
            "test": {"summary": summarize([{k: v for k, v in r.items() if k != "seed"} for r in test]),
                     "per_seed": test}}


def stage_stages(data, cfg, a, res_common, center: str) -> None:
    """Alignment of each model's own HDC vectors (the paper's figure) for the aligners ``--stage-aligners``
    (default: the ones chosen per direction); the float-stage rows of the same aligners are in the
    aligner stage's JSON (same splits, seeds, centring, classifiers), read from there by make_tables."""
    out = HERE / f"align_stage_{a.dataset}_{safe(a.teacher)}_{safe(a.student)}.json"
    res = json.loads(out.read_text()) if out.exists() and a.resume else {}
    res.update(res_common, what="alignment of each model's own HDC vectors (the paper's figure); the float-stage "
               "rows (the notebooks) are the aligner stage's", center=center)
    res.setdefault("directions", {})
    dirs = {"forward": f"{a.teacher} -> {a.student}", "reverse": f"{a.student} -> {a.teacher}"}
    cdata = [centered(sd, center) for sd in data]
    if a.stage_aligners:
        jobs = [(d, n) for n in a.stage_aligners.split(",") for d in a.directions.split(",")]
    else:
        chosen = _aligner_results(a)
        jobs = [(d, chosen[d]["chosen"]) for d in a.directions.split(",")]
    for d, name in jobs:
        rd = res["directions"].setdefault(d, {"pair": dirs[d], "aligners": {}})
        if name in rd["aligners"]:
            continue
        seeds = [c if d == "forward" else swapped(c) for c in cdata]
        t0 = time.perf_counter()
        rd["aligners"][name] = {"hdc": _run_aligner(seeds, name, cfg, "hdc")}
        rd["aligners"][name]["seconds"] = time.perf_counter() - t0
        h = rd["aligners"][name]["hdc"]
        log(f"stage hdc {d} {name}: val {h['validation']['summary']['transfer']['logreg']['mean']:.3f} "
            f"test {h['test']['summary']['transfer']['logreg']['mean']:.3f}")
        out.write_text(json.dumps(res, indent=1, default=float))
    res["environment"] = dict(res.get("environment", {}), end=environment())
    out.write_text(json.dumps(res, indent=1, default=float))


def stage_grid(data, cfg, a, res_common, center: str) -> None:
    """Aligner x stage on validation per direction, with the pipeline's chooser; the JSON is rewritten
    after each direction."""
    out = HERE / f"alignment_grid_{a.dataset}_{safe(a.teacher)}_{safe(a.student)}{a.tag}.json"
    names = [n for n in a.aligners.split(",") if n in ALIGNERS] if a.aligners else list(AUTO_ALIGNERS)
    res = dict(res_common, what="aligner x alignment stage, chosen on validation per direction (the test split "
               "is not used; the run with the choice is a separate JSON)", center=center, aligners=names,
               stages=list(STAGES), not_run={k: v for k, v in NOT_AUTO.items() if k not in names},
               not_run_pairs=NOT_AUTO_PAIRS, directions={})
    dirs = {"forward": f"{a.teacher} -> {a.student}", "reverse": f"{a.student} -> {a.teacher}"}
    cdata = [centered(sd, center) for sd in data]
    for d in a.directions.split(","):
        seeds = [c if d == "forward" else swapped(c) for c in cdata]
        t0 = time.perf_counter()
        sel = choose_alignment(seeds, names, STAGES, cfg.dim, cfg.tau, cfg.threshold, log=log)
        res["directions"][d] = dict(pair=dirs[d], selection=sel, seconds=time.perf_counter() - t0)
        log(f"grid {d}: chosen {sel['chosen']} ({sel['val_transfer'][sel['chosen']]:.4f})")
        res["environment"] = dict(res_common["environment"], end=environment())
        out.write_text(json.dumps(res, indent=1, default=float))


def _cpu_time(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def stage_int8(data, cfg, a, res_common, center: str) -> None:
    """SmolLM2 with int8 dynamic quantization of its Linear layers vs float32: validation (the choice)
    and test transfer with the aligner chosen for this direction, and the embedding time of both on
    the same texts, measured alternately in one process."""
    from ternhd.pipeline.embed import HFEmbedder, parse_spec

    ab = {"directions": _aligner_results(a)} if not a.align else None
    name = a.align or ab["directions"]["forward"]["chosen"]
    out = HERE / f"int8_{a.dataset}_{safe(a.teacher)}_{safe(a.student)}.json"
    q = a.student + ":int8"
    cfg8 = TransferConfig(teacher=a.teacher, student=q, dataset=a.dataset, progress=False, data=cfg.data)
    log(f"int8: embedding {q}")
    t0 = time.perf_counter()
    data8 = prepare(cfg8, log=log)
    t_prep = time.perf_counter() - t0
    chosen8 = data8[0].selection[0]["chosen"] if data8[0].selection else q
    res = dict(res_common, what="int8 dynamic quantization of SmolLM2 (the ':int8' read-out) beside float32",
               aligner=name, center=center, student_int8=q, seconds_prepare_int8=t_prep,
               readout_selection_int8=data8[0].selection,
               float32={"readout": data[0].selection[0]["chosen"] if data[0].selection else a.student,
                        "aligner_result": ab["directions"]["forward"]["aligners"][name] if ab else
                        _run_aligner([centered(sd, center) for sd in data], name, cfg, "float")},
               criterion="int8 becomes the default only if its mean validation transfer (logistic regression, "
               "the aligner chosen for float32) is not lower than float32's by more than 0.5 points")
    res["int8"] = dict(readout=chosen8, aligner_result=_run_aligner([centered(sd, center) for sd in data8], name,
                                                                    cfg, "float"))
    # embedding time on the same texts, float32 and int8 alternately (the load changes slowly)
    texts = sorted({t for sd in data for t in sd.split.anchor})[:200]
    ro = parse_spec(chosen8.replace(":int8", ""))
    timing = []
    for rep in range(2):
        for quant in (None, "int8"):
            emb = HFEmbedder(ro["name"], layer=ro["layer"], pooling=ro["pooling"], quantize=quant, progress=False,
                             batch_size=64)
            emb._load()
            wall, cpu = _cpu_time(lambda: emb.embed(texts))
            timing.append({"quantize": quant or "float32", "rep": rep, "texts": len(texts), "wall_s": wall,
                           "cpu_s": cpu, "loadavg": list(os.getloadavg())})
            log(f"timing {quant}: {wall:.1f}s wall {cpu:.1f}s cpu")
    res["embedding_time"] = {"readout": chosen8, "rows": timing,
                             "note": "process CPU seconds and wall seconds of embedding the same texts; model "
                                     "load not included"}
    v32 = res["float32"]["aligner_result"]["validation"]["summary"]["transfer"]["logreg"]["mean"]
    v8 = res["int8"]["aligner_result"]["validation"]["summary"]["transfer"]["logreg"]["mean"]
    res["validation_difference_points"] = 100 * (v8 - v32)
    res["becomes_default"] = bool(v8 >= v32 - 0.005)
    res["environment"]["end"] = environment()
    out.write_text(json.dumps(res, indent=1, default=float))
    log(f"{out.name}: int8 val {v8:.3f} vs fp32 {v32:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", default="centering,aligners")
    ap.add_argument("--dataset", default="sst2")
    ap.add_argument("--teacher", default="minilm")
    ap.add_argument("--student", default="smollm2@auto")
    ap.add_argument("--aligners", default="")
    ap.add_argument("--directions", default="forward,reverse")
    ap.add_argument("--center", default=None, help="skip the centering stage's choice and use this")
    ap.add_argument("--align", default=None, help="aligner of the centering stage (default: TransferConfig's)")
    ap.add_argument("--resume", action="store_true", help="keep the aligners an earlier run already wrote")
    ap.add_argument("--stage-aligners", default="", help="aligners of the 'stages' stage (default: the chosen)")
    ap.add_argument("--tag", default="", help="suffix of the aligner / grid stage's JSON name (e.g. -forward)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    a = ap.parse_args()
    if a.threads > 0:
        import torch

        torch.set_num_threads(a.threads)
    if a.stages == "merge":
        return stage_merge(a)
    data_root = cwd_data_dir()
    kw = {"align": a.align} if a.align else {}
    cfg = TransferConfig(teacher=a.teacher, student=a.student, dataset=a.dataset, progress=False,
                         data=None if data_root is None else str(data_root), **kw)
    t0 = time.perf_counter()
    env0 = environment()
    data = prepare(cfg, log=log)
    common = {"config": {"dataset": a.dataset, "teacher": a.teacher, "student": a.student, "dim": cfg.dim,
                         "tau": cfg.tau, "seeds": list(cfg.seeds), "n_anchor": cfg.n_anchor},
              "readout_selection": data[0].selection, "sizes": dict(data[0].split.info),
              "command": "python docs/results/validation_choices.py " + " ".join(sys.argv[1:]),
              "environment": {"start": env0}, "seconds_prepare": time.perf_counter() - t0}
    stages = a.stages.split(",")
    center = a.center
    if "centering" in stages and center is None:
        center = stage_centering(data, cfg, a, dict(common, environment={"start": env0, "end": environment()}))
    if "aligners" in stages:
        stage_aligners(data, cfg, a, common, center or cfg.center)
        p = HERE / f"aligner_by_direction_{a.dataset}_{safe(a.teacher)}_{safe(a.student)}{a.tag}.json"
        r = json.loads(p.read_text())
        r["environment"]["end"] = environment()
        p.write_text(json.dumps(r, indent=1, default=float))
    if center is None:
        center = cfg.center
    if "stages" in stages:
        stage_stages(data, cfg, a, common, center)
    if "int8" in stages:
        stage_int8(data, cfg, a, common, center)
    if "grid" in stages:
        stage_grid(data, cfg, a, common, center)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
