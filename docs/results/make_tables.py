"""Generate the tables of docs/RESULTS.md from the committed JSON files in docs/results/.

    python docs/results/make_tables.py          # rewrite the tables in docs/RESULTS.md in place
    python docs/results/make_tables.py --check  # exit 1 when the document is stale

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``; everything outside
the markers is prose written by hand. tests/test_results_doc.py runs the check.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # docs/doc_tables.py
import doc_tables  # noqa: E402

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "RESULTS.md"

# The paper (Yudin 2025), Tables 3-4: DistilBERT -> GPT-2 on SST-2, 500 anchors, contrastive.
PAPER = {"transfer": 75.1, "efficiency": 94.1, "reverse_transfer": 75.5, "reverse_efficiency": 93.7,
         "agnews_transfer": 86, "agnews_efficiency": 100}


def load(name: str) -> dict:
    return json.loads((HERE / name).read_text())


def pm(ms: dict, scale: float = 100.0, nd: int = 1) -> str:
    if ms["mean"] != ms["mean"]:
        return "not measured"
    return f"{ms['mean'] * scale:.{nd}f} ± {ms['std'] * scale:.{nd}f}"


def _transfer_rows(res: dict, clf: str = "logreg") -> dict:
    s = res["summary"]
    q = s["quantization"]
    return {
        "teacher float embedding (linear probe)": pm(q["teacher"]["float"]),
        "teacher HDC": pm(q["teacher"]["hdc"][clf]),
        "student float embedding (linear probe)": pm(q["student"]["float"]),
        "student HDC = ceiling": pm(s["ceiling"][clf]),
        "**transfer**": f"**{pm(s['transfer'][clf])}**",
        "**efficiency** = transfer / ceiling": f"**{pm(s['efficiency'][clf])}**",
        "above chance = (transfer − chance) / (ceiling − chance)": pm(s["efficiency_above_chance"][clf]),
        "aligned test pairs: mean cosine / top-1 of 500": f"{s['pair_cosine']['mean']:.2f} / {s['top1']['mean'] * 100:.1f}%",
    }


def _as_main(r: dict) -> dict:
    """A run_transfer JSON as is; an aligner x direction JSON as the reverse direction's chosen
    aligner, in run_transfer's shape (its float and teacher rows are not measured there)."""
    if "directions" not in r:
        return r
    rd = r["directions"]["reverse"]
    ts = rd["aligners"][rd["chosen"]]["test"]["summary"]
    nan = {"mean": float("nan"), "std": float("nan")}
    q = {"teacher": {"float": nan, "hdc": {"logreg": nan}}, "student": {"float": nan, "hdc": ts["ceiling"]}}
    sel = [{"side": "teacher", "chosen": r["config"]["student"] + " (the forward direction's choice)"}]
    return {"summary": dict(ts, quantization=q), "config": {"align": rd["chosen"], "center": r["center"]},
            "readout_selection": sel}


def _desc(r: dict) -> str:
    """``aligner, STAGE stage, centring MODE`` of a run_transfer JSON ("chosen on validation" when the run chose)."""
    c = r["config"]
    how = " (both chosen on validation)" if r.get("alignment_selection") else ""
    return (f"{c['align']}, {c.get('align_stage', 'float')} stage{how}, "
            f"{'before centring' if c.get('center', 'none') == 'none' else 'centring ' + c['center']}")


def _chosen(res: dict) -> str:
    sel = res.get("readout_selection") or []
    return "; ".join(f"{x['side']} {x['chosen']}" for x in sel) or "fixed"


