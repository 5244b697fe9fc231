"""`rowmix generate`: Verilog of the array, per-layer configuration streams and the estimate."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..artifact import Artifact, replace_dir
from ..errors import RowmixError
from ..formats import GROUPS
from .config import KINDS, ArrayConfig, GroupConfig
from .estimate import estimate, pixels_of
from .protocol import config_words
from .top import TOP_NAME, verilog_text

# Activation tile width and MAC lanes of default arrays per target; DSP use is then capped by the
# target board's device (iCE40UP5K 8 SB_MAC16, ECP5-85F 156 MULT18X18D, XC7Z020 220 DSP48E1).
# `rowmix bench hardware` suggests arrays sized from synthesized lane costs instead.
DEFAULT_BUDGET = {"generic": (8, 128), "ice40": (8, 64), "ecp5": (16, 768), "xc7": (16, 512)}
DEVICE_OF_TARGET = {"ice40": "iCE40UP5K", "ecp5": "LFE5U-85F", "xc7": "XC7Z020"}


def default_config(art: Artifact, target: str) -> ArrayConfig:
    """An array for `target` whose row lanes follow the artifact's SP2 : FIXED4 : FIXED8 row mix
    (balanced groups finish each layer together) and whose memories fit its largest layer."""
    if target not in DEFAULT_BUDGET:
        raise RowmixError(f"unknown target {target!r} (known: {', '.join(DEFAULT_BUDGET)})")
    t_k, macs = DEFAULT_BUDGET[target]
    rows_total = macs // t_k
    counts = {g: sum(len(l.row_groups[g]) for l in art.mac_layers) for g in GROUPS}
    n = sum(counts.values())
    rows = {g: (max(1, round(rows_total * counts[g] / n)) if counts[g] else 0) for g in GROUPS}
    if rows["FIXED4"] % 2:
        rows["FIXED4"] += 1
    k_max = max(l.k for l in art.mac_layers)
    r_max = max(l.r for l in art.mac_layers)
    kinds = {g: KINDS[g][0] for g in GROUPS}

    def make() -> ArrayConfig:
        return ArrayConfig(target=target, t_k=t_k, groups={g: GroupConfig(rows[g], kinds[g]) for g in GROUPS},
                           max_k=-(-k_max // t_k) * t_k, max_rows=r_max)

    if target in DEVICE_OF_TARGET:
        from .devices import get_device
        from .estimate import dsp_count

        limit = get_device(DEVICE_OF_TARGET[target]).dsps
        while dsp_count(make()) > limit:  # shrink the DSP groups, then move them to LUT lanes
            if rows["FIXED8"] > 1 and kinds["FIXED8"] == "dsp":
                rows["FIXED8"] -= 1
            elif rows["FIXED4"] > 2 and kinds["FIXED4"] == "dsp":
                rows["FIXED4"] -= 2
            elif kinds["FIXED8"] == "dsp" and rows["FIXED8"]:
                kinds["FIXED8"] = "mul"
            else:
                kinds["FIXED4"] = "booth"
    return make()


def target_lane_costs(cfg: ArrayConfig) -> dict | None:
    """Per-lane costs of the array's lane kinds on its target, synthesized by Yosys (cached after
    the first run); None for the generic target."""
    if cfg.target == "generic":
        return None
    from .resources import UnitSpec, lane_cost_table, measure_lane_costs

    specs = [UnitSpec(g, k, cfg.target, cfg.lane_width) for g in GROUPS for k in cfg.groups[g].kinds]
    return lane_cost_table(measure_lane_costs(specs))


def write_hex(path: Path, words: np.ndarray) -> None:
    path.write_text("".join(f"{int(w):08x}\n" for w in words))


def generate(art: Artifact | None, cfg: ArrayConfig, out: str | Path) -> dict:
    """Write `out/` atomically: rowmix_array.v, array.json, layers/*.cfg.hex + layers/index.json
    (when an artifact is given) and estimate.json. Returns the estimate (or the bare config)."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        index = []
        if art is not None:
            (tmp / "layers").mkdir()
            for i, layer in enumerate(art.mac_layers):
                words, plan = config_words(layer, art.tensors[layer.input], cfg, art.requant)
                name = f"{i:02d}_{layer.name}.cfg.hex"
                write_hex(tmp / "layers" / name, words)
                index.append({"layer": layer.name, "file": f"layers/{name}", "words": int(len(words)),
                              "pixels": pixels_of(layer), "K": layer.k, "K_hw": plan.k_hw, "steps": plan.steps,
                              "R": plan.r, "tiles": plan.tiles, "offset": plan.offset})
            (tmp / "layers" / "index.json").write_text(json.dumps(index, indent=1) + "\n")
        (tmp / f"{TOP_NAME}.v").write_text(verilog_text(cfg))
        (tmp / "array.json").write_text(json.dumps(cfg.to_json(), indent=1) + "\n")
        est = estimate(art, cfg, target_lane_costs(cfg)) if art is not None else \
            {"target": cfg.target, "array": cfg.to_json(), "macs_per_cycle": cfg.macs_per_cycle}
        (tmp / "estimate.json").write_text(json.dumps(est, indent=1) + "\n")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return est
