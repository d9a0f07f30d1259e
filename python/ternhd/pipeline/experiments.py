"""The paper's experiments with the models at hand. Each returns a JSON-able dict with ``rows``
(a printable table), writes ``<name>.json`` and PNG plots into ``out_dir``.

* ``quantization`` — Table 2 (float vs HDC accuracy, both models) + HDC dimension sweep 1024–8192.
* ``alignment`` — Fig. 1: alignment methods × anchor sizes (efficiency).
* ``pairs`` — Table 3: transfer in both directions for each model pair.
* ``datasets`` — Table 4: SST-2 and AG News.
* ``teacher-size`` — Table 5's shape: several teachers of different size, one fixed student.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .plots import bar_plot, line_plot
from .transfer import (
    TransferConfig,
    centered,
    mean_std,
    prepare,
    quantization_metrics,
    run_transfer,
    summarize,
    transfer_metrics,
)

__all__ = ["EXPERIMENTS", "run_experiment", "format_table", "fmt", "count_params"]


def fmt(ms: Optional[Dict[str, float]], pct: bool = True) -> str:
    """``{"mean", "std"}`` -> ``"78.9 ± 1.2"`` (percent) or ``"0.789 ± 0.012"``."""
    if not ms or not np.isfinite(ms.get("mean", float("nan"))):
        return "n/a"
    if pct:
        return f"{100 * ms['mean']:.1f} ± {100 * ms['std']:.1f}"
    return f"{ms['mean']:.3f} ± {ms['std']:.3f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], markdown: bool = False) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(header))]
    if markdown:
        lines = [
            "| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(cells[0])) + " |",
            "|" + "|".join("-" * (x + 2) for x in w) + "|",
        ]
        lines += ["| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |" for r in cells[1:]]
        return "\n".join(lines)
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(cells[0])), "  ".join("-" * x for x in w)]
    lines += ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in cells[1:]]
    return "\n".join(lines)


def count_params(spec: str) -> Optional[int]:
    """Parameters an embedder spec actually uses (HF: embeddings + the layers up to the chosen one;
    static: the token table; LSA: None, it depends on the fitted vocabulary)."""
    from .embed import HFEmbedder, StaticEmbedder, make_embedder

    emb = make_embedder(spec, progress=False)
    if isinstance(emb, StaticEmbedder):
        table, _ = emb._load()
        return int(table.size)
    if isinstance(emb, HFEmbedder):
        model, _, _ = emb._load()
        total = sum(p.numel() for p in model.parameters())
        layers = getattr(getattr(model, "encoder", None), "layer", None) or getattr(model, "h", None)
        if layers is not None and emb.layer != -1:
            keep = emb.layer if emb.layer >= 0 else len(layers) + 1 + emb.layer
            drop = sum(p.numel() for lay in list(layers)[keep:] for p in lay.parameters())
            total -= drop
        return int(total)
    return None


def _save(out_dir: Path, name: str, result: Dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    p = out_dir / f"{name}.json"
    p.write_text(json.dumps(result, indent=1, default=float))
    return p


def exp_quantization(
    cfg: TransferConfig, out_dir: Path, log: Callable, dims: Sequence[int] = (1024, 2048, 4096, 8192), **_: Any
) -> Dict[str, Any]:
    # the run's per-side preprocessing (centring on the anchor rows), as run_transfer applies it
    data = [centered(sd, cfg.center) for sd in prepare(cfg, log=log)]
    per_dim: Dict[int, List[Dict[str, Any]]] = {}
    for d in dims:
        per_dim[d] = [
            quantization_metrics(
                sd,
                d,
                cfg.tau,
                cfg.threshold,
                proj_seed=sd.split.seed,
                classifiers=cfg.classifiers,
                float_baseline=(d == dims[0]),
            )
            for sd in data
        ]
    floats = {side: mean_std([r[side]["float"] for r in per_dim[dims[0]]]) for side in ("teacher", "student")}
    summ = {d: summarize(v) for d, v in per_dim.items()}
    c0 = cfg.classifiers[0]
    rows = []
    for side, spec in (("teacher", cfg.teacher), ("student", cfg.student)):
        h = summ[cfg.dim if cfg.dim in summ else dims[-1]][side]["hdc"][c0]
        rows.append(
            [f"{side} ({spec})", fmt(floats[side]), fmt(h), f"{100 * (h['mean'] - floats[side]['mean']):+.1f}"]
            + [fmt(summ[d][side]["hdc"][c0]) for d in dims]
        )
    header = ["model", "float (logreg)", f"HDC {cfg.dim if cfg.dim in summ else dims[-1]}d", "loss (pts)"] + [
        f"HDC {d}" for d in dims
    ]
    series = {
        f"{side} HDC ({c})": [summ[d][side]["hdc"][c] for d in dims]
        for side in ("teacher", "student")
        for c in cfg.classifiers
    }
    plot = line_plot(
        out_dir / "quantization_dims.png",
        dims,
        series,
        "HDC dimension D",
        "test accuracy",
        f"Quantization cost ({cfg.dataset})",
        {f"{s} float": floats[s]["mean"] for s in floats},
        logx=True,
    )
    return {
        "header": header,
        "rows": rows,
        "float": floats,
        "hdc": {str(d): summ[d] for d in dims},
        "per_seed": {str(d): per_dim[d] for d in dims},
        "plots": [str(plot)],
    }


def exp_alignment(
    cfg: TransferConfig,
    out_dir: Path,
    log: Callable,
    methods: Sequence[str] = ("none", "procrustes", "cca", "contrastive", "vec2vec"),
    anchors: Sequence[int] = (100, 250, 500, 1000),
    **_: Any,
) -> Dict[str, Any]:
    data = prepare(replace(cfg, n_anchor=max(anchors)), log=log)
    ceilings = [
        quantization_metrics(
            sd,
            cfg.dim,
            cfg.tau,
            cfg.threshold,
            proj_seed=sd.split.seed,
            classifiers=cfg.classifiers,
            float_baseline=False,
        )["student"]["hdc"]
        for sd in data
    ]
    res: Dict[str, Dict[str, Any]] = {}
    for m in methods:
        for a in anchors:
            t0 = time.perf_counter()
            per = [
                transfer_metrics(
                    sd,
                    m,
                    cfg.dim,
                    cfg.tau,
                    cfg.threshold,
                    n_anchor=a,
                    proj_seed=sd.split.seed,
                    classifiers=cfg.classifiers,
                    ceiling=c,
                    aligned_ceiling=cfg.aligned_ceiling,
                )
                for sd, c in zip(data, ceilings)
            ]
            res.setdefault(m, {})[str(a)] = {"summary": summarize(per), "per_seed": per}
            log(
                f"  {m:12s} anchors {a:5d}: eff {fmt(res[m][str(a)]['summary']['efficiency'][cfg.classifiers[0]])}"
                f" ({time.perf_counter() - t0:.1f}s)"
            )
    c0 = cfg.classifiers[0]
    header = ["method"] + [f"eff @{a}" for a in anchors] + [f"transfer @{max(anchors)}", "pair cos", "top-1"]
    rows = []
    for m in methods:
        last = res[m][str(max(anchors))]["summary"]
        rows.append(
            [m]
            + [fmt(res[m][str(a)]["summary"]["efficiency"][c0]) for a in anchors]
            + [fmt(last["transfer"][c0]), fmt(last["pair_cosine"], pct=False), fmt(last["top1"])]
        )
    plot = line_plot(
        out_dir / "alignment_methods.png",
        list(anchors),
        {m: [res[m][str(a)]["summary"]["efficiency"][c0] for a in anchors] for m in methods},
        "anchor pairs",
        f"transfer efficiency ({c0})",
        f"Alignment methods ({cfg.teacher} -> {cfg.student})",
    )
    return {
        "header": header,
        "rows": rows,
        "results": res,
        "ceiling": summarize([{"c": c} for c in ceilings])["c"],
        "plots": [str(plot)],
    }


def exp_pairs(
    cfg: TransferConfig,
    out_dir: Path,
    log: Callable,
    pairs: Sequence[Tuple[str, str]] = (("minilm", "lsa"), ("minilm", "static")),
    **_: Any,
) -> Dict[str, Any]:
    res: Dict[str, Any] = {}
    for t, s in pairs:
        data = prepare(cfg, teacher=t, student=s, log=log)
        for rev in (False, True):
            name = f"{s} -> {t}" if rev else f"{t} -> {s}"
            per = [
                transfer_metrics(
                    sd,
                    cfg.align,
                    cfg.dim,
                    cfg.tau,
                    cfg.threshold,
                    proj_seed=sd.split.seed,
                    classifiers=cfg.classifiers,
                    reverse=rev,
                    aligned_ceiling=cfg.aligned_ceiling,
                )
                for sd in data
            ]
            res[name] = {"summary": summarize(per), "per_seed": per}
            log(f"  {name}: eff {fmt(res[name]['summary']['efficiency'][cfg.classifiers[0]])}")
    c0 = cfg.classifiers[0]
    header = ["transfer", "accuracy", "ceiling", "efficiency", "pair cos"]
    rows = [
        [
            n,
            fmt(r["summary"]["transfer"][c0]),
            fmt(r["summary"]["ceiling"][c0]),
            fmt(r["summary"]["efficiency"][c0]),
            fmt(r["summary"]["pair_cosine"], pct=False),
        ]
        for n, r in res.items()
    ]
    plot = bar_plot(
        out_dir / "pairs.png",
        list(res),
        {
            "transfer": [r["summary"]["transfer"][c0] for r in res.values()],
            "ceiling": [r["summary"]["ceiling"][c0] for r in res.values()],
        },
        "test accuracy",
        f"Model pairs, both directions ({cfg.align})",
        (0, 1),
    )
    return {"header": header, "rows": rows, "results": res, "plots": [str(plot)]}


def exp_datasets(
    cfg: TransferConfig, out_dir: Path, log: Callable, datasets: Sequence[str] = ("sst2", "agnews"), **_: Any
) -> Dict[str, Any]:
    res = {}
    for d in datasets:
        log(f" dataset {d}")
        res[d] = run_transfer(replace(cfg, dataset=d), log=log)
    c0 = cfg.classifiers[0]
    header = ["dataset", "classes", "transfer", "ceiling", "efficiency", "teacher HDC", "teacher float"]
    rows = []
    for d, r in res.items():
        s = r["summary"]
        rows.append(
            [
                d,
                r["n_classes"],
                fmt(s["transfer"][c0]),
                fmt(s["ceiling"][c0]),
                fmt(s["efficiency"][c0]),
                fmt(s["quantization"]["teacher"]["hdc"][c0]),
                fmt(s["quantization"]["teacher"]["float"]),
            ]
        )
    plot = bar_plot(
        out_dir / "datasets.png",
        list(res),
        {
            "transfer": [r["summary"]["transfer"][c0] for r in res.values()],
            "ceiling": [r["summary"]["ceiling"][c0] for r in res.values()],
        },
        "test accuracy",
        f"Datasets ({cfg.teacher} -> {cfg.student}, {cfg.align})",
        (0, 1),
    )
    return {"header": header, "rows": rows, "results": res, "plots": [str(plot)]}


def exp_teacher_size(
    cfg: TransferConfig,
    out_dir: Path,
    log: Callable,
    teachers: Sequence[str] = ("static", "minilm@3", "minilm"),
    **_: Any,
) -> Dict[str, Any]:
    res = {}
    for t in teachers:
        log(f" teacher {t}")
        r = run_transfer(replace(cfg, teacher=t), log=log)
        r["params"] = count_params(t)
        res[t] = r
    c0 = cfg.classifiers[0]
    header = ["teacher", "params", "transfer", "efficiency", "teacher HDC", "student ceiling"]
    rows = [
        [
            t,
            f"{r['params'] / 1e6:.1f}M" if r["params"] else "n/a",
            fmt(r["summary"]["transfer"][c0]),
            fmt(r["summary"]["efficiency"][c0]),
            fmt(r["summary"]["quantization"]["teacher"]["hdc"][c0]),
            fmt(r["summary"]["ceiling"][c0]),
        ]
        for t, r in res.items()
    ]
    plot = bar_plot(
        out_dir / "teacher_size.png",
        [f"{t}" for t in res],
        {
            "transfer": [r["summary"]["transfer"][c0] for r in res.values()],
            "teacher HDC": [r["summary"]["quantization"]["teacher"]["hdc"][c0] for r in res.values()],
        },
        "test accuracy",
        f"Teacher size (student {cfg.student})",
        (0, 1),
    )
    return {"header": header, "rows": rows, "results": res, "plots": [str(plot)]}


def exp_sentence_pairs(
    cfg: TransferConfig, out_dir: Path, log: Callable, pair_source: str = "agnews", **_: Any
) -> Dict[str, Any]:
    from .sentpairs import PAIR_MODES, run_pair_transfer

    res = run_pair_transfer(cfg, pair_source, PAIR_MODES, log=log)
    s = res["summary"]
    header = ["pair encoding", "teacher own", "student ceiling", "transfer", "efficiency", "above chance"]
    rows = [
        [
            m,
            fmt(s[m]["teacher_self"]),
            fmt(s[m]["ceiling"]),
            fmt(s[m]["transfer"]),
            fmt(s[m]["efficiency"]),
            fmt(s[m]["efficiency_above_chance"]),
        ]
        for m in PAIR_MODES
    ]
    plot = bar_plot(
        out_dir / "sentence_pairs.png",
        list(PAIR_MODES),
        {
            "teacher own": [s[m]["teacher_self"] for m in PAIR_MODES],
            "student ceiling": [s[m]["ceiling"] for m in PAIR_MODES],
            "transfer": [s[m]["transfer"] for m in PAIR_MODES],
        },
        "test accuracy",
        f"Sentence pairs: {res['task']}",
        (0, 1),
    )
    return {"header": header, "rows": rows, "results": res, "plots": [str(plot)]}


EXPERIMENTS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "sentence-pairs": exp_sentence_pairs,
    "quantization": exp_quantization,
    "alignment": exp_alignment,
    "pairs": exp_pairs,
    "datasets": exp_datasets,
    "teacher-size": exp_teacher_size,
}


def run_experiment(name: str, cfg: TransferConfig, out_dir: Path, log: Callable = print, **kw: Any) -> Dict[str, Any]:
    """Run experiment ``name``, save ``<out_dir>/<name>.json`` and its plots, print its table."""
    if name not in EXPERIMENTS:
        raise ValueError(f"name: unknown experiment {name!r}; choose from {sorted(EXPERIMENTS)}")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    res = EXPERIMENTS[name](cfg, out_dir, log, **kw)
    res["experiment"] = name
    res["seconds"] = time.perf_counter() - t0
    from dataclasses import asdict

    res["config"] = {**asdict(cfg), "seeds": list(cfg.seeds)}
    res["json"] = str(_save(out_dir, name.replace("-", "_"), res))
    log(format_table(res["header"], res["rows"]))
    return res
