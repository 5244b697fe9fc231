"""`rowmix bench hardware`: synthesize every lane unit (all lane kinds, 8- and 5-bit lanes, iCE40 /
ECP5 / xc7) with Yosys, build the resource model of the three boards and check the lane-cost goals.

Writes `resource_model.json` (rowmix.hardware.resources format), `hardware_bench.md` and
`lane_costs.png` into `out_dir`, atomically (temp directory renamed into place)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..artifact import replace_dir
from ..hardware import resources as res
from ..hardware.devices import BOARDS

# (goal id, description, target, group, kind, lane width, field, comparison, limit)
GOALS = (
    ("T3-ecp5-u8", "SP2 lane on ECP5, 8-bit act: LUT4 per MAC lane (incl. tree + acc share)", "ecp5", "SP2", "sp2", 8,
     "lut", "<=", 60),
    ("T3-ecp5-u4", "SP2 lane on ECP5, 4-bit act (5-bit lanes): LUT4 per MAC lane", "ecp5", "SP2", "sp2", 5,
     "lut", "<=", 40),
    ("T1", "FIXED-4 MACs per SB_MAC16 per cycle (iCE40 dual 8x8)", "ice40", "FIXED4", "dsp", 8, "macs_per_dsp", ">=", 2),
    ("T2", "FIXED-4 MACs per MULT18X18D per cycle (ECP5, two packed rows)", "ecp5", "FIXED4", "dsp", 8,
     "macs_per_dsp", ">=", 2),
    ("T4", "Booth FIXED-4 LUT lane on ECP5, 8-bit act: LUT4 per MAC lane", "ecp5", "FIXED4", "booth", 8,
     "lut", "<=", 62),
)

KIND_ORDER = res.LANE_KINDS
TARGET_UNITS = {"ice40": "SB_LUT4", "ecp5": "LUT4 (+2/CCU2C)", "xc7": "LUT6"}


def evaluate_goals(lane_costs: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for gid, text, target, group, kind, aw, fld, op, limit in GOALS:
        try:
            c = lane_costs[target][group][kind][str(aw)]
        except KeyError:
            out.append({"goal": gid, "description": text, "limit": f"{op} {limit}", "measured": None, "pass": False})
            continue
        if fld == "macs_per_dsp":
            v = (1 / c["dsp"]) if c["dsp"] else 0.0
        else:
            v = c[fld]
        ok = v <= limit + 1e-9 if op == "<=" else v >= limit - 1e-9
        out.append({"goal": gid, "description": text, "limit": f"{op} {limit}", "measured": round(v, 2), "pass": ok})
    return out


def _fmt(v: float) -> str:
    return f"{v:.1f}" if abs(v - round(v)) > 1e-9 else f"{v:.0f}"


def _markdown(model: dict[str, Any], goals: list[dict[str, Any]], seconds: float, cache_hits: int, units: int) -> str:
    lc, unit = model["lane_costs"], model["unit"]
    lines = ["# Hardware resource model", "",
             f"Tool: {model['tool']}. Lane unit: the real `GroupDatapath`, {unit['rows']} rows x {unit['t_k']} MAC "
             f"lanes = {unit['rows'] * unit['t_k']} MAC lanes, {unit['acc_bits']}-bit accumulators; every cell count "
             "below is divided by the MAC lanes, so the adder tree, the accumulators and the tag pipeline are "
             "amortised. LUT = SB_LUT4 on iCE40, LUT4 + 2 per CCU2C on ECP5, LUT1..LUT6 on xc7. LUT lanes are "
             "synthesized with `-nodsp` (ECP5, xc7); iCE40 never with `-dsp` (SB_MAC16 is instantiated in dual 8x8 "
             "mode).", "",
             f"{units} units, {cache_hits} from the cache; run time {seconds:.0f} s.", "",
             "## Goals", "", "| goal | what | limit | measured | result |", "|---|---|---|---|---|"]
    for g in goals:
        meas = "n/a" if g["measured"] is None else f"{g['measured']:g}"
        lines.append(f"| {g['goal']} | {g['description']} | {g['limit']} | {meas} | "
                     f"{'pass' if g['pass'] else '**FAIL**'} |")
    lines += ["", "Raw Yosys cells of the goal units (whole unit of "
              f"{unit['rows'] * unit['t_k']} MAC lanes):", ""]
    for gid, _, target, group, kind, aw, *_ in GOALS:
        c = lc.get(target, {}).get(group, {}).get(kind, {}).get(str(aw))
        if c is not None:
            cells = ", ".join(f"{k} {v}" for k, v in c["cells"].items())
            lines.append(f"- {gid}: {target} {group}/{kind} a{aw}: {cells}")
    lines += ["", "## Cost per MAC lane", "",
              "lut / carry / ff / dsp per MAC lane; a5 = 5-bit lanes (4-bit activations), a8 = 8-bit lanes.", "",
              "| target | group | kind | act | lut | carry | ff | dsp | MACs/DSP |", "|---|---|---|---|---|---|---|---|---|"]
    for target in res.TARGETS:
        for group, kind in KIND_ORDER:
            for aw in res.ACT_WIDTHS:
                c = lc.get(target, {}).get(group, {}).get(kind, {}).get(str(aw))
                if c is None:
                    continue
                mpd = f"{c['macs_per_dsp']:g}" if c.get("macs_per_dsp") else "-"
                lines.append(f"| {target} | {group} | {kind} | a{aw} | {c['lut']:.2f} | {c['carry']:.2f} | "
                             f"{c['ff']:.2f} | {c['dsp']:.3f} | {mpd} |")
    lines += ["", "## Boards", "",
              f"MAC lanes may use {', '.join(f'{n}: {b.lane_share:.0%}' for n, b in BOARDS.items())} of the LUTs "
              "(the rest: control, memories, requantization, I/O); the LUTs of the DSP lanes' adder trees and "
              f"accumulators are charged to that budget. FIXED-8 gets the DSPs for {model['fixed8_share']:.0%} of the "
              "MAC lanes; rows are split in proportion to MAC lanes (every group finishes a layer together).", "",
              "| board | device | act | SP2 lanes | FIXED4 lanes | FIXED8 lanes | MACs/cycle | DSPs F4/F8 | "
              "LUT use | ratio SP2:F4:F8 | speed-up vs DSP-only |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, b in model["boards"].items():
        for a, m in sorted(b["by_act_bits"].items(), key=lambda kv: -int(kv[0])):
            ln, r = m["lanes"], m["ratio"]
            lines.append(f"| {name} | {b['device']} | {a}-bit | {ln['SP2']} | {ln['FIXED4']} | {ln['FIXED8']} | "
                         f"{m['macs_per_cycle']} | {m['dsps_used']['FIXED4']}/{m['dsps_used']['FIXED8']} | "
                         f"{m['lut_fraction_of_device']:.0%} | {r['SP2']}:{r['FIXED4']}:{r['FIXED8']} | "
                         f"{m['speedup_vs_dsp_only']:.2f}x |")
    lines += ["", "Headline ratio per board (`rowmix quantize --ratio-from resource_model.json --board B`): "
              + ", ".join(f"{n} {b['ratio']['SP2']}:{b['ratio']['FIXED4']}:{b['ratio']['FIXED8']} "
                          f"({b['act_bits']}-bit act)" for n, b in model["boards"].items()) + ".", "",
              "## Suggested arrays (t_k = 8)", "",
              "Integer rows per group that fit the budget and best balance the ratio (score: the slowest group's "
              "rows per unit of its row share). Balanced MACs/cycle = what a layer split at the ratio sustains.", "",
              "| board | act | SP2 rows | FIXED4 rows (kind) | FIXED8 rows (kind) | peak MACs/cycle | balanced MACs/cycle "
              "| DSPs | LUT use | row shares |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, b in model["boards"].items():
        for a, m in sorted(b["by_act_bits"].items(), key=lambda kv: -int(kv[0])):
            g, u = m["suggested_array"]["groups"], m["suggested_array_usage"]
            rr = u["ratio"]
            lines.append(f"| {name} | {a}-bit | {g['SP2']['rows']} | {g['FIXED4']['rows']} ({g['FIXED4']['kind']}) | "
                         f"{g['FIXED8']['rows']} ({g['FIXED8']['kind']}) | {u['macs_per_cycle']} | "
                         f"{u['balanced_macs_per_cycle']:.0f} | {u['dsps']} | {u['lut_fraction_of_device']:.0%} | "
                         f"{rr['SP2']}:{rr['FIXED4']}:{rr['FIXED8']} |")
    lines += ["", "Peak figures are MAC lanes x 1 MAC/cycle at one clock; Fmax is not modelled here.", ""]
    return "\n".join(lines) + "\n"


def _plot(model: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    lc = model["lane_costs"]
    kinds = [(g, k) for g, k in KIND_ORDER]
    fig, axes = plt.subplots(1, len(res.ACT_WIDTHS), figsize=(7 * len(res.ACT_WIDTHS), 4.2), squeeze=False)
    x = np.arange(len(kinds))
    width = 0.8 / len(res.TARGETS)
    for ax, aw in zip(axes[0], res.ACT_WIDTHS):
        for i, target in enumerate(res.TARGETS):
            vals = [lc.get(target, {}).get(g, {}).get(k, {}).get(str(aw), {}).get("lut", 0.0) for g, k in kinds]
            bars = ax.bar(x + (i - (len(res.TARGETS) - 1) / 2) * width, vals, width,
                          label=f"{target} ({TARGET_UNITS[target]})")
            ax.bar_label(bars, fmt="%.0f", fontsize=6)
        ax.set_xticks(x, [f"{g}\n{k}" for g, k in kinds], fontsize=8)
        ax.set_ylabel("LUTs per MAC lane")
        ax.set_title(f"{aw}-bit lanes ({'8' if aw == 8 else '4'}-bit activations)")
        ax.legend(fontsize=7)
    fig.suptitle("LUT cost per MAC lane (incl. share of adder tree and accumulator)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(out_dir: str | Path, progress: Callable[[int, int, Any], None] | None = None, *,
        cache_dir: str | Path | None = None, workers: int = 2) -> dict[str, Any]:
    """Synthesize all lane units, write resource_model.json, hardware_bench.md and lane_costs.png
    into `out_dir` (replaced atomically). `progress(done, total, lane_cost)` follows the synthesis."""
    out = Path(out_dir).resolve()
    t0 = time.perf_counter()
    costs = res.measure_lane_costs(cache_dir=cache_dir, workers=workers, progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    os.chmod(tmp, 0o755)
    model = res.write_resource_model(tmp / "resource_model.json", costs)
    goals = evaluate_goals(model["lane_costs"])
    seconds = time.perf_counter() - t0
    hits = sum(c.cached for c in costs)
    (tmp / "hardware_bench.md").write_text(_markdown(model, goals, seconds, hits, len(costs)))
    _plot(model, tmp / "lane_costs.png")
    replace_dir(tmp, out)
    return {"out": str(out), "seconds": seconds, "units": len(costs), "cache_hits": hits, "goals": goals,
            "model": model}
