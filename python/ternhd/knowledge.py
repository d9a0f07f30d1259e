"""Knowledge transfer through packets: a teacher's class prototypes (or labelled examples) and its
encoder's parameters, sent to a student that rebuilds the encoder and classifies.

* :func:`class_prototypes` — one bundled prototype per class (through :func:`ternhd.bundle`)
* :func:`teach` / :func:`knowledge_dumps` — the teacher's side: a ``kind="knowledge"`` packet
* :class:`KnowledgeClassifier` — the student's side: nearest prototype or k-NN over the packet

* :class:`SharedKnowledge` / :func:`read_shared` / :class:`SharedStudent` — knowledge without the
  teacher model: prototypes, anchor texts and the teacher's anchor HDC vectors in one two-packet
  stream; a student with only its own model fits a map on its side and classifies

The packet format itself is :mod:`ternhd.packet`.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

import numpy as np

from ._arrays import check_int, to_numpy
from .algebra import bundle
from .packet import Buffer, Packet, PacketError, dumps, encoder_meta, loads
from .quantize import quantize
from .similarity import Index

__all__ = ["class_prototypes", "knowledge_dumps", "teach", "KnowledgeClassifier", "SharedKnowledge", "SharedStudent",
           "read_shared", "back_project", "choose_alpha"]


def class_prototypes(packed: Any, labels: Any, dim: int, n_classes: Optional[int] = None,
                     tau: float = 0.0) -> np.ndarray:
    """Bundles the packed rows of each class into one packed prototype.

    Args:
        packed: uint8 ``(N, ceil(dim/4))``. labels: int ``(N,)`` in ``[0, n_classes)``.
        tau: the prototype is ``quantize(sum of the class's trits, tau)`` per row (``tau = 0``:
            the sign of the sum, 0 where the votes tie).

    Returns:
        packed uint8 ``(n_classes, ceil(dim/4))`` (an empty class gives the zero vector).
    """
    arr, _ = to_numpy(packed, "packed")
    lab, _ = to_numpy(labels, "labels")
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise TypeError(f"labels: expected a 1-D integer array, got {lab.dtype} {lab.shape}")
    if arr.ndim != 2 or arr.shape[0] != lab.shape[0]:
        raise ValueError(f"packed: expected ({lab.shape[0]}, ceil(dim/4)) rows to match labels, got {arr.shape}")
    dim = check_int(dim, "dim", 1)
    if arr.shape[1] != (dim + 3) // 4:
        raise ValueError(f"packed: rows of {arr.shape[1]} bytes, but dim={dim} needs {(dim + 3) // 4}")
    if n_classes is None:
        n_classes = int(lab.max()) + 1 if lab.size else 0
    n_classes = check_int(n_classes, "n_classes", 1)
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise ValueError(f"labels: values must be in [0, {n_classes})")
    out = np.zeros((n_classes, arr.shape[1]), np.uint8)
    for c in range(n_classes):
        rows = np.ascontiguousarray(arr[lab == c])
        if not len(rows):
            continue  # an empty class keeps the zero vector
        if tau == 0:
            out[c] = bundle(rows, threshold=0)
        else:
            sums = bundle(rows, packed=False)[:dim].astype(np.float32)
            out[c] = quantize(sums, tau=tau, packed=True)
    return out


def knowledge_dumps(encoder: Any, vectors: Any, labels: Any, *, classes: Optional[Sequence[Any]] = None,
                    mode: str = "prototypes", k: int = 1, **kw: Any) -> bytes:
    """A knowledge packet: packed ``vectors`` (class prototypes or labelled examples) with integer
    ``labels`` indexing ``classes``, and the parameters of ``encoder`` (a ``ternhd.HDCEncoder``).

    Args:
        mode: ``"prototypes"`` (nearest prototype) or ``"examples"`` (k-NN with ``k``).
        classes: JSON-serializable class names (default ``0 .. max(labels)``).
        **kw: passed to :func:`dumps` (``encoding``, ``checksum``, ``model_id``, extra metadata).
    """
    if mode not in ("prototypes", "examples"):
        raise ValueError(f"mode: expected 'prototypes' or 'examples', got {mode!r}")
    k = check_int(k, "k", 1)
    lab, _ = to_numpy(labels, "labels")
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise TypeError(f"labels: expected a 1-D integer array, got {lab.dtype} {lab.shape}")
    n = int(lab.max()) + 1 if lab.size else 0
    classes = list(range(n)) if classes is None else list(classes)
    if lab.size and (lab.min() < 0 or lab.max() >= len(classes)):
        raise ValueError(f"labels: values must index classes (0 .. {len(classes) - 1})")
    knowledge = dict(mode=mode, k=k, classes=classes)
    return dumps(vectors, int(encoder.dim), kind="knowledge", labels=lab, knowledge=knowledge,
                 **encoder_meta(encoder), **kw)


def teach(encoder: Any, x: Any, y: Any, *, classes: Optional[Sequence[Any]] = None, mode: str = "prototypes",
          k: int = 1, prototype_tau: float = 0.0, **kw: Any) -> bytes:
    """The teacher's side: encodes embeddings ``x`` (float ``(N, in_dim)``) with ``encoder``, builds
    one prototype per class of ``y`` (int ``(N,)`` in ``[0, n_classes)``) — or keeps every labelled
    example with ``mode="examples"`` — and returns the knowledge packet."""
    yl, _ = to_numpy(y, "y")
    if yl.ndim != 1 or yl.dtype.kind not in "iu":
        raise TypeError(f"y: expected a 1-D integer array, got {yl.dtype} {yl.shape}")
    packed, _ = to_numpy(encoder.encode(x, packed=True), "x")
    if packed.shape[0] != yl.shape[0]:
        raise ValueError(f"y: {yl.shape[0]} labels for {packed.shape[0]} rows of x")
    n = len(classes) if classes is not None else (int(yl.max()) + 1 if yl.size else 1)
    if mode == "prototypes":
        vecs = class_prototypes(packed, yl, encoder.dim, n, tau=prototype_tau)
        labs = np.arange(n, dtype=np.int64)
    else:
        vecs, labs = packed, yl.astype(np.int64)
    return knowledge_dumps(encoder, vecs, labs, classes=classes, mode=mode, k=k, **kw)


class KnowledgeClassifier:
    """The student's side: rebuilds the teacher's encoder and a nearest-prototype (or k-NN)
    classifier from a knowledge packet.

    >>> clf = KnowledgeClassifier.from_packet(blob)   # bytes or a Packet
    >>> clf.predict(embeddings)                        # float (N, in_dim) -> class names / ids
    """

    def __init__(self, encoder: Any, vectors: np.ndarray, labels: np.ndarray, classes: List[Any],
                 mode: str = "prototypes", k: int = 1):
        self.encoder = encoder
        self.vectors = vectors
        self.labels = labels
        self.classes = classes
        self.mode = mode
        self.k = k
        self._index = Index(np.ascontiguousarray(vectors))

    @classmethod
    def from_packet(cls, packet: Union[Packet, Buffer], max_encoder_bytes: int = 1 << 32) -> "KnowledgeClassifier":
        """Builds the classifier; raises PacketError unless ``packet`` is a sound knowledge packet.

        ``max_encoder_bytes`` bounds the float32 ``in_dim x dim`` projection matrix the packet may
        ask the student to build (4 GiB by default), so a hostile packet cannot exhaust memory."""
        pkt = packet if isinstance(packet, Packet) else loads(packet)
        max_encoder_bytes = check_int(max_encoder_bytes, "max_encoder_bytes", 0)
        if 4 * int(pkt.meta.get("in_dim") or 0) * pkt.dim > max_encoder_bytes:
            raise PacketError(f"in_dim: a {pkt.meta.get('in_dim')} x {pkt.dim} projection exceeds "
                              f"max_encoder_bytes={max_encoder_bytes}")
        if pkt.kind != "knowledge":
            raise PacketError(f"kind: expected a knowledge packet, got {pkt.kind!r}")
        info = pkt.meta.get("knowledge")
        if not isinstance(info, dict):
            raise PacketError("meta: knowledge packet without its 'knowledge' entry")
        mode, k, classes = info.get("mode"), info.get("k", 1), info.get("classes")
        if mode not in ("prototypes", "examples"):
            raise PacketError(f"knowledge.mode: expected 'prototypes' or 'examples', got {mode!r}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max(1, pkt.count):
            raise PacketError(f"knowledge.k: expected an integer in [1, {max(1, pkt.count)}], got {k!r}")
        if not isinstance(classes, list) or not classes:
            raise PacketError("knowledge.classes: expected a non-empty list")
        if pkt.labels is None or pkt.count == 0:
            raise PacketError("labels: a knowledge packet needs labelled rows")
        if pkt.labels.min() < 0 or pkt.labels.max() >= len(classes):
            raise PacketError(f"labels: values must index the {len(classes)} classes")
        return cls(pkt.encoder(), np.ascontiguousarray(pkt.vectors), np.asarray(pkt.labels, dtype=np.int64),
                   classes, mode, k)

    def predict_packed(self, packed: Any) -> np.ndarray:
        """Packed queries uint8 ``(N, ceil(dim/4))`` -> int64 class indices ``(N,)``."""
        arr, _ = to_numpy(packed, "packed")
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        k = 1 if self.mode == "prototypes" else self.k
        _, idx = self._index.topk(np.ascontiguousarray(arr), k)
        votes = self.labels[np.asarray(idx).reshape(arr.shape[0], k)]
        if k == 1:
            return votes[:, 0]
        counts = np.zeros((arr.shape[0], len(self.classes)), np.int64)
        np.add.at(counts, (np.repeat(np.arange(arr.shape[0]), k), votes.reshape(-1)), 1)
        # Ties go to the class of the nearest neighbour among the tied ones.
        best = counts.max(axis=1, keepdims=True)
        tied = counts[np.arange(arr.shape[0])[:, None], votes] == best
        return votes[np.arange(arr.shape[0]), np.argmax(tied, axis=1)]

    def predict_ids(self, x: Any) -> np.ndarray:
        """float embeddings ``(N, in_dim)`` -> int64 class indices ``(N,)``."""
        packed, _ = to_numpy(self.encoder.encode(x, packed=True), "x")
        return self.predict_packed(packed)

    def predict(self, x: Any) -> List[Any]:
        """float embeddings ``(N, in_dim)`` -> class names (the packet's ``classes``)."""
        return [self.classes[i] for i in self.predict_ids(x)]

    def score(self, x: Any, y: Any) -> float:
        """Accuracy against integer class indices ``y``."""
        yl, _ = to_numpy(y, "y")
        return float(np.mean(self.predict_ids(x) == yl))


# ----------------------------------------------------------------------------- sharing without the teacher model
SHARE_VERSION = 1


def back_project(encoder: Any, packed: Any) -> np.ndarray:
    """Teacher HDC vectors back in the teacher's embedding space: ``unpack(packed) @ P.T``.

    Args:
        encoder: the teacher's :class:`ternhd.HDCEncoder` (``P`` = its float32 ``(in_dim, dim)`` projection).
        packed: uint8 ``(n, ceil(dim/4))``.

    Returns:
        float64 ``(n, in_dim)``. For a Gaussian projection and the ``tau * std`` threshold this is,
        up to a per-row scale, an estimate of each row's (normalized) embedding, sharper as ``dim``
        grows: all a student needs to fit a map into the teacher's space without its model.
    """
    from .packing import unpack_ternary

    arr, _ = to_numpy(packed, "packed")
    trits = unpack_ternary(np.ascontiguousarray(arr), int(encoder.dim)).astype(np.float64)
    return trits @ encoder.projection_matrix().astype(np.float64).T


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float):
    """Ridge with intercept: ``y ~ (x - mx) W + my``; penalty ``alpha * mean(diag(Xc^T Xc))``."""
    mx, my = x.mean(0), y.mean(0)
    xc = x - mx
    g = xc.T @ xc
    lam = float(alpha) * float(np.trace(g)) / max(1, g.shape[0])
    w = np.linalg.solve(g + lam * np.eye(g.shape[0]), xc.T @ (y - my))
    return w, mx, my


