"""The paper's transfer protocol: embeddings -> alignment -> HDC encoding -> classifier -> efficiency.

For each seed: disjoint train / test / anchor samples (and a validation split carved from train);
teacher and student embed every text; an aligner is fitted on the anchor pairs; both sides are
encoded to ternary with the *same* projection (:class:`ternhd.HDCEncoder`, same seed) and packed;
a classifier is trained on the teacher's encoded training set (choices on the teacher's validation
split) and evaluated on the student's encoded test set.

Reported per seed and as mean ± std over seeds:

* ``float_acc`` / ``hdc_acc`` for teacher and student — the quantization cost (paper Table 2);
* ``ceiling`` — classifier trained and tested on the student's own HDC vectors (no alignment);
* ``transfer`` — trained on the teacher's aligned vectors, tested on the student's;
* ``efficiency`` = transfer / ceiling (paper eq. 3);
* ``aligned_ceiling`` — trained and tested on the student's aligned vectors;
* ``pair_cosine`` and ``top1`` — how well test pairs meet in the aligned space.

Both classifiers run: logistic regression (``logreg``) and the packed associative memory
(``centroid``); metrics are keyed by classifier.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..encoder import HDCEncoder
from .align import alignment_metrics, fit_aligner, make_aligner, mean_pair_cosine, top1_matching
from .classify import CentroidClassifier, LogRegClassifier
from .datasets import Split, TextDataset, load_dataset, make_splits
from .embed import EmbeddingCache, LSAEmbedder, embed_cached, make_embedder, parse_spec

__all__ = [
    "TransferConfig",
    "SeedData",
    "prepare",
    "quantization_metrics",
    "transfer_metrics",
    "run_transfer",
    "summarize",
    "efficiency",
    "efficiency_above_chance",
    "mean_std",
    "CLASSIFIERS",
    "CENTERINGS",
    "center_parts",
    "centered",
    "swapped",
    "validation_transfer",
    "hdc_stage",
    "STAGES",
    "AUTO_ALIGNERS",
    "NOT_AUTO",
    "NOT_AUTO_PAIRS",
    "choose_on_validation",
    "choose_alignment",
]

CLASSIFIERS = ("logreg", "centroid")
# The main job's student: SmolLM2-135M (Llama decoder), its read-out (layer, pooling) chosen on the
# validation splits (docs/results/smollm2_readout.json); blocks above the layer are not run.
DEFAULT_STUDENT = "smollm2@auto"
# ``MODEL@auto``: these read-outs come out of one forward pass (blocks above the highest never run);
# the one with the best mean validation transfer accuracy over the seeds is used (see choose_readout).
AUTO_LAYERS = (6, 9, 12, 15)
AUTO_POOLINGS = ("mean", "last")
# Per-side preprocessing of the embeddings before alignment and HDC encoding, its statistics fitted on
# that side's anchor rows (unlabelled texts both sides have): "none", "mean" (subtract the anchor
# mean) or "standardize" (and divide each dimension by its anchor std). A decoder's middle-layer
# residual stream carries a few dimensions with very large values shared by every text; uncentred,
# they dominate every random projection, so all HDC vectors (and every class prototype) are nearly
# the same vector. "mean" was chosen on validation: docs/results/centering_validation_sst2_minilm_smollm2-auto.json.
CENTERINGS = ("none", "mean", "standardize")


def _pool_size(cfg: "TransferConfig", ds: TextDataset) -> Optional[int]:
    """``cfg.pool``: -1 = auto (10% more distinct texts than one seed needs), 0 / None = no fixed pool
    (every seed draws from the whole dataset), else that many texts."""
    if cfg.pool is None or cfg.pool == 0:
        return None
    if cfg.pool > 0:
        return int(cfg.pool)
    need = cfg.n_train + cfg.n_anchor + (cfg.n_test if ds.test_texts is None else 0)
    return int(np.ceil(1.1 * need))


def _cache_state(cfg: "TransferConfig") -> Dict[str, Any]:
    """How many embedding files and converted models the cache held (0 and 0 = a cold cache)."""
    from pathlib import Path

    from .embed import default_cache_dir

    if cfg.cache_dir == "":
        return {"cache": "disabled"}
    root = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    emb, mod = root / "embeddings", root / "models"
    return {
        "dir": str(root),
        "embeddings": len(list(emb.glob("*.npy"))) if emb.is_dir() else 0,
        "models": len([p for p in mod.iterdir() if not p.name.startswith(".")]) if mod.is_dir() else 0,
    }


def environment() -> Dict[str, Any]:
    """What a timing depends on: cores, load, torch threads, versions."""
    import os
    import platform

    env: Dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version()}
    if hasattr(os, "getloadavg"):
        env["loadavg"] = list(os.getloadavg())
    try:
        import torch
        import transformers

        env.update(
            torch=torch.__version__, torch_threads=torch.get_num_threads(), transformers=transformers.__version__
        )
    except ImportError:  # pragma: no cover
        pass
    return env


@dataclass
class TransferConfig:
    """Everything that defines one run of the protocol (defaults = the paper's, offline models)."""

    teacher: str = "minilm"
    student: str = DEFAULT_STUDENT
    dataset: str = "sst2"
    align: str = "cca"  # chosen on validation (docs/results/aligner_by_direction_sst2_minilm_smollm2-9-mean.json)
    dim: int = 4096
    tau: float = 0.3
    threshold: str = "std"
    seeds: Tuple[int, ...] = (42, 123, 456)
    n_train: int = 3000
    n_test: int = 500
    n_anchor: int = 500
    val_fraction: float = 0.1
    classifiers: Tuple[str, ...] = CLASSIFIERS
    cache_dir: Optional[str] = None
    device: Optional[str] = None
    batch_size: int = 64
    progress: bool = True
    aligned_ceiling: bool = False
    align_kwargs: Dict[str, Any] = field(default_factory=dict)
    pool: Optional[int] = -1
    data: Optional[str] = None
    center: str = "mean"  # chosen on validation (docs/results/centering_validation_sst2_minilm_smollm2-auto.json)
    # "float": align the embeddings (the notebooks); "hdc": the HDC vectors (the figure); "auto": the one of
    # the two with the best mean validation transfer of this run (choose_alignment). ``align="auto"`` does
    # the same over AUTO_ALIGNERS, ``align="a,b,c"`` over those aligners.
    align_stage: str = "float"


@dataclass
class SeedData:
    """One seed's split and both models' float32 embeddings of every part of it."""

    split: Split
    teacher: Dict[str, np.ndarray]  # keys: train, val, test, anchor
    student: Dict[str, np.ndarray]
    labels: Dict[str, np.ndarray]  # train, val, test
    selection: List[Dict[str, Any]] = field(default_factory=list)  # read-outs chosen on validation (@auto)


def efficiency(transfer_acc: float, ceiling_acc: float) -> float:
    """The paper's transfer efficiency ``eta = transfer / ceiling`` (NaN when the ceiling is 0)."""
    if not np.isfinite(ceiling_acc) or ceiling_acc <= 0:
        return float("nan")
    return float(transfer_acc) / float(ceiling_acc)


def efficiency_above_chance(transfer_acc: float, ceiling_acc: float, chance: float) -> float:
    """``(transfer - chance) / (ceiling - chance)``: the share of the ceiling's gain over chance that
    transfer keeps. Unlike ``eta`` it is 0 for a chance-level transfer (``eta`` is then
    ``chance / ceiling``, e.g. 0.77 for 50% against a 65% ceiling). NaN when the ceiling is at chance."""
    if not np.isfinite(ceiling_acc) or ceiling_acc - chance <= 0:
        return float("nan")
    return float(transfer_acc - chance) / float(ceiling_acc - chance)


def mean_std(values: Sequence[float]) -> Dict[str, float]:
    """Mean and population std (``ddof=0``) of finite values, with their count."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


_PARTS = ("train", "val", "test", "anchor")


def _split_texts(sp: Split) -> Dict[str, List[str]]:
    return {"train": sp.train[0], "val": sp.val[0], "test": sp.test[0], "anchor": sp.anchor}


def _embed_parts(
    spec: str, splits: List[Split], cfg: TransferConfig, cache: Optional[EmbeddingCache], log: Callable[[str], None]
) -> List[Dict[str, np.ndarray]]:
    """Embeddings of every part of every split. Pretrained embedders embed the union of all texts once
    (one cache entry); LSA is fitted per seed on that seed's train + val + anchor texts (no test)."""
    if spec.endswith("@auto") or "@auto:" in spec:
        return _embed_auto(spec, splits, cfg, cache, log)
    emb = make_embedder(
        spec, batch_size=cfg.batch_size, device=cfg.device, progress=cfg.progress, cache_root=cfg.cache_dir or None
    )
    out = []
    if isinstance(emb, LSAEmbedder):
        for sp in splits:
            parts = _split_texts(sp)
            e = LSAEmbedder(dim=emb.dim, seed=sp.seed).fit(parts["train"] + parts["val"] + parts["anchor"])
            out.append({k: embed_cached(e, v, cache) for k, v in parts.items()})
        return out
    union = sorted({t for sp in splits for v in _split_texts(sp).values() for t in v})
    t0 = time.perf_counter()
    arr = embed_cached(emb, union, cache)
    log(f"  {spec}: {len(union)} texts -> {arr.shape[1]}-d in {time.perf_counter() - t0:.1f}s")
    row = {t: i for i, t in enumerate(union)}
    for sp in splits:
        out.append({k: arr[[row[t] for t in v]] for k, v in _split_texts(sp).items()})
    return out


def _embed_auto(
    spec: str, splits: List[Split], cfg: TransferConfig, cache: Optional[EmbeddingCache], log: Callable[[str], None]
) -> List[Dict[str, Any]]:
    """``MODEL@auto[:int8]``: every (layer, pooling) of AUTO_LAYERS x AUTO_POOLINGS from one pass (each
    cached under its own ``MODEL@L:POOL`` identity). Returns per split ``{"@readouts": {name: parts}}``;
    :func:`choose_readout` picks one on validation."""
    from .embed import HFEmbedder

    base = spec.replace("@auto", "")
    p = parse_spec(base)
    union = sorted({t for sp in splits for v in _split_texts(sp).values() for t in v})
    kw = dict(
        batch_size=cfg.batch_size,
        device=cfg.device,
        progress=cfg.progress,
        quantize=p["quantize"],
        cache_root=cfg.cache_dir or None,
    )
    choices = [(L, pool) for L in AUTO_LAYERS for pool in AUTO_POOLINGS]
    names = {c: f"{p['name']}@{c[0]}:{c[1]}" + (":int8" if p["quantize"] else "") for c in choices}
    idents = {c: HFEmbedder(p["name"], layer=c[0], pooling=c[1], **kw).identity for c in choices}
    t0 = time.perf_counter()
    arrs = {c: cache.get(idents[c], union) if cache is not None else None for c in choices}
    todo = [c for c in choices if arrs[c] is None]
    if todo:
        emb = HFEmbedder(p["name"], layer=max(c[0] for c in todo), **kw)
        got = emb.embed_multi(union, todo)
        for c in todo:
            arrs[c] = got[c]
            if cache is not None:
                cache.put(idents[c], union, got[c])
    log(f"  {spec}: {len(union)} texts -> {len(choices)} read-outs in {time.perf_counter() - t0:.1f}s")
    row = {t: i for i, t in enumerate(union)}
    out = []
    for sp in splits:
        ix = {k: [row[t] for t in v] for k, v in _split_texts(sp).items()}
        out.append({"@readouts": {names[c]: {k: arrs[c][i] for k, i in ix.items()} for c in choices}})
    return out


def choose_on_validation(
    data: List[SeedData], names: Sequence[str], score: Callable[[str, SeedData], float], what: str, criterion: str,
    log: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """The one machinery of every choice a run makes (read-out, aligner, alignment stage): ``score(name,
    sd)`` is one seed's VALIDATION accuracy of candidate ``name``; the candidate with the best mean over
    the seeds wins (ties -> the earlier, i.e. cheaper, candidate). Returns the record written into the
    run's JSON: ``{"what", "chosen", "val_transfer": {name: mean}, "val_transfer_std", "val_per_seed",
    "seconds", "criterion"}``."""
    names = list(names)
    if not names:
        raise ValueError(f"names: no candidate to choose the {what} from")
    means: Dict[str, float] = {}
    stds: Dict[str, float] = {}
    per_seed: Dict[str, List[float]] = {}
    secs: Dict[str, float] = {}
    for nm in names:
        t0 = time.perf_counter()
        accs = [float(score(nm, sd)) for sd in data]
        secs[nm] = time.perf_counter() - t0
        means[nm], stds[nm], per_seed[nm] = float(np.mean(accs)), float(np.std(accs)), accs
        if log is not None:
            log(f"  {what} {nm}: validation transfer {means[nm]:.4f} ({secs[nm]:.0f}s)")
    best = max(names, key=lambda n: (means[n], -names.index(n)))
    return {"what": what, "chosen": best, "val_transfer": means, "val_transfer_std": stds, "val_per_seed": per_seed,
            "seconds": secs, "criterion": criterion}


def choose_readout(
    data: List[SeedData], side: str, dim: int = 4096, tau: float = 0.3, align: str = "procrustes", C: float = 0.1
) -> Dict[str, Any]:
    """Pick the read-out of an ``@auto`` side by mean VALIDATION transfer accuracy over the seeds (aligner
    ``align`` on the anchors, logistic regression with fixed ``C`` trained on the teacher's HDC train
    vectors, scored on the student's validation vectors; ties -> the earlier, cheaper layer). The test
    split is not touched. Replaces ``sd.<side>`` in place and returns the scores."""

    def score(nm: str, sd: SeedData) -> float:
        te = sd.teacher["@readouts"][nm] if side == "teacher" else sd.teacher
        st = sd.student["@readouts"][nm] if side == "student" else sd.student
        al = fit_aligner(make_aligner(align, seed=sd.split.seed), te["anchor"], st["anchor"], sd.split.seed)
        enc = HDCEncoder(al.out_dim, dim=dim, tau=tau, seed=sd.split.seed)
        clf = LogRegClassifier(dim=dim, C=C, seed=sd.split.seed).fit(
            enc.encode(al.transform_teacher(te["train"]), packed=True), sd.labels["train"]
        )
        return clf.score(enc.encode(al.transform_student(st["val"]), packed=True), sd.labels["val"])

    rec = choose_on_validation(
        data, list(getattr(data[0], side)["@readouts"]), score, "read-out",
        f"mean validation transfer accuracy over the seeds ({align} on the anchors, D={dim}, "
        f"logistic regression C={C}); test split not used")
    for sd in data:
        setattr(sd, side, getattr(sd, side)["@readouts"][rec["chosen"]])
    return dict(rec, side=side)


def prepare(
    cfg: TransferConfig,
    ds: Optional[TextDataset] = None,
    teacher: Optional[str] = None,
    student: Optional[str] = None,
    log: Callable[[str], None] = print,
) -> List[SeedData]:
    """Load the dataset, draw every seed's split and embed it with both models (cached)."""
    ds = ds if ds is not None else load_dataset(cfg.dataset, data=cfg.data)
    cache = EmbeddingCache(None if cfg.cache_dir is None else f"{cfg.cache_dir}/embeddings")
    if cfg.cache_dir == "":
        cache = None
    pool = _pool_size(cfg, ds)
    splits = [
        make_splits(ds, s, cfg.n_train, cfg.n_test, cfg.n_anchor, cfg.val_fraction, pool_size=pool) for s in cfg.seeds
    ]
    te = _embed_parts(teacher or cfg.teacher, splits, cfg, cache, log)
    st = _embed_parts(student or cfg.student, splits, cfg, cache, log)
    data = [
        SeedData(sp, t, s, {"train": sp.train[1], "val": sp.val[1], "test": sp.test[1]})
        for sp, t, s in zip(splits, te, st)
    ]
    selection = [
        choose_readout(data, side, cfg.dim, cfg.tau)
        for side in ("teacher", "student")
        if "@readouts" in getattr(data[0], side)
    ]
    for sel in selection:
        log(f"  {sel['side']} read-out chosen on validation: {sel['chosen']}")
    for sd in data:
        sd.selection = selection
    return data


def _make_aligner(align: str, seed: int, align_kwargs: Optional[dict], dim: int, tau: float, threshold: Any,
                  proj_seed: int):
    """``make_aligner`` with the encoder's settings passed to aligners that take them (``backproject``
    must encode the teacher's anchors with the very encoder the protocol uses)."""
    from .align import ALIGNERS

    kw = dict(align_kwargs or {})
    cls = ALIGNERS.get(align)
    if cls is not None:
        names = cls.__init__.__code__.co_varnames
        for k, v in (("dim", dim), ("tau", tau), ("threshold", threshold), ("proj_seed", proj_seed)):
            if k in names:
                kw.setdefault(k, v)
    return make_aligner(align, seed=seed, **kw)


STAGES = ("float", "hdc")


def hdc_stage(
    parts: Dict[str, np.ndarray], dim: int, tau: float, threshold: Any, proj_seed: int
) -> Dict[str, np.ndarray]:
    """One side's own HDC vectors as float32 ``{part: (N, dim)}`` in {-1, 0, 1}: what an aligner sees
    when it aligns the HDC vectors (the paper's figure) instead of the float embeddings (its
    notebooks). Each side is encoded by its own ``HDCEncoder(d, dim, tau, threshold, seed=proj_seed)``."""
    from ..packing import unpack_ternary

    d = next(iter(parts.values())).shape[1]
    enc = HDCEncoder(d, dim=dim, tau=tau, threshold=threshold, seed=proj_seed)
    return {k: unpack_ternary(enc.encode(np.ascontiguousarray(v, dtype=np.float32), packed=True), dim)
            .astype(np.float32) for k, v in parts.items()}


def _stage_sides(te, st, stage, dim, tau, threshold, proj_seed):
    if stage not in STAGES:
        raise ValueError(f"stage: expected one of {STAGES}, got {stage!r}")
    if stage == "float":
        return te, st
    return hdc_stage(te, dim, tau, threshold, proj_seed), hdc_stage(st, dim, tau, threshold, proj_seed)


def center_parts(parts: Dict[str, np.ndarray], mode: str, fit_on: str = "anchor") -> Dict[str, np.ndarray]:
    """Preprocess one side's embeddings with statistics of its ``fit_on`` rows only.

    Args:
        parts: ``{part: float32 (N_part, d)}`` of one model (train, val, test, anchor).
        mode: one of :data:`CENTERINGS`: ``"none"`` (returned as is), ``"mean"`` (subtract the mean
            of the ``fit_on`` rows), ``"standardize"`` (also divide each dimension by their std;
            constant dimensions are left unscaled).
        fit_on: the part whose rows give the statistics (default the anchors: unlabelled, and every
            side of a transfer has them; test rows never enter).

    Returns:
        a new dict of float32 arrays of the same shapes.
    """
    if mode not in CENTERINGS:
        raise ValueError(f"mode: expected one of {CENTERINGS}, got {mode!r}")
    if mode == "none":
        return parts
    if fit_on not in parts:
        raise ValueError(f"fit_on: no part {fit_on!r} among {sorted(parts)}")
    x = np.asarray(parts[fit_on], dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"parts[{fit_on!r}]: expected at least 2 rows (N, d), got shape {x.shape}")
    mu = x.mean(0)
    sc = np.ones_like(mu)
    if mode == "standardize":
        sd = x.std(0)
        sc = np.where(sd > 1e-12 * max(float(sd.max()), 1e-30), sd, 1.0)
    return {k: ((np.asarray(v, dtype=np.float64) - mu) / sc).astype(np.float32) for k, v in parts.items()}


def centered(sd: SeedData, mode: str, fit_on: str = "anchor") -> SeedData:
    """``sd`` with each side preprocessed by :func:`center_parts` (each with its own statistics)."""
    if mode == "none":
        return sd
    return SeedData(sd.split, center_parts(sd.teacher, mode, fit_on), center_parts(sd.student, mode, fit_on),
                    sd.labels, sd.selection)


def swapped(sd: SeedData) -> SeedData:
    """``sd`` with teacher and student exchanged (the reverse direction)."""
    return SeedData(sd.split, sd.student, sd.teacher, sd.labels, sd.selection)


def validation_transfer(
    sd: SeedData,
    align: str,
    dim: int = 4096,
    tau: float = 0.3,
    threshold: str = "std",
    proj_seed: int = 0,
    classifiers: Sequence[str] = CLASSIFIERS,
    C: float = 0.1,
    prototype_tau: float = 0.0,
    align_kwargs: Optional[dict] = None,
    ceiling: bool = True,
    stage: str = "float",
) -> Dict[str, Dict[str, float]]:
    """Validation scores for choosing a setting (aligner, preprocessing) without the test split.

    The aligner is fitted on the anchors; classifiers with FIXED hyper-parameters (logistic
    regression ``C``, centroid prototype threshold ``prototype_tau``) are trained on the teacher's
    aligned HDC *training* vectors only and scored on the student's aligned *validation* vectors (no
    validation label is used for training or for a choice inside). With ``ceiling``, the same
    classifiers trained on the student's own (unaligned) HDC training vectors, scored on its
    validation vectors. ``stage``: align the float embeddings (``"float"``) or each side's own HDC
    vectors (``"hdc"``, see :func:`hdc_stage`); the aligned vectors are then encoded by one shared
    projection either way.

    Returns ``{"transfer": {clf: acc}, "ceiling": {clf: acc}, "alignment": alignment_metrics of the
    validation pairs}``.
    """
    y = sd.labels
    keep = ("train", "val", "anchor")
    te, st = _stage_sides({k: sd.teacher[k] for k in keep}, {k: sd.student[k] for k in keep}, stage, dim, tau,
                          threshold, proj_seed)
    al = fit_aligner(_make_aligner(align, sd.split.seed, align_kwargs, dim, tau, threshold, proj_seed), te["anchor"],
                     st["anchor"], sd.split.seed)
    enc = HDCEncoder(al.out_dim, dim=dim, tau=tau, threshold=threshold, seed=proj_seed)
    tv = al.transform_teacher(te["val"])
    sv = al.transform_student(st["val"])
    htr = enc.encode(al.transform_teacher(te["train"]), packed=True)
    hva = enc.encode(sv, packed=True)

    def fit_score(kind, tr, va):
        if kind == "logreg":
            clf = LogRegClassifier(dim=dim, C=C, seed=sd.split.seed).fit(tr, y["train"])
        elif kind == "centroid":
            clf = CentroidClassifier(dim, tau=prototype_tau).fit(tr, y["train"])
        else:
            raise ValueError(f"classifiers: unknown classifier {kind!r}; choose from {CLASSIFIERS}")
        return clf.score(va, y["val"])

    out: Dict[str, Dict[str, float]] = {"transfer": {c: fit_score(c, htr, hva) for c in classifiers}}
    if ceiling:
        enc_s = HDCEncoder(sd.student["train"].shape[1], dim=dim, tau=tau, threshold=threshold, seed=proj_seed)
        own = _encode(enc_s, {p: sd.student[p] for p in ("train", "val")})
        out["ceiling"] = {c: fit_score(c, own["train"], own["val"]) for c in classifiers}
    out["alignment"] = alignment_metrics(tv, sv, n=500, seed=sd.split.seed)
    return out


# ``align="auto"``: every aligner practical to fit per run on 2 cores. Left out, with the reason (also
# written into the run's JSON):
NOT_AUTO = {
    "cca-paper": "scikit-learn's iterative CCA with min(256, n-1) components: did not finish in about 25 "
    "minutes per direction on 2 cores (docs/results/aligner_by_direction_sst2_minilm_smollm2-9-mean.json)",
    "backproject": "the ternhd share route's map (it needs the teacher's encoder); checked by tests/test_share.py",
}


# Pairs (aligner/stage) left out of a choice, with the reason: orthogonal Procrustes on D = 4096 HDC vectors
# needs a full 4096 x 4096 SVD per fit (its rotation of the space the anchors do not span has no N x N
# shortcut); three of them (one per seed) had not finished after 14 minutes on the shared 2 cores.
NOT_AUTO_PAIRS = {
    f"{a}/hdc": "orthogonal Procrustes of D = 4096 HDC vectors needs a full 4096 x 4096 SVD per fit; one "
    "aligner's three seeds had not finished after 14 minutes on the shared 2 cores (load average 9)"
    for a in ("procrustes", "procrustes-paper")
}


def _auto_aligners() -> Tuple[str, ...]:
    from .align import ALIGNERS

    return tuple(n for n in ALIGNERS if n not in NOT_AUTO)


AUTO_ALIGNERS = _auto_aligners()


def choose_alignment(
    data: List[SeedData],
    aligners: Sequence[str],
    stages: Sequence[str] = STAGES,
    dim: int = 4096,
    tau: float = 0.3,
    threshold: str = "std",
    C: float = 0.1,
    align_kwargs: Optional[dict] = None,
    log: Optional[Callable[[str], None]] = None,
    skip: Optional[Dict[str, str]] = None,
) -> Dict[str, Any]:
    """The (aligner, alignment stage) of ``aligners x stages`` (less the ``"ALIGNER/STAGE"`` keys of
    ``skip``, default :data:`NOT_AUTO_PAIRS` when both stages are candidates) with the best mean
    VALIDATION transfer over the seeds (:func:`validation_transfer`: aligner fitted on the anchors,
    logistic regression with fixed ``C`` trained on the teacher's aligned HDC training vectors only,
    scored on the student's aligned validation vectors; projection seed = the split's seed, as in the
    run). ``data`` must already carry the run's preprocessing (:func:`centered`). Candidates are named
    ``"ALIGNER/STAGE"``; the record (:func:`choose_on_validation`'s) adds ``"align"`` and ``"stage"`` of
    the winner and ``"not_candidates"`` (what was left out, and why)."""
    for st in stages:
        if st not in STAGES:
            raise ValueError(f"stages: expected a subset of {STAGES}, got {st!r}")
    if skip is None:
        skip = NOT_AUTO_PAIRS if len(stages) > 1 else {}
    names = [f"{a}/{st}" for a in aligners for st in stages if f"{a}/{st}" not in skip]

    def score(nm: str, sd: SeedData) -> float:
        a, st = nm.rsplit("/", 1)
        return validation_transfer(sd, a, dim, tau, threshold, proj_seed=sd.split.seed, classifiers=("logreg",),
                                   C=C, align_kwargs=align_kwargs, ceiling=False, stage=st)["transfer"]["logreg"]

    rec = choose_on_validation(
        data, names, score, "alignment",
        f"mean validation transfer accuracy over the seeds (aligner fitted on the anchors, D={dim}, logistic "
        f"regression C={C} trained on the teacher's aligned HDC training vectors only, scored on the student's "
        f"aligned validation vectors; ties -> the earlier candidate); test split not used", log=log)
    a, st = rec["chosen"].rsplit("/", 1)
    left_out = {k: v for k, v in NOT_AUTO.items() if k not in aligners}
    left_out.update({k: v for k, v in skip.items()
                     if k.rsplit("/", 1)[0] in aligners and k.rsplit("/", 1)[1] in stages})
    return dict(rec, align=a, stage=st, not_candidates=left_out)


def _encode(enc: HDCEncoder, d: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    return {k: enc.encode(np.ascontiguousarray(v, dtype=np.float32), packed=True) for k, v in d.items()}


def _fit_eval(
    kind: str, dim: Optional[int], tr: np.ndarray, ytr, va: np.ndarray, yva, tests: Dict[str, Tuple], seed: int
) -> Dict[str, float]:
    if kind == "logreg":
        clf = LogRegClassifier(dim=dim, seed=seed).fit_select(tr, ytr, va, yva)
    elif kind == "centroid":
        if dim is None:
            raise ValueError("kind: the centroid classifier needs packed HDC rows")
        clf = CentroidClassifier(dim).fit_select(tr, ytr, va, yva)
    else:
        raise ValueError(f"kind: unknown classifier {kind!r}; choose from {CLASSIFIERS}")
    return {name: clf.score(x, y) for name, (x, y) in tests.items()}


def quantization_metrics(
    sd: SeedData,
    dim: int,
    tau: float = 0.3,
    threshold: str = "std",
    proj_seed: int = 0,
    classifiers: Sequence[str] = CLASSIFIERS,
    float_baseline: bool = True,
) -> Dict[str, Any]:
    """Float vs HDC accuracy for teacher and student on their own vectors (no transfer).

    Returns ``{"teacher": {"float": acc, "hdc": {clf: acc}}, "student": {...}}``; the student's HDC
    accuracy is the transfer ceiling.
    """
    y = sd.labels
    out: Dict[str, Any] = {}
    for side, e in (("teacher", sd.teacher), ("student", sd.student)):
        res: Dict[str, Any] = {}
        if float_baseline:
            res["float"] = _fit_eval(
                "logreg",
                None,
                e["train"],
                y["train"],
                e["val"],
                y["val"],
                {"test": (e["test"], y["test"])},
                sd.split.seed,
            )["test"]
        enc = HDCEncoder(e["train"].shape[1], dim=dim, tau=tau, threshold=threshold, seed=proj_seed)
        h = _encode(enc, {k: e[k] for k in ("train", "val", "test")})
        res["hdc"] = {
            c: _fit_eval(
                c, dim, h["train"], y["train"], h["val"], y["val"], {"test": (h["test"], y["test"])}, sd.split.seed
            )["test"]
            for c in classifiers
        }
        out[side] = res
    return out


def transfer_metrics(
    sd: SeedData,
    align: str,
    dim: int = 4096,
    tau: float = 0.3,
    threshold: str = "std",
    n_anchor: Optional[int] = None,
    proj_seed: int = 0,
    classifiers: Sequence[str] = CLASSIFIERS,
    ceiling: Optional[Dict[str, float]] = None,
    align_kwargs: Optional[dict] = None,
    reverse: bool = False,
    aligned_ceiling: bool = True,
    stage: str = "float",
) -> Dict[str, Any]:
    """Fit ``align`` on the first ``n_anchor`` anchors, encode, train on teacher, test on student.

    ``ceiling`` ({classifier: acc}) is computed here when not given. ``reverse`` swaps the roles
    (student becomes the teacher). ``aligned_ceiling``: also train and test on the student's aligned
    vectors (a diagnostic of what the alignment keeps). ``stage``: ``"float"`` aligns the float
    embeddings (the paper's notebooks), ``"hdc"`` each side's own HDC vectors (the paper's figure; see
    :func:`hdc_stage`); the aligned vectors are encoded by one shared projection either way, and the
    ceiling is the student's own HDC accuracy in both. Returns accuracies, efficiencies, alignment
    diagnostics, timings.
    """
    te, st = (sd.student, sd.teacher) if reverse else (sd.teacher, sd.student)
    st_raw = st
    te, st = _stage_sides(te, st, stage, dim, tau, threshold, proj_seed)
    y = sd.labels
    k = len(te["anchor"]) if n_anchor is None else min(n_anchor, len(te["anchor"]))
    t0 = time.perf_counter()
    # unpaired aligners (vec2vec) see disjoint halves of the anchors on the two sides
    al = fit_aligner(_make_aligner(align, sd.split.seed, align_kwargs, dim, tau, threshold, proj_seed),
                     te["anchor"][:k], st["anchor"][:k], sd.split.seed)
    t_align = time.perf_counter() - t0
    ta = {p: al.transform_teacher(te[p]) for p in ("train", "val", "test")}
    sa = {p: al.transform_student(st[p]) for p in ("train", "val", "test")}
    enc = HDCEncoder(al.out_dim, dim=dim, tau=tau, threshold=threshold, seed=proj_seed)
    th, sh = _encode(enc, ta), _encode(enc, sa)
    if ceiling is None:
        enc_s = HDCEncoder(st_raw["train"].shape[1], dim=dim, tau=tau, threshold=threshold, seed=proj_seed)
        own = _encode(enc_s, {p: st_raw[p] for p in ("train", "val", "test")})
        ceiling = {
            c: _fit_eval(
                c,
                dim,
                own["train"],
                y["train"],
                own["val"],
                y["val"],
                {"test": (own["test"], y["test"])},
                sd.split.seed,
            )["test"]
            for c in classifiers
        }
    res: Dict[str, Any] = {
        "align": align,
        "stage": stage,
        "n_anchor": k,
        "dim": dim,
        "align_seconds": t_align,
        "pair_cosine": mean_pair_cosine(ta["test"], sa["test"]),
        "top1": top1_matching(ta["test"], sa["test"]),
        # vec2vec's metrics: mean cosine, top-1 matching and mean rank among 500 test pairs
        "alignment": alignment_metrics(ta["test"], sa["test"], n=500, seed=sd.split.seed),
        "ceiling": dict(ceiling),
        "transfer": {},
        "teacher_self": {},
        "aligned_ceiling": {},
        "efficiency": {},
        "efficiency_above_chance": {},
        "chance": float(np.bincount(y["test"]).max() / len(y["test"])),
    }
    for c in classifiers:
        # transfer: trained on the teacher (choices on the teacher's validation split), tested on the student
        r = _fit_eval(
            c,
            dim,
            th["train"],
            y["train"],
            th["val"],
            y["val"],
            {"student": (sh["test"], y["test"]), "teacher": (th["test"], y["test"])},
            sd.split.seed,
        )
        res["transfer"][c], res["teacher_self"][c] = r["student"], r["teacher"]
        if aligned_ceiling:
            res["aligned_ceiling"][c] = _fit_eval(
                c, dim, sh["train"], y["train"], sh["val"], y["val"], {"test": (sh["test"], y["test"])}, sd.split.seed
            )["test"]
        res["efficiency"][c] = efficiency(res["transfer"][c], ceiling[c])
        res["efficiency_above_chance"][c] = efficiency_above_chance(res["transfer"][c], ceiling[c], res["chance"])
    return res


def summarize(per_seed: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Mean ± std over seeds of every numeric leaf (nested dicts keep their structure)."""
    if not per_seed:
        return {}
    first = per_seed[0]
    out: Dict[str, Any] = {}
    for k, v in first.items():
        if isinstance(v, dict):
            out[k] = summarize([r[k] for r in per_seed])
        elif isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool):
            out[k] = mean_std([float(r[k]) for r in per_seed])
    return out


def run_transfer(
    cfg: TransferConfig, log: Callable[[str], None] = print, data: Optional[List[SeedData]] = None
) -> Dict[str, Any]:
    """The whole protocol for one (teacher, student, dataset, alignment). Returns a JSON-able dict."""
    t0 = time.perf_counter()
    env_start = environment()
    env_start["cache_at_start"] = _cache_state(cfg)
    data = data if data is not None else prepare(cfg, log=log)
    t_embed = time.perf_counter() - t0
    selection = data[0].selection if data else []
    cdata = [centered(sd, cfg.center) for sd in data]
    align, stage, align_sel = cfg.align, cfg.align_stage, None
    if align == "auto" or "," in align or stage == "auto":
        t1 = time.perf_counter()
        aligners = AUTO_ALIGNERS if align == "auto" else tuple(a for a in align.split(",") if a)
        align_sel = choose_alignment(
            cdata, aligners, STAGES if stage == "auto" else (stage,),
            cfg.dim, cfg.tau, cfg.threshold, align_kwargs=cfg.align_kwargs, log=log)
        align_sel["seconds_total"] = time.perf_counter() - t1
        align, stage = align_sel["align"], align_sel["stage"]
        log(f"  alignment chosen on validation: {align}, stage {stage}")
    elif stage not in STAGES:
        raise ValueError(f"align_stage: expected one of {STAGES + ('auto',)}, got {stage!r}")
    per_seed = []
    for sd in cdata:
        q = quantization_metrics(
            sd, cfg.dim, cfg.tau, cfg.threshold, proj_seed=sd.split.seed, classifiers=cfg.classifiers
        )
        m = transfer_metrics(
            sd,
            align,
            cfg.dim,
            cfg.tau,
            cfg.threshold,
            proj_seed=sd.split.seed,
            classifiers=cfg.classifiers,
            ceiling=q["student"]["hdc"],
            align_kwargs=cfg.align_kwargs,
            aligned_ceiling=cfg.aligned_ceiling,
            stage=stage,
        )
        m["quantization"] = q
        m["seed"] = sd.split.seed
        m["sizes"] = dict(sd.split.info)
        per_seed.append(m)
        log(
            f"  seed {sd.split.seed}: "
            + ", ".join(
                f"{c}: transfer {m['transfer'][c]:.3f} ceiling {m['ceiling'][c]:.3f} eff {m['efficiency'][c]:.3f}"
                for c in cfg.classifiers
            )
        )
    summary = summarize([{k: v for k, v in r.items() if k not in ("seed", "sizes")} for r in per_seed])
    cfgd = asdict(cfg)
    cfgd["seeds"] = list(cfg.seeds)
    # the settings the run used; "requested" keeps what was asked ("auto" = chosen on validation)
    cfgd["requested"] = {"align": cfg.align, "align_stage": cfg.align_stage}
    cfgd["align"], cfgd["align_stage"] = align, stage
    return {
        "config": cfgd,
        "per_seed": per_seed,
        "summary": summary,
        "readout_selection": selection,
        "alignment_selection": align_sel,
        "center": {
            "mode": cfg.center,
            "statistics": "each side's anchor rows",
            "default_chosen_on_validation": "docs/results/centering_validation_sst2_minilm_smollm2-auto.json",
        },
        "n_classes": int(len(np.unique(np.concatenate([sd.labels["train"], sd.labels["test"]])))),
        "n_texts": len({t for sd in data for part in _split_texts(sd.split).values() for t in part}),
        "seconds": {"embed": t_embed, "total": time.perf_counter() - t0},
        "environment": {"start": env_start, "end": environment()},
    }