def table_main() -> str:
    runs = [("MiniLM -> SmolLM2 (the main job)", "main_sst2_minilm_smollm2.json"),
            ("SmolLM2 -> MiniLM (reverse)", "reverse_sst2_smollm2_minilm.json"),
            ("MiniLM -> SmolLM2, before centring (the cold-cache timing run, commit 508ce96)",
             "main_cold_cache_quiet_sst2_minilm_smollm2.json")]
    runs = [(n, f) for n, f in runs if (HERE / f).exists()]
    if not (HERE / "reverse_sst2_smollm2_minilm.json").exists() or \
            load("reverse_sst2_smollm2_minilm.json").get("config", {}).get("center", "none") == "none":
        # the centred reverse direction comes from the aligner x direction run (its chosen aligner)
        runs = [(n, f) for n, f in runs if f != "reverse_sst2_smollm2_minilm.json"]
        ab = _json_named("aligner_by_direction_")
        if ab:
            rd = load(ab[0].name)["directions"].get("reverse")
            if rd and rd.get("chosen"):
                runs.insert(1, ("SmolLM2 -> MiniLM (reverse; from the aligner x direction run)", ab[0].name))
    files = [f for _, f in runs]
    runs = [(n, _as_main(load(f))) for n, f in runs]
    cols = [n for n, _ in runs]
    rows = {}
    for _, r in runs:
        for k, v in _transfer_rows(r).items():
            rows.setdefault(k, []).append(v)
    paper = {"**transfer**": f"**{PAPER['transfer']}** / {PAPER['reverse_transfer']}",
             "**efficiency** = transfer / ceiling": f"**{PAPER['efficiency']}** / {PAPER['reverse_efficiency']}"}
    out = ["| SST-2, 500 anchors, 3 seeds, logistic regression | " + " | ".join(cols) +
           " | paper DistilBERT -> GPT-2 / reverse |", "|---" * (len(cols) + 2) + "|"]
    for k, vals in rows.items():
        out.append(f"| {k} | " + " | ".join(vals) + f" | {paper.get(k, '')} |")
    def readout(r):
        c = r["config"]
        if r.get("readout_selection") or "teacher" not in c:
            return _chosen(r)
        side = "teacher" if c["teacher"].startswith("smollm2") else "student"
        return f"{side} {c[side]} (fixed: the forward direction's choice)"

    out.append("| read-out chosen on validation | " + " | ".join(readout(r) for _, r in runs) + " | |")
    out.append("| aligner, alignment stage (chosen on validation per direction) | " + " | ".join(
        f"{r['config']['align']}, {r['config'].get('align_stage', 'float')}" for _, r in runs)
               + " | contrastive |")
    out.append("| centring (anchor statistics) | " + " | ".join(r["config"].get("center", "none") for _, r in runs)
               + " | |")
    out.append("| centroid classifier: transfer / ceiling / efficiency | " + " | ".join(
        f"{pm(r['summary']['transfer']['centroid'])} / {pm(r['summary']['ceiling']['centroid'])} / "
        f"{pm(r['summary']['efficiency']['centroid'])}"
        if "centroid" in r["summary"]["transfer"] else "" for _, r in runs) + " | |")
    out.append("| JSON | " + " | ".join(f"`results/{f}`" for f in files) + " | |")
    return "\n".join(out)


def _time_from_log(json_name: str):
    """``/usr/bin/time`` figures from the log committed beside a JSON (``<stem>.log`` or the JSON's stem
    without its ``_sst2_...`` tail), the line ``WALL %e s, user %U s, sys %S s, maxrss %M KB``."""
    stem = json_name[:-5]
    for log in (HERE / f"{stem}.log", HERE / f"{stem.split('_sst2_')[0]}.log"):
        if log.exists():
            m = re.search(r"WALL ([\d.]+) s, user ([\d.]+) s, sys ([\d.]+) s", log.read_text())
            if m:
                wall, user, sys_ = map(float, m.groups())
                return {"wall_s": wall, "user_s": user, "system_s": sys_,
                        "percent_cpu": round(100 * (user + sys_) / wall)}
    return None


