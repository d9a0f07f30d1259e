"""ternhd.vsa against torchhd itself (MAP model on the unpacked trits) and against known answers."""
import os

import numpy as np
import pytest

import ternhd
from ternhd import vsa

torch = pytest.importorskip("torch")
torchhd = pytest.importorskip("torchhd")


def trits_of(p, dim):
    return ternhd.unpack_ternary(np.asarray(p), dim)


def as_map(t):
    return torchhd.MAPTensor(torch.from_numpy(np.asarray(t, np.float32)))


def rand_trits(rng, shape, p_zero=0.3):
    t = rng.choice(np.array([-1, 0, 1], np.int8), size=shape, p=[(1 - p_zero) / 2, p_zero, (1 - p_zero) / 2])
    return t.astype(np.int8)


# ----------------------------------------------------------------------------- basis sets
@pytest.mark.parametrize("dim", [1, 7, 1000, 10_001])
def test_random_dense_is_bipolar_balanced_and_padded(dim):
    p = vsa.random(64, dim, seed=3)
    assert p.dtype == np.uint8 and p.shape == (64, (dim + 3) // 4)
    t = trits_of(p, dim)
    assert set(np.unique(t)) <= {-1, 1}
    if dim >= 1000:
        assert abs(t.mean()) < 0.02
    # padding trits are 0: re-packing the trits gives the same bytes
    assert np.array_equal(ternhd.pack_ternary(t), p)


def test_random_seeded_and_independent():
    a, b = vsa.random(10, 4096, 1), vsa.random(10, 4096, 1)
    assert np.array_equal(a, b)
    c = ternhd.cosine(a, vsa.random(10, 4096, 2))
    assert np.abs(c).max() < 0.08  # quasi-orthogonal: std 1/sqrt(4096) = 0.016
    own = ternhd.cosine(a, a)
    assert np.allclose(np.diag(own), 1) and np.abs(own - np.eye(10)).max() < 0.08


def test_random_matches_torchhd_statistics():
    d = 10_000
    ours = trits_of(vsa.random(200, d, 0), d).astype(np.float32)
    theirs = torchhd.random(200, d, "MAP", generator=torch.Generator().manual_seed(0)).numpy()
    assert set(np.unique(theirs)) == set(np.unique(ours)) == {-1.0, 1.0}
    assert abs(ours.mean() - theirs.mean()) < 0.01
    off = lambda x: (x @ x.T / d)[~np.eye(len(x), dtype=bool)]
    assert abs(off(ours).std() - off(theirs).std()) < 0.002  # both 1 / sqrt(d)


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9])
def test_random_sparsity_is_exact_per_row(sparsity):
    d = 1001
    t = trits_of(vsa.random(20, d, 5, sparsity=sparsity), d)
    assert np.all((t == 0).sum(1) == round(sparsity * d))
    nz = t[t != 0]
    assert abs((nz == 1).mean() - 0.5) < 0.05


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan")])
def test_sparsity_out_of_range(bad):
    for fn in (vsa.random, vsa.level, vsa.circular):
        with pytest.raises(ValueError, match="sparsity"):
            fn(4, 100, 0, sparsity=bad)
    with pytest.raises(ValueError, match="sparsity"):
        vsa.ItemMemory(100, sparsity=bad)


def test_sparsity_type_and_seed_type():
    with pytest.raises(TypeError, match="sparsity"):
        vsa.random(2, 10, 0, sparsity="0.5")
    with pytest.raises(TypeError, match="seed"):
        vsa.random(2, 10, "seed")


@pytest.mark.parametrize("n", [0, 1, -3])
def test_levels_need_two(n):
    for fn in (vsa.level, vsa.circular):
        with pytest.raises(ValueError, match="num_vectors"):
            fn(n, 100)


@pytest.mark.parametrize("sparsity", [0.0, 0.4])
def test_level_similarity_falls_linearly(sparsity):
    n, d = 11, 10_000
    lv = vsa.level(n, d, 0, sparsity=sparsity)
    c = ternhd.cosine(lv, lv)
    i = np.arange(n)
    want = 1 - np.abs(i[:, None] - i[None, :]) / (n - 1)
    assert np.abs(c - want).max() < 2e-3
    assert abs(c[0, -1]) < 2e-3  # ends orthogonal


