"""Aligners on synthetic paired / rotated data."""
import numpy as np
import pytest

from ternhd.pipeline.align import (
    CCAAligner,
    ContrastiveAligner,
    NoAlignment,
    ProcrustesAligner,
    Vec2VecAligner,
    alignment_metrics,
    fit_aligner,
    is_paired,
    make_aligner,
    mean_pair_cosine,
    mean_rank,
    top1_matching,
)


def _rotation(d, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _paired(n=500, k=8, d_t=24, d_s=20, noise=0.05, seed=0):
    """Two views of a shared latent through different random linear maps (+ a nonlinearity on one)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k))
    t = z @ rng.standard_normal((k, d_t)) + noise * rng.standard_normal((n, d_t))
    s = np.tanh(0.5 * (z @ rng.standard_normal((k, d_s)))) + noise * rng.standard_normal((n, d_s))
    return t.astype(np.float32), s.astype(np.float32)


def test_procrustes_recovers_known_rotation():
    rng = np.random.default_rng(3)
    t = rng.standard_normal((200, 16)).astype(np.float32) + 2.0
    r = _rotation(16, 4).astype(np.float32)
    s = t @ r
    al = ProcrustesAligner().fit(t, s)
    np.testing.assert_allclose(al.rotation, r, atol=1e-4)
    x = rng.standard_normal((30, 16)).astype(np.float32)
    np.testing.assert_allclose(al.transform_teacher(x), al.transform_student(x @ r), atol=1e-4)
    assert top1_matching(al.transform_teacher(x), al.transform_student(x @ r)) == 1.0


def test_procrustes_reconciles_widths():
    rng = np.random.default_rng(5)
    t = rng.standard_normal((300, 10)).astype(np.float32)
    r = _rotation(14, 6).astype(np.float32)
    s = np.hstack([t, np.zeros((300, 4), np.float32)]) @ r
    al = ProcrustesAligner().fit(t, s)
    assert al.out_dim == 14
    assert mean_pair_cosine(al.transform_teacher(t), al.transform_student(s)) > 0.999


def test_none_pads_to_wider():
    t, s = np.ones((4, 3), np.float32), np.ones((4, 5), np.float32)
    al = NoAlignment().fit(t, s)
    assert al.transform_teacher(t).shape == (4, 5) and al.transform_student(s).shape == (4, 5)
    np.testing.assert_array_equal(al.transform_teacher(t)[:, 3:], 0)


def test_cca_high_similarity_on_paired_data():
    t, s = _paired()
    al = CCAAligner(n_components=8, reg=0.01).fit(t[:400], s[:400])
    cos = mean_pair_cosine(al.transform_teacher(t[400:]), al.transform_student(s[400:]))
    assert cos > 0.85, cos
    assert al.corr[0] > 0.95


def test_cca_sklearn_solver():
    t, s = _paired(n=300)
    al = CCAAligner(n_components=6, solver="sklearn").fit(t[:250], s[:250])
    assert mean_pair_cosine(al.transform_teacher(t[250:]), al.transform_student(s[250:])) > 0.8


def test_contrastive_high_similarity_on_paired_data():
    t, s = _paired(n=600)
    al = ContrastiveAligner(shared_dim=32, hidden=64, epochs=20, batch_size=64, lr=3e-3, seed=0,
                            device="cpu").fit(t[:500], s[:500])
    a, b = al.transform_teacher(t[500:]), al.transform_student(s[500:])
    assert a.shape == (100, 32)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    cos, top1 = mean_pair_cosine(a, b), top1_matching(a, b)
    assert cos > 0.8, cos
    assert top1 > 0.3, top1
    assert 1 <= al.best_epoch <= 20 and len(al.history) == 20


def _clusters(seed, d=8, n=1200, k=24):
    """Tight clusters (24 random centres, anisotropic spread) and an exact rotation of them."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * np.linspace(1.6, 0.6, d)
    x = (centers[rng.integers(0, k, n)] + 0.15 * rng.standard_normal((n, d))).astype(np.float32)
    return x, (x @ _rotation(d, seed + 10)).astype(np.float32)


def test_vec2vec_unpaired_training_does_the_work():
    x, y = _clusters(2)
    xt, ys = x[:400], y[400:800]  # unpaired: disjoint texts on the two sides
    xe, ye = x[800:], y[800:]

    def run(**kw):
        al = Vec2VecAligner(latent=16, hidden=32, batch_size=128, seed=0, device="cpu", **kw).fit_unpaired(xt, ys)
        return al, alignment_metrics(al.transform_teacher(xe), al.transform_student(ye))

    _, untrained = run(steps=0, refine=0)   # the initialisation alone
    al, trained = run(steps=25, refine=10)
    base = alignment_metrics(xe, ye)        # no alignment at all
    assert base["mean_rank"] > 100
    assert untrained["top1"] < 0.4 and untrained["mean_rank"] > 3, untrained
    assert trained["top1"] > untrained["top1"] + 0.25, (trained, untrained)
    assert trained["mean_rank"] < 0.5 * untrained["mean_rank"], (trained, untrained)
    assert trained["mean_cosine"] > 0.98
    assert al.refine_cost[-1] < al.refine_cost[0]  # the matching objective it minimizes went down


def test_fit_aligner_feeds_unpaired_aligners_disjoint_halves():
    x, y = _clusters(2, n=300)
    seen = {}

    class Spy(Vec2VecAligner):
        def _fit(self, t, s):
            seen["t"], seen["s"] = t, s
            self.out_dim = self.d_s
            self.map, self.mu_t, self.mu_s, self.sc_t, self.sc_s = None, 0, 0, 1, 1

    fit_aligner(Spy(), x, y, seed=1)
    rows = lambda a, b: {int(np.flatnonzero((b == r).all(1))[0]) for r in a}  # noqa: E731
    it, js = rows(seen["t"], x), rows(seen["s"], y)
    assert len(it) == len(js) == 150 and not it & js
    assert is_paired("procrustes") and not is_paired("vec2vec")
    al = fit_aligner(make_aligner("procrustes"), x, y)
    assert al.transform_teacher(x).shape == (300, 8)
    with pytest.raises(ValueError, match="^self"):
        ProcrustesAligner().fit_unpaired(x, y[:100])
    # different row counts are fine unpaired
    Vec2VecAligner(latent=8, hidden=8, steps=1, refine=1, device="cpu").fit_unpaired(x[:100], y[100:250])


def test_interface_errors():
    with pytest.raises(ValueError, match="^name"):
        make_aligner("magic")
    with pytest.raises(ValueError, match="^self"):
        ProcrustesAligner().transform_teacher(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="^student_anchors"):
        ProcrustesAligner().fit(np.zeros((4, 3)), np.zeros((5, 3)))
    al = NoAlignment().fit(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="^x"):
        al.transform_teacher(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="^teacher_anchors"):
        NoAlignment().fit(np.full((4, 3), np.nan), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="^init"):
        Vec2VecAligner(init="zeros")


def test_mean_rank_and_alignment_metrics_known_answers():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 8))
    # identical pairs: rank 1 everywhere, cosine 1
    m = alignment_metrics(a, a.copy())
    assert m["top1"] == 1.0 and m["mean_rank"] == 1.0 and abs(m["mean_cosine"] - 1.0) < 1e-12 and m["n"] == 50
    # partner = row i + 1 (cyclic): the true partner is wherever a[i+1] falls; hand-computed ranks
    b = np.roll(a, -1, axis=0)
    sim = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    want = np.mean([1 + (sim[i] > sim[i, i]).sum() for i in range(50)])
    assert mean_rank(a, b) == pytest.approx(want)
    # every row identical: chance rank (N + 1) / 2, no top-1 credit for ties
    same = np.ones((10, 4))
    m = alignment_metrics(same, same)
    assert m["mean_rank"] == 5.5 and m["top1"] == 0.0 and m["chance_rank"] == 5.5
    # independent noise: about chance
    m = alignment_metrics(rng.standard_normal((400, 16)), rng.standard_normal((400, 16)))
    assert 170 < m["mean_rank"] < 231 and m["top1"] < 0.05 and abs(m["mean_cosine"]) < 0.05
    # subsampling: n pairs drawn with the seed; retrieval among those n only
    big = rng.standard_normal((900, 8))
    m1, m2 = alignment_metrics(big, big + 0.5 * rng.standard_normal((900, 8)), n=500, seed=3), None
    m2 = alignment_metrics(big, big + 0.5 * rng.standard_normal((900, 8)), n=500, seed=3)
    assert m1["n"] == 500 and m1["chance_rank"] == 250.5
    assert 1.0 <= m1["mean_rank"] < 30 and abs(m1["mean_rank"] - m2["mean_rank"]) < 10
    with pytest.raises(ValueError, match="^b"):
        alignment_metrics(a, a[:10])
    with pytest.raises(ValueError, match="^n"):
        alignment_metrics(a, a, n=1)