def table_timing() -> str:
    out = ["| run | cold cache | wall | of which embedding + model conversion | CPU time (user + sys) | load average start -> end (2 cores) | torch threads | JSON |",
           "|---|---|---|---|---|---|---|---|"]
    for label, f in (("`ternhd transfer` (the main job as it is now: centred, CCA; 3 seeds), machine otherwise idle",
                      "main_cold_cache_centred_sst2_minilm_smollm2.json"),
                     ("`ternhd transfer` (main job, CCA; 3 seeds), before centring, machine otherwise idle",
                      "main_cold_cache_quiet_sst2_minilm_smollm2.json"),
                     ("`ternhd transfer --align contrastive`, before CCA was chosen and before centring",
                      "main_contrastive_sst2_minilm_smollm2.json"),
                     ("`ternhd transfer` (main job, centred, cca, float stage), rerun on a warm cache",
                      "main_sst2_minilm_smollm2.json"),
                     ("reverse, SmolLM2 -> MiniLM", "reverse_sst2_smollm2_minilm.json"),
                     ("AG News, MiniLM -> SmolLM2", "agnews_minilm_smollm2.json"),
                     ("control: MiniLM -> LSA", "control_sst2_minilm_lsa.json")):
        if not (HERE / f).exists():
            continue
        r = load(f)
        if label.startswith(("AG News", "control", "reverse")):
            label = f"{label} ({_desc(r)})"
        env = r.get("environment", {})
        st, en = env.get("start", {}), env.get("end", {})
        c = st.get("cache_at_start") or r.get("cache_at_start") or {}
        cold = ("yes" if c.get("embeddings") == 0 and c.get("models") == 0 else "no") if c else ""
        tv = r.get("run", {}).get("time_v") or _time_from_log(f)
        cpu = f"{tv['user_s'] + tv['system_s']:.0f} s ({tv['percent_cpu']}% of one core)" if tv else "not recorded"
        out.append(f"| {label} | {cold} | {r['seconds']['total']:.0f} s | {r['seconds']['embed']:.0f} s | {cpu} | "
                   f"{st.get('loadavg', [0])[0]:.1f} -> {en.get('loadavg', [0])[0]:.1f} | {st.get('torch_threads')} | "
                   f"`results/{f}` |")
    return "\n".join(out)


def table_datasets() -> str:
    out = ["| dataset | classes | transfer | ceiling | efficiency | above chance | teacher HDC | read-out | JSON | paper transfer / efficiency |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for label, f, k, paper in (("SST-2", "main_sst2_minilm_smollm2.json", 2, f"{PAPER['transfer']} / {PAPER['efficiency']}"),
                               ("AG News", "agnews_minilm_smollm2.json", 4, f"{PAPER['agnews_transfer']} / {PAPER['agnews_efficiency']}")):
        if not (HERE / f).exists():
            continue
        r = load(f)
        label = f"{label} ({_desc(r)})"
        s = r["summary"]
        out.append(f"| {label} | {k} | {pm(s['transfer']['logreg'])} | {pm(s['ceiling']['logreg'])} | "
                   f"{pm(s['efficiency']['logreg'])} | {pm(s['efficiency_above_chance']['logreg'])} | "
                   f"{pm(s['quantization']['teacher']['hdc']['logreg'])} | {_chosen(r)} | `results/{f}` | {paper} |")
    return "\n".join(out)


def table_controls() -> str:
    out = ["| pair (SST-2, same splits as the main job) | kind | transfer | ceiling | efficiency | above chance | JSON |",
           "|---|---|---|---|---|---|---|"]
    for label, kind, f in (("MiniLM -> SmolLM2 (the main job)", "cross-architecture (encoder -> decoder)",
                            "main_sst2_minilm_smollm2.json"),
                           ("MiniLM -> SmolLM2", "cross-architecture (encoder -> decoder)",
                            "main_contrastive_sst2_minilm_smollm2.json"),
                           ("MiniLM -> LSA", "control: TF-IDF + SVD, no neural network",
                            "control_sst2_minilm_lsa.json")):
        if not (HERE / f).exists():
            continue
        r = load(f)
        s = r["summary"]
        out.append(f"| {label}, {_desc(r)} | {kind} | {pm(s['transfer']['logreg'])} | {pm(s['ceiling']['logreg'])} | "
                   f"{pm(s['efficiency']['logreg'])} | {pm(s['efficiency_above_chance']['logreg'])} | `results/{f}` |")
    return "\n".join(out)


