"""docs/retrieval_quality.md is generated from docs/results/retrieval_quality.json: fails when stale."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_retrieval_quality_doc_matches_its_json(tmp_path):
    script, data, doc = (ROOT / "benchmarks/retrieval_quality.py", ROOT / "docs/results/retrieval_quality.json",
                         ROOT / "docs/retrieval_quality.md")
    if not script.exists():
        pytest.skip("needs the source tree beside the tests")
    spec = importlib.util.spec_from_file_location("retrieval_quality", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import json

    out = tmp_path / "rq.md"
    mod.write_md(json.loads(data.read_text()), str(out))
    assert out.read_text() == doc.read_text(), (
        "docs/retrieval_quality.md is stale: python benchmarks/retrieval_quality.py --from-json "
        "docs/results/retrieval_quality.json --out docs/retrieval_quality.md --png docs/retrieval_quality.png")
