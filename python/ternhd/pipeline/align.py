"""Alignment of a teacher's and a student's embedding spaces before HDC encoding.

One interface, :class:`Aligner`: ``fit(teacher_anchors, student_anchors)`` on float32 ``(n, d_t)``
and ``(n, d_s)`` anchors (row ``i`` of each = the same text; :class:`Vec2VecAligner` ignores the
pairing), then ``transform_teacher(x) -> (N, out_dim)`` and ``transform_student(y) -> (N, out_dim)``
into one common space that both sides then encode with the *same* HDC projection.

* :class:`NoAlignment` — zero-pad the narrower space to the wider (the paper's baseline: same seed).
* :class:`ProcrustesAligner` — orthogonal ``R`` minimizing ``||T R - S||_F`` (scipy), both centred,
  scaled to unit RMS row norm and zero-padded to the wider width.
* :class:`CCAAligner` — scikit-learn CCA into ``n_components`` canonical variates.
* :class:`ContrastiveAligner` — two MLPs into a shared 512-d space, positive-pair cosine loss plus a
  margin loss on in-batch negatives (the paper's eq. 2; 20 epochs), early-stopped on held-out anchors.
* :class:`Vec2VecAligner` — unsupervised translation (no pairs): adapters + shared backbone,
  adversarial, reconstruction, cycle-consistency and vector-space-preservation losses, then an
  unpaired Wasserstein-Procrustes refinement; ``paired = False``: fit with :func:`fit_aligner` /
  :meth:`Aligner.fit_unpaired` on disjoint texts.
* The paper's notebook settings beside the project's: :class:`PaperProcrustesAligner`
  (``procrustes-paper``), :class:`PaperCCAAligner` (``cca-paper``), :class:`PaperContrastiveAligner`
  (``contrastive-paper``).
* Beyond the paper: :class:`RelativeAligner` (``relative``, training-free), :class:`RidgeAligner` (``ridge``).
* :class:`BackProjectAligner` (``backproject``): the map ``ternhd share learn`` fits (knowledge without
  the teacher model), so the in-process protocol can reproduce the file route exactly.
* Metrics of aligned test pairs: :func:`alignment_metrics` (mean cosine, top-1, mean rank among n).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Type

import numpy as np

__all__ = ["Aligner", "NoAlignment", "ProcrustesAligner", "CCAAligner", "ContrastiveAligner", "Vec2VecAligner",
           "PaperProcrustesAligner", "PaperCCAAligner", "PaperContrastiveAligner", "RelativeAligner", "RidgeAligner",
           "BackProjectAligner",
           "make_aligner", "ALIGNERS", "top1_matching", "mean_pair_cosine", "mean_rank", "alignment_metrics",
           "fit_aligner", "is_paired"]


def _as2d(x: Any, name: str, width: Optional[int] = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N, d), got shape {arr.shape}")
    if width is not None and arr.shape[1] != width:
        raise ValueError(f"{name}: expected width {width}, got {arr.shape[1]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or Inf")
    return arr


def _pad(x: np.ndarray, width: int) -> np.ndarray:
    if x.shape[1] == width:
        return x
    out = np.zeros((x.shape[0], width), dtype=np.float32)
    out[:, :x.shape[1]] = x
    return out


class Aligner:
    """Base class: checks shapes, records the input widths; subclasses implement ``_fit``, ``_t``, ``_s``."""

    name = "base"
    paired = True

    def __init__(self) -> None:
        self.d_t: Optional[int] = None
        self.d_s: Optional[int] = None
        self.out_dim: Optional[int] = None

    def fit(self, teacher_anchors: Any, student_anchors: Any) -> "Aligner":
        t = _as2d(teacher_anchors, "teacher_anchors")
        s = _as2d(student_anchors, "student_anchors")
        if self.paired and t.shape[0] != s.shape[0]:
            raise ValueError(f"student_anchors: expected {t.shape[0]} rows (paired with teacher_anchors), "
                             f"got {s.shape[0]}")
        if t.shape[0] < 2 or s.shape[0] < 2:
            raise ValueError("teacher_anchors: need at least 2 anchors")
        self.d_t, self.d_s = t.shape[1], s.shape[1]
        self._fit(t, s)
        return self

    def fit_unpaired(self, teacher_x: Any, student_y: Any) -> "Aligner":
        """Fit an unpaired aligner (``paired = False``) on *disjoint* texts: float32 ``(n_t, d_t)``
        teacher rows and ``(n_s, d_s)`` student rows, ``n_t`` and ``n_s`` free. Paired aligners raise."""
        if self.paired:
            raise ValueError(f"self: {type(self).__name__} needs paired anchors; call fit(teacher, student)")
        return self.fit(teacher_x, student_y)

    def _check_fitted(self) -> None:
        if self.d_t is None:
            raise ValueError("self: aligner is not fitted; call fit(teacher_anchors, student_anchors)")

    def transform_teacher(self, x: Any) -> np.ndarray:
        """Teacher embeddings (N, d_t) -> float32 (N, out_dim)."""
        self._check_fitted()
        return np.ascontiguousarray(self._t(_as2d(x, "x", self.d_t)), dtype=np.float32)

    def transform_student(self, x: Any) -> np.ndarray:
        """Student embeddings (N, d_s) -> float32 (N, out_dim)."""
        self._check_fitted()
        return np.ascontiguousarray(self._s(_as2d(x, "x", self.d_s)), dtype=np.float32)

    def _fit(self, t: np.ndarray, s: np.ndarray) -> None:
        raise TypeError(f"self: {type(self).__name__} does not define _fit")

    def _t(self, x: np.ndarray) -> np.ndarray:
        raise TypeError(f"self: {type(self).__name__} does not define _t")

    def _s(self, x: np.ndarray) -> np.ndarray:
        raise TypeError(f"self: {type(self).__name__} does not define _s")


class NoAlignment(Aligner):
    """Identity; the narrower space is zero-padded to the wider width."""

    name = "none"

    def _fit(self, t, s):
        self.out_dim = max(self.d_t, self.d_s)

    def _t(self, x):
        return _pad(x, self.out_dim)

    def _s(self, x):
        return _pad(x, self.out_dim)


class ProcrustesAligner(Aligner):
    """Orthogonal Procrustes from the teacher space onto the student space (widths zero-padded).

    Args:
        center: subtract the anchor means. scale: divide each side by its anchors' RMS row norm.
    """

    name = "procrustes"

    def __init__(self, center: bool = True, scale: bool = True):
        super().__init__()
        self.center, self.scale = center, scale

    def _prep(self, x, mu, sc):
        return _pad((x - mu) / sc, self.out_dim)

    def _fit(self, t, s):
        from scipy.linalg import orthogonal_procrustes

        self.out_dim = max(self.d_t, self.d_s)
        self.mu_t = t.mean(0) if self.center else np.zeros(self.d_t, np.float32)
        self.mu_s = s.mean(0) if self.center else np.zeros(self.d_s, np.float32)
        rms = lambda z: float(np.sqrt((z ** 2).sum(1).mean())) or 1.0  # noqa: E731
        self.sc_t = rms(t - self.mu_t) if self.scale else 1.0
        self.sc_s = rms(s - self.mu_s) if self.scale else 1.0
        r, _ = orthogonal_procrustes(self._prep(t, self.mu_t, self.sc_t).astype(np.float64),
                                     self._prep(s, self.mu_s, self.sc_s).astype(np.float64))
        self.rotation = r.astype(np.float32)

    def _t(self, x):
        return self._prep(x, self.mu_t, self.sc_t) @ self.rotation

    def _s(self, x):
        return self._prep(x, self.mu_s, self.sc_s)


class CCAAligner(Aligner):
    """Canonical correlation analysis; both sides map to their first ``n_components`` canonical
    variates (capped by both widths and the anchor count).

    Args:
        n_components: number of canonical pairs kept.
        reg: covariance shrinkage ``C <- (1 - reg) C + reg * mean(diag C) I`` (closed-form solver only).
            With a few hundred anchors and a few hundred dimensions per side, unregularized CCA finds
            perfect but spurious correlations on the anchors and generalizes poorly.
        solver: ``"svd"`` — closed form (whitening + SVD of the cross-covariance, scipy);
            ``"sklearn"`` — :class:`sklearn.cross_decomposition.CCA` (iterative NIPALS; ``reg`` unused).
    """

    name = "cca"
    # both widths above this many times the anchor count: the N x N route (_fit_dual), e.g. the HDC stage
    dual_above = 2

    def __init__(self, n_components: int = 64, reg: float = 0.1, solver: str = "svd", max_iter: int = 500):
        super().__init__()
        if not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components: expected a positive int, got {n_components!r}")
        if not 0.0 <= reg <= 1.0:
            raise ValueError(f"reg: expected in [0, 1], got {reg}")
        if solver not in ("svd", "sklearn"):
            raise ValueError(f"solver: expected 'svd' or 'sklearn', got {solver!r}")
        self.n_components, self.reg, self.solver, self.max_iter = n_components, reg, solver, max_iter

    @staticmethod
    def _inv_sqrt(c: np.ndarray) -> np.ndarray:
        from scipy.linalg import eigh

        w, v = eigh(c)
        w = np.maximum(w, 1e-10 * max(w.max(), 1e-30))
        return (v / np.sqrt(w)) @ v.T

    def _fit(self, t, s):
        k = min(self.n_components, self.d_t, self.d_s, t.shape[0] - 1)
        self.out_dim = k
        if self.solver == "sklearn":
            import warnings

            from sklearn.cross_decomposition import CCA

            self.cca = CCA(n_components=k, max_iter=self.max_iter, scale=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.cca.fit(t.astype(np.float64), s.astype(np.float64))
            return
        from scipy.linalg import svd

        t64, s64 = t.astype(np.float64), s.astype(np.float64)
        self.mu_t, self.mu_s = t64.mean(0), s64.mean(0)
        tc, sc = t64 - self.mu_t, s64 - self.mu_s
        n = len(t64) - 1
        if min(self.d_t, self.d_s) > self.dual_above * len(t64):
            return self._fit_dual(tc, sc, n, k)

        def shrink(c):
            return (1 - self.reg) * c + self.reg * np.trace(c) / c.shape[0] * np.eye(c.shape[0])

        wt, ws = self._inv_sqrt(shrink(tc.T @ tc / n)), self._inv_sqrt(shrink(sc.T @ sc / n))
        u, sv, vt = svd(wt @ (tc.T @ sc / n) @ ws, full_matrices=False)
        self.corr = sv[:k]
        self.wt, self.ws = (wt @ u[:, :k]).astype(np.float32), (ws @ vt[:k].T).astype(np.float32)

    def _fit_dual(self, tc: np.ndarray, sc: np.ndarray, n: int, k: int) -> None:
        """The closed form when both sides are much wider than the anchors (e.g. aligning D = 4096 HDC
        vectors on 500 anchors): the same whitening and SVD, done in the anchors' row spaces (thin SVDs
        of the (N, d) anchor matrices and of an N x N core) instead of on d x d matrices. With
        ``X = P S Q^T`` the shrunk covariance is ``Q diag(e) Q^T + lam (I - Q Q^T)``, so its inverse square
        root maps the rows of X to ``P diag(S / sqrt(e)) Q^T`` and the cross-covariance's singular
        vectors lie in ``span(Q)``. Equal to the d x d route up to the signs of canonical pairs."""
        from scipy.linalg import svd

        def side(xc):
            p_, sv, qt = svd(xc, full_matrices=False)
            lam = self.reg * float((sv ** 2).sum() / n) / xc.shape[1]
            e = (1 - self.reg) * sv ** 2 / n + lam
            return p_, sv / np.sqrt(e), qt.T, 1.0 / np.sqrt(e)

        pt, at, qt_, it = side(tc)
        ps, as_, qs, is_ = side(sc)
        core = (at[:, None] * (pt.T @ ps)) * as_[None, :] / n
        u, sv, vt = svd(core, full_matrices=False)
        self.corr = sv[:k]
        self.wt = (qt_ @ (it[:, None] * u[:, :k])).astype(np.float32)
        self.ws = (qs @ (is_[:, None] * vt[:k].T)).astype(np.float32)

    def _t(self, x):
        if self.solver == "sklearn":
            return self.cca.transform(x.astype(np.float64))
        return (x - self.mu_t) @ self.wt

    def _s(self, x):
        if self.solver == "sklearn":
            return self.cca.transform(np.zeros((x.shape[0], self.d_t)), x.astype(np.float64))[1]
        return (x - self.mu_s) @ self.ws


class PaperProcrustesAligner(ProcrustesAligner):
    """The paper's Procrustes, as its notebook runs it (``Paper1_Experiment1_Complete_Pipeline.ipynb``,
    ``run_alignment_experiment``)::

        R, _ = orthogonal_procrustes(anchor_teacher, anchor_student)
        aligned_teacher = teacher_emb @ R

    raw embeddings, neither centred nor scaled; the student is encoded as it is. The notebook's pairs
    have equal widths (768); here the narrower side is zero-padded to the wider, as in ``procrustes``.
    """

    name = "procrustes-paper"

    def __init__(self):
        super().__init__(center=False, scale=False)


class PaperCCAAligner(CCAAligner):
    """The paper's CCA, as its notebook runs it::

        n_components = min(256, anchor_teacher.shape[0] - 1, anchor_teacher.shape[1], anchor_student.shape[1])
        cca = CCA(n_components=n_components)      # scikit-learn defaults: scale=True, max_iter=500
        cca.fit(anchor_teacher, anchor_student)
        teacher_cca = cca.transform(teacher_emb)
        student_cca = cca.transform(student_emb)

    Note the notebook's last line: ``transform`` with one argument applies the *teacher's* (X-side)
    centring, scaling and rotations to the student's embeddings (possible there only because both
    widths are 768). By default this class maps the student with the student's own (Y-side)
    canonical weights, which is what CCA means; ``notebook_student_transform=True`` reproduces the
    notebook's line (needs ``d_t == d_s``).
    """

    name = "cca-paper"

    def __init__(self, max_components: int = 256, notebook_student_transform: bool = False, max_iter: int = 500):
        super().__init__(n_components=max_components, solver="sklearn", max_iter=max_iter)
        self.notebook_student_transform = bool(notebook_student_transform)

    def _fit(self, t, s):
        if self.notebook_student_transform and self.d_t != self.d_s:
            raise ValueError(f"notebook_student_transform: needs equal widths, got {self.d_t} and {self.d_s}")
        super()._fit(t, s)

    def _s(self, x):
        if self.notebook_student_transform:
            return self.cca.transform(x.astype(np.float64))
        return super()._s(x)


def _torch():
    import torch

    return torch


class _threads:
    """Run a block with ``n`` torch intra-op threads (restored after). Small-batch MLP training gains
    nothing from more threads and loses a lot when the cores are shared (measured 6x slower with 2
    threads than with 1 on a loaded 2-core machine)."""

    def __init__(self, n: Optional[int]):
        self.n = n

    def __enter__(self):
        torch = _torch()
        self.old = torch.get_num_threads()
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        _torch().set_num_threads(self.old)
        return False


def _mlp(d_in: int, hidden: int, d_out: int, dropout: float = 0.1):
    nn = _torch().nn
    return nn.Sequential(nn.Linear(d_in, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, d_out))


class ContrastiveAligner(Aligner):
    """Two MLPs (teacher, student) into a shared ``shared_dim`` space.

    Loss per batch (the paper's eq. 2): ``mean(1 - cos(f_T(t_i), f_S(s_i)))`` plus
    ``mean_{i != j} relu(cos(f_T(t_i), f_S(s_j)) - margin)`` over in-batch negatives.
    ``val_fraction`` of the anchors is held out; the epoch with the lowest held-out loss is kept.
    Inputs are standardized with the anchor statistics. Outputs are L2-normalized.
    """

    name = "contrastive"

    def __init__(self, shared_dim: int = 512, hidden: int = 1024, epochs: int = 20, batch_size: int = 64,
                 lr: float = 1e-3, margin: float = 0.2, weight_decay: float = 1e-4, val_fraction: float = 0.1,
                 seed: int = 0, device: Optional[str] = None, threads: Optional[int] = 1):
        super().__init__()
        self.threads = threads
        self.shared_dim, self.hidden, self.epochs, self.batch_size = shared_dim, hidden, epochs, batch_size
        self.lr, self.margin, self.weight_decay, self.val_fraction = lr, margin, weight_decay, val_fraction
        self.seed, self.device = seed, device
        self.history: list = []

    def _loss(self, zt, zs):
        torch = _torch()
        f = torch.nn.functional
        zt, zs = f.normalize(zt, dim=1), f.normalize(zs, dim=1)
        sim = zt @ zs.T
        pos = 1.0 - sim.diagonal()
        n = sim.shape[0]
        if n > 1:
            off = ~torch.eye(n, dtype=torch.bool, device=sim.device)
            neg = torch.relu(sim[off] - self.margin).mean()
        else:
            neg = sim.new_zeros(())
        return pos.mean() + neg

    def _fit(self, t, s):
        with _threads(self.threads):
            self._train(t, s)

    def _train(self, t, s):
        torch = _torch()
        self.out_dim = self.shared_dim
        dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.mu_t, self.sd_t = t.mean(0), t.std(0) + 1e-6
        self.mu_s, self.sd_s = s.mean(0), s.std(0) + 1e-6
        tt = torch.from_numpy((t - self.mu_t) / self.sd_t).float().to(dev)
        ss = torch.from_numpy((s - self.mu_s) / self.sd_s).float().to(dev)
        n = tt.shape[0]
        perm = torch.randperm(n, generator=g)
        n_val = int(round(self.val_fraction * n)) if n >= 20 else 0
        vi, ti = perm[:n_val].to(dev), perm[n_val:].to(dev)
        self.ft = _mlp(self.d_t, self.hidden, self.shared_dim).to(dev)
        self.fs = _mlp(self.d_s, self.hidden, self.shared_dim).to(dev)
        params = list(self.ft.parameters()) + list(self.fs.parameters())
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        best, best_state = float("inf"), None
        self.history = []
        for ep in range(self.epochs):
            self.ft.train(), self.fs.train()
            order = ti[torch.randperm(len(ti), generator=g).to(dev)]
            for b in range(0, len(order), self.batch_size):
                idx = order[b:b + self.batch_size]
                if len(idx) < 2:
                    continue
                loss = self._loss(self.ft(tt[idx]), self.fs(ss[idx]))
                opt.zero_grad()
                loss.backward()
                opt.step()
            self.ft.eval(), self.fs.eval()
            with torch.no_grad():
                ev = vi if n_val else ti
                vl = float(self._loss(self.ft(tt[ev]), self.fs(ss[ev])))
            self.history.append(vl)
            if vl < best:
                best = vl
                best_state = ({k: v.clone() for k, v in self.ft.state_dict().items()},
                              {k: v.clone() for k, v in self.fs.state_dict().items()})
                self.best_epoch = ep + 1
        self.ft.load_state_dict(best_state[0])
        self.fs.load_state_dict(best_state[1])
        self._dev = dev

    def _apply(self, net, x, mu, sd):
        torch = _torch()
        with torch.no_grad():
            z = net(torch.from_numpy((x - mu) / sd).float().to(self._dev))
            return torch.nn.functional.normalize(z, dim=1).cpu().numpy()

    def _t(self, x):
        return self._apply(self.ft, x, self.mu_t, self.sd_t)

    def _s(self, x):
        return self._apply(self.fs, x, self.mu_s, self.sd_s)


class PaperContrastiveAligner(Aligner):
    """The paper's contrastive aligner, as its notebook runs it (``ContrastiveAligner`` and
    ``train_contrastive_aligner`` in ``Paper1_Experiment1_Complete_Pipeline.ipynb``)::

        self.teacher_proj = nn.Sequential(nn.Linear(teacher_dim, 512), nn.ReLU(), nn.Linear(512, 512))
        (the same for the student); outputs L2-normalized
        optimizer = torch.optim.Adam(aligner.parameters(), lr=1e-3)
        batch_size = min(256, len(teacher_emb)); n_batches = len(teacher_emb) // batch_size
        for epoch in range(20): perm = torch.randperm(n); for i in range(n_batches): ...
            pos_sim = (t_proj * s_proj).sum(dim=-1)
            neg_idx = torch.roll(torch.arange(len(idx)), 1)
            neg_sim = (t_proj * s_proj[neg_idx]).sum(dim=-1)
            loss = -pos_sim.mean() + torch.clamp(neg_sim + 0.5, min=0).mean()

    Raw embeddings in (no standardization), 20 fixed epochs, no held-out anchors, no early stopping.
    One negative per row: the batch rolled by one. ``drop_last=True`` is Experiment 1's loop (only
    ``n // 256`` batches an epoch: one batch of 256 out of 500 anchors); Experiment 2's notebook
    (``train_aligner``) iterates over every batch (``drop_last=False``). Compare the paper's eq. (2),
    ``(1 - sim(pos)) + max(0, sim(neg) - m)``: the notebook's loss is that with ``m = -0.5``.
    """

    name = "contrastive-paper"

    def __init__(self, hidden_dim: int = 512, epochs: int = 20, lr: float = 1e-3, batch_size: int = 256,
                 neg_offset: float = 0.5, drop_last: bool = True, seed: int = 0, device: Optional[str] = None,
                 threads: Optional[int] = 1):
        super().__init__()
        self.hidden_dim, self.epochs, self.lr, self.batch_size = hidden_dim, epochs, lr, batch_size
        self.neg_offset, self.drop_last, self.seed = neg_offset, drop_last, seed
        self.device, self.threads = device, threads
        self.history: list = []

    def _fit(self, t, s):
        with _threads(self.threads):
            self._train(t, s)

    def _train(self, t, s):
        torch = _torch()
        nn = torch.nn
        self.out_dim = self.hidden_dim
        dev = self._dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(self.seed)
        g = torch.Generator().manual_seed(self.seed)
        h = self.hidden_dim
        self.ft = nn.Sequential(nn.Linear(self.d_t, h), nn.ReLU(), nn.Linear(h, h)).to(dev)
        self.fs = nn.Sequential(nn.Linear(self.d_s, h), nn.ReLU(), nn.Linear(h, h)).to(dev)
        opt = torch.optim.Adam(list(self.ft.parameters()) + list(self.fs.parameters()), lr=self.lr)
        tt, ss = torch.from_numpy(t).float().to(dev), torch.from_numpy(s).float().to(dev)
        n = len(tt)
        bs = min(self.batch_size, n)
        starts = range(0, (n // bs) * bs, bs) if self.drop_last else range(0, n, bs)
        norm = nn.functional.normalize
        self.history = []
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=g).to(dev)
            total = 0.0
            for b in starts:
                idx = perm[b:b + bs]
                tp, sp = norm(self.ft(tt[idx]), dim=-1), norm(self.fs(ss[idx]), dim=-1)
                pos = (tp * sp).sum(-1)
                neg = (tp * sp[torch.roll(torch.arange(len(idx), device=dev), 1)]).sum(-1)
                loss = -pos.mean() + torch.clamp(neg + self.neg_offset, min=0).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            self.history.append(total / max(1, len(starts)))
        self.ft.eval(), self.fs.eval()

    def _apply(self, net, x):
        torch = _torch()
        with torch.no_grad():
            z = net(torch.from_numpy(x).float().to(self._dev))
            return torch.nn.functional.normalize(z, dim=-1).cpu().numpy()

    def _t(self, x):
        return self._apply(self.ft, x)

    def _s(self, x):
        return self._apply(self.fs, x)


class Vec2VecAligner(Aligner):
    """Unsupervised embedding translation after vec2vec (Jha et al., 2025), without paired anchors.

    Adapters ``A_t: d_t -> latent``, ``A_s: d_s -> latent``, a shared backbone ``T``, output heads
    ``B_t: latent -> d_t``, ``B_s: latent -> d_s``. Translations ``F_ts = B_s∘T∘A_t`` (teacher ->
    student space), ``F_st = B_t∘T∘A_s``. Losses: adversarial (least-squares GAN discriminators on
    both output spaces and on the latent space), reconstruction ``B_t∘T∘A_t(x) ≈ x``, cycle
    ``F_st(F_ts(x)) ≈ x``, and vector-space preservation (pairwise cosine matrices of a batch kept
    under translation). Inputs are centred and scaled to unit RMS norm with their own statistics.

    ``init="pca"`` (default; our addition, not in vec2vec): every adapter / head / backbone is a
    residual MLP around a linear map (zero-initialized residual), the linear maps being each space's
    principal axes ordered by variance with signs fixed by the third moment, so training starts from
    "match the principal frames" instead of from noise (with small data and short training, plain
    vec2vec does not leave chance). ``init="random"``: plain vec2vec (linear paths start random).

    ``refine`` (default 10; our addition, 0 = off): after the adversarial steps, an unpaired
    Wasserstein-Procrustes refinement (see :meth:`_refine`) replaces the translation by an orthogonal
    map between the two spaces' principal axes. Why: on synthetic rotated point clouds the
    adversarial steps did not move top-1 matching off their initialisation (PCA init: 0.32 before,
    0.27 after 200 steps, 0.33 after 1000; random init: 0.003 -> 0.005), while the refinement does
    (see ``tests/test_align.py``).

    ``transform_teacher`` = ``F_ts`` (into the student space; the refined orthogonal map when
    ``refine > 0``), ``transform_student`` = identity (after the same normalization); ``out_dim = d_s``.

    **Unpaired** (``paired = False``): fit with :meth:`fit_unpaired` (or :func:`fit_aligner`, which
    gives each side a disjoint half of the anchors) on *different* texts on the two sides, as in the
    vec2vec paper; rows of the two inputs are sampled independently and may differ in number.
    """

    name = "vec2vec"
    paired = False

    def __init__(self, latent: int = 256, hidden: int = 128, steps: int = 200, batch_size: int = 128,
                 lr: float = 2e-4, w_adv: float = 1.0, w_rec: float = 15.0, w_cyc: float = 15.0,
                 w_vsp: float = 2.0, init: str = "pca", seed: int = 0, device: Optional[str] = None,
                 threads: Optional[int] = 1, refine: int = 10, refine_rows: int = 1000):
        super().__init__()
        self.threads = threads
        if init not in ("pca", "random"):
            raise ValueError(f"init: expected 'pca' or 'random', got {init!r}")
        if isinstance(refine, bool) or not isinstance(refine, int) or refine < 0:
            raise ValueError(f"refine: expected an int >= 0, got {refine!r}")
        self.refine, self.refine_rows = refine, int(refine_rows)
        self.latent, self.hidden, self.steps, self.batch_size, self.lr = latent, hidden, steps, batch_size, lr
        self.w_adv, self.w_rec, self.w_cyc, self.w_vsp = w_adv, w_rec, w_cyc, w_vsp
        self.init, self.seed, self.device = init, seed, device

    @staticmethod
    def _norm_stats(x):
        mu = x.mean(0)
        sc = float(np.sqrt(((x - mu) ** 2).sum(1).mean())) or 1.0
        return mu, sc

    @staticmethod
    def _canonical_axes(x: np.ndarray, k: int) -> np.ndarray:
        """(d, k) principal axes of centred ``x``, by decreasing variance, sign = sign of the third moment."""
        _, _, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
        axes = vt[:k].T
        skew = ((x @ axes) ** 3).mean(0)
        return (axes * np.where(skew < 0, -1.0, 1.0)).astype(np.float32)

    def _fit(self, t, s):
        with _threads(self.threads):
            self._train(t, s)

    def _train(self, t, s):
        torch = _torch()
        nn, f = torch.nn, torch.nn.functional
        self.out_dim = self.d_s
        dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._dev = dev
        torch.manual_seed(self.seed)
        g = torch.Generator().manual_seed(self.seed)
        self.mu_t, self.sc_t = self._norm_stats(t)
        self.mu_s, self.sc_s = self._norm_stats(s)
        tn, sn = (t - self.mu_t) / self.sc_t, (s - self.mu_s) / self.sc_s
        tt, ss = torch.from_numpy(tn).float().to(dev), torch.from_numpy(sn).float().to(dev)
        lat = min(self.latent, self.d_t, self.d_s, len(t), len(s)) if self.init == "pca" else self.latent
        hid = self.hidden

        class Res(nn.Module):
            def __init__(self, a, b, w=None):
                super().__init__()
                self.lin = nn.Linear(a, b, bias=False)
                self.mlp = nn.Sequential(nn.Linear(a, hid), nn.SiLU(), nn.Linear(hid, b))
                if w is not None:
                    with torch.no_grad():
                        self.lin.weight.copy_(torch.as_tensor(w))
                        self.mlp[2].weight.zero_()
                        self.mlp[2].bias.zero_()

            def forward(self, z):
                return self.lin(z) + self.mlp(z)

        if self.init == "pca":
            pt, ps = self._canonical_axes(tn, lat), self._canonical_axes(sn, lat)
            w = dict(at=pt.T, as_=ps.T, tb=np.eye(lat, dtype=np.float32), bt=pt, bs=ps)
        else:
            w = dict(at=None, as_=None, tb=None, bt=None, bs=None)
        self.a_t, self.a_s = Res(self.d_t, lat, w["at"]).to(dev), Res(self.d_s, lat, w["as_"]).to(dev)
        self.tb = Res(lat, lat, w["tb"]).to(dev)
        self.b_t, self.b_s = Res(lat, self.d_t, w["bt"]).to(dev), Res(lat, self.d_s, w["bs"]).to(dev)

        def disc(d):
            return nn.Sequential(nn.Linear(d, hid), nn.LeakyReLU(0.2), nn.Linear(hid, hid),
                                 nn.LeakyReLU(0.2), nn.Linear(hid, 1)).to(dev)

        self.d_out_t, self.d_out_s, self.d_lat = disc(self.d_t), disc(self.d_s), disc(lat)
        gen_params = [p for m in (self.a_t, self.a_s, self.tb, self.b_t, self.b_s) for p in m.parameters()]
        dis_params = [p for m in (self.d_out_t, self.d_out_s, self.d_lat) for p in m.parameters()]
        opt_g = torch.optim.Adam(gen_params, lr=self.lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(dis_params, lr=self.lr, betas=(0.5, 0.999))

        def vsp(a, b):
            an, bn = f.normalize(a, dim=1), f.normalize(b, dim=1)
            return ((an @ an.T - bn @ bn.T) ** 2).mean()

        bs_t, bs_s = min(self.batch_size, len(tt)), min(self.batch_size, len(ss))
        for _ in range(self.steps):
            x = tt[torch.randint(len(tt), (bs_t,), generator=g).to(dev)]
            y = ss[torch.randint(len(ss), (bs_s,), generator=g).to(dev)]
            lx, ly = self.tb(self.a_t(x)), self.tb(self.a_s(y))
            x2y, y2x = self.b_s(lx), self.b_t(ly)
            # discriminators (least-squares GAN): real -> 1, translated -> 0
            opt_d.zero_grad()
            ld = (((self.d_out_s(y) - 1) ** 2).mean() + (self.d_out_s(x2y.detach()) ** 2).mean()
                  + ((self.d_out_t(x) - 1) ** 2).mean() + (self.d_out_t(y2x.detach()) ** 2).mean()
                  + ((self.d_lat(ly.detach()) - 1) ** 2).mean() + (self.d_lat(lx.detach()) ** 2).mean())
            ld.backward()
            opt_d.step()
            # generator: fool the discriminators, reconstruct, cycle, preserve the batch geometry
            opt_g.zero_grad()
            adv = (((self.d_out_s(x2y) - 1) ** 2).mean() + ((self.d_out_t(y2x) - 1) ** 2).mean()
                   + ((self.d_lat(lx) - 1) ** 2).mean())
            rec = ((self.b_t(lx) - x) ** 2).sum(1).mean() + ((self.b_s(ly) - y) ** 2).sum(1).mean()
            cyc = ((self.b_t(self.tb(self.a_s(x2y))) - x) ** 2).sum(1).mean() + \
                  ((self.b_s(self.tb(self.a_t(y2x))) - y) ** 2).sum(1).mean()
            vs = vsp(x, x2y) + vsp(y, y2x)
            lg = self.w_adv * adv + self.w_rec * rec + self.w_cyc * cyc + self.w_vsp * vs
            lg.backward()
            opt_g.step()
        for m in (self.a_t, self.a_s, self.tb, self.b_t, self.b_s):
            m.eval()
        self.map = None
        if self.refine:
            self._refine(tn, sn, lat)

    def _net_t(self, z: np.ndarray) -> np.ndarray:
        torch = _torch()
        with torch.no_grad():
            return self.b_s(self.tb(self.a_t(torch.from_numpy(z).float().to(self._dev)))).cpu().numpy()

    def _refine(self, tn: np.ndarray, sn: np.ndarray, k: int) -> None:
        """Unpaired Wasserstein-Procrustes refinement (Grave et al., 2019; MUSE's refinement step):
        in each side's ``k`` principal axes, start from the orthogonal map closest to the trained
        translation, then ``refine`` times: match translated teacher rows to student rows one-to-one
        (Hungarian assignment on cosine, at most ``refine_rows`` rows a side) and refit the orthogonal
        map on the matches. ``self.map`` = ``(P_t, W, P_s)``: teacher ``x -> x P_t W P_s^T``."""
        from scipy.linalg import orthogonal_procrustes
        from scipy.optimize import linear_sum_assignment

        k = min(k, self.d_t, self.d_s, len(tn), len(sn))
        pt, ps = self._canonical_axes(tn, k), self._canonical_axes(sn, k)
        rng = np.random.default_rng(self.seed)
        it = rng.permutation(len(tn))[:self.refine_rows]
        js = rng.permutation(len(sn))[:self.refine_rows]
        zt, zs = (tn[it] @ pt).astype(np.float64), (sn[js] @ ps).astype(np.float64)
        w, _ = orthogonal_procrustes(zt, (self._net_t(tn[it]) @ ps).astype(np.float64))
        unit = lambda z: z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)  # noqa: E731
        self.refine_cost = []
        for _ in range(self.refine):
            cost = -(unit(zt @ w) @ unit(zs).T)
            r, c = linear_sum_assignment(cost)
            self.refine_cost.append(float(cost[r, c].mean()))
            w, _ = orthogonal_procrustes(zt[r], zs[c])
        self.map = (pt, w.astype(np.float32), ps)

    def _t(self, x):
        z = (x - self.mu_t) / self.sc_t
        if self.map is not None:
            pt, w, ps = self.map
            return z @ pt @ w @ ps.T
        return self._net_t(z)

    def _s(self, x):
        return (x - self.mu_s) / self.sc_s


class RelativeAligner(Aligner):
    """Relative representations (Moschella et al., 2023; beyond the paper): each text is described
    by its cosine similarities to the ``n`` anchors, each side in its own space, so both sides land
    in the same ``n``-d space without any training.

    Args:
        center: subtract each side's anchor mean before the cosines (removes the common direction
            that makes every raw cosine of a transformer's embeddings large).
        topk: keep only each row's ``topk`` largest similarities (others 0); None keeps all.
    """

    name = "relative"

    def __init__(self, center: bool = True, topk: Optional[int] = None):
        super().__init__()
        if topk is not None and (isinstance(topk, bool) or not isinstance(topk, int) or topk < 1):
            raise ValueError(f"topk: expected a positive int or None, got {topk!r}")
        self.center, self.topk = center, topk

    def _fit(self, t, s):
        self.out_dim = len(t)
        self.mu_t = t.mean(0) if self.center else np.zeros(self.d_t, np.float32)
        self.mu_s = s.mean(0) if self.center else np.zeros(self.d_s, np.float32)
        self.at, self.as_ = _rownorm(t - self.mu_t), _rownorm(s - self.mu_s)

    def _rel(self, x, mu, anchors):
        r = _rownorm(x - mu) @ anchors.T
        if self.topk is not None and self.topk < r.shape[1]:
            cut = np.partition(r, -self.topk, axis=1)[:, -self.topk][:, None]
            r = np.where(r >= cut, r, 0.0)
        return r

    def _t(self, x):
        return self._rel(x, self.mu_t, self.at)

    def _s(self, x):
        return self._rel(x, self.mu_s, self.as_)


class RidgeAligner(Aligner):
    """Ridge regression teacher -> student (beyond the paper): ``W, b`` minimizing
    ``||(T - mean T) W + b - S||^2 + lam ||W||^2`` on the anchors, ``lam = alpha * mean(diag(Tc^T Tc))``;
    teacher rows map into the student space, the student stays as it is (``out_dim = d_s``). Unlike
    Procrustes it may stretch and mix axes; unlike CCA it keeps the student's own space."""

    name = "ridge"

    def __init__(self, alpha: float = 0.1):
        super().__init__()
        if not alpha >= 0:
            raise ValueError(f"alpha: expected >= 0, got {alpha}")
        self.alpha = float(alpha)

    def _fit(self, t, s):
        self.out_dim = self.d_s
        t64, s64 = t.astype(np.float64), s.astype(np.float64)
        self.mx, self.my = t64.mean(0), s64.mean(0)
        tc = t64 - self.mx
        if self.d_t > 2 * len(tc):
            # wide teacher (the HDC stage): the same W by the push-through identity
            # (G + lam I)^-1 Tc^T = Tc^T (Tc Tc^T + lam I)^-1, an N x N solve instead of d x d
            k = tc @ tc.T
            lam = self.alpha * float(np.trace(k)) / self.d_t
            self.w = tc.T @ np.linalg.solve(k + lam * np.eye(len(k)), s64 - self.my)
            return
        g = tc.T @ tc
        lam = self.alpha * float(np.trace(g)) / g.shape[0]
        self.w = np.linalg.solve(g + lam * np.eye(g.shape[0]), tc.T @ (s64 - self.my))

    def _t(self, x):
        return (x - self.mx) @ self.w + self.my

    def _s(self, x):
        return x


class BackProjectAligner(Aligner):
    """What ``ternhd share learn`` does (:class:`ternhd.knowledge.SharedStudent`), as an aligner: the
    teacher keeps its own space (``transform_teacher`` is the identity, ``out_dim = d_t``); the
    student is mapped into it by ridge regression (intercept; penalty ``alpha``, or ``"auto"``:
    :func:`ternhd.knowledge.choose_alpha`, cross-validated on the anchors) onto the teacher's anchor
    *HDC vectors* projected back (:func:`ternhd.knowledge.back_project`), not onto its float
    embeddings: all a student holding only a knowledge packet has. The teacher's encoder is
    ``HDCEncoder(d_t, dim, tau, threshold, seed=proj_seed)``; :func:`ternhd.pipeline.transfer.transfer_metrics`
    passes its own ``dim``, ``tau``, ``threshold`` and ``proj_seed``, so both encode with the same one."""

    name = "backproject"

    def __init__(self, dim: int = 4096, tau: float = 0.3, threshold: Any = "std", proj_seed: int = 0,
                 alpha: Any = "auto"):
        super().__init__()
        if alpha != "auto" and not (isinstance(alpha, (int, float)) and alpha >= 0):
            raise ValueError(f"alpha: expected a number >= 0 or 'auto', got {alpha!r}")
        self.dim, self.tau, self.threshold, self.proj_seed, self.alpha = dim, tau, threshold, proj_seed, alpha

    def _fit(self, t, s):
        from ..encoder import HDCEncoder
        from ..knowledge import _ridge, back_project, choose_alpha

        self.out_dim = self.d_t
        enc = HDCEncoder(self.d_t, dim=self.dim, tau=self.tau, threshold=self.threshold, seed=self.proj_seed)
        target = back_project(enc, enc.encode(t, packed=True))
        xs = s.astype(np.float64)
        self.alpha_ = choose_alpha(xs, target) if self.alpha == "auto" else float(self.alpha)
        self.w, self.mx, self.my = _ridge(xs, target, self.alpha_)

    def _t(self, x):
        return x

    def _s(self, x):
        return (x.astype(np.float64) - self.mx) @ self.w + self.my


ALIGNERS: Dict[str, Type[Aligner]] = {"none": NoAlignment, "procrustes": ProcrustesAligner, "cca": CCAAligner,
                                      "contrastive": ContrastiveAligner, "vec2vec": Vec2VecAligner,
                                      "procrustes-paper": PaperProcrustesAligner, "cca-paper": PaperCCAAligner,
                                      "contrastive-paper": PaperContrastiveAligner, "relative": RelativeAligner,
                                      "ridge": RidgeAligner, "backproject": BackProjectAligner}


def make_aligner(name: str, seed: int = 0, **kw: Any) -> Aligner:
    """An aligner by name (a key of :data:`ALIGNERS`): the project's ``none``, ``procrustes``, ``cca``,
    ``contrastive``, ``vec2vec`` (unpaired: fit it with :func:`fit_aligner`), ``relative``,
    ``ridge``; the paper's notebook settings ``procrustes-paper``,
    ``cca-paper``, ``contrastive-paper``. ``seed`` goes to the aligners that take one."""
    if name not in ALIGNERS:
        raise ValueError(f"name: unknown alignment {name!r}; choose from {sorted(ALIGNERS)}")
    cls = ALIGNERS[name]
    if "seed" in cls.__init__.__code__.co_varnames:
        kw.setdefault("seed", seed)
    return cls(**kw)


def is_paired(name: str) -> bool:
    """Whether the aligner ``name`` is fitted on paired anchors (False: on disjoint texts)."""
    if name not in ALIGNERS:
        raise ValueError(f"name: unknown alignment {name!r}; choose from {sorted(ALIGNERS)}")
    return bool(ALIGNERS[name].paired)


def fit_aligner(aligner: Aligner, teacher_anchors: Any, student_anchors: Any, seed: int = 0) -> Aligner:
    """Fit ``aligner`` on the anchors the way it is meant to be fitted.

    Paired aligners: ``fit(teacher_anchors, student_anchors)`` (float32 ``(n, d_t)`` and ``(n, d_s)``,
    row ``i`` of each = the same text). Unpaired ones (``aligner.paired is False``, e.g. vec2vec): the
    ``n`` anchor texts are split at random (``numpy.random.default_rng(seed)``) into two disjoint
    halves; the teacher sees only the first half's rows, the student only the second's, so no text
    is seen by both sides (:meth:`Aligner.fit_unpaired`)."""
    t, s = np.asarray(teacher_anchors), np.asarray(student_anchors)
    if aligner.paired:
        return aligner.fit(t, s)
    if len(t) != len(s):
        raise ValueError(f"student_anchors: expected {len(t)} rows (the same anchor texts), got {len(s)}")
    perm = np.random.default_rng(seed).permutation(len(t))
    half = len(t) // 2
    return aligner.fit_unpaired(t[np.sort(perm[:half])], s[np.sort(perm[half:])])


def _rownorm(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def mean_pair_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine between row ``i`` of ``a`` and row ``i`` of ``b``."""
    return float((_rownorm(np.asarray(a, np.float64)) * _rownorm(np.asarray(b, np.float64))).sum(1).mean())


def top1_matching(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows ``i`` of ``a`` whose most cosine-similar row of ``b`` is row ``i``."""
    sim = _rownorm(np.asarray(a, np.float64)) @ _rownorm(np.asarray(b, np.float64)).T
    return float((sim.argmax(1) == np.arange(len(a))).mean())


def _check_pairs(a: Any, b: Any) -> Tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a: expected 2-D arrays (N, d), got shapes {a.shape} and {b.shape}")
    if a.shape != b.shape:
        raise ValueError(f"b: expected the shape of a {a.shape} (row i of each = the same text), got {b.shape}")
    if len(a) < 2:
        raise ValueError(f"a: need at least 2 pairs, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a: contains NaN or Inf (or b does)")
    return a, b


def _ranks(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 ``(N,)``: rank (1 = best) of ``b[i]`` among all rows of ``b`` by cosine to ``a[i]``;
    ties with other rows count half (so identical rows everywhere give the chance rank ``(N + 1) / 2``)."""
    sim = _rownorm(a) @ _rownorm(b).T
    own = sim.diagonal()[:, None]
    greater = (sim > own).sum(1)
    ties = (sim == own).sum(1) - 1
    return 1.0 + greater + 0.5 * ties


def mean_rank(a: Any, b: Any) -> float:
    """Mean rank (1 = best, chance ``(N + 1) / 2``) of the true partner ``b[i]`` among all ``N`` rows
    of ``b``, ordered by cosine similarity to ``a[i]``. ``a``, ``b``: float ``(N, d)``, row ``i`` of
    each = the same text."""
    a, b = _check_pairs(a, b)
    return float(_ranks(a, b).mean())


def alignment_metrics(teacher_aligned: np.ndarray, student_aligned: np.ndarray, n: int = 500,
                      seed: int = 0) -> Dict[str, float]:
    """How well aligned pairs meet, on ``n`` pairs (all of them when ``N <= n``, else ``n`` drawn
    without replacement with ``numpy.random.default_rng(seed)``; retrieval is among those ``n``).

    Args:
        teacher_aligned, student_aligned: float ``(N, d)`` in the common space (row ``i`` of each =
            the same text), e.g. ``transform_teacher(test)`` and ``transform_student(test)``.

    Returns:
        ``{"mean_cosine": mean cos(t_i, s_i), "top1": fraction of i whose nearest student row (cosine)
        is s_i and nothing ties with it, "mean_rank": mean rank of s_i (1 = best, chance (n+1)/2),
        "n": pairs used, "chance_rank": (n + 1) / 2}``.
    """
    a, b = _check_pairs(teacher_aligned, student_aligned)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n: expected an int >= 2, got {n!r}")
    if len(a) > n:
        idx = np.sort(np.random.default_rng(seed).choice(len(a), size=int(n), replace=False))
        a, b = a[idx], b[idx]
    r = _ranks(a, b)
    return {"mean_cosine": mean_pair_cosine(a, b), "top1": float((r == 1.0).mean()), "mean_rank": float(r.mean()),
            "n": int(len(a)), "chance_rank": (len(a) + 1) / 2.0}
