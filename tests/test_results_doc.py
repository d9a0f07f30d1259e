"""docs/RESULTS.md: every table is generated from the committed JSON in docs/results/; fails when stale."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "results" / "make_tables.py"

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="docs/ not in this checkout")


def _mod():
    spec = importlib.util.spec_from_file_location("make_tables", SCRIPT)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def test_results_tables_match_json():
    m = _mod()
    text = m.DOC.read_text()
    for name in m.TABLES:
        assert f"<!-- table:{name} -->" in text and f"<!-- /table:{name} -->" in text, name
    assert m.render(text) == text, "docs/RESULTS.md is stale: run python docs/results/make_tables.py"


def test_every_json_named_in_results_exists():
    text = (ROOT / "docs" / "RESULTS.md").read_text()
    for name in set(re.findall(r"results/([\w.-]+\.json)", text)):
        assert (ROOT / "docs" / "results" / name).exists(), name