def _rowcos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    return float(((a * b).sum(1) / np.maximum(na * nb, 1e-12)).mean())


def choose_alpha(x: np.ndarray, y: np.ndarray, alphas: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
                 folds: int = 5, seed: int = 0) -> float:
    """The ridge penalty with the best mean held-out cosine between predicted and target rows,
    ``folds``-fold over the anchor rows (no labels involved)."""
    n = len(x)
    folds = max(2, min(folds, n))
    part = np.random.default_rng(seed).permutation(n) % folds
    best, best_a = -np.inf, float(alphas[0])
    for a in alphas:
        score = 0.0
        for f in range(folds):
            tr, te = part != f, part == f
            w, mx, my = _ridge(x[tr], y[tr], a)
            score += _rowcos((x[te] - mx) @ w + my, y[te])
        if score > best:
            best, best_a = score, float(a)
    return best_a


class SharedKnowledge:
    """What a teacher shares so that a student with only its own model can use its knowledge:
    the teacher's encoder (parameters), its class prototypes, the anchor texts and the teacher's
    packed HDC vectors of those anchors.

    Build it in memory with :meth:`from_teacher`, write it with :meth:`save` (a stream of two
    packets: the knowledge packet of :func:`teach`, then a ``kind="vectors"`` packet of the anchor
    vectors with ``anchor_texts`` in its meta), read it with :func:`read_shared`.
    """

    def __init__(self, classifier: "KnowledgeClassifier", anchors: np.ndarray, anchor_texts: List[str],
                 info: Optional[dict] = None):
        self.classifier = classifier
        self.encoder = classifier.encoder
        self.anchors = anchors
        self.anchor_texts = anchor_texts
        self.info = dict(info or {})

    @classmethod
    def from_teacher(cls, encoder: Any, train_x: Any, train_y: Any, anchor_x: Any, anchor_texts: Sequence[str], *,
                     classes: Optional[Sequence[Any]] = None, prototype_tau: float = 0.0,
                     info: Optional[dict] = None) -> "SharedKnowledge":
        """The teacher's side, in memory. ``train_x`` float ``(N, in_dim)`` with int labels ``train_y``
        ``(N,)``; ``anchor_x`` float ``(n, in_dim)``: the teacher's embeddings of ``anchor_texts``."""
        texts = [str(t) for t in anchor_texts]
        anchors, _ = to_numpy(encoder.encode(anchor_x, packed=True), "anchor_x")
        if anchors.shape[0] != len(texts):
            raise ValueError(f"anchor_texts: {len(texts)} texts for {anchors.shape[0]} rows of anchor_x")
        blob = teach(encoder, train_x, train_y, classes=classes, prototype_tau=prototype_tau)
        return cls(KnowledgeClassifier.from_packet(blob), np.ascontiguousarray(anchors), texts, info)

    def save(self, target: Any, model_id: str = "") -> int:
        """Writes the two-packet stream to a path or binary file; returns the bytes written."""
        from .packet import StreamWriter, encoder_meta

        c = self.classifier
        know = knowledge_dumps(self.encoder, c.vectors, c.labels, classes=c.classes, mode=c.mode, k=c.k,
                               model_id=model_id, share=dict(self.info, version=SHARE_VERSION))
        anch = dumps(self.anchors, int(self.encoder.dim), kind="vectors", model_id=model_id,
                     anchor_texts=self.anchor_texts, **encoder_meta(self.encoder))
        with StreamWriter(target) as w:
            return w.write_packet(know) + w.write_packet(anch)