def test_procrustes_paper_is_raw_and_uncentered():
    rng = np.random.default_rng(3)
    t = rng.standard_normal((200, 16)).astype(np.float32) + 2.0  # far from centred
    r = _rotation(16, 4).astype(np.float32)
    al = make_aligner("procrustes-paper").fit(t, t @ r)
    np.testing.assert_allclose(al.rotation, r, atol=1e-4)
    x = rng.standard_normal((30, 16)).astype(np.float32) + 5.0
    np.testing.assert_allclose(al.transform_teacher(x), x @ al.rotation, rtol=1e-5, atol=1e-5)  # no centring/scaling
    np.testing.assert_array_equal(al.transform_student(x), x)
    # an offset the rotation cannot explain: centred Procrustes still recovers r, the raw one does not
    s = t @ r + 3.0
    assert np.abs(ProcrustesAligner().fit(t, s).rotation - r).max() < 1e-3
    assert np.abs(make_aligner("procrustes-paper").fit(t, s).rotation - r).max() > 0.05


def test_cca_paper_components_and_matching():
    t, s = _paired(n=400)
    al = make_aligner("cca-paper").fit(t[:300], s[:300])
    assert al.out_dim == min(256, 299, 24, 20) and al.cca.n_components == 20 and al.cca.scale
    m = alignment_metrics(al.transform_teacher(t[300:]), al.transform_student(s[300:]))
    assert m["top1"] > 0.9 and m["mean_rank"] < 1.2, m
    assert make_aligner("cca-paper").fit(t[:12], s[:12]).out_dim == 11  # n - 1
    # the notebook's student line, cca.transform(student) (teacher-side weights), needs equal widths
    with pytest.raises(ValueError, match="^notebook_student_transform"):
        make_aligner("cca-paper", notebook_student_transform=True).fit(t[:50], s[:50])
    nb = make_aligner("cca-paper", notebook_student_transform=True).fit(t[:50, :20], s[:50])
    np.testing.assert_allclose(nb.transform_student(s[:5]), nb.cca.transform(s[:5].astype(np.float64)), rtol=1e-5)


