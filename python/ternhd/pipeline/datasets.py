"""Text-classification datasets for the transfer protocol, and seeded disjoint splits.

Sources, in order: an offline data directory holding ``sst2/`` and ``agnews/`` (``$TERNHD_DATA``
first, then the ``data`` argument -- the CLI's ``--data DIR``, which defaults to ``shared/data``
beside or under the working directory when one is there), a local TSV / CSV / JSONL file given by
path, or the Hugging Face hub through the ``datasets`` package when it is installed and online
(``glue/sst2``, ``ag_news``). Nothing is looked up relative to the installed package.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

__all__ = ["TextDataset", "Split", "data_dir", "cwd_data_dir", "load_dataset", "load_file", "make_splits", "DATASETS"]

DATASETS = {"sst2": ("sst2", "glue/sst2"), "agnews": ("agnews", "ag_news")}
_ALIASES = {
    "sst-2": "sst2",
    "sst2": "sst2",
    "glue/sst2": "sst2",
    "ag_news": "agnews",
    "agnews": "agnews",
    "ag-news": "agnews",
}


@dataclass
class TextDataset:
    """Texts and int labels. ``test_texts`` is a separate labelled pool (e.g. SST-2's sentence-level
    validation set) or None, in which case test samples are drawn from the main pool too."""

    name: str
    texts: List[str]
    labels: np.ndarray
    label_names: List[str]
    test_texts: Optional[List[str]] = None
    test_labels: Optional[np.ndarray] = None
    source: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.label_names)


@dataclass
class Split:
    """Texts and labels of one seed's disjoint samples."""

    seed: int
    train: Tuple[List[str], np.ndarray]
    val: Tuple[List[str], np.ndarray]
    test: Tuple[List[str], np.ndarray]
    anchor: List[str]
    info: Dict[str, int] = field(default_factory=dict)


def _is_data_dir(c: Path) -> bool:
    return (c / "sst2").is_dir() or (c / "agnews").is_dir()


def data_dir(data: Union[str, Path, None] = None) -> Optional[Path]:
    """The offline data directory: ``$TERNHD_DATA`` when set, else ``data`` (e.g. the CLI's ``--data``),
    else None (the hub). A directory that is named but holds neither ``sst2/`` nor ``agnews/`` raises."""
    for label, c in (("TERNHD_DATA", os.environ.get("TERNHD_DATA")), ("data", data)):
        if c:
            c = Path(c).expanduser()
            if not _is_data_dir(c):
                raise ValueError(f"{label}: {c} holds neither sst2/ nor agnews/")
            return c
    return None


def cwd_data_dir() -> Optional[Path]:
    """``shared/data`` beside or under the working directory (the checkout's ``../shared/data`` when the
    CLI runs from the repository root), or None. Only the CLI uses this, as ``--data``'s default."""
    for c in (Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data"):
        if _is_data_dir(c):
            return c
    return None


def _read_tsv(path: Path, int_labels: bool = True) -> Tuple[List[str], Any]:
    """A TSV with a header (a ``label`` column and one text column). A row without both fields, with an
    empty text or (``int_labels``) a non-integer label raises ``ValueError`` naming the file and line."""
    texts, labels = [], []
    if not Path(path).is_file():
        raise ValueError(f"path: no such file {path}")
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if len(header) < 2:
            raise ValueError(f"path: {path} line 1: expected a header with a label and a text column")
        li = header.index("label") if "label" in header else 0
        ti = 1 - li if len(header) == 2 else next(i for i, h in enumerate(header) if h != "label")
        for n, line in enumerate(f, start=2):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) <= max(li, ti):
                raise ValueError(
                    f"path: {path} line {n}: expected {len(header)} tab-separated fields, got {len(parts)}"
                )
            if not parts[ti].strip():
                raise ValueError(f"path: {path} line {n}: empty text")
            lab = parts[li].strip()
            if int_labels:
                try:
                    lab = int(lab)
                except ValueError:
                    raise ValueError(f"path: {path} line {n}: label {parts[li]!r} is not an integer") from None
            texts.append(parts[ti])
            labels.append(lab)
    return texts, (np.asarray(labels, dtype=np.int64) if int_labels else labels)