def test_level_like_torchhd_on_average():
    n, d = 9, 10_000
    ours = ternhd.cosine(*(vsa.level(n, d, 1),) * 2)
    theirs = torchhd.cosine_similarity(*(torchhd.level(n, d, "MAP", generator=torch.Generator().manual_seed(1)),) * 2)
    assert np.abs(ours - theirs.numpy()).max() < 0.05  # torchhd samples the same profile


@pytest.mark.parametrize("n", [8, 12, 13])
def test_circular_similarity_follows_the_circle(n):
    d = 10_000
    cv = vsa.circular(n, d, 2)
    c = ternhd.cosine(cv, cv)
    i = np.arange(n)
    dist = np.abs(i[:, None] - i[None, :])
    dist = np.minimum(dist, n - dist)
    assert np.abs(c - (1 - 2 * dist / n)).max() < 2e-3
    cv_t = torchhd.circular(n, d, "MAP", generator=torch.Generator().manual_seed(2))
    theirs = torchhd.cosine_similarity(cv_t, cv_t)
    assert np.abs(c - theirs.numpy()).max() < 0.06


def test_memory_per_vector():
    m = vsa.memory_per_vector(10_000)
    assert m["ternhd_packed"] == 2500 and m["float32"] // m["ternhd_packed"] == 16 and m["int8"] // 2500 == 4
    assert vsa.random(3, 10_000, 0).nbytes == 3 * 2500


# ----------------------------------------------------------------------------- algebra = torchhd MAP
@pytest.mark.parametrize("n", [1, 2, 3, 1000])
@pytest.mark.parametrize("dim", [1001, 10_000])
def test_multiset_equals_torchhd(n, dim):
    # the bit-sliced bundle kernel: sums equal torchhd's multiset, the vote its sign (ties 0)
    rng = np.random.default_rng(n + dim)
    t = rand_trits(rng, (n, dim), p_zero=0.0)
    a, A = ternhd.pack_ternary(t), as_map(t)
    theirs = torchhd.multiset(A).numpy()
    assert np.array_equal(vsa.multiset(a, dim=dim), theirs)
    assert np.array_equal(trits_of(vsa.multiset(a, dim=dim, packed=True), dim), np.sign(theirs))


@pytest.mark.parametrize("dim", [64, 1001])
def test_algebra_equals_torchhd(dim):
    rng = np.random.default_rng(dim)
    ta, tb = rand_trits(rng, (6, dim)), rand_trits(rng, (6, dim))
    a, b = ternhd.pack_ternary(ta), ternhd.pack_ternary(tb)
    A, B = as_map(ta), as_map(tb)
    assert np.array_equal(trits_of(vsa.bind(a, b), dim), torchhd.bind(A, B).numpy())
    assert np.array_equal(vsa.multiset(a, dim=dim), torchhd.multiset(A).numpy())
    assert np.array_equal(trits_of(vsa.multiset(a, dim=dim, packed=True), dim), np.sign(torchhd.multiset(A).numpy()))
    assert np.array_equal(trits_of(vsa.bundle(a, b), dim), np.sign(torchhd.bundle(A, B).numpy()))
    for k in (1, 3, -2, dim + 5):
        assert np.array_equal(trits_of(vsa.permute(a, k, dim=dim), dim), torchhd.permute(A, shifts=k).numpy())
    assert np.allclose(vsa.cosine_similarity(a, b), torchhd.cosine_similarity(A, B).numpy(), atol=1e-6)
    assert np.array_equal(vsa.dot_similarity(a, b), torchhd.dot_similarity(A, B).numpy())


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_ngrams_equal_torchhd(n):
    d = 1000
    rng = np.random.default_rng(n)
    t = rand_trits(rng, (3, 9, d), p_zero=0.0)
    p = ternhd.pack_ternary(t)
    # torchhd's ngrams returns zeros for n = 1 (its slice [:-0] is empty; its docs say to use
    # multiset then); ternhd's n = 1 is the multiset
    want = torchhd.ngrams(as_map(t), n).numpy() if n > 1 else torchhd.multiset(as_map(t)).numpy()
    assert np.array_equal(vsa.ngrams(p, n, packed=False), want)
    assert np.array_equal(trits_of(vsa.ngrams(p, n), d), np.sign(want))


