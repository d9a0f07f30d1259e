"""Topic identification from character n-grams with packed ternary HDC, beside torchhd.

The classic HDC text pipeline (Rahimi et al., "A robust and energy-efficient classifier using
brain-inspired hyperdimensional computing", 2016; torchhd's language-recognition example): every
character gets a random hypervector from an item memory, a text is the bundle of its character
trigrams (``bind(permute(a, 2), permute(b, 1), c)``), and a class is the bundle of its texts. Here
on AG News (4 topics: World, Sports, Business, Sci/Tech), read offline from ``shared/data``.

The same pipeline runs twice on the same texts and the same symbol vectors: with ``ternhd.vsa``
(2-bit packed trits, native kernels) and with torchhd (float32 MAP tensors), and the script prints
accuracy, throughput and memory side by side. The n-gram sums are equal on the two sides (checked
on the first text); the document vectors differ only where a vote ties (ternhd: 0, torchhd: -1).

    python examples/hdc_topics.py                      # ~1 min on 2 cores: 800 train / 400 test
    python examples/hdc_topics.py --n-train 6000 --n-test 1600 --no-torchhd
    TERNHD_DATA=/path/to/data python examples/hdc_topics.py

Options: ``--dim`` (10,000), ``--ngram`` (3), ``--epochs`` (AdaptHD retraining passes, 10),
``--threads`` (1, for both libraries), ``--seed``, ``--no-torchhd``.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

import ternhd
from ternhd import vsa

TOPICS = ["World", "Sports", "Business", "Sci/Tech"]
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 "


def data_dir() -> Optional[Path]:
    """``$TERNHD_DATA``, ``<repo>/../shared/data`` or ``$PWD/../shared/data`` (first that has agnews)."""
    cands = [Path(os.environ["TERNHD_DATA"])] if os.environ.get("TERNHD_DATA") else []
    cands += [Path(__file__).resolve().parents[1].parent / "shared" / "data", Path.cwd().parent / "shared" / "data",
              Path.cwd() / "shared" / "data"]
    return next((c for c in cands if (c / "agnews" / "test.csv").is_file()), None)


def load_agnews(root: Path) -> Tuple[List[str], np.ndarray]:
    texts, labels = [], []
    with open(root / "agnews" / "test.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts.append(f"{row['title']} {row['description']}")
            labels.append(int(row["label"]) - 1)
    return texts, np.array(labels)


def normalize(text: str) -> str:
    """Lower case, everything outside ``ALPHABET`` becomes a space, runs of spaces collapse."""
    return re.sub(r" +", " ", re.sub(r"[^a-z0-9 ]", " ", text.lower().replace("\\", " "))).strip()


def split(labels: np.ndarray, n_train: int, n_test: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Disjoint, seeded, stratified train / test indices."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    train, test = [], []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        a, b = n_train // len(classes), n_test // len(classes)
        train.append(idx[:a])
        test.append(idx[a:a + b])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


# ----------------------------------------------------------------------------- ternhd
def ternhd_pipeline(train: Sequence[str], y_train: np.ndarray, test: Sequence[str], y_test: np.ndarray,
                    mem: vsa.ItemMemory, n: int, epochs: int) -> Dict[str, float]:
    t0 = time.perf_counter()
    X_train = np.stack([mem.ngrams(t, n) for t in train])  # packed (N, D / 4)
    X_test = np.stack([mem.ngrams(t, n) for t in test])
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    centroid = vsa.Centroid().fit(X_train, y_train)
    t_cen = time.perf_counter() - t0
    t0 = time.perf_counter()
    adapt = vsa.AdaptHD(epochs=epochs, batch_size=128).fit(X_train, y_train)
    t_ada = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc_c = centroid.score(X_test, y_test)
    acc_a = adapt.score(X_test, y_test)
    t_pred = (time.perf_counter() - t0) / 2
    return dict(acc_centroid=acc_c, acc_adapt=acc_a, encode_s=t_enc, centroid_fit_s=t_cen, adapt_fit_s=t_ada,
                predict_s=t_pred, bytes_per_doc=X_train.shape[1], docs=len(train) + len(test))


# ----------------------------------------------------------------------------- torchhd
def torchhd_pipeline(train: Sequence[str], y_train: np.ndarray, test: Sequence[str], y_test: np.ndarray,
                     mem: vsa.ItemMemory, n: int, epochs: int) -> Dict[str, float]:
    import torch
    import torchhd
    from torchhd.models import Centroid

    symbols = torch.from_numpy(ternhd.unpack_ternary(np.asarray(mem.vectors), mem.dim).astype(np.float32))
    symbols = symbols.as_subclass(torchhd.MAPTensor)  # the same symbol vectors as the ternhd side
    lookup = {name: i for i, name in enumerate(mem.names)}

    # torchhd.ngrams(symbols[ids], n) permutes every window again; like ItemMemory.ngrams, the
    # shifted symbol tables are computed once (same sums, checked in check_equal_sums: ~4x faster)
    shifted = [torchhd.permute(symbols, shifts=k) for k in range(n)]

    def encode(texts: Sequence[str]) -> torch.Tensor:
        out = torch.empty(len(texts), mem.dim)
        for i, t in enumerate(texts):
            ids = torch.tensor([lookup[c] for c in t])
            w = len(ids) - n + 1
            gram = shifted[n - 1][ids[:w]]
            for j in range(1, n):
                gram = torchhd.bind(gram, shifted[n - j - 1][ids[j:j + w]])
            out[i] = torchhd.normalize(torchhd.multiset(gram))  # hard_quantize: ties -> -1
        return out

    t0 = time.perf_counter()
    X_train, X_test = encode(train), encode(test)
    t_enc = time.perf_counter() - t0
    yt = torch.from_numpy(y_train)
    t0 = time.perf_counter()
    model = Centroid(mem.dim, 4)
    model.add(X_train, yt)
    t_cen = time.perf_counter() - t0
    t0 = time.perf_counter()
    adapt = Centroid(mem.dim, 4)
    adapt.add(X_train, yt)  # centroid start, as ternhd's AdaptHD
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=g)
        for b0 in range(0, len(train), 128):
            rows = order[b0:b0 + 128]
            adapt.add_adapt(X_train[rows], yt[rows], lr=1.0)
    t_ada = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc_c = float((model(X_test, dot=False).argmax(1).numpy() == y_test).mean())
    acc_a = float((adapt(X_test, dot=False).argmax(1).numpy() == y_test).mean())
    t_pred = (time.perf_counter() - t0) / 2
    return dict(acc_centroid=acc_c, acc_adapt=acc_a, encode_s=t_enc, centroid_fit_s=t_cen, adapt_fit_s=t_ada,
                predict_s=t_pred, bytes_per_doc=X_train.element_size() * mem.dim, docs=len(train) + len(test))


def check_equal_sums(text: str, mem: vsa.ItemMemory, n: int) -> bool:
    """ternhd's n-gram sums of one text == torchhd.ngrams on the unpacked trits."""
    import torch
    import torchhd

    seq = ternhd.unpack_ternary(np.asarray(mem.lookup(text)), mem.dim).astype(np.float32)
    theirs = torchhd.ngrams(torch.from_numpy(seq).as_subclass(torchhd.MAPTensor), n).numpy()
    return bool(np.array_equal(np.asarray(mem.ngrams(text, n, packed=False)), theirs))


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=800)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--dim", type=int, default=10_000)
    ap.add_argument("--ngram", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for both libraries (1: the per-text calls are small)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-torchhd", action="store_true", help="run the ternhd pipeline only")
    args = ap.parse_args(argv)

    root = data_dir()
    if root is None:
        sys.exit("AG News not found: set TERNHD_DATA to the folder holding agnews/test.csv")
    ternhd.set_num_threads(args.threads)
    texts, labels = load_agnews(root)
    tr, te = split(labels, args.n_train, args.n_test, args.seed)
    train = [normalize(texts[i]) for i in tr]
    test = [normalize(texts[i]) for i in te]
    train = [t if len(t) >= args.ngram else t.ljust(args.ngram) for t in train]
    test = [t if len(t) >= args.ngram else t.ljust(args.ngram) for t in test]
    mem = vsa.ItemMemory(args.dim, seed=args.seed)
    mem.add_many(ALPHABET)
    print(f"AG News from {root}: {len(train)} train / {len(test)} test texts, D={args.dim}, "
          f"{args.ngram}-grams of {len(ALPHABET)} symbols, {args.threads} threads, "
          f"{np.mean([len(t) for t in train]):.0f} characters per text")

    results = {"ternhd": ternhd_pipeline(train, labels[tr], test, labels[te], mem, args.ngram, args.epochs)}
    if not args.no_torchhd:
        try:
            import torch
            import torchhd  # noqa: F401
        except ImportError:
            print("torchhd is not installed: pip install torch-hd (running the ternhd side only)")
        else:
            torch.set_num_threads(args.threads)
            if not check_equal_sums(train[0], mem, args.ngram):
                raise AssertionError("the n-gram sums differ from torchhd's")
            results["torchhd"] = torchhd_pipeline(train, labels[tr], test, labels[te], mem, args.ngram, args.epochs)

    print(f"\n| {'':8} | {'Centroid acc':>12} | {'AdaptHD acc':>11} | {'encode docs/s':>13} | "
          f"{'AdaptHD fit s':>13} | {'bytes/doc':>9} |")
    print(f"|{'-' * 10}|{'-' * 14}|{'-' * 13}|{'-' * 15}|{'-' * 15}|{'-' * 11}|")
    for name, r in results.items():
        print(f"| {name:8} | {r['acc_centroid']:12.3f} | {r['acc_adapt']:11.3f} | {r['docs'] / r['encode_s']:13.0f} | "
              f"{r['adapt_fit_s']:13.2f} | {r['bytes_per_doc']:9d} |")
    if "torchhd" in results:
        a, b = results["ternhd"], results["torchhd"]
        print(f"\nternhd encodes {b['encode_s'] / a['encode_s']:.1f}x faster, trains AdaptHD "
              f"{b['adapt_fit_s'] / a['adapt_fit_s']:.1f}x faster, with {b['bytes_per_doc'] // a['bytes_per_doc']}x "
              f"smaller document vectors")
    print(f"chance: {1 / len(TOPICS):.2f}")
    return results


if __name__ == "__main__":
    main()