def read_shared(source: Any) -> SharedKnowledge:
    """Reads :meth:`SharedKnowledge.save`'s stream (a path, bytes or a binary file). Raises
    :class:`ternhd.PacketError` on anything malformed, truncated or inconsistent."""
    from .packet import iter_stream

    try:
        pkts = list(iter_stream(source))
    except OSError as exc:
        raise PacketError(f"source: cannot read ({exc})") from None
    if len(pkts) != 2:
        raise PacketError(f"stream: expected 2 packets (knowledge, anchors), got {len(pkts)}")
    know, anch = pkts
    share = know.meta.get("share")
    if not isinstance(share, dict) or share.get("version") != SHARE_VERSION:
        raise PacketError(f"meta: the knowledge packet has no 'share' entry of version {SHARE_VERSION}")
    clf = KnowledgeClassifier.from_packet(know)
    texts = anch.meta.get("anchor_texts")
    if anch.kind != "vectors":
        raise PacketError(f"kind: expected the anchors as a vectors packet, got {anch.kind!r}")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise PacketError("anchor_texts: expected a list of strings in the anchor packet's meta")
    if len(texts) != anch.count or anch.count < 2:
        raise PacketError(f"anchor_texts: {len(texts)} texts for {anch.count} anchor vectors (need >= 2)")
    keys = ("in_dim", "projection", "seed", "threshold", "tau", "sparsity")
    if anch.dim != know.dim or any(anch.meta.get(k) != know.meta.get(k) for k in keys):
        raise PacketError("meta: the anchor vectors were not made by the knowledge packet's encoder")
    return SharedKnowledge(clf, np.ascontiguousarray(anch.vectors), list(texts), share)


