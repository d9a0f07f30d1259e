"""Protocol pieces: efficiency arithmetic, splits, loaders, classifiers, transfer on synthetic data."""

import json

import numpy as np
import pytest

import ternhd
from ternhd.pipeline.classify import CentroidClassifier, LogRegClassifier, accuracy
from ternhd.pipeline.datasets import TextDataset, data_dir, load_dataset, load_file, make_splits
from ternhd.pipeline.transfer import (
    SeedData,
    efficiency,
    efficiency_above_chance,
    mean_std,
    summarize,
    transfer_metrics,
)


def test_efficiency_arithmetic():
    assert efficiency(0.75, 0.8) == pytest.approx(0.9375)
    assert efficiency(0.8, 0.8) == 1.0
    assert efficiency(0.9, 0.8) == pytest.approx(1.125)  # transfer may beat the ceiling
    assert np.isnan(efficiency(0.5, 0.0))
    assert efficiency_above_chance(0.5, 0.65, 0.5) == 0.0  # chance-level transfer keeps nothing...
    assert efficiency(0.5, 0.65) == pytest.approx(0.769, abs=1e-3)  # ...though eta reads 77%
    assert efficiency_above_chance(0.6, 0.7, 0.5) == pytest.approx(0.5)
    assert np.isnan(efficiency_above_chance(0.6, 0.5, 0.5))
    ms = mean_std([0.9, 0.8, 1.0])
    assert ms["mean"] == pytest.approx(0.9) and ms["std"] == pytest.approx(np.std([0.9, 0.8, 1.0])) and ms["n"] == 3
    s = summarize([{"a": 1.0, "b": {"c": 2.0}}, {"a": 3.0, "b": {"c": 4.0}}])
    assert s["a"]["mean"] == 2.0 and s["b"]["c"]["std"] == 1.0


def _toy(n=400, k=2, test_pool=False):
    texts = [f"text number {i} class {i % k}" for i in range(n)]
    labels = np.arange(n) % k
    if test_pool:
        return TextDataset(
            "toy", texts, labels, [str(c) for c in range(k)], [f"test {i}" for i in range(100)], np.arange(100) % k
        )
    return TextDataset("toy", texts, labels, [str(c) for c in range(k)])


@pytest.mark.parametrize("pool", [False, True])
def test_splits_disjoint_sized_seeded(pool):
    ds = _toy(test_pool=pool)
    sp = make_splits(ds, seed=7, n_train=200, n_test=50, n_anchor=60, val_fraction=0.1)
    tr, va, te, an = set(sp.train[0]), set(sp.val[0]), set(sp.test[0]), set(sp.anchor)
    assert (len(tr), len(va), len(te), len(an)) == (180, 20, 50, 60)
    assert not (tr & va or tr & te or tr & an or va & te or va & an or te & an)
    assert abs(int((sp.train[1] == 0).sum()) - 90) <= 10  # stratified
    again = make_splits(ds, seed=7, n_train=200, n_test=50, n_anchor=60)
    assert again.train[0] == sp.train[0] and again.anchor == sp.anchor
    other = make_splits(ds, seed=8, n_train=200, n_test=50, n_anchor=60)
    assert other.train[0] != sp.train[0]
    with pytest.raises(ValueError, match="^n_train"):
        make_splits(ds, seed=0, n_train=1000, n_test=50, n_anchor=60)


def test_local_files(tmp_path):
    (tmp_path / "a.tsv").write_text("label\tsentence\n1\tgood\n0\tbad\n")
    (tmp_path / "b.csv").write_text('label,text\npos,"nice, really"\nneg,awful\n')
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"text": "x", "label": 2}) + "\n" + json.dumps({"text": "y", "label": 3}) + "\n"
    )
    a, b, c = load_file(tmp_path / "a.tsv"), load_file(tmp_path / "b.csv"), load_file(tmp_path / "c.jsonl")
    assert a.texts == ["good", "bad"] and list(a.labels) == [1, 0]
    assert b.texts == ["nice, really", "awful"] and b.label_names == ["neg", "pos"] and list(b.labels) == [1, 0]
    assert list(c.labels) == [0, 1]
    with pytest.raises(ValueError, match="^path"):
        load_file(tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="^name"):
        load_dataset("no-such-dataset")


