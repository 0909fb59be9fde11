"""A Markdown section from the JSON of ``relugeo bench --json``: the run, the machine, one row per case."""

from __future__ import annotations


def _seconds(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.2f}" if x >= 1 else f"{x:.4f}" if x >= 1e-3 else f"{x:.2e}"


def _times(m: dict | None) -> str:
    if m is None:
        return "-"
    x = m["time_vs_exact"]
    return f"{x:,.0f}x" if x >= 100 else f"{x:.3g}x"


def _command(data: dict) -> str:
    env = data["machine"].get("environment", {})
    return " ".join([f"{k}={v}" for k, v in env.items()] + [data.get("command") or "relugeo bench"])


def _machine(m: dict) -> str:
    v, t = m["versions"], m["threads"]
    blas = ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']})" for b in m.get("blas", []))
    gpus = [d.get("name", d.get("error", "?")) for d in m["gpu"]["devices"]]
    return (f"{m['cpu_model']}, {m['cpu_count']} logical cores, {m['system']}; Python {m['python']}, "
            f"relugeo {v['relugeo']}, numpy {v['numpy']}, numba {v['numba']}, torch {v['torch']}, "
            f"scikit-learn {v['scikit-learn']}; BLAS {blas or 'unknown'}; threads: numba {t['numba']} "
            f"({t.get('numba_layer')}), BLAS {t['blas']}, torch {t['torch']}; GPU: "
            f"{', '.join(gpus) if gpus else 'none (numba.cuda.is_available() is False)'}")


def markdown(data: dict, json_path: str | None = None) -> list[str]:
    """Lines of a Markdown section for one ``relugeo bench`` JSON (a dict as written by ``--json``)."""
    fresh = data.get("numba_cache_files_before") == 0
    n_ok = sum(c["ok"] for c in data["cases"])
    where = f" (`{json_path}`)" if json_path else ""
    lines = [
        f"## `relugeo bench`: suite v{data['suite_version']} '{data['suite']}' on {data['device']}",
        "",
        f"The command{where}, run at {data['started']}:",
        "",
        "```bash",
        _command(data),
        "```",
        "",
        f"- Machine: {_machine(data['machine'])}",
        (f"- Whole run {_seconds(data['total_seconds'])} s ({_seconds(data['total_seconds'] - data['warmup_seconds'])}"
         f" s without the warm-up), of which the warm-up took {_seconds(data['warmup_seconds'])} s: "
         + ("numba's cache was empty, so this is the **first-ever compilation** of the kernels. "
            if fresh else "numba loaded its cache (or recompiled kernels that changed). ")
         + "The warm-up runs every case once on a small piece of its domain before any timing, so no timed "
           "round includes compilation."),
        (f"- Each figure is the median of {data['rounds']} timed calls for exact and of "
         f"{data['baseline_rounds']} for each baseline, measured in the same run."),
        (f"- **Checks: {n_ok} of {len(data['cases'])} cases passed**: every exact count equals the one recorded "
         "in the suite, every partition passes `verify()`, the grid finds no pattern that is not an exact region "
         "(nor, for LC, more regions than the exact count), and the vertex estimator on the exact method's own "
         "neighbourhood never counts more neurons than the exact method."),
    ]
    if data["problems"]:
        lines += ["", "Failed checks:", ""] + [f"- {p}" for p in data["problems"]]
    lines += [
        "",
        ("| case | domain | regions | exact s | regions/s | grid time vs exact | grid missed | vertex time "
         "vs exact | vertex missed neurons | check |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in data["cases"]:
        ex, grid, vx = (c["methods"].get(m) for m in ("exact", "grid", "vertex"))
        lp = c["methods"].get("lp")
        if ex is None:
            lines.append(f"| {c['name']} | {c['description']} | - | - | - | - | - | - | - | **failed** |")
            continue
        regions = f"{ex['regions']:,}"
        if c["kind"] == "lc":
            regions += f" ({ex['neurons']:,} neurons)"
        missed = f"{grid['missed']:,} of {ex['regions']:,}" if grid else "-"
        vmiss = f"{vx['same_neighbourhood_missed']:,} of {ex['neurons']:,}" if vx else "-"
        check = ("ok" if c["expected"] else "verified") if c["ok"] else "**failed**"
        baseline = _times(grid or lp) + (" (LP)" if lp else "")
        lines.append(f"| {c['name']} | {c['description']} | {regions} | {_seconds(ex['seconds'])} "
                     f"| {ex['regions_per_s']:,.0f} | {baseline} | {missed} | {_times(vx)} | {vmiss} | {check} |")
    lines += [
        "",
        ("Local-complexity rows count the regions (and neurons) met by every point's neighbourhood, summed over "
         "the points; \"time vs exact\" is the baseline's median over the exact engine's (above 1: slower). "
         f"**grid**: distinct patterns at the centres of a {data['grid']} x {data['grid']} lattice over a 2-D "
         f"slice or {data['grid_1d']:,} points along a segment; for LC, a {data['lc_grid']} x {data['lc_grid']} "
         f"lattice clipped to each 2-D neighbourhood or {data['lc_grid_1d']:,} points along each 1-D one; "
         "on 3-D and larger domains (up to 2,000 regions) the naive per-cell LP enumerator instead, marked (LP), "
         "whose count must equal the exact one. "
         "**vertex**: the published estimator (Humayun et al. 2024) with P = 25 directions, relugeo's "
         "`method=\"vertex\"`; its missed neurons are counted by running it on the exact method's own "
         "neighbourhood (P = the neighbourhood's dimension, same frame)."),
        "",
    ]
    return lines