class SharedStudent:
    """The student's side: a ridge map from the student's embedding space into the teacher's,
    fitted on the anchors (student embeddings -> :func:`back_project` of the teacher's anchor
    vectors), then the teacher's encoder and nearest prototype.

    ``alpha``: ridge penalty, or ``"auto"`` (:func:`choose_alpha`, cross-validated on the anchors;
    no labels).
    """

    def __init__(self, knowledge: SharedKnowledge, student_anchors: Any, alpha: Union[float, str] = "auto"):
        xs, _ = to_numpy(student_anchors, "student_anchors")
        xs = np.asarray(xs, dtype=np.float64)
        if xs.ndim != 2 or xs.shape[0] != len(knowledge.anchor_texts):
            raise ValueError(f"student_anchors: expected ({len(knowledge.anchor_texts)}, d) rows (one per anchor "
                             f"text), got {xs.shape}")
        if not np.isfinite(xs).all():
            raise ValueError("student_anchors: contains NaN or Inf")
        target = back_project(knowledge.encoder, knowledge.anchors)
        self.alpha = choose_alpha(xs, target) if alpha == "auto" else float(alpha)
        self.w, self.mx, self.my = _ridge(xs, target, self.alpha)
        self.knowledge = knowledge

    def to_teacher_space(self, x: Any) -> np.ndarray:
        """Student embeddings float ``(N, d_s)`` -> float32 ``(N, in_dim)`` in the teacher's space."""
        arr, _ = to_numpy(x, "x")
        arr = np.asarray(arr, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.w.shape[0]:
            raise ValueError(f"x: expected (N, {self.w.shape[0]}), got {arr.shape}")
        return np.ascontiguousarray((arr - self.mx) @ self.w + self.my, dtype=np.float32)

    def predict_ids(self, x: Any) -> np.ndarray:
        """Student embeddings ``(N, d_s)`` -> int64 class indices ``(N,)``."""
        return self.knowledge.classifier.predict_ids(self.to_teacher_space(x))

    def score(self, x: Any, y: Any) -> float:
        """Accuracy against integer class indices ``y`` ``(N,)``."""
        yl, _ = to_numpy(y, "y")
        return float(np.mean(self.predict_ids(x) == yl))