def test_sequences_and_hash_table_equal_torchhd():
    d = 1001
    rng = np.random.default_rng(1)
    t, u = rand_trits(rng, (2, 5, d)), rand_trits(rng, (2, 5, d))
    p, q = ternhd.pack_ternary(t), ternhd.pack_ternary(u)
    T, U = as_map(t), as_map(u)
    assert np.array_equal(vsa.bundle_sequence(p, dim=d, packed=False), torchhd.bundle_sequence(T).numpy())
    assert vsa.sequence is vsa.bundle_sequence
    assert np.array_equal(trits_of(vsa.bind_sequence(p, dim=d), d), torchhd.bind_sequence(T).numpy())
    assert np.array_equal(vsa.hash_table(p, q, dim=d, packed=False), torchhd.hash_table(T, U).numpy())


def test_hash_table_unbinds_to_its_values():
    d = 10_000
    keys, values = vsa.random(5, d, 1), vsa.random(5, d, 2)
    record = vsa.hash_table(keys, values)
    got = vsa.cleanup(vsa.bind(record, keys), values, return_index=True)[1]
    assert list(got) == list(range(5))


def test_cleanup_equals_torchhd():
    d = 2000
    rng = np.random.default_rng(4)
    mem = rand_trits(rng, (30, d))
    noisy = mem[7].copy()
    flip = rng.random(d) < 0.3
    noisy[flip] = -noisy[flip]
    got = vsa.cleanup(ternhd.pack_ternary(noisy), ternhd.pack_ternary(mem))
    want = torchhd.cleanup(as_map(noisy), as_map(mem)).numpy()[0]
    assert np.array_equal(trits_of(got, d), want) and np.array_equal(want, mem[7])
    with pytest.raises(KeyError):
        vsa.cleanup(ternhd.pack_ternary(noisy), ternhd.pack_ternary(mem), threshold=0.9)


def test_hard_quantize_ties_to_zero():
    s = np.array([[3, 0, -2, 1]], np.int32)
    assert np.array_equal(trits_of(vsa.hard_quantize(s), 4), [[1, 0, -1, 1]])


def test_bad_packed_input():
    with pytest.raises(TypeError, match="input"):
        vsa.ngrams(np.zeros((4, 8), np.int8), 2)
    with pytest.raises(ValueError, match="n"):
        vsa.ngrams(np.zeros((2, 8), np.uint8), 3)
    with pytest.raises(ValueError, match="input"):
        vsa.permute(np.zeros((2, 8), np.uint8), 1, dim=100)
    with pytest.raises(ValueError, match="values"):
        vsa.hash_table(np.zeros((2, 8), np.uint8), np.zeros((3, 8), np.uint8))


def test_torch_tensors_flow_through():
    d = 1000
    p = vsa.random(6, d, 0, device="cpu")
    assert isinstance(p, torch.Tensor) and p.dtype == torch.uint8
    assert np.array_equal(p.numpy(), vsa.random(6, d, 0))
    out = vsa.ngrams(p, 3, dim=d)
    assert isinstance(out, torch.Tensor)
    assert np.array_equal(out.numpy(), vsa.ngrams(p.numpy(), 3, dim=d))