def test_offline_layout_via_env(tmp_path, monkeypatch):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "train.tsv").write_text(
        "label\tsentence\n" + "".join(f"{i % 2}\tphrase {i}\n" for i in range(20))
    )
    (tmp_path / "sst2" / "dev.tsv").write_text(
        "label\tcontent\n" + "".join(f"{i % 2}\tsentence {i}\n" for i in range(8))
    )
    (tmp_path / "agnews").mkdir()
    (tmp_path / "agnews" / "test.csv").write_text(
        'label,title,description\n3,"Fears","Unions say, they"\n1,"War","News\\\\wire"\n'
    )
    monkeypatch.setenv("TERNHD_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    sst = load_dataset("sst2")
    assert len(sst.texts) == 20 and len(sst.test_texts) == 8 and sst.n_classes == 2
    ag = load_dataset("ag_news")
    assert ag.texts[0] == "Fears. Unions say, they" and list(ag.labels) == [2, 0] and ag.n_classes == 4


def _blobs(n, d, k, seed, shift=3.0):
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((k, d)) * shift
    y = np.arange(n) % k
    return (means[y] + rng.standard_normal((n, d))).astype(np.float32), y


def test_classifiers_on_packed_vectors():
    x, y = _blobs(600, 32, 3, 0)
    enc = ternhd.HDCEncoder(32, dim=1024, seed=1)
    p = enc.encode(x, packed=True)
    lr = LogRegClassifier(dim=1024).fit_select(p[:400], y[:400], p[400:500], y[400:500])
    assert lr.C in lr.val_scores and lr.score(p[500:], y[500:]) > 0.95
    cc = CentroidClassifier(1024).fit_select(p[:400], y[:400], p[400:500], y[400:500])
    assert cc.prototypes_.dtype == np.uint8 and cc.prototypes_.shape == (3, 256)
    assert cc.score(p[500:], y[500:]) > 0.95
    fl = LogRegClassifier().fit(x[:400], y[:400])
    assert fl.score(x[500:], y[500:]) > 0.95
    assert accuracy([1, 2, 3], [1, 2, 0]) == pytest.approx(2 / 3)
    with pytest.raises(TypeError, match="^x"):
        LogRegClassifier(dim=1024).fit(x[:10], y[:10])


def test_transfer_metrics_rotated_student():
    """Student = a rotated, noisier view of the teacher: Procrustes transfer reaches the ceiling, none does not."""
    from ternhd.pipeline.datasets import Split

    x, y = _blobs(900, 24, 2, 3, shift=1.0)
    q, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((24, 24)))
    s = (x @ q + 0.1 * np.random.default_rng(5).standard_normal(x.shape)).astype(np.float32)
    parts = {"train": slice(0, 450), "val": slice(450, 500), "test": slice(500, 700), "anchor": slice(700, 900)}
    sp = Split(
        0, ([""] * 450, y[parts["train"]]), ([""] * 50, y[parts["val"]]), ([""] * 200, y[parts["test"]]), [""] * 200
    )
    sd = SeedData(
        sp,
        {k: x[v] for k, v in parts.items()},
        {k: s[v] for k, v in parts.items()},
        {k: y[parts[k]] for k in ("train", "val", "test")},
    )
    pro = transfer_metrics(sd, "procrustes", dim=1024, classifiers=("logreg", "centroid"))
    none = transfer_metrics(sd, "none", dim=1024, classifiers=("logreg",))
    assert pro["top1"] > 0.5 and pro["pair_cosine"] > 0.9
    for c in ("logreg", "centroid"):
        assert pro["efficiency"][c] == pytest.approx(pro["transfer"][c] / pro["ceiling"][c])
        assert pro["efficiency"][c] > 0.95 and pro["efficiency_above_chance"][c] > 0.9
    assert pro["chance"] == 0.5
    assert none["transfer"]["logreg"] < pro["transfer"]["logreg"] - 0.1
    rev = transfer_metrics(sd, "procrustes", dim=1024, classifiers=("logreg",), reverse=True)
    assert rev["efficiency"]["logreg"] > 0.95


