"""`rowmix bench boards`: the full mixed array of each board and its three fixed-point-only
baselines, built with the same generator and the same open tools, side by side.

Each build runs in its own process and directory (`OUT/<board>-<design>-seed<N>`); a build whose
build.json records the build plan this run would hand the tools (`plan_digest`: netlist, constraints,
seed, clock) is reused, so an interrupted run resumes, a host-side edit keeps the builds and a
changed netlist rebuilds. A build the tools end with an error, or that runs past `--time-limit`, is
recorded as failed, and the others go on.
nextpnr's Fmax moves by 10-20 % between placement seeds on a full device, so every design is
built with the same seeds and its best seed is reported (all seeds are in the JSON).
Throughput is what the device does per second: MACs per cycle x nextpnr's Fmax. The ratios of the
mixed array over every baseline are reported (never only the flattering one) with the board
goals, as Markdown, JSON and a plot."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..boards.arrays import DESIGNS, PLANS, board_array, board_ratio
from ..boards.build import BuildOptions, plan_digest, prepare_board
from ..errors import RowmixError

CLOCK_MHZ = {"icebreaker": 50.0, "ulx3s-85f": 125.0}  # the PLL target: each board's Fmax goal
BASELINES = {"dsp-only": "(a) FIXED-4 on DSPs only, packed", "dsp+mul": "(b) DSPs + plain LUT multipliers",
             "dsp+booth": "(c) DSPs + Booth LUT lanes"}
# (board, metric, lower limit, description): every goal is "at least"
GOALS = (
    ("icebreaker", "fmax_mhz", 50.0, "iCEBreaker full array: Fmax (MHz)"),
    ("icebreaker", "macs_per_cycle", 75, "iCEBreaker full array: MACs/cycle"),
    ("icebreaker", "lut_share", 0.60, "iCEBreaker full array: LC use"),
    ("ulx3s-85f", "fmax_mhz", 125.0, "ULX3S-85F full array: Fmax (MHz)"),
    ("ulx3s-85f", "macs_per_cycle", 900, "ULX3S-85F full array: MACs/cycle"),
    ("ulx3s-85f", "lut_share", 0.40, "ULX3S-85F full array: LUT use"),
    ("icebreaker", "ratio:dsp-only", 3.65, "iCEBreaker mixed vs (a) DSP-only fixed, 4-bit activations"),
    ("ulx3s-85f", "ratio:dsp-only", 3.65, "ULX3S-85F mixed vs (a) DSP-only fixed, 4-bit activations"),
    ("icebreaker", "ratio:dsp+mul", 1.1, "iCEBreaker mixed vs (b) DSPs + plain LUT multipliers"),
    ("ulx3s-85f", "ratio:dsp+mul", 1.3, "ULX3S-85F mixed vs (b) DSPs + plain LUT multipliers"),
    ("icebreaker", "ratio:dsp+booth", 1.1, "iCEBreaker mixed vs (c) DSPs + Booth LUT lanes"),
    ("ulx3s-85f", "ratio:dsp+booth", 1.1, "ULX3S-85F mixed vs (c) DSPs + Booth LUT lanes"),
)


@dataclass(frozen=True)
class BoardsOptions:
    out: Path
    boards: tuple[str, ...] = tuple(PLANS)
    designs: tuple[str, ...] = DESIGNS
    seeds: int = 3  # seeds 1..N per design on iCE40 boards
    ecp5_seeds: int = 1  # and on ECP5 boards (a full ECP5-85F build takes 10+ minutes)
    jobs: int = 2
    report_only: bool = False  # write the record from the finished builds, build nothing
    time_limit_min: float | None = None  # a build still running then is stopped and recorded as failed

    def seed_list(self, board: str) -> range:
        return range(1, 1 + (self.ecp5_seeds if PLANS[board].target == "ecp5" else self.seeds))


def _options(board: str, seed: int, time_limit_min: float | None = None) -> BuildOptions:
    return BuildOptions(board, freq_hz=CLOCK_MHZ[board] * 1e6, seed=seed, time_limit_min=time_limit_min)


def _digest(board: str, design: str, seed: int) -> str:
    """The build plan this run would hand the tools (elaborates the design: seconds for an iCE40
    array, half a minute for the full ECP5 one)."""
    _, _, plan = prepare_board(board_array(board, design), _options(board, seed))
    return plan_digest(plan)


def _failure_file(path: Path) -> Path:
    return path.with_name(path.name + ".failed.json")


def _reason(message: str) -> str:
    """The line of a failed build's log a user acts on: the tool's last ERROR, else the first line."""
    errors = [ln.strip() for ln in message.splitlines() if "ERROR" in ln]
    return errors[-1] if errors else message.splitlines()[0]


def _one(board: str, design: str, out: str, seed: int, time_limit_min: float | None = None) -> dict[str, Any]:
    """One build in a worker process (its own directory). A build the tools end with an error, or
    that runs past the time limit, is a result too: it is recorded beside the directory as
    `<build>.failed.json` with the plan digest, and the run goes on with the others."""
    from ..boards.build import build_board

    path = Path(out)
    try:
        r = build_board(board_array(board, design), path, _options(board, seed, time_limit_min))
    except RowmixError as e:
        failure = {"failed": _reason(str(e)), "plan": _digest(board, design, seed), "seed": seed}
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(_failure_file(path), json.dumps(failure, indent=1))
        return failure
    _failure_file(path).unlink(missing_ok=True)
    return r


def _cached(path: Path, board: str, design: str, seed: int) -> dict[str, Any] | None:
    """The finished build in `path` if it built what this run would, else the recorded failure of
    that same build plan (a normal run tries it again; `--report-only` reports it as failed)."""
    records = [f for f in (path / "build.json", _failure_file(path)) if f.is_file()]
    if not records:
        return None
    digest = _digest(board, design, seed)
    for f in records:
        r = json.loads(f.read_text())
        if r.get("plan") == digest:
            return r
    return None


def summarize(all_builds: dict[tuple[str, str, int], dict[str, Any]]) -> dict[str, Any]:
    builds: dict[tuple[str, str], dict[str, Any]] = {}
    seeds: dict[tuple[str, str], dict[int, float]] = {}
    for (board, design, seed), r in all_builds.items():
        if "failed" in r:
            continue
        seeds.setdefault((board, design), {})[seed] = r["fmax_mhz"]
        if (board, design) not in builds or r["fmax_mhz"] > builds[(board, design)]["fmax_mhz"]:
            builds[(board, design)] = r
    rows = []
    for (board, design), r in sorted(builds.items(), key=lambda kv: (kv[0][0], DESIGNS.index(kv[0][1]))):
        lut = r["resources"]["lut"]
        rows.append({
            "board": board, "design": design, "macs_per_cycle": r["macs_per_cycle"], "fmax_mhz": r["fmax_mhz"],
            "clock_mhz": r["clock_mhz"], "timing_met": r["timing_met"],
            "gmacs_at_fmax": r["macs_per_cycle"] * r["fmax_mhz"] / 1e3,
            "lut_used": lut["used"], "lut_share": lut["share"], "ff_used": r["resources"]["ff"]["used"],
            "dsp_used": r["resources"]["dsp"]["used"], "dsp_available": r["resources"]["dsp"]["available"],
            "bram_used": r["resources"]["bram"]["used"], "bram_available": r["resources"]["bram"]["available"],
            "array": r["array"], "seconds": r["seconds"], "seed": r["seed"], "rowmix": r.get("rowmix"),
            "fmax_by_seed": {str(k): v for k, v in sorted(seeds[(board, design)].items())},
        })
    by = {(x["board"], x["design"]): x for x in rows}
    ratios = {}
    for board in sorted({b for b, _ in by}):
        mixed = by.get((board, "mixed"))
        if mixed is None:
            continue
        ratios[board] = {d: mixed["gmacs_at_fmax"] / by[(board, d)]["gmacs_at_fmax"]
                         for d in BASELINES if (board, d) in by}
    goals = []
    for board, metric, limit, text in GOALS:
        if metric.startswith("ratio:"):
            v = ratios.get(board, {}).get(metric.split(":", 1)[1])
        else:
            v = by.get((board, "mixed"), {}).get(metric)
        if v is None:
            continue
        goals.append({"goal": text, "measured": round(v, 3), "limit": limit, "pass": v >= limit})
    shares = {b: board_ratio(b) for b in sorted({b for b, _ in by})}
    return {"builds": rows, "ratios": ratios, "goals": goals, "sp2_row_share": shares}


def markdown(doc: dict[str, Any]) -> str:
    lines = ["# Boards: full mixed arrays against fixed-point-only baselines", "",
             "Generated by `rowmix bench boards` (software/bench/boards_bench.py): every design is built by the same "
             "generator (rowmix.boards.arrays sizes it) behind the same UART host link, with YoWASP Yosys + nextpnr "
             "from PyPI, at a PLL clock of the board's Fmax goal. Throughput = MACs/cycle x nextpnr's Fmax (an "
             "estimate of the placed and routed design, not silicon) of the best placement seed; every seed's Fmax "
             "is listed. Activations are 4-bit in every design.", "",
             "| board | design | MACs/cycle | Fmax (MHz), best [all seeds] | GMAC/s at Fmax | LUT/LC | FF | DSP | BRAM | "
             "build (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["builds"]:
        every = ", ".join(f"{v:.1f}" for v in r["fmax_by_seed"].values())
        lines.append(f"| {r['board']} | {r['design']} | {r['macs_per_cycle']} | {r['fmax_mhz']:.1f} [{every}] | "
                     f"{r['gmacs_at_fmax']:.2f} | {r['lut_used']} ({100 * r['lut_share']:.0f} %) | {r['ff_used']} | "
                     f"{r['dsp_used']}/{r['dsp_available']} | {r['bram_used']}/{r['bram_available']} | {r['seconds']:.0f} |")
    lines += ["", "## Mixed over each baseline (throughput ratio)", "", "| board | " + " | ".join(BASELINES.values()) + " |",
              "|---|" + "---|" * len(BASELINES)]
    for board, rs in doc["ratios"].items():
        lines.append(f"| {board} | " + " | ".join(f"{rs[d]:.2f}x" if d in rs else "-" for d in BASELINES) + " |")
    lines += ["", "## SP2 row share of each board's mixed array (the ratio `rowmix flow --board` quantizes with)", ""]
    for board, r in doc["sp2_row_share"].items():
        lines.append(f"- {board}: SP2 : FIXED4 : FIXED8 = {r['SP2']} : {r['FIXED4']} : {r['FIXED8']}")
    lines += ["", "## Goals", "", "| goal | measured | goal | |", "|---|---|---|---|"]
    for g in doc["goals"]:
        lines.append(f"| {g['goal']} | {g['measured']} | >= {g['limit']} | {'met' if g['pass'] else 'NOT met'} |")
    if doc.get("failed"):
        lines += ["", "Failed in this record (the tools ended with an error or ran past the time limit; "
                  "`OUT/<build>.failed.json`):", ""]
        lines += [f"- {f['build']}: {f['reason']}" for f in doc["failed"]]
    if doc.get("not_built"):
        lines += ["", "Not built in this record: " + ", ".join(doc["not_built"]) + " (see docs/boards.md)."]
    lines += ["", "## Arrays", ""]
    for r in doc["builds"]:
        groups = ", ".join(f"{g} {v['rows']} x {v['kind']}" + (f" ({v['lut_rows']} on {v['lut_kind']})" if v.get("lut_rows") else "")
                           for g, v in r["array"]["groups"].items() if v["rows"])
        lines.append(f"- {r['board']} {r['design']}: t_k {r['array']['t_k']}, {groups}")
    return "\n".join(lines) + "\n"


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    boards = sorted({r["board"] for r in doc["builds"]})
    fig, axes = plt.subplots(1, len(boards), figsize=(5.5 * len(boards), 4), squeeze=False)
    for ax, board in zip(axes[0], boards):
        rs = [r for r in doc["builds"] if r["board"] == board]
        names = [r["design"] for r in rs]
        vals = [r["gmacs_at_fmax"] for r in rs]
        bars = ax.bar(names, vals, color=["tab:green" if n == "mixed" else "tab:gray" for n in names])
        for b, r in zip(bars, rs):
            ax.annotate(f"{r['macs_per_cycle']} MAC/c\n{r['fmax_mhz']:.0f} MHz", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_title(board)
        ax.set_ylabel("GMAC/s at nextpnr Fmax")
        ax.set_ylim(0, max(vals) * 1.3)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run(o: BoardsOptions, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    for b in o.boards:
        if b not in PLANS:
            raise RowmixError(f"unknown board {b!r} (known: {', '.join(PLANS)})")
    for d in o.designs:
        if d not in DESIGNS:
            raise RowmixError(f"unknown design {d!r} (known: {', '.join(DESIGNS)})")
    o.out.mkdir(parents=True, exist_ok=True)
    builds, todo = {}, []
    for b in o.boards:
        for d in o.designs:
            for seed in o.seed_list(b):
                cached = _cached(o.out / f"{b}-{d}-seed{seed}", b, d, seed)
                if cached is not None:
                    builds[(b, d, seed)] = cached
                if cached is None or "failed" in cached:
                    todo.append((b, d, seed))
    if o.report_only:
        return report(o.out, builds, missing=[k for k in todo if k not in builds])
    # the largest builds first, so the pool's tail is short
    todo.sort(key=lambda bds: -board_array(*bds[:2]).macs_per_cycle * (10 if PLANS[bds[0]].target == "ecp5" else 1))
    with ProcessPoolExecutor(max_workers=max(1, o.jobs)) as pool:
        futs = {pool.submit(_one, b, d, str(o.out / f"{b}-{d}-seed{seed}"), seed, o.time_limit_min): (b, d, seed)
                for b, d, seed in todo}
        for f in as_completed(futs):
            key = futs[f]
            builds[key] = r = f.result()
            if progress:
                name = f"{key[0]} {key[1]} seed {key[2]}"
                progress(f"{name}: FAILED, {r['failed']}" if "failed" in r else
                         f"{name}: {r['fmax_mhz']:.1f} MHz, {r['macs_per_cycle']} MACs/cycle")
            report(o.out, builds)  # after every build: an interrupted run still leaves its record
    return report(o.out, builds)


def report(out: Path, builds: dict[tuple[str, str, int], dict[str, Any]],
           missing: list[tuple[str, str, int]] = ()) -> dict[str, Any]:
    doc = summarize(builds)
    doc["failed"] = [{"build": f"{b} {d} seed {s}", "reason": r["failed"]}
                     for (b, d, s), r in sorted(builds.items()) if "failed" in r]
    doc["not_built"] = [f"{b} {d} seed {s}" for b, d, s in missing]
    _write(out / "boards.json", json.dumps(doc, indent=1))
    _write(out / "boards.md", markdown(doc))
    if doc["builds"]:
        plot(doc, out / "boards.png")
    return doc