# ----------------------------------------------------------------------------- item memory
def test_item_memory_lookup_cleanup_and_unknown_symbols():
    d = 4000
    mem = vsa.ItemMemory(d, seed=1)
    ids = mem.add_many("abcdefghij")
    assert ids == list(range(10)) and len(mem) == 10 and "c" in mem
    assert mem.add("c") == 2 and mem.add_many(["a", "zz"]) == [0, 10]
    t = trits_of(mem["e"], d).copy()
    rng = np.random.default_rng(0)
    flip = rng.random(d) < 0.35
    t[flip] = -t[flip]
    assert mem.cleanup(ternhd.pack_ternary(t)) == "e"
    top3 = mem.cleanup(mem.lookup("ab"), k=3)
    assert [r[0] for r in top3] == ["a", "b"] and all(len(r) == 3 for r in top3)
    names, scores = mem.cleanup(mem["b"], return_scores=True)
    assert names == "b" and scores == pytest.approx(1.0)
    with pytest.raises(ValueError, match="symbols: 'q'"):
        mem.lookup("abq")
    with pytest.raises(ValueError, match="symbols"):
        mem.ngrams("xyz", 2)
    with pytest.raises(TypeError, match="name"):
        mem.add(("tuple",))
    with pytest.raises(ValueError, match="already"):
        mem.add("a", mem["b"])


def test_item_memory_vectors_do_not_depend_on_batching():
    one, many = vsa.ItemMemory(512, seed=9), vsa.ItemMemory(512, seed=9)
    for c in "hello":
        one.add(c)
    many.add_many("helo")
    assert one == many
    other = vsa.ItemMemory(512, seed=8)
    other.add("h")
    assert not np.array_equal(other.vectors, one.vectors[:1])  # the seed matters


def test_item_memory_ngrams_equal_the_function_and_torchhd():
    d = 1000
    mem = vsa.ItemMemory(d, seed=2)
    mem.add_many("the quick brown fox")
    text = "the quick brown fox"
    seq = mem.lookup(text)
    assert np.array_equal(mem.ngrams(text, 3), vsa.ngrams(seq, 3, dim=d))
    want = torchhd.ngrams(as_map(trits_of(seq, d)), 3).numpy()
    assert np.array_equal(mem.ngrams(text, 3, packed=False), want)
    assert np.array_equal(mem.bundle_sequence("fox", packed=False),
                          torchhd.bundle_sequence(as_map(trits_of(mem.lookup("fox"), d))).numpy())
    rec = mem.hash_table("tq", "qt")
    assert mem.cleanup(vsa.bind(rec, mem["t"])) == "q"


def test_item_memory_save_load_roundtrip(tmp_path):
    mem = vsa.ItemMemory(1001, seed=4, sparsity=0.2)
    mem.add_many(["alpha", "beta", 7, "gamma"])
    path = tmp_path / "items.tnhd"
    n = mem.save(path)
    assert n == os.path.getsize(path)
    assert [p.name for p in tmp_path.iterdir()] == ["items.tnhd"]  # no temporary file left
    back = vsa.ItemMemory.load(path)
    assert back == mem and back.names == ["alpha", "beta", 7, "gamma"] and back.sparsity == 0.2
    assert back.cleanup(mem["gamma"]) == "gamma"
    pkt = ternhd.packet.load(path)  # a plain packet: names in the meta JSON
    assert pkt.meta["items"] == ["alpha", "beta", 7, "gamma"] and pkt.dim == 1001
    assert vsa.ItemMemory.loads(mem.dumps()) == mem
    # the added vectors of the loaded memory continue the same sequence
    mem.add("delta")
    back.add("delta")
    assert back == mem
    with pytest.raises(ternhd.PacketError, match="ItemMemory"):
        vsa.ItemMemory.loads(ternhd.packet.dumps(mem.vectors, 1001))
    with pytest.raises(ternhd.PacketError):
        vsa.ItemMemory.loads(mem.dumps()[:-3])


def test_item_memory_save_is_atomic_on_failure(tmp_path, monkeypatch):
    mem = vsa.ItemMemory(64)
    mem.add_many("ab")
    path = tmp_path / "m.tnhd"
    mem.save(path)
    before = path.read_bytes()
    mem.add("c")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        mem.save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.tnhd"]