def test_contrastive_paper_architecture_and_matching():
    import torch

    t, s = _paired(n=600)
    al = make_aligner("contrastive-paper", seed=0, device="cpu").fit(t[:500], s[:500])
    assert [type(m) for m in al.ft] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]
    assert al.ft[0].in_features == 24 and al.fs[0].in_features == 20 and al.ft[2].out_features == 512
    assert len(al.history) == 20
    a, b = al.transform_teacher(t[500:]), al.transform_student(s[500:])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    m = alignment_metrics(a, b)
    assert m["top1"] > 0.9 and m["mean_cosine"] > 0.9, m
    assert al.history[-1] < al.history[0] - 0.5  # -pos + relu(neg + 0.5) went down
    # Experiment 1's loop: 500 anchors -> one batch of 256 per epoch, 20 steps in all
    steps = []
    al2 = make_aligner("contrastive-paper", seed=0, device="cpu", epochs=2)
    orig = torch.optim.Adam.step
    try:
        torch.optim.Adam.step = lambda self, *a, **k: (steps.append(1), orig(self, *a, **k))[1]
        al2.fit(t[:500], s[:500])
        assert len(steps) == 2
        make_aligner("contrastive-paper", seed=0, device="cpu", epochs=2, drop_last=False).fit(t[:500], s[:500])
        assert len(steps) == 2 + 4
    finally:
        torch.optim.Adam.step = orig
    again = make_aligner("contrastive-paper", seed=0, device="cpu").fit(t[:500], s[:500])
    np.testing.assert_allclose(again.transform_teacher(t[500:]), a, atol=1e-6)


