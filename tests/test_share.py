"""Knowledge without the teacher model: the two-packet stream, the student's map, and bad files."""
import io

import numpy as np
import pytest

import ternhd
from ternhd import HDCEncoder, PacketError
from ternhd.knowledge import SharedKnowledge, SharedStudent, back_project, read_shared


def _data(seed=0, n=1500, k=3, d_t=32, d_s=24, latent=10):
    """A shared latent with class structure, seen by two 'models' through different random maps
    (+ a tanh on the student side and noise on both)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.standard_normal((k, latent))[y] * 1.2 + rng.standard_normal((n, latent))
    t = z @ rng.standard_normal((latent, d_t)) + 0.3 * rng.standard_normal((n, d_t)) + 1.0
    s = np.tanh(0.4 * z @ rng.standard_normal((latent, d_s))) + 0.05 * rng.standard_normal((n, d_s))
    return t.astype(np.float32), s.astype(np.float32), y.astype(np.int64)


def _setup(dim=2048):
    t, s, y = _data()
    tr, an, te = slice(0, 800), slice(800, 1100), slice(1100, 1500)  # disjoint train / anchor / test texts
    enc = HDCEncoder(t.shape[1], dim=dim, tau=0.3, seed=7)
    texts = [f"anchor text {i}" for i in range(300)]
    kn = SharedKnowledge.from_teacher(enc, t[tr], y[tr], t[an], texts, classes=["a", "b", "c"],
                                      info={"teacher": "synthetic"})
    return kn, t, s, y, tr, an, te


def test_file_route_equals_in_process_and_transfers(tmp_path):
    kn, t, s, y, tr, an, te = _setup()
    path = tmp_path / "knowledge.tnhd"
    nbytes = kn.save(path, model_id="synthetic-teacher")
    assert path.stat().st_size == nbytes
    got = read_shared(path)
    assert got.anchor_texts == kn.anchor_texts and got.classifier.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(got.anchors, kn.anchors)
    np.testing.assert_array_equal(got.classifier.vectors, kn.classifier.vectors)
    # the student has only its own embeddings of the anchor texts and of its test texts
    in_process = SharedStudent(kn, s[an])
    from_file = SharedStudent(got, s[an])
    assert from_file.alpha == in_process.alpha
    np.testing.assert_array_equal(from_file.predict_ids(s[te]), in_process.predict_ids(s[te]))
    acc = from_file.score(s[te], y[te])
    assert acc == in_process.score(s[te], y[te])
    teacher_own = kn.classifier.score(t[te], y[te])   # the teacher's prototypes on its own test embeddings
    assert teacher_own > 0.8
    assert acc > 0.8 and acc > teacher_own - 0.1, (acc, teacher_own)
    # control: the same student with its anchors shuffled (the map learns nothing true) is near chance
    rng = np.random.default_rng(1)
    ctrl = SharedStudent(got, s[an][rng.permutation(300)]).score(s[te], y[te])
    assert ctrl < 0.6, ctrl


def test_back_project_estimates_the_teacher_embedding():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 16)).astype(np.float32)
    enc = HDCEncoder(16, dim=8192, seed=1)
    est = back_project(enc, enc.encode(x, packed=True))
    cos = (est * x).sum(1) / np.linalg.norm(est, axis=1) / np.linalg.norm(x, axis=1)
    assert cos.min() > 0.95, cos


def test_bad_and_truncated_files_raise_packet_error(tmp_path):
    kn, t, s, y, tr, an, te = _setup(dim=256)
    buf = io.BytesIO()
    kn.save(buf)
    blob = buf.getvalue()
    read_shared(blob)
    for bad in (blob[:-1], blob[:100], blob[: len(blob) // 2], b"", b"not a packet at all" * 10):
        with pytest.raises(PacketError):
            read_shared(bad)
    flipped = bytearray(blob)
    flipped[len(blob) - 10] ^= 0xFF
    with pytest.raises(PacketError):
        read_shared(bytes(flipped))
    pkts = ternhd.packet.load_stream(blob)
    with pytest.raises(PacketError, match="^stream"):
        read_shared(blob + pkts[1].dumps())
    with pytest.raises(PacketError, match="^stream"):
        read_shared(pkts[0].dumps())
    # anchors from another encoder, texts that do not match the vectors, no share entry
    other = pkts[1].dumps(seed=123)
    with pytest.raises(PacketError, match="^meta"):
        read_shared(pkts[0].dumps() + other)
    short = pkts[1].dumps(anchor_texts=["only one"])
    with pytest.raises(PacketError, match="^anchor_texts"):
        read_shared(pkts[0].dumps() + short)
    meta = {k: v for k, v in pkts[0].meta.items() if k != "share"}
    no_share = ternhd.packet.dumps(pkts[0].vectors, pkts[0].dim, kind="knowledge", labels=pkts[0].labels, **meta)
    with pytest.raises(PacketError, match="^meta"):
        read_shared(no_share + pkts[1].dumps())
    p = tmp_path / "trunc.tnhd"
    p.write_bytes(blob[:-5])
    with pytest.raises(PacketError):
        read_shared(str(p))
    with pytest.raises(ValueError, match="^student_anchors"):
        SharedStudent(kn, s[an][:10])


POS = "great wonderful moving brilliant funny charming superb delightful".split()
NEG = "awful boring dull terrible clumsy tedious bland dreadful".split()
FILL = "the film movie plot acting story script cast was is a and really quite".split()


def test_cli_share_teach_and_learn(tmp_path, capsys):
    from ternhd import cli

    rng = np.random.default_rng(0)
    lines = ["label\tsentence"]
    for i in range(500):
        y = i % 2
        words = list(rng.choice(FILL, 4)) + list(rng.choice(POS if y else NEG, 2)) + [f"w{i}"]
        rng.shuffle(words)
        lines.append(f"{y}\t{' '.join(words)}")
    data = tmp_path / "toy.tsv"
    data.write_text("\n".join(lines) + "\n")
    kfile, out = tmp_path / "knowledge.tnhd", tmp_path / "learn.json"
    common = ["--dataset", str(data), "--seed", "3", "--n-train", "200", "--n-test", "100", "--n-anchor", "150",
              "--quiet"]
    assert cli.main(["share", "teach", "--teacher", "lsa:32", "--out", str(kfile), "--dim", "1024"] + common) == 0
    assert cli.main(["share", "learn", str(kfile), "--student", "lsa:24", "--json", str(out)] + common) == 0
    import json

    res = json.loads(out.read_text())
    assert res["teacher"] == "lsa:32" and res["student"] == "lsa:24" and res["n_anchor"] == 150
    assert res["accuracy"] > 0.75, res
    assert "accuracy" in capsys.readouterr().out
    # the file route equals the in-process protocol with the same aligner (backproject), splits and seed
    from ternhd.pipeline.transfer import TransferConfig, run_transfer

    for center in ("none", "mean"):
        kf = tmp_path / f"k-{center}.tnhd"
        assert cli.main(["share", "teach", "--teacher", "lsa:32", "--out", str(kf), "--dim", "1024",
                         "--center", center] + common) == 0
        assert cli.main(["share", "learn", str(kf), "--student", "lsa:24", "--json", str(out)] + common) == 0
        got = json.loads(out.read_text())
        assert got["center"] == center
        cfg = TransferConfig(teacher="lsa:32", student="lsa:24", dataset=str(data), seeds=(3,), n_train=200,
                             n_test=100, n_anchor=150, pool=0, cache_dir="", dim=1024, align="backproject",
                             classifiers=("centroid",), center=center, progress=False)
        inproc = run_transfer(cfg, log=lambda m: None)["per_seed"][0]
        assert inproc["sizes"]["test"] == got["n_test"]
        assert inproc["transfer"]["centroid"] == got["accuracy"], (center, inproc["transfer"], got)
    kfile.write_bytes(kfile.read_bytes()[:-3])
    with pytest.raises(PacketError):
        cli.main(["share", "learn", str(kfile), "--student", "lsa:24"] + common)