def test_item_memory_explicit_vectors_and_torch():
    d = 256
    vecs = vsa.random(3, d, 0)
    mem = vsa.ItemMemory(d, device="cpu")
    mem.add_many(["x", "y", "z"], vecs)
    assert isinstance(mem.vectors, torch.Tensor)
    assert mem.cleanup(torch.from_numpy(vecs[1])) == "y"
    with pytest.raises(ValueError, match="vectors"):
        mem.add_many(["u"], vecs)
    bad = vecs[0].copy()
    bad[0] = 0xFF
    with pytest.raises(ValueError):
        mem.add("w", bad)
    with pytest.raises(ValueError, match="empty"):
        vsa.ItemMemory(d).cleanup(vecs[0])


# ----------------------------------------------------------------------------- classifiers
def noisy_classes(n_classes, n, d, noise, seed):
    rng = np.random.default_rng(seed)
    protos = trits_of(vsa.random(n_classes, d, seed + 100), d)
    y = rng.integers(0, n_classes, n)
    t = protos[y].copy()
    flip = rng.random(t.shape) < noise
    t[flip] = -t[flip]
    zero = rng.random(t.shape) < 0.2
    t[zero] = 0
    return ternhd.pack_ternary(t), y, t


def test_centroid_known_answer_and_torchhd_sums():
    d = 2000
    X, y, t = noisy_classes(5, 1200, d, 0.42, 0)
    rng = np.random.default_rng(10)
    protos = trits_of(vsa.random(5, d, 100), d)  # the prototypes noisy_classes(..., seed=0) drew from
    y2 = rng.integers(0, 5, 400)
    t2 = protos[y2].copy()
    flip = rng.random(t2.shape) < 0.42
    t2[flip] = -t2[flip]
    X2 = ternhd.pack_ternary(t2)
    clf = vsa.Centroid().fit(X, y)
    assert clf.score(X2, y2) > 0.95
    assert clf.score(X2, (y2 + 1) % 5) < 0.05
    model = torchhd.models.Centroid(d, 5)
    model.add(torch.from_numpy(t.astype(np.float32)), torch.from_numpy(y))
    assert np.array_equal(clf.sums_, model.weight.detach().numpy().astype(np.int32))
    labels = np.array(["w", "x", "y", "z", "v"])[y]
    clf2 = vsa.Centroid(tau=0.5).fit(X, labels)
    assert list(clf2.classes_) == ["v", "w", "x", "y", "z"]
    assert clf2.score(X2, np.array(["w", "x", "y", "z", "v"])[y2]) > 0.95
    assert clf.decision_function(X2[:3]).shape == (3, 5)


def test_centroid_errors():
    X, y, _ = noisy_classes(3, 50, 256, 0.1, 2)
    with pytest.raises(RuntimeError, match="fit"):
        vsa.Centroid().predict(X)
    clf = vsa.Centroid().fit(X, y)
    with pytest.raises(ValueError, match="X"):
        clf.predict(X[:, :10])
    with pytest.raises(ValueError, match="y"):
        vsa.Centroid().fit(X, y[:-1])
    with pytest.raises(TypeError, match="X"):
        vsa.Centroid().fit(X.astype(np.int8), y)


def test_adapthd_update_rule_matches_reference():
    d = 512
    X, y, t = noisy_classes(4, 300, d, 0.47, 3)
    clf = vsa.AdaptHD(epochs=1, batch_size=300, seed=None, lr=2).fit(X, y)
    # independent reference: numpy float arithmetic on the unpacked trits
    sums = np.stack([t[y == c].sum(0) for c in range(4)]).astype(np.int64)
    protos = np.sign(sums)
    norm = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    pred = np.argmax(norm(t.astype(float)) @ norm(protos.astype(float)).T, axis=1)
    wrong = pred != y
    for c in range(4):
        sums[c] += 2 * (t[wrong & (y == c)].sum(0) - t[wrong & (pred == c)].sum(0))
    assert wrong.sum() == clf.n_updates_[0] > 0
    assert np.array_equal(clf.sums_, sums)