def table_levers() -> str:
    f = "smollm2_levers.json"
    if not (HERE / f).exists():
        return "(not measured)"
    r = load(f)
    lv = r["levers"]
    out = ["| lever (SmolLM2, sample of texts of the pool) | texts | wall s | CPU s (process) | texts / wall s | load average | torch threads |",
           "|---|---|---|---|---|---|---|"]
    for x in lv.get("throughput", []):
        out.append(f"| {x['lever']} | {x['n']} | {x['seconds']:.1f} | {x['cpu_seconds']:.1f} | {x['texts_per_s']:.1f} | "
                   f"{x['loadavg'][0]:.1f} | {x['torch_threads']} |")
    tp = lv.get("text_pool")
    if tp:
        out.append(f"| fixed text pool for 3 seeds: distinct texts to embed | {tp['distinct_texts_without_pool']} -> "
                   f"{tp['distinct_texts_with_pool']} | | | | | |")
    if "gguf_convert_seconds_first_call" in lv:
        out.append(f"| GGUF -> HF conversion: first call (cache cold: {lv.get('cache_was_cold')}) / second call | | "
                   f"{lv['gguf_convert_seconds_first_call']:.1f} / {lv['gguf_convert_seconds_warm']:.2f} | | | | |")
    out.append(f"| JSON | `results/{f}` | | | | | |")
    return "\n".join(out)


def table_readout() -> str:
    f = "main_sst2_minilm_smollm2.json"
    if not (HERE / f).exists():
        return "(not measured)"
    sel = load(f).get("readout_selection") or []
    if not sel:
        return "(fixed read-out)"
    sc = sel[0]["val_transfer"]
    out = ["| SmolLM2 read-out | validation transfer accuracy (mean of 3 seeds) |", "|---|---|"]
    for k, v in sc.items():
        mark = " **(chosen)**" if k == sel[0]["chosen"] else ""
        out.append(f"| {k} | {v * 100:.1f}{mark} |")
    out.append(f"| criterion | {sel[0]['criterion']} |")
    return "\n".join(out)


def _json_named(prefix: str) -> list:
    return sorted(HERE.glob(f"{prefix}*.json"))


def table_centering() -> str:
    files = _json_named("centering_validation_")
    if not files:
        return "(not measured)"
    out = []
    for f in files:
        r = load(f.name)
        c = r["config"]
        out += [f"Diagnosis on seed {c['seeds'][0]}'s training rows ({f.name}):", "",
                "| side | width | share of the mean squared norm in the mean vector | share in the 5 largest "
                "dimensions | random pair cosine raw / mean-centred | cosine between the 2 class prototypes "
                "(HDC) raw / mean-centred |", "|---|---|---|---|---|---|"]
        for side, name in (("teacher", c["teacher"]), ("student", r["readout_selection"][0]["chosen"]
                                                        if r.get("readout_selection") else c["student"])):
            d = r["diagnosis"][side]
            pc = d.get("class_prototype_cosine", {})
            out.append(f"| {side} {name} | {d['width']} | {d['mean_vector_share_of_energy'] * 100:.1f}% | "
                       f"{d['top5_dims_share_of_energy'] * 100:.1f}% | {d['random_pair_cosine']['raw']:.2f} / "
                       f"{d['random_pair_cosine']['mean_centered']:.2f} | "
                       f"{pc.get('none', float('nan')):.3f} / {pc.get('mean', float('nan')):.3f} |")
        out += ["", f"Validation (mean ± std over seeds {', '.join(map(str, c['seeds']))}; aligner "
                    f"{r['criterion'].split('aligner ')[1].split(';')[0]}):", "",
                "| preprocessing | forward transfer logreg | forward transfer centroid | forward ceiling logreg | "
                "forward ceiling centroid | reverse transfer logreg | reverse transfer centroid | reverse ceiling "
                "centroid | score |", "|---|---|---|---|---|---|---|---|---|"]
        for mode, v in r["validation"].items():
            fw, rv = v["forward"]["summary"], v["reverse"]["summary"]
            mark = " **(chosen)**" if mode == r["chosen"] else ""
            out.append(f"| {mode}{mark} | {pm(fw['transfer']['logreg'])} | {pm(fw['transfer']['centroid'])} | "
                       f"{pm(fw['ceiling']['logreg'])} | {pm(fw['ceiling']['centroid'])} | "
                       f"{pm(rv['transfer']['logreg'])} | {pm(rv['transfer']['centroid'])} | "
                       f"{pm(rv['ceiling']['centroid'])} | {r['score'][mode] * 100:.1f} |")
        out.append(f"| criterion | {r['criterion']} | | | | | | | |")
    return "\n".join(out)


