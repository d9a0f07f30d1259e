"""Generate the measured tables of docs/BENCHMARKS.md from the raw JSON committed beside this script.

    python docs/benchmarks/make_tables.py          # rewrite the tables in docs/BENCHMARKS.md in place
    python docs/benchmarks/make_tables.py --check  # exit 1 when the document is stale

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``; everything outside the
markers is prose written by hand. Two kinds of JSON: pytest-benchmark's ``--benchmark-json`` (the
suites in benchmarks/, run by ``bash docs/benchmarks/run.sh``) and ``ternhd bench --json``. Ratios
and targets are computed from the medians in the file, with ``ternhd.bench``'s target list.
tests/test_bench.py runs the check.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # docs/doc_tables.py
import doc_tables  # noqa: E402

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "BENCHMARKS.md"


def _rate(rate: float, unit: str) -> str:
    if unit == "B":
        return f"{rate / 1e9:.2f} GB/s"
    if unit == "queries":
        return f"{rate:,.1f} queries/s"
    return f"{rate / 1e6:.1f} M{unit}/s"


def _pytest_rows(data: dict) -> List[dict]:
    rows = []
    for b in data["benchmarks"]:
        e, med = b["extra_info"], b["stats"]["median"]
        rows.append(dict(group=b["group"], name=b["name"], role=e["role"], seconds=med, rate=e["units"] / med,
                         unit=e["unit"], note=e.get("note", ""), calls=b["stats"]["rounds"], skipped=""))
    for s in data.get("ternhd_skipped", []):
        rows.append(dict(s, seconds=None, rate=None, calls=0))
    order = list(dict.fromkeys(r["group"] for r in rows))
    return sorted(rows, key=lambda r: order.index(r["group"]))  # stable: run order inside a group


def _table(rows: List[dict]) -> List[str]:
    out = ["| group | case | median | throughput | best ternhd / this | rounds | note |",
           "|---|---|---:|---:|---:|---:|---|"]
    for g in dict.fromkeys(r["group"] for r in rows):
        grp = [r for r in rows if r["group"] == g]
        best = max((r["rate"] for r in grp if r["role"] == "ternhd" and r["rate"]), default=None)
        for r in grp:
            if r["rate"] is None:
                out.append(f"| {g} | {r['name']} | skipped | | | | {r['skipped']} |")
                continue
            rel = f"{best / r['rate']:.2f}x" if best and r["role"] != "ternhd" else ""
            name = f"**{r['name']}**" if r["role"] == "ternhd" else r["name"]
            out.append(f"| {g} | {name} | {r['seconds'] * 1e3:.2f} ms | {_rate(r['rate'], r['unit'])} | {rel} | "
                       f"{r['calls']} | {r['note']} |")
    return out


def _targets(rows: List[dict], quick: bool = False) -> List[str]:
    from ternhd import bench

    checks = bench.check_targets(rows)
    if not checks:
        return []
    what = "target (this run; --quick sizes, for information only)" if quick else "target (this run)"
    out = ["", f"| {what} | measured | need | |", "|---|---:|---:|---|"]
    for t in checks:
        if t["ok"] is None:
            out.append(f"| {t['what']} | — | >= {t['need']:.2f} {t['unit']} | {t['note']} |")
        else:
            out.append(f"| {t['what']} | {t['value']:.2f} {t['unit']} | >= {t['need']:.2f} {t['unit']} | "
                       f"{'met' if t['ok'] else '**missed**'} |")
    return out


def _threads(counts: Dict[str, str]) -> str:
    return "; ".join(f"{k} {v}" for k, v in counts.items())


def pytest_table(name: str) -> Callable[[], str]:
    def make() -> str:
        data = json.loads((HERE / name).read_text())
        mi = data["machine_info"]
        head = [f"`docs/benchmarks/{name}` — {mi.get('ternhd_machine', mi.get('cpu', {}).get('brand_raw', '?'))}; "
                f"{data['datetime'][:16].replace('T', ' ')} UTC; pytest-benchmark medians (rounds after a warm-up).",
                "",
                f"Threads: {_threads(data.get('ternhd_threads') or mi.get('ternhd_threads', {}))}.",
                ""]
        rows = _pytest_rows(data)
        return "\n".join(head + _table(rows) + _targets(rows))
    return make


def bench_table(name: str) -> Callable[[], str]:
    def make() -> str:
        data = json.loads((HERE / name).read_text())
        head = [f"`docs/benchmarks/{name}` — {data['machine']}; {data['date']}; budget {data['budget_s']:.0f} s"
                f"{', --quick' if data.get('quick') else ''}; medians of interleaved rounds.", "",
                f"Threads: {_threads(data['threads'])}.", ""]
        return "\n".join(head + _table(data["rows"]) + _targets(data["rows"], bool(data.get("quick"))))
    return make


def repeats_table() -> str:
    """The top-10 target ratios of each ``ternhd bench --group top10`` run in top10_repeats_*.json."""
    from ternhd import bench

    loads = re.findall(r"# load before: .*load average: ([\d.]+)", (HERE / "top10_repeats.log").read_text())
    out = ["| run | date | load (1 min) before | " + " | ".join(f"{m} / {b}" for (g, m, b) in bench.TARGETS
                                                           if g == "top10") + " |",
           "|---|---|---:|" + "---:|" * sum(g == "top10" for (g, _, _) in bench.TARGETS)]
    for i, f in enumerate(sorted(HERE.glob("top10_repeats_*.json"))):
        data = json.loads(f.read_text())
        checks = {t["what"]: t for t in bench.check_targets(data["rows"])}
        cells = []
        for g, m, b in bench.TARGETS:
            if g == "top10":
                t = checks.get(f"{g}: {m} / {b}")
                cells.append("—" if t is None or t["value"] is None else f"{t['value']:.2f}x")
        load = loads[i] if i < len(loads) else "?"
        out.append(f"| `{f.name}` | {data['date']} | {load} | " + " | ".join(cells) + " |")
    return "\n".join(out)


TABLES: Dict[str, Callable[[], str]] = {
    "avx2-top10-repeats": repeats_table,
    "avx2-similarity": pytest_table("similarity.json"),
    "avx2-pack-algebra": pytest_table("pack_algebra.json"),
    "avx2-quantize-encode": pytest_table("quantize_encode.json"),
    "avx2-ternhd-bench": bench_table("ternhd_bench.json"),
    "avx2-ternhd-bench-quick": bench_table("ternhd_bench_quick.json"),
}


def render(text: str) -> str:
    return doc_tables.render(text, TABLES)


def main(argv=None) -> int:
    return doc_tables.main(DOC, TABLES, "docs/benchmarks/make_tables.py", argv)


if __name__ == "__main__":
    sys.exit(main())
