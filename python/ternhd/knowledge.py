"""Knowledge transfer through packets: a teacher's class prototypes (or labelled examples) and its
encoder's parameters, sent to a student that rebuilds the encoder and classifies.

* :func:`class_prototypes` — one bundled prototype per class (through :func:`ternhd.bundle`)
* :func:`teach` / :func:`knowledge_dumps` — the teacher's side: a ``kind="knowledge"`` packet
* :class:`KnowledgeClassifier` — the student's side: nearest prototype or k-NN over the packet

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

__all__ = ["class_prototypes", "knowledge_dumps", "teach", "KnowledgeClassifier"]


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