def test_pair_encode_modes():
    from ternhd.pipeline.sentpairs import pair_encode

    rng = np.random.default_rng(0)
    a, b = rng.integers(-1, 2, (5, 10)).astype(np.int8), rng.integers(-1, 2, (5, 10)).astype(np.int8)
    pa, pb = ternhd.pack_ternary(a), ternhd.pack_ternary(b)
    np.testing.assert_array_equal(ternhd.unpack_ternary(pair_encode(pa, pb, 10, "bind"), 10), a * b)
    np.testing.assert_array_equal(ternhd.unpack_ternary(pair_encode(pa, pb, 10, "concat"), 20), np.hstack([a, b]))
    want = np.hstack([a, b, (a != b).astype(np.int8), a * b])
    np.testing.assert_array_equal(ternhd.unpack_ternary(pair_encode(pa, pb, 10, "infersent"), 40), want)
    with pytest.raises(ValueError, match="^mode"):
        pair_encode(pa, pb, 10, "sum")


def test_same_label_pairs_and_pair_transfer(tmp_path):
    from ternhd.pipeline.sentpairs import run_pair_transfer, same_label_pairs
    from ternhd.pipeline.transfer import TransferConfig

    ds = _toy(n=300, k=3)
    pd, used = same_label_pairs(ds, 100, seed=1)
    assert pd.labels.mean() == 0.5 and len(pd.s1) == 100
    lab = {t: y for t, y in zip(ds.texts, ds.labels)}
    assert all((lab[a] == lab[b]) == bool(y) for a, b, y in zip(pd.s1, pd.s2, pd.labels))
    rng = np.random.default_rng(2)
    rows = ["label\ts1\ts2"]
    for i in range(160):
        y = i % 2
        w = rng.choice(["red", "blue", "green", "gold"])
        rows.append(f"{y}\tthe {w} item {i}\t{'the ' + w if y else 'no'} thing {i + 1000}")
    (tmp_path / "p.tsv").write_text("\n".join(rows) + "\n")
    cfg = TransferConfig(
        teacher="lsa:16",
        student="lsa:12",
        align="procrustes",
        dim=256,
        seeds=(0,),
        n_train=120,
        n_test=40,
        n_anchor=60,
        cache_dir="",
        progress=False,
    )
    res = run_pair_transfer(cfg, str(tmp_path / "p.tsv"), modes=("bind", "infersent"), log=lambda m: None)
    s = res["per_seed"][0]
    for m in ("bind", "infersent"):
        assert 0.0 <= s[m]["transfer"] <= 1.0
        assert s[m]["efficiency"] == pytest.approx(s[m]["transfer"] / s[m]["ceiling"])


def _offset_seed(offset=5000.0, seed=11):
    """Two classes in 24 dims plus one huge dimension shared by every text (what a decoder's residual
    stream has): the student's rows carry it, the teacher's are a rotated clean view."""
    from ternhd.pipeline.datasets import Split

    x, y = _blobs(900, 24, 2, seed, shift=0.6)
    q, _ = np.linalg.qr(np.random.default_rng(seed + 1).standard_normal((24, 24)))
    s = np.concatenate([x @ q, np.full((len(x), 1), offset, np.float32)], 1)
    s = (s + 0.1 * np.random.default_rng(seed + 2).standard_normal(s.shape)).astype(np.float32)
    parts = {"train": slice(0, 450), "val": slice(450, 550), "test": slice(550, 700), "anchor": slice(700, 900)}
    sp = Split(0, ([""] * 450, y[parts["train"]]), ([""] * 100, y[parts["val"]]), ([""] * 150, y[parts["test"]]),
               [""] * 200)
    return SeedData(sp, {k: x[v] for k, v in parts.items()}, {k: s[v] for k, v in parts.items()},
                    {k: y[parts[k]] for k in ("train", "val", "test")})


def test_centering_fixes_the_centroid_ceiling_of_a_shared_offset():
    from ternhd.pipeline.transfer import centered, quantization_metrics

    sd = _offset_seed()
    raw = quantization_metrics(sd, 2048, proj_seed=3, classifiers=("centroid",), float_baseline=False)
    cen = quantization_metrics(centered(sd, "mean"), 2048, proj_seed=3, classifiers=("centroid",),
                               float_baseline=False)
    std = quantization_metrics(centered(sd, "standardize"), 2048, proj_seed=3, classifiers=("centroid",),
                               float_baseline=False)
    # the offset makes every HDC vector (and both prototypes) nearly the same: near chance
    assert raw["student"]["hdc"]["centroid"] < 0.65, raw
    assert cen["student"]["hdc"]["centroid"] > 0.85, cen
    assert std["student"]["hdc"]["centroid"] > 0.85, std
    # the teacher had no offset: centering leaves its accuracy where it was
    assert abs(cen["teacher"]["hdc"]["centroid"] - raw["teacher"]["hdc"]["centroid"]) < 0.08