def load_file(path: Union[str, Path], text_field: str = "text", label_field: str = "label") -> TextDataset:
    """A local ``.tsv`` (header; ``label`` column + one text column), ``.csv`` (header; ``label`` and
    ``text`` columns, or AG News' ``label,title,description``) or ``.jsonl`` (``text``/``label`` keys).
    String labels are mapped to ints in sorted order."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no such file {path}")
    suf = path.suffix.lower()
    if suf == ".tsv":
        texts, raw = _read_tsv(path, int_labels=False)
    elif suf == ".csv":
        texts, raw = [], []
        with open(path, encoding="utf-8", newline="") as f:
            for n, row in enumerate(csv.DictReader(f), start=2):
                if None in row or any(v is None for v in row.values()) or not row.get(label_field, "").strip():
                    raise ValueError(f"path: {path} line {n}: wrong number of fields or no {label_field!r}")
                if text_field in row:
                    texts.append(row[text_field])
                elif "title" in row and "description" in row:
                    texts.append(f"{row['title']}. {row['description']}".replace("\\", " "))
                else:
                    raise ValueError(f"path: CSV needs a '{text_field}' column (or title, description)")
                raw.append(row[label_field])
    elif suf in (".jsonl", ".json"):
        texts, raw = [], []
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        obj = json.loads(line)
                        texts.append(str(obj[text_field]))
                        raw.append(obj[label_field])
                    except (json.JSONDecodeError, KeyError, TypeError) as exc:
                        raise ValueError(
                            f"path: {path} line {n}: not a JSON object with {text_field!r} and {label_field!r} ({exc})"
                        ) from None
    else:
        raise ValueError(f"path: expected .tsv, .csv or .jsonl, got {suf!r}")
    for i, t in enumerate(texts):
        if not t.strip():
            raise ValueError(f"path: {path} row {i + 1}: empty text")
    keys = sorted(set(raw), key=lambda v: (str(type(v)), v))
    if len(keys) < 2:
        raise ValueError(f"path: {path} has {len(keys)} class(es); a classification task needs at least 2")
    try:
        ints = [int(v) for v in keys]
        if sorted(ints) == list(range(min(ints), min(ints) + len(ints))):
            mapping = {k: int(k) - min(ints) for k in keys}
        else:
            mapping = {k: i for i, k in enumerate(keys)}
    except (TypeError, ValueError):
        mapping = {k: i for i, k in enumerate(keys)}
    labels = np.asarray([mapping[v] for v in raw], dtype=np.int64)
    names = [str(k) for k in sorted(mapping, key=mapping.get)]
    return TextDataset(path.stem, texts, labels, names, source=str(path))


def _load_offline(name: str, root: Path) -> TextDataset:
    if name == "sst2":
        tr, ytr = _read_tsv(root / "sst2" / "train.tsv")
        te, yte = _read_tsv(root / "sst2" / "dev.tsv")
        return TextDataset(
            "sst2",
            tr,
            ytr,
            ["negative", "positive"],
            te,
            yte,
            source=f"{root / 'sst2'} (train.tsv; test pool = dev.tsv, GLUE validation)",
        )
    texts, labels = [], []
    with open(root / "agnews" / "test.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):  # labels 1..4 in the file -> 0..3
            texts.append(f"{row['title']}. {row['description']}".replace("\\", " "))
            labels.append(int(row["label"]) - 1)
    return TextDataset(
        "agnews",
        texts,
        np.asarray(labels, dtype=np.int64),
        ["World", "Sports", "Business", "Sci/Tech"],
        source=f"{root / 'agnews' / 'test.csv'} (official test split only)",
    )


def _load_hub(name: str) -> TextDataset:
    try:
        import datasets as hfd
    except ImportError as exc:
        raise ValueError(
            f"name: {name!r} not found offline (set TERNHD_DATA) and the `datasets` package "
            "is not installed for the HF hub"
        ) from exc
    if name == "sst2":
        d = hfd.load_dataset("glue", "sst2")
        return TextDataset(
            "sst2",
            list(d["train"]["sentence"]),
            np.asarray(d["train"]["label"]),
            ["negative", "positive"],
            list(d["validation"]["sentence"]),
            np.asarray(d["validation"]["label"]),
            source="hf:glue/sst2",
        )
    d = hfd.load_dataset("ag_news")
    return TextDataset(
        "agnews",
        list(d["train"]["text"]),
        np.asarray(d["train"]["label"]),
        ["World", "Sports", "Business", "Sci/Tech"],
        list(d["test"]["text"]),
        np.asarray(d["test"]["label"]),
        source="hf:ag_news",
    )


def load_dataset(name: str, data: Union[str, Path, None] = None) -> TextDataset:
    """``sst2`` / ``agnews`` (offline copy first: ``$TERNHD_DATA``, then ``data``; the HF hub otherwise)
    or a path to a local file."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected str, got {type(name).__name__}")
    key = _ALIASES.get(name.lower())
    if key is None:
        if Path(name).is_file():
            return load_file(name)
        raise ValueError(f"name: unknown dataset {name!r} (sst2, agnews or a .tsv/.csv/.jsonl path)")
    root = data_dir(data)
    if root is not None and (root / DATASETS[key][0]).is_dir():
        return _load_offline(key, root)
    return _load_hub(key)


