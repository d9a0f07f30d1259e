"""Shared by the table generators (docs/results/make_tables.py, docs/benchmarks/make_tables.py):
each generated table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` in its
document; everything outside the markers is prose written by hand."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional


def render(text: str, tables: Dict[str, Callable[[], str]]) -> str:
    """``text`` with every marked table present in it regenerated (a table without markers is skipped)."""
    for name, fn in tables.items():
        pat = re.compile(rf"(<!-- table:{name} -->\n)(?:.*?\n)?(<!-- /table:{name} -->)", re.S)
        if pat.search(text):
            table = fn()
            text = pat.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    return text


def main(doc: Path, tables: Dict[str, Callable[[], str]], script: str, argv: Optional[List[str]] = None) -> int:
    """Rewrites ``doc`` in place, or with ``--check`` exits 1 when it is stale."""
    argv = sys.argv[1:] if argv is None else argv
    text = doc.read_text()
    new = render(text, tables)
    if "--check" in argv:
        if new != text:
            print(f"{doc.parent.name}/{doc.name} is stale: run python {script}", file=sys.stderr)
            return 1
        return 0
    doc.write_text(new)
    return 0