def test_center_parts_uses_only_the_fit_rows():
    from ternhd.pipeline.transfer import center_parts

    rng = np.random.default_rng(0)
    parts = {k: (rng.standard_normal((n, 5)) * [1, 2, 3, 4, 0] + 7).astype(np.float32)
             for k, n in (("train", 30), ("val", 10), ("test", 20), ("anchor", 40))}
    out = center_parts(parts, "standardize")
    np.testing.assert_allclose(out["anchor"].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out["anchor"][:, :4].std(0), 1, rtol=1e-4)
    np.testing.assert_allclose(out["anchor"][:, 4], 0, atol=1e-5)  # a constant dimension is not divided by 0
    mu, sd = parts["anchor"].astype(np.float64).mean(0), parts["anchor"].astype(np.float64).std(0)
    np.testing.assert_allclose(out["test"][:, :4], ((parts["test"] - mu) / np.where(sd > 0, sd, 1))[:, :4],
                               rtol=1e-4, atol=1e-4)
    moved = dict(parts, test=parts["test"] + 100)  # the test rows never enter the statistics
    np.testing.assert_array_equal(center_parts(moved, "mean")["train"], center_parts(parts, "mean")["train"])
    assert center_parts(parts, "none") is parts
    with pytest.raises(ValueError, match="^mode"):
        center_parts(parts, "whiten")
    with pytest.raises(ValueError, match="^fit_on"):
        center_parts(parts, "mean", fit_on="pool")


def test_validation_transfer_ranks_aligners_without_the_test_split():
    from ternhd.pipeline.transfer import swapped, validation_transfer

    sd = _offset_seed(offset=0.0, seed=5)
    pro = validation_transfer(sd, "procrustes", dim=1024, proj_seed=1)
    none = validation_transfer(sd, "none", dim=1024, proj_seed=1)
    assert pro["transfer"]["logreg"] > 0.85 and pro["transfer"]["logreg"] > none["transfer"]["logreg"] + 0.15
    assert pro["alignment"]["mean_rank"] < none["alignment"]["mean_rank"]
    assert set(pro["ceiling"]) == {"logreg", "centroid"}
    # the test rows play no part: scrambling them changes nothing
    broken = SeedData(sd.split, dict(sd.teacher, test=sd.teacher["test"][::-1] * 0),
                      dict(sd.student, test=sd.student["test"] * 0), sd.labels)
    assert validation_transfer(broken, "procrustes", dim=1024, proj_seed=1) == pro
    rev = validation_transfer(swapped(sd), "procrustes", dim=1024, proj_seed=1)
    assert rev["transfer"]["logreg"] > 0.85


def test_alignment_stage_hdc_aligns_the_ternary_vectors():
    from ternhd.packing import unpack_ternary
    from ternhd.pipeline.transfer import hdc_stage

    sd = _offset_seed(offset=0.0, seed=5)
    h = hdc_stage(sd.student, 1024, 0.3, "std", 2)
    enc = ternhd.HDCEncoder(sd.student["train"].shape[1], dim=1024, tau=0.3, seed=2)
    np.testing.assert_array_equal(h["test"], unpack_ternary(enc.encode(sd.student["test"], packed=True), 1024))
    assert set(np.unique(h["train"])) == {-1.0, 0.0, 1.0}
    pro = transfer_metrics(sd, "procrustes", dim=1024, classifiers=("logreg",), stage="hdc", aligned_ceiling=False)
    none = transfer_metrics(sd, "none", dim=1024, classifiers=("logreg",), stage="hdc", aligned_ceiling=False)
    flt = transfer_metrics(sd, "procrustes", dim=1024, classifiers=("logreg",), aligned_ceiling=False)
    assert pro["stage"] == "hdc" and flt["stage"] == "float"
    assert pro["ceiling"] == flt["ceiling"]  # the ceiling is the student's own HDC accuracy either way
    assert pro["transfer"]["logreg"] > 0.9 and none["transfer"]["logreg"] < 0.6
    assert pro["alignment"]["mean_rank"] < 2 < none["alignment"]["mean_rank"]
    with pytest.raises(ValueError, match="^stage"):
        transfer_metrics(sd, "procrustes", dim=1024, classifiers=("logreg",), stage="both")