def table_aligners() -> str:
    files = _json_named("aligner_by_direction_")
    if not files:
        return "(not measured)"
    out = ["| direction | aligner | validation transfer | test transfer | ceiling | efficiency | above chance | "
           "mean cosine | top-1 of 500 | mean rank of 500 | centroid transfer / ceiling |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in files:
        r = load(f.name)
        for d, dd in r["directions"].items():
            for name, v in dd["aligners"].items():
                vs, ts = v["validation"]["summary"], v["test"]["summary"]
                al = ts["alignment"]
                mark = " **(chosen)**" if name == dd.get("chosen") else ""
                out.append(
                    f"| {dd['pair']} | {name}{mark} | {pm(vs['transfer']['logreg'])} | {pm(ts['transfer']['logreg'])} | "
                    f"{pm(ts['ceiling']['logreg'])} | {pm(ts['efficiency']['logreg'])} | "
                    f"{pm(ts['efficiency_above_chance']['logreg'])} | {al['mean_cosine']['mean']:.2f} | "
                    f"{al['top1']['mean'] * 100:.1f}% | {al['mean_rank']['mean']:.1f} | "
                    f"{pm(ts['transfer']['centroid'])} / {pm(ts['ceiling']['centroid'])} |")
        out.append(f"| JSON | `results/{f.name}` (preprocessing: {r['center']}) | | | | | | | | | |")
    return "\n".join(out)


def table_stages() -> str:
    files = _json_named("align_stage_")
    if not files:
        return "(not measured)"
    out = ["| direction | aligner | aligned | validation transfer | test transfer | efficiency | above chance | "
           "mean cosine (test pairs) | top-1 of 500 |", "|---|---|---|---|---|---|---|---|---|"]
    for f in files:
        r = load(f.name)
        flt_file = f.name.replace("align_stage_", "aligner_by_direction_")
        flt = load(flt_file)["directions"] if (HERE / flt_file).exists() else {}
        for d, dd in r["directions"].items():
            for name, v in dd["aligners"].items():
                rows = [("float embeddings (notebooks)", flt.get(d, {}).get("aligners", {}).get(name)),
                        ("HDC vectors (figure)", v["hdc"])]
                for label, x in rows:
                    if x is None:
                        continue
                    vs, ts = x["validation"]["summary"], x["test"]["summary"]
                    al = ts["alignment"]
                    out.append(f"| {dd['pair']} | {name} | {label} | {pm(vs['transfer']['logreg'])} | "
                               f"{pm(ts['transfer']['logreg'])} | {pm(ts['efficiency']['logreg'])} | "
                               f"{pm(ts['efficiency_above_chance']['logreg'])} | {al['mean_cosine']['mean']:.2f} | "
                               f"{al['top1']['mean'] * 100:.1f}% |")
        out.append(f"| JSON | `results/{f.name}` (HDC rows), `results/{flt_file}` (float rows) | | | | | | | |")
    return "\n".join(out)


def table_grid() -> str:
    files = _json_named("alignment_grid_")
    if not files:
        return "(not measured)"
    out = ["| direction | aligner | validation transfer, float embeddings aligned | validation transfer, HDC vectors "
           "aligned | seconds (both stages, all seeds) |", "|---|---|---|---|---|"]
    for f in files:
        r = load(f.name)
        for d, dd in r["directions"].items():
            sel = dd["selection"]
            for name in r["aligners"]:
                cells = []
                for st in r["stages"]:
                    k = f"{name}/{st}"
                    if k not in sel["val_transfer"]:
                        cells.append("not a candidate (see below)")
                        continue
                    mark = " **(chosen)**" if k == sel["chosen"] else ""
                    ms = {"mean": sel["val_transfer"][k], "std": sel["val_transfer_std"][k]}
                    cells.append(pm(ms) + mark)
                secs = sum(sel["seconds"].get(f"{name}/{st}", 0.0) for st in r["stages"])
                out.append(f"| {dd['pair']} | {name} | " + " | ".join(cells) + f" | {secs:.0f} |")
        nr = "; ".join(f"{k}: {v}" for k, v in sel.get("not_candidates", {}).items())
        out.append(f"| JSON | `results/{f.name}` (preprocessing {r['center']}; torch and BLAS 1 thread; not "
                   f"candidates: {nr}) | | | |")
        out.append(f"| criterion | {sel['criterion']} | | | |")
    return "\n".join(out)


def table_dsweep() -> str:
    f = "quantization_sst2_minilm_smollm2-9-mean.json"
    if not (HERE / f).exists():
        return "(not measured)"
    r = load(f)
    dims = list(r["hdc"])
    c = r["config"]
    out = ["| model (SST-2 test, 3 seeds) | classifier | float embedding | " + " | ".join(f"HDC D = {d}" for d in dims)
           + " |", "|---" * (len(dims) + 3) + "|"]
    for side in ("teacher", "student"):
        for clf in c["classifiers"]:
            fl = pm(r["float"][side]) if clf == "logreg" else ""
            out.append(f"| {side} {c[side]} | {clf} | {fl} | " + " | ".join(pm(r["hdc"][d][side]["hdc"][clf]) for d in dims)
                       + " |")
    out.append(f"| JSON | `results/{f}` (centring {c.get('center', 'none')}, tau {c['tau']}, per-row threshold; "
               f"{r['seconds']:.0f} s) |" + " |" * (len(dims) + 1))
    return "\n".join(out)


def table_pairs() -> str:
    f = "sentence_pairs_agnews_minilm_smollm2-9-mean.json"
    if not (HERE / f).exists():
        return "(not measured)"
    r = load(f)
    res, c = r["results"], r["config"]
    sm = res["summary"]
    out = ["| pair encoding | teacher's own pair vectors | student ceiling | transfer | efficiency | above chance |",
           "|---|---|---|---|---|---|"]
    for m in ("bind", "concat", "infersent"):
        if m in sm:
            x = sm[m]
            out.append(f"| {m} | {pm(x['teacher_self'])} | {pm(x['ceiling'])} | {pm(x['transfer'])} | "
                       f"{pm(x['efficiency'])} | {pm(x['efficiency_above_chance'])} |")
    out.append(f"| JSON | `results/{f}` (task {res['task']}; {c['teacher']} -> {c['student']}, aligner {c['align']}, "
               f"centring {c.get('center', 'none')}; {c['n_train']} train / {c['n_test']} test pairs, "
               f"{c['n_anchor']} anchors; {r['seconds']:.0f} s) | | | | | |")
    return "\n".join(out)


def table_int8() -> str:
    files = _json_named("int8_")
    if not files:
        return "(not measured)"
    out = ["| SmolLM2 weights | read-out | validation transfer | test transfer | ceiling | "
           "efficiency | embedding CPU s (same texts, process) | embedding wall s |", "|---|---|---|---|---|---|---|---|"]
    for f in files:
        r = load(f.name)
        rows = r["embedding_time"]["rows"]
        for key, label in (("float32", "float32"), ("int8", "int8 dynamic")):
            v = r[key]["aligner_result"]
            vs, ts = v["validation"]["summary"], v["test"]["summary"]
            tm = [x for x in rows if x["quantize"] == key]
            cpu = " / ".join(f"{x['cpu_s']:.1f}" for x in tm)
            wall = " / ".join(f"{x['wall_s']:.1f}" for x in tm)
            out.append(f"| {label} | {r[key]['readout']} | {pm(vs['transfer']['logreg'])} | "
                       f"{pm(ts['transfer']['logreg'])} | {pm(ts['ceiling']['logreg'])} | "
                       f"{pm(ts['efficiency']['logreg'])} | {cpu} | {wall} |")
        out.append(f"| becomes the default | {'yes' if r['becomes_default'] else 'no'} "
                   f"({r['validation_difference_points']:+.1f} points on validation; {r['criterion']}) | | | | | | |")
        out.append(f"| JSON | `results/{f.name}` (aligner {r['aligner']}, preprocessing {r['center']}; "
                   f"{rows[0]['texts']} texts timed per row, 2 repetitions) | | | | | | |")
    return "\n".join(out)


TABLES = {"pairs": table_pairs, "dsweep": table_dsweep, "grid": table_grid, "centering": table_centering, "aligners": table_aligners, "stages": table_stages, "int8": table_int8, "main": table_main, "timing": table_timing, "datasets": table_datasets, "controls": table_controls,
          "levers": table_levers, "readout": table_readout}


def render(text: str) -> str:
    return doc_tables.render(text, TABLES)


def main(argv=None) -> int:
    return doc_tables.main(DOC, TABLES, "docs/results/make_tables.py", argv)


if __name__ == "__main__":
    sys.exit(main())
