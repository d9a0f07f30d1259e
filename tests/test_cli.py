"""The ternhd CLI end to end on a small generated dataset (offline: packaged MiniLM, LSA)."""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from ternhd import cli

POS = "great wonderful moving brilliant funny charming superb delightful".split()
NEG = "awful boring dull terrible clumsy tedious bland dreadful".split()
FILL = "the film movie plot acting story script cast was is a and really quite".split()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rng = np.random.default_rng(0)
    lines = ["label\tsentence"]
    for i in range(420):
        y = i % 2
        words = list(rng.choice(FILL, 4)) + list(rng.choice(POS if y else NEG, 2)) + [f"w{i}"]
        rng.shuffle(words)
        lines.append(f"{y}\t{' '.join(words)}")
    p = tmp_path_factory.mktemp("data") / "toy.tsv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_transfer_end_to_end(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["transfer", "--dataset", str(dataset), "--teacher", "minilm", "--student", "lsa:32",
                   "--align", "procrustes", "--dim", "512", "--seeds", "1,2", "--n-train", "200", "--n-test", "60",
                   "--n-anchor", "80", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet",
                   "--diagnostics"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "efficiency = transfer / ceiling" in text and "minilm -> lsa:32" in text
    files = list(out.glob("transfer_*.json"))
    assert len(files) == 1
    res = json.loads(files[0].read_text())
    assert [r["seed"] for r in res["per_seed"]] == [1, 2]
    for r in res["per_seed"]:
        assert r["sizes"] == {"train": 180, "val": 20, "test": 60, "anchor": 80}
        for c in ("logreg", "centroid"):
            assert r["efficiency"][c] == pytest.approx(r["transfer"][c] / r["ceiling"][c])
        assert r["quantization"]["teacher"]["hdc"]["logreg"] > 0.8  # the toy task is easy for MiniLM
    s = res["summary"]["transfer"]["logreg"]
    assert s["mean"] == pytest.approx(np.mean([r["transfer"]["logreg"] for r in res["per_seed"]]))
    # the pretrained teacher's embeddings were written to the cache
    assert any((tmp_path / "cache" / "embeddings").glob("*.npy"))


def test_experiment_quantization(dataset, tmp_path, capsys):
    rc = cli.main(["experiment", "quantization", "--dataset", str(dataset), "--teacher", "lsa:16",
                   "--student", "lsa:24", "--dims", "256,512", "--dim", "512", "--seeds", "3",
                   "--n-train", "150", "--n-test", "50", "--n-anchor", "40", "--classifiers", "centroid,logreg",
                   "--out", str(tmp_path), "--no-cache", "--quiet"])
    assert rc == 0
    res = json.loads((tmp_path / "quantization.json").read_text())
    assert set(res["hdc"]) == {"256", "512"} and len(res["rows"]) == 2
    assert (tmp_path / "quantization_dims.png").stat().st_size > 1000
    assert "HDC 512" in capsys.readouterr().out


def test_parser_registration_and_errors(capsys):
    names = []

    def register_dummy(sub):
        p = sub.add_parser("dummy")
        p.set_defaults(func=lambda a: names.append("ran") or 0)

    cli.add_registrar(register_dummy)
    try:
        assert cli.main(["dummy"]) == 0 and names == ["ran"]
    finally:
        cli.REGISTRARS.remove(register_dummy)
    with pytest.raises(SystemExit):
        cli.main(["transfer", "--align", "magic"])
    with pytest.raises(SystemExit):
        cli.main(["experiment", "nope"])
    with pytest.raises(SystemExit):
        cli.main(["transfer", "--seeds", "a,b"])


def test_info(capsys):
    assert cli.main(["info"]) == 0
    assert "simd:" in capsys.readouterr().out


def test_bench_quick_prints_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--repeat", "1", "--group", "pack", "--group", "cosine",
                     "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ternhd.pack_ternary" in text and "ternhd.cosine" in text and "Targets" in text
    data = json.loads(out.read_text())
    assert {r["group"] for r in data["rows"]} == {"pack", "cosine"}
    assert all(r["rate"] > 0 for r in data["rows"])