def test_relative_representations():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((300, 16)).astype(np.float32) + 1.5
    r = _rotation(16, 2).astype(np.float32)
    s = 3.0 * (t @ r) - 2.0  # rotated, scaled, shifted: relative (centred) representations are invariant
    al = make_aligner("relative").fit(t[:100], s[:100])
    assert al.out_dim == 100
    np.testing.assert_allclose(al.transform_teacher(t[100:]), al.transform_student(s[100:]), atol=1e-4)
    assert alignment_metrics(al.transform_teacher(t[100:]), al.transform_student(s[100:]))["top1"] == 1.0
    # uncentred, the shift breaks the invariance
    raw = make_aligner("relative", center=False).fit(t[:100], s[:100])
    assert np.abs(raw.transform_teacher(t[100:]) - raw.transform_student(s[100:])).max() > 0.1
    sparse = make_aligner("relative", topk=10).fit(t[:100], s[:100]).transform_teacher(t[100:])
    assert ((sparse != 0).sum(1) == 10).all()
    tp, sp = _paired(n=600)
    m = alignment_metrics(*(lambda a: (a.transform_teacher(tp[500:]), a.transform_student(sp[500:])))(
        make_aligner("relative").fit(tp[:500], sp[:500])))
    assert m["top1"] > 0.4 and m["mean_rank"] < 3, m  # nonlinear student, no training: 0.55 and 1.87 (chance 50.5)


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(1)
    t = rng.standard_normal((400, 12)).astype(np.float32)
    a = rng.standard_normal((12, 9)).astype(np.float32)  # not orthogonal, different width
    s = t @ a + 0.5 + 0.01 * rng.standard_normal((400, 9)).astype(np.float32)
    al = make_aligner("ridge", alpha=1e-4).fit(t[:300], s[:300])
    np.testing.assert_allclose(al.w, a, atol=0.02)
    m = alignment_metrics(al.transform_teacher(t[300:]), al.transform_student(s[300:]))
    assert m["mean_cosine"] > 0.999 and m["top1"] == 1.0


@pytest.mark.parametrize("n,d_t,d_s", [(40, 100, 120), (30, 200, 90), (30, 90, 200)])
def test_wide_cca_and_ridge_routes_equal_the_d_by_d_ones(n, d_t, d_s):
    """The N x N routes taken when the sides are much wider than the anchors (the HDC stage) give the
    d x d closed forms' maps: CCA up to the sign of each canonical pair, ridge exactly."""
    from ternhd.pipeline.align import CCAAligner, RidgeAligner

    rng = np.random.default_rng(n + d_t)
    z = rng.standard_normal((n, 6))
    t = (z @ rng.standard_normal((6, d_t)) + 0.3 * rng.standard_normal((n, d_t))).astype(np.float32)
    s = (z @ rng.standard_normal((6, d_s)) + 0.3 * rng.standard_normal((n, d_s))).astype(np.float32)
    x, y = rng.standard_normal((9, d_t)).astype(np.float32), rng.standard_normal((9, d_s)).astype(np.float32)
    wide = CCAAligner(n_components=8).fit(t, s)
    square = CCAAligner(n_components=8)
    square.dual_above = 10 ** 9
    square.fit(t, s)
    np.testing.assert_allclose(wide.corr, square.corr, rtol=1e-9)
    tw, ts_ = wide.transform_teacher(x), square.transform_teacher(x)
    sign = np.sign((tw * ts_).sum(0))
    np.testing.assert_allclose(tw, ts_ * sign, rtol=1e-3, atol=1e-4 * np.abs(ts_).max())
    np.testing.assert_allclose(wide.transform_student(y), square.transform_student(y) * sign, rtol=1e-3,
                               atol=1e-4 * np.abs(square.transform_student(y)).max())
    r = RidgeAligner(alpha=0.1).fit(t, s)
    t64, s64 = t.astype(np.float64), s.astype(np.float64)
    tc = t64 - t64.mean(0)
    g = tc.T @ tc
    w = np.linalg.solve(g + 0.1 * np.trace(g) / d_t * np.eye(d_t), tc.T @ (s64 - s64.mean(0)))
    np.testing.assert_allclose(r.transform_teacher(x), (x - t64.mean(0)) @ w + s64.mean(0), rtol=1e-4, atol=1e-4)