def test_adapthd_beats_centroid_on_imbalanced_data():
    d = 1000
    rng = np.random.default_rng(5)
    # two overlapping classes: class 1 is class 0 with 30% of the trits changed, and imbalanced
    base = trits_of(vsa.random(1, d, 5), d)[0]
    other = base.copy()
    ch = rng.random(d) < 0.3
    other[ch] = -other[ch]
    y = (rng.random(2000) < 0.15).astype(int)
    t = np.where(y[:, None] == 1, other, base).astype(np.int8)
    flip = rng.random(t.shape) < 0.4
    t[flip] = -t[flip]
    X = ternhd.pack_ternary(t)
    cen = vsa.Centroid().fit(X[:1500], y[:1500])
    ada = vsa.AdaptHD(epochs=10).fit(X[:1500], y[:1500])
    assert ada.score(X[:1500], y[:1500]) >= cen.score(X[:1500], y[:1500])
    assert ada.score(X[1500:], y[1500:]) >= cen.score(X[1500:], y[1500:]) - 0.01
    assert ada.score(X[1500:], y[1500:]) > 0.9
    assert repr(ada).startswith("AdaptHD(") and ada.get_params()["epochs"] == 10


def test_adapthd_argument_checks_and_torch_input():
    X, y, _ = noisy_classes(3, 60, 256, 0.3, 4)
    with pytest.raises(ValueError, match="epochs"):
        vsa.AdaptHD(epochs=-1).fit(X, y)
    with pytest.raises(ValueError, match="lr"):
        vsa.AdaptHD(lr=0).fit(X, y)
    a = vsa.AdaptHD(epochs=3).fit(torch.from_numpy(X), torch.from_numpy(y))
    b = vsa.AdaptHD(epochs=3).fit(X, y)
    assert np.array_equal(a.sums_.numpy(), b.sums_)
    assert np.array_equal(a.predict(torch.from_numpy(X)), b.predict(X))


# ----------------------------------------------------------------------------- the runnable example
def test_example_hdc_topics_tiny(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "hdc_topics.py"
    spec = importlib.util.spec_from_file_location("hdc_topics", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if mod.data_dir() is None:
        pytest.skip("AG News (shared/data/agnews) not found; set TERNHD_DATA")
    res = mod.main(["--n-train", "120", "--n-test", "80", "--dim", "2048", "--epochs", "2"])
    out = capsys.readouterr().out
    assert "| ternhd" in out and "| torchhd" in out
    for side in ("ternhd", "torchhd"):
        assert res[side]["acc_centroid"] > 0.4  # 4 topics: chance is 0.25
    assert abs(res["ternhd"]["acc_centroid"] - res["torchhd"]["acc_centroid"]) < 0.12
    assert res["torchhd"]["bytes_per_doc"] == 16 * res["ternhd"]["bytes_per_doc"]


# ----------------------------------------------------------------------------- GPU (runs where CUDA is)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the Triton kernels)")
def test_cuda_tensors_give_the_cpu_results():
    d = 2048
    p_cpu = vsa.random(40, d, 0)
    p = vsa.random(40, d, 0, device="cuda")
    assert p.is_cuda and np.array_equal(p.cpu().numpy(), p_cpu)
    assert np.array_equal(vsa.ngrams(p.reshape(4, 10, -1), 3, dim=d).cpu().numpy(),
                          vsa.ngrams(p_cpu.reshape(4, 10, -1), 3, dim=d))
    assert np.array_equal(vsa.level(9, d, 1, device="cuda").cpu().numpy(), vsa.level(9, d, 1))
    X, y, _ = noisy_classes(3, 200, d, 0.4, 6)
    for cls in (vsa.Centroid, vsa.AdaptHD):
        a, b = cls().fit(torch.from_numpy(X).cuda(), y), cls().fit(X, y)
        assert np.array_equal(a.sums_.cpu().numpy(), b.sums_)
        assert np.array_equal(a.predict(torch.from_numpy(X).cuda()), b.predict(X))
    mem = vsa.ItemMemory(d, seed=3, device="cuda")
    mem.add_many("abcdef")
    ref = vsa.ItemMemory(d, seed=3)
    ref.add_many("abcdef")
    assert np.array_equal(mem.ngrams("fadebc").cpu().numpy(), ref.ngrams("fadebc"))
    assert mem.cleanup(mem.lookup("cab")) == ["c", "a", "b"]
