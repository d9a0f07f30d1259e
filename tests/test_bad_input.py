"""Checks every entry of the bad-input matrix and that docs/BAD_INPUT.md is generated from it."""
from pathlib import Path

import pytest
from bad_input_matrix import entries, markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "BAD_INPUT.md"


@pytest.mark.parametrize("entry", entries(), ids=lambda e: f"{e.function}-{e.case}")
def test_entry(entry):
    if entry.raises is not None:
        with pytest.raises(entry.raises) as info:
            entry.call()
        assert str(info.value).startswith(entry.match), str(info.value)
    else:
        assert entry.check(entry.call())


def test_every_category_is_covered():
    cats = {"wrong dtype", "wrong ndim", "empty", "non-contiguous", "negative strides", "NaN/Inf",
            "out-of-range values", "mismatched widths", "huge sizes"}
    assert cats <= {e.case for e in entries()}


def test_docs_table_is_current():
    assert DOC.read_text() == markdown(), "regenerate: python tests/bad_input_matrix.py > docs/BAD_INPUT.md"
