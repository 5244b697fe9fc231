"""What an array costs and how fast it runs a network: cycles per layer from the cycle model, ideal
cycles and utilisation, DSP count and memory bits from the configuration."""

from __future__ import annotations

import math
from typing import Any

from ..artifact import Artifact, MacLayer
from ..formats import GROUPS
from .config import CODE_BITS, ArrayConfig
from .cycles import layer_cycles
from .engine import CHANNEL_BITS, OUT_BANKS
from .protocol import config_words
from .requant import M_BITS, N_BITS

# On-chip RAM block sizes in bits: iCE40 EBR 4 Kb, ECP5 DP16KD 18 Kb, Xilinx BRAM36 36 Kb.
BLOCK_BITS = {"ice40": 4096, "ecp5": 18432, "xc7": 36864, "generic": 18432}


def pixels_of(layer: MacLayer) -> int:
    return int(math.prod(layer.out.shape[1:])) if layer.op == "conv" else 1


def dsp_count(cfg: ArrayConfig) -> int:
    n = 0
    for g, gc in cfg.groups.items():
        macs = gc.dsp_rows * cfg.t_k
        paired = g == "FIXED4" or cfg.target == "ice40"
        n += -(-macs // 2) if paired else macs
    return n


def memories(cfg: ArrayConfig) -> dict[str, dict[str, int]]:
    """Every on-chip memory: width and depth (bits = width * depth)."""
    active = [g for g in GROUPS if cfg.groups[g].rows]
    drains = 1 if cfg.shared_requant else len(active)  # one output memory and row table per drain
    mems = {"activations": {"width": cfg.t_k * cfg.lane_width, "depth": 2 * cfg.max_steps},
            "outputs": {"width": cfg.out_bits, "depth": OUT_BANKS * cfg.max_rows * drains}}
    row_bits = cfg.acc_bits + M_BITS + N_BITS + CHANNEL_BITS + 1
    for g in active:
        gc = cfg.groups[g]
        mems[f"codes_{g}"] = {"width": gc.rows * cfg.t_k * CODE_BITS[g], "depth": cfg.max_tiles(g) * cfg.max_steps}
        if not cfg.shared_requant:
            mems[f"rows_{g}"] = {"width": row_bits, "depth": cfg.max_tiles(g) * gc.rows}
    if cfg.shared_requant and active:
        mems["rows"] = {"width": row_bits, "depth": sum(cfg.max_tiles(g) * cfg.groups[g].rows for g in active)}
    for v in mems.values():
        v["bits"] = v["width"] * v["depth"]
    return mems


def estimate(art: Artifact, cfg: ArrayConfig, lane_costs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The estimate.json of `rowmix generate`. `lane_costs` (the resource model's table) adds the MAC
    lanes' LUT and FF estimate for the array's target."""
    layers, total, ideal = [], 0, 0
    for layer in art.mac_layers:
        words, plan = config_words(layer, art.tensors[layer.input], cfg, art.requant)
        c = layer_cycles(plan, cfg, pixels_of(layer))
        layers.append({**c.to_json(), "config_words": int(len(words)), "rows_per_group": plan.rows,
                       "tiles": plan.tiles, "offset": plan.offset})
        total += c.cycles
        ideal += c.ideal_cycles
    mems = memories(cfg)
    block = BLOCK_BITS[cfg.target]
    lanes = {g: cfg.groups[g].rows * cfg.t_k for g in GROUPS}
    luts = ffs = None
    if lane_costs is not None:
        aw = str(cfg.lane_width)
        parts = [(gc.rows - gc.lut_rows, gc.kind, g) for g, gc in cfg.groups.items()] + \
                [(gc.lut_rows, gc.lut_kind, g) for g, gc in cfg.groups.items()]
        per = [(n * cfg.t_k, lane_costs[cfg.target][g][k][aw]) for n, k, g in parts if n]
        luts = round(sum(n * c["lut"] for n, c in per))
        ffs = round(sum(n * c["ff"] for n, c in per))
    return {
        "target": cfg.target,
        "array": cfg.to_json(),
        "mac_lanes": lanes,
        "macs_per_cycle": cfg.macs_per_cycle,
        "layers": layers,
        "per_image": {
            "cycles": total,
            "ideal_cycles": ideal,
            "utilisation": ideal / total if total else 0.0,
            "config_words": sum(l["config_words"] for l in layers),
            "macs": sum(l["macs"] for l in layers),
        },
        "resources": {
            "dsp": dsp_count(cfg),
            "memory_bits": sum(m["bits"] for m in mems.values()),
            "ram_blocks_estimate": sum(-(-m["bits"] // block) for m in mems.values() if m["bits"] > 1024),
            "memories": mems,
            "lane_luts_estimate": luts,
            "lane_ffs_estimate": ffs,
            "note": "DSPs and memories follow from the configuration; LUTs and FFs of the MAC lanes (adder "
                    "trees and accumulators included) from Yosys-synthesized lane units of the target "
                    "(rowmix.hardware.resources); control, memories and the requant unit come on top.",
        },
    }
