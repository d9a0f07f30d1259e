"""The ternhd command line on tiny sizes."""
import json

from ternhd import cli


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
