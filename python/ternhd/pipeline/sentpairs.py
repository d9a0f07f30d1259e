"""Sentence-pair tasks through HDC transfer (beyond the paper, whose NLI runs were near random).

A pair ``(u, v)`` of packed sentence vectors becomes one packed pair vector:

* ``"bind"`` — ``u ⊙ v`` (element-wise product: the HDC binding);
* ``"concat"`` — ``[u, v]``;
* ``"infersent"`` — ``[u, v, u ≠ v, u ⊙ v]`` (the ternary analogue of InferSent's
  ``[u, v, |u - v|, u * v]``: ``u ≠ v`` is 0/1, the rest ternary).

Pair data: a local TSV (``label<TAB>sentence1<TAB>sentence2``, header row) or JSONL
(``premise``/``hypothesis``/``label`` or ``sentence1``/``sentence2``/``label``), SNLI from the HF hub
(``datasets`` installed and online), or — offline, with no pair corpus at hand — a derived task from
a single-sentence dataset: "do these two texts have the same label?" (balanced), e.g. AG News
same-topic pairs. The derived task is a stand-in, not NLI; results say which one ran.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from ..encoder import HDCEncoder
from ..packing import pack_ternary, unpack_ternary
from .align import make_aligner
from .classify import LogRegClassifier
from .datasets import TextDataset, load_dataset
from .embed import EmbeddingCache, LSAEmbedder, embed_cached, make_embedder
from .transfer import TransferConfig, center_parts, efficiency, efficiency_above_chance, summarize

__all__ = ["PairData", "pair_encode", "load_pairs", "same_label_pairs", "run_pair_transfer", "PAIR_MODES"]

PAIR_MODES = ("bind", "concat", "infersent")


@dataclass
class PairData:
    name: str
    s1: List[str]
    s2: List[str]
    labels: np.ndarray
    n_classes: int


def pair_encode(u: Any, v: Any, dim: int, mode: str = "infersent") -> np.ndarray:
    """Packed uint8 ``(N, ceil(dim/4))`` rows ``u``, ``v`` -> packed pair rows (``k * dim`` trits)."""
    if mode not in PAIR_MODES:
        raise ValueError(f"mode: expected one of {PAIR_MODES}, got {mode!r}")
    u, v = np.asarray(u), np.asarray(v)
    if u.shape != v.shape:
        raise ValueError(f"v: shape {v.shape} differs from u's {u.shape}")
    a, b = unpack_ternary(u, dim), unpack_ternary(v, dim)
    if mode == "bind":
        out = a * b
    elif mode == "concat":
        out = np.concatenate([a, b], axis=1)
    else:
        out = np.concatenate([a, b, (a != b).astype(np.int8), a * b], axis=1)
    return pack_ternary(np.ascontiguousarray(out, dtype=np.int8))


def load_pairs(source: str) -> PairData:
    """A ``.tsv`` / ``.jsonl`` pair file, or ``snli`` (HF hub). SNLI rows with label -1 are dropped."""
    p = Path(source)
    if p.is_file():
        s1, s2, y = [], [], []
        if p.suffix.lower() == ".tsv":
            lines = p.read_text(encoding="utf-8").splitlines()[1:]
            for line in lines:
                parts = line.split("\t")
                if len(parts) >= 3:
                    y.append(parts[0])
                    s1.append(parts[1])
                    s2.append(parts[2])
        else:
            for line in p.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    o = json.loads(line)
                    s1.append(o.get("premise", o.get("sentence1")))
                    s2.append(o.get("hypothesis", o.get("sentence2")))
                    y.append(o["label"])
        keys = sorted(set(y), key=str)
        return PairData(p.stem, s1, s2, np.asarray([keys.index(v) for v in y]), len(keys))
    if source == "snli":
        try:
            import datasets as hfd
        except ImportError as exc:
            raise ValueError("source: snli needs the `datasets` package and the HF hub") from exc
        d = hfd.load_dataset("snli", split="train")
        keep = [i for i, lab in enumerate(d["label"]) if lab >= 0]
        return PairData(
            "snli",
            [d["premise"][i] for i in keep],
            [d["hypothesis"][i] for i in keep],
            np.asarray([d["label"][i] for i in keep]),
            3,
        )
    raise ValueError(f"source: expected a .tsv/.jsonl pair file or 'snli', got {source!r}")


def same_label_pairs(ds: TextDataset, n: int, seed: int, n_test: int = 0) -> Tuple[PairData, set]:
    """``n`` balanced pairs from a single-sentence dataset: label 1 = same class, 0 = different.
    The last ``n_test`` pairs (the test pairs) are drawn from texts that no earlier pair uses: the
    distinct texts are split first into a training side and a test side (in proportion), so no text
    is in both a training and a test pair. Returns the pairs and the set of texts they use (kept out
    of the anchors)."""
    if not 0 <= n_test < n:
        raise ValueError(f"n_test: expected 0 <= n_test < n = {n}, got {n_test}")
    rng = np.random.default_rng(seed)
    y = np.asarray(ds.labels)
    _, first = np.unique(np.asarray(ds.texts, dtype=object).astype(str), return_index=True)
    order = rng.permutation(np.sort(first))
    n_te_texts = int(round(len(order) * n_test / n))
    sides = [order[n_te_texts:], order[:n_te_texts]]  # train side, test side
    s1, s2, lab = [], [], []
    for side, count in ((sides[0], n - n_test), (sides[1], n_test)):
        by = {c: side[y[side] == c] for c in np.unique(y)}
        classes = [c for c in by if len(by[c]) >= 2]
        if count and len(classes) < 2:
            raise ValueError(f"ds: {ds.name} has too few texts per class for {count} pairs")
        for i in range(count):
            same = i % 2 == 0
            c1 = classes[rng.integers(len(classes))]
            c2 = c1 if same else rng.choice([c for c in classes if c != c1])
            a, b = rng.choice(by[c1]), rng.choice(by[c2])
            while a == b:
                b = rng.choice(by[c2])
            s1.append(ds.texts[a])
            s2.append(ds.texts[b])
            lab.append(int(same))
    return PairData(f"{ds.name}-same-label", s1, s2, np.asarray(lab), 2), set(s1) | set(s2)


def _disjoint_test(pd: PairData, idx: np.ndarray, n_train: int, n_test: int) -> PairData:
    """The first ``n_train`` pairs of ``idx``, then ``n_test`` later pairs none of whose sentences is in
    a training pair (pair corpora such as SNLI reuse premises)."""
    tr = list(idx[:n_train])
    seen = {pd.s1[i] for i in tr} | {pd.s2[i] for i in tr}
    te = [i for i in idx[n_train:] if pd.s1[i] not in seen and pd.s2[i] not in seen][:n_test]
    if len(te) < n_test:
        raise ValueError(f"source: only {len(te)} test pairs share no sentence with the training pairs, need {n_test}")
    keep = tr + te
    return PairData(pd.name, [pd.s1[i] for i in keep], [pd.s2[i] for i in keep], pd.labels[keep], pd.n_classes)


def run_pair_transfer(
    cfg: TransferConfig, source: str = "agnews", modes: Sequence[str] = PAIR_MODES, log: Callable[[str], None] = print
) -> Dict[str, Any]:
    """Transfer on a pair task: align on single-sentence anchors, encode each sentence, combine per
    ``mode``, logistic regression trained on teacher pairs (C on a validation split), tested on
    student pairs. Ceiling = the student's own pair vectors (no alignment)."""
    cache = (
        None
        if cfg.cache_dir == ""
        else EmbeddingCache(None if cfg.cache_dir is None else f"{cfg.cache_dir}/embeddings")
    )
    per_seed: List[Dict[str, Any]] = []
    n_pairs = cfg.n_train + cfg.n_test
    for seed in cfg.seeds:
        rng = np.random.default_rng(seed)
        if Path(source).is_file() or source == "snli":
            pd = load_pairs(source)
            pd = _disjoint_test(pd, rng.permutation(len(pd.labels)), cfg.n_train, cfg.n_test)
            used = set(pd.s1) | set(pd.s2)
            pool = load_dataset("sst2", data=cfg.data).texts if source == "snli" else sorted(used)
        else:
            ds = load_dataset(source, data=cfg.data)
            pd, used = same_label_pairs(ds, n_pairs, seed, n_test=cfg.n_test)
            pool = ds.texts
        cand = [t for t in dict.fromkeys(pool) if t not in used]
        anchors = (
            [cand[i] for i in rng.permutation(len(cand))[: cfg.n_anchor]]
            if len(cand) >= cfg.n_anchor
            else list(used)[: cfg.n_anchor]
        )
        # derived tasks embed the whole pool once (one cache entry shared by every seed)
        texts = (
            sorted(set(pool) | used | set(anchors))
            if not (Path(source).is_file() or source == "snli")
            else sorted(used | set(anchors))
        )
        row = {t: i for i, t in enumerate(texts)}
        embs = []
        for spec in (cfg.teacher, cfg.student):
            e = make_embedder(spec, batch_size=cfg.batch_size, device=cfg.device, progress=cfg.progress)
            if isinstance(e, LSAEmbedder):
                e = LSAEmbedder(dim=e.dim, seed=seed).fit(
                    [pd.s1[i] for i in range(cfg.n_train)] + [pd.s2[i] for i in range(cfg.n_train)] + anchors
                )
            embs.append(embed_cached(e, texts, cache))
        te, st = embs
        ai = [row[t] for t in anchors]
        # the run's per-side preprocessing, statistics from each side's anchor rows (as run_transfer)
        te = center_parts({"all": te, "anchor": te[ai]}, cfg.center)["all"]
        st = center_parts({"all": st, "anchor": st[ai]}, cfg.center)["all"]
        al = make_aligner(cfg.align, seed=seed).fit(te[ai], st[ai])
        i1, i2 = np.asarray([row[t] for t in pd.s1]), np.asarray([row[t] for t in pd.s2])
        y = pd.labels
        n_tr = cfg.n_train
        n_val = max(1, int(round(cfg.val_fraction * n_tr)))
        sl = {"train": slice(n_val, n_tr), "val": slice(0, n_val), "test": slice(n_tr, n_pairs)}
        enc = HDCEncoder(al.out_dim, dim=cfg.dim, tau=cfg.tau, threshold=cfg.threshold, seed=seed)
        need = np.unique(np.concatenate([i1, i2]))  # encode only the sentences the pairs use
        te_n, st_n = np.zeros_like(te), np.zeros_like(st)
        te_n[need], st_n[need] = te[need], st[need]

        def enc_rows(e, x):
            out = np.zeros((len(x), (e.dim + 3) // 4), dtype=np.uint8)
            out[need] = e.encode(np.ascontiguousarray(x[need], dtype=np.float32), packed=True)
            return out

        tp = enc_rows(enc, al.transform_teacher(te_n))
        sp = enc_rows(enc, al.transform_student(st_n))
        own = enc_rows(HDCEncoder(st.shape[1], dim=cfg.dim, tau=cfg.tau, threshold=cfg.threshold, seed=seed), st)
        tself = enc_rows(HDCEncoder(te.shape[1], dim=cfg.dim, tau=cfg.tau, threshold=cfg.threshold, seed=seed), te)
        res: Dict[str, Any] = {
            "seed": seed,
            "task": pd.name,
            "chance": float(np.bincount(y[sl["test"]]).max() / (n_pairs - n_tr)),
        }
        for mode in modes:

            def fit_eval(src, dst):
                ps, pdst = pair_encode(src[i1], src[i2], cfg.dim, mode), pair_encode(dst[i1], dst[i2], cfg.dim, mode)
                k = {"bind": 1, "concat": 2, "infersent": 4}[mode] * cfg.dim
                clf = LogRegClassifier(dim=k, seed=seed).fit_select(
                    ps[sl["train"]], y[sl["train"]], ps[sl["val"]], y[sl["val"]]
                )
                return clf.score(pdst[sl["test"]], y[sl["test"]])

            t0 = time.perf_counter()
            tr, ce, ts = fit_eval(tp, sp), fit_eval(own, own), fit_eval(tself, tself)
            res[mode] = {
                "transfer": tr,
                "ceiling": ce,
                "teacher_self": ts,
                "efficiency": efficiency(tr, ce),
                "efficiency_above_chance": efficiency_above_chance(tr, ce, res["chance"]),
            }
            log(
                f"  seed {seed} {mode}: teacher {ts:.3f} ceiling {ce:.3f} transfer {tr:.3f} "
                f"({time.perf_counter() - t0:.1f}s)"
            )
        per_seed.append(res)
    return {
        "task": per_seed[0]["task"],
        "per_seed": per_seed,
        "summary": summarize([{k: v for k, v in r.items() if k not in ("seed", "task")} for r in per_seed]),
    }