def _stratified_take(idx: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``idx`` (already shuffled), class proportions kept as far as integers allow."""
    if n >= len(idx):
        return idx
    classes, counts = np.unique(labels[idx], return_counts=True)
    want = np.floor(counts / counts.sum() * n).astype(int)
    rem = n - want.sum()
    for j in rng.permutation(len(classes))[:rem]:
        want[j] += 1
    keep = np.concatenate([idx[labels[idx] == c][:w] for c, w in zip(classes, want)])
    return rng.permutation(keep)


def make_splits(
    ds: TextDataset,
    seed: int,
    n_train: int = 3000,
    n_test: int = 500,
    n_anchor: int = 500,
    val_fraction: float = 0.1,
    pool_size: Optional[int] = None,
) -> Split:
    """Seeded, disjoint train / test / anchor samples (stratified train and test), and a validation
    split carved from the ``n_train`` training samples (``val_fraction`` of them) for every choice.

    Test samples come from ``ds.test_texts`` when the dataset has a separate test pool.
    Duplicate texts are dropped first so no text is in two samples.
    ``pool_size``: draw every seed's samples from one fixed subset of that many distinct texts (chosen
    with a fixed seed, independent of ``seed``), so that several seeds need only the pool's texts
    embedded; the seeds still differ in which texts are train, validation, anchors (and test).
    """
    for nm, v in (("n_train", n_train), ("n_test", n_test), ("n_anchor", n_anchor)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{nm}: expected a positive int, got {v!r}")
    if not 0.0 < val_fraction < 0.5:
        raise ValueError(f"val_fraction: expected in (0, 0.5), got {val_fraction}")
    rng = np.random.default_rng(seed)
    _, first = np.unique(np.asarray(ds.texts, dtype=object).astype(str), return_index=True)
    pool = rng.permutation(np.sort(first))
    if len(np.unique(ds.labels)) < 2:
        raise ValueError(f"ds: {ds.name} has only one class; a classification task needs at least 2")
    if ds.test_texts is not None:
        test_set = set(ds.test_texts)
        pool = pool[[ds.texts[i] not in test_set for i in pool]]
    if pool_size is not None:
        if not isinstance(pool_size, (int, np.integer)) or pool_size < 1:
            raise ValueError(f"pool_size: expected a positive int, got {pool_size!r}")
        fixed = np.sort(pool)  # the pool does not depend on the seed
        fixed = np.sort(np.random.default_rng(20251210).permutation(fixed)[:pool_size])
        pool = rng.permutation(fixed)
    if ds.test_texts is not None:
        tpool = rng.permutation(len(ds.test_texts))
        te = _stratified_take(tpool, ds.test_labels, n_test, rng)
        test = ([ds.test_texts[i] for i in te], ds.test_labels[te])
        need = n_train + n_anchor
    else:
        need = n_train + n_anchor + n_test
    if need > len(pool) or (ds.test_texts is not None and n_test > len(ds.test_texts)):
        raise ValueError(f"n_train: {n_train} + {n_anchor} anchors (+ test) exceed the {len(pool)} distinct texts")
    if ds.test_texts is None:
        te = _stratified_take(pool, ds.labels, n_test, rng)
        pool = pool[~np.isin(pool, te)]
        test = ([ds.texts[i] for i in te], ds.labels[te])
    tr = _stratified_take(pool, ds.labels, n_train, rng)
    pool = pool[~np.isin(pool, tr)]
    an = pool[:n_anchor]
    n_val = max(1, int(round(val_fraction * len(tr))))
    va, tr2 = tr[:n_val], tr[n_val:]
    return Split(
        seed=seed,
        train=([ds.texts[i] for i in tr2], ds.labels[tr2]),
        val=([ds.texts[i] for i in va], ds.labels[va]),
        test=test,
        anchor=[ds.texts[i] for i in an],
        info={"train": len(tr2), "val": len(va), "test": len(test[0]), "anchor": len(an)},
    )