def test_choose_alignment_picks_the_best_validation_candidate_of_aligner_x_stage():
    from ternhd.pipeline.transfer import STAGES, choose_alignment, validation_transfer

    seeds = [_offset_seed(offset=0.0, seed=5), _offset_seed(offset=0.0, seed=6)]
    rec = choose_alignment(seeds, ["none", "procrustes"], STAGES, dim=1024, skip={})
    assert list(rec["val_transfer"]) == ["none/float", "none/hdc", "procrustes/float", "procrustes/hdc"]
    for nm, v in rec["val_transfer"].items():
        a, st = nm.split("/")
        direct = [validation_transfer(sd, a, dim=1024, proj_seed=sd.split.seed, classifiers=("logreg",),
                                      ceiling=False, stage=st)["transfer"]["logreg"] for sd in seeds]
        assert rec["val_per_seed"][nm] == direct and v == pytest.approx(np.mean(direct))
    assert rec["chosen"] == max(rec["val_transfer"], key=rec["val_transfer"].get)
    assert rec["align"] == "procrustes" and rec["stage"] in STAGES
    assert "cca-paper" in rec["not_candidates"]
    # the test rows play no part in the choice
    broken = [SeedData(sd.split, dict(sd.teacher, test=sd.teacher["test"] * 0),
                       dict(sd.student, test=sd.student["test"][::-1]), sd.labels) for sd in seeds]
    assert choose_alignment(broken, ["none", "procrustes"], STAGES, dim=1024, skip={})["val_transfer"] == \
        rec["val_transfer"]
    # by default the pairs of NOT_AUTO_PAIRS are left out, and the record says why
    dflt = choose_alignment(seeds, ["none", "procrustes"], STAGES, dim=1024)
    assert list(dflt["val_transfer"]) == ["none/float", "none/hdc", "procrustes/float"]
    assert "procrustes/hdc" in dflt["not_candidates"]
    with pytest.raises(ValueError, match="^stages"):
        choose_alignment(seeds, ["procrustes"], ["float", "both"], dim=1024)


def test_run_transfer_align_stage_auto_uses_and_records_the_validation_choice():
    from ternhd.pipeline.transfer import TransferConfig, centered, run_transfer

    sd = _offset_seed(offset=40.0, seed=5)
    cfg = TransferConfig(align="ridge", align_stage="auto", dim=1024, classifiers=("logreg",), seeds=(0,),
                         progress=False, cache_dir="")
    res = run_transfer(cfg, log=lambda m: None, data=[sd])
    sel = res["alignment_selection"]
    assert set(sel["val_transfer"]) == {"ridge/float", "ridge/hdc"}
    assert res["config"]["requested"] == {"align": "ridge", "align_stage": "auto"}
    assert res["config"]["align_stage"] == sel["stage"] and res["config"]["align"] == "ridge"
    assert sel["chosen"] == max(sel["val_transfer"], key=sel["val_transfer"].get)
    # the run's numbers are those of the chosen stage on the centred data
    m = transfer_metrics(centered(sd, cfg.center), "ridge", dim=1024, proj_seed=0, classifiers=("logreg",),
                         aligned_ceiling=False, stage=sel["stage"])
    assert res["per_seed"][0]["transfer"]["logreg"] == m["transfer"]["logreg"]
    assert res["per_seed"][0]["stage"] == sel["stage"]
    fixed = run_transfer(TransferConfig(align="procrustes", align_stage="float", dim=1024, classifiers=("logreg",),
                                        seeds=(0,), progress=False, cache_dir=""), log=lambda m: None, data=[sd])
    assert fixed["alignment_selection"] is None and fixed["config"]["align_stage"] == "float"
    listed = run_transfer(TransferConfig(align="none,procrustes", align_stage="float", dim=1024,
                                         classifiers=("logreg",),
                                         seeds=(0,), progress=False, cache_dir=""), log=lambda m: None, data=[sd])
    assert set(listed["alignment_selection"]["val_transfer"]) == {"none/float", "procrustes/float"}
    assert listed["config"]["align"] == "procrustes" and listed["config"]["requested"]["align"] == "none,procrustes"
    with pytest.raises(ValueError, match="^align_stage"):
        run_transfer(TransferConfig(align="procrustes", align_stage="both", dim=1024, classifiers=("logreg",),
                                    seeds=(0,), progress=False, cache_dir=""), log=lambda m: None, data=[sd])
