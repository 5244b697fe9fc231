"""Array configuration: how many rows of each storage group run in parallel, on which lane kind,
how wide the activation tile is, and how big the on-chip memories are.

A row lane holds `t_k` MAC lanes (one multiply per activation element of the tile), an adder tree
and an accumulator; a group's row lanes work on `rows` output rows at once. MACs per cycle =
t_k * (SP2 rows + FIXED4 rows + FIXED8 rows).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import RowmixError
from ..formats import CONTAINER_BITS, GROUPS, SP2_VALUES

TARGETS = ("generic", "ice40", "ecp5", "xc7")
# Lane kinds per group: SP2 rows on LUT shift-add lanes; FIXED rows on DSP multipliers ("dsp",
# FIXED4 packed two rows per multiplier), radix-4 Booth LUT lanes ("booth", FIXED4 only) or plain
# LUT multipliers ("mul", the fixed-point baseline).
KINDS = {"SP2": ("sp2",), "FIXED4": ("dsp", "booth", "mul"), "FIXED8": ("dsp", "mul")}
CODE_BITS = {"SP2": 4, "FIXED4": 4, "FIXED8": 8}
LANE_WIDTH = {8: 8, 4: 5}  # activation bits -> signed lane operand width (unsigned 8-bit layers use an offset)
# Rows per copy of a control broadcast that one register feeds in one hop (a muxing drain's picks,
# the first stage of the code read addresses), at least, whatever `act_fanout`: at a copy per 2
# rows, the hop to 21 copies across the ECP5 die was the array's critical path.
MIN_COPY_ROWS = 4
# The largest weight magnitude any code of a group's container can hold (a negated row included).
WEIGHT_MAX = {"SP2": int(abs(SP2_VALUES).max()), "FIXED4": 1 << (CONTAINER_BITS["FIXED4"] - 1),
              "FIXED8": 1 << (CONTAINER_BITS["FIXED8"] - 1)}


@dataclass(frozen=True)
class GroupConfig:
    """`rows` row lanes of lane kind `kind`; of them, the last `lut_rows` may run on LUT lanes of
    `lut_kind` instead (a DSP group topped up with LUT multipliers: the fixed-point baselines of
    `rowmix bench boards`, which fill a device's DSPs first and its LUTs after)."""

    rows: int
    kind: str
    lut_rows: int = 0
    lut_kind: str = ""
    max_rows: int = 0  # rows of one layer this group's memories hold (0: the array's max_rows); a
    # group that carries a small share of every layer (FIXED8 at 2 %) then needs a shallow memory

    @property
    def dsp_rows(self) -> int:
        return self.rows - self.lut_rows if self.kind == "dsp" else 0

    def row_kind(self, r: int) -> str:
        return self.lut_kind if r >= self.rows - self.lut_rows else self.kind

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k, n in ((self.kind, self.rows - self.lut_rows), (self.lut_kind, self.lut_rows)) if n)


@dataclass(frozen=True)
class ArrayConfig:
    target: str = "generic"
    t_k: int = 8
    act_bits: int = 8  # lane activation width: signed act_bits (unsigned 8-bit layers use an offset)
    groups: dict[str, GroupConfig] = field(default_factory=lambda: {
        "SP2": GroupConfig(8, "sp2"), "FIXED4": GroupConfig(4, "dsp"), "FIXED8": GroupConfig(2, "dsp")})
    max_k: int = 1024  # activation buffer: K_pad elements per pixel
    max_rows: int = 64  # rows per group per layer the row-table and code memories hold
    acc_bits: int = 32
    out_bits: int = 16
    shared_requant: bool = False  # one requant unit drains every group in turn (small devices: saves a
    # unit per group; a tile slot then needs the sum of the groups' row lanes, not their maximum)
    act_fanout: int = 0  # rows per copy of the activation registers of late LUT lanes (0: one copy
    # per group); large ECP5 arrays replicate them so the broadcast is not the critical net
    row_addr: bool = False  # code read addresses reach every row's memory through two register stages
    # (large arrays: one address net to every code block RAM was the ECP5's critical path; two cycles
    # more latency per tile)
    write_stages: bool = False  # configuration writes reach the code memories through a register per
    # `act_fanout` rows (large arrays: one configuration word to every code block RAM of the ECP5 was a 24 ns route)
    shift_drain: bool = False  # DSP groups' hold registers shift toward the drain instead of a mux of
    # every row's (`drain_shifts`; large arrays: the mux gathered hold registers from across the ECP5 die)
    narrow_acc: bool = False  # row accumulators and hold registers only as wide as a max_k dot product
    # can reach (`row_acc_bits`; the bias add stays at acc_bits): the UP5K's LCs are its limit
    read_stages: int = 1  # registers after every memory read (2 on large arrays: the ECP5's block RAMs
    # sit in a few rows of the die, and one route from a code memory to its far lanes took 19 ns)

    @property
    def drain_rows(self) -> int:
        """Cycles the drain of one tile takes (before its fixed overhead)."""
        rows = [g.rows for g in self.groups.values()]
        return max(1, sum(rows) if self.shared_requant else max(rows))

    def __post_init__(self) -> None:
        groups = {g: (v if isinstance(v, GroupConfig) else GroupConfig(**v)) for g, v in self.groups.items()}
        object.__setattr__(self, "groups", groups)
        problems = []
        if self.target not in TARGETS:
            problems.append(f"target {self.target!r} is not one of {', '.join(TARGETS)}")
        if set(groups) != set(GROUPS):
            problems.append(f"groups must be exactly {', '.join(GROUPS)}")
        for g, gc in groups.items():
            if g in KINDS and gc.kind not in KINDS[g]:
                problems.append(f"group {g}: kind {gc.kind!r} is not one of {', '.join(KINDS[g])}")
            if gc.rows < 0 or gc.max_rows < 0:
                problems.append(f"group {g}: rows and max_rows must be >= 0")
            if gc.lut_rows and (gc.kind != "dsp" or not 0 < gc.lut_rows <= gc.rows
                                or gc.lut_kind not in KINDS.get(g, ()) or gc.lut_kind == "dsp"):
                problems.append(f"group {g}: lut_rows ({gc.lut_rows}) need a DSP group of at least as many rows "
                                f"and a LUT lut_kind, got kind {gc.kind!r}, lut_kind {gc.lut_kind!r}")
        if groups.get("FIXED4") and groups["FIXED4"].dsp_rows % 2 and self.target != "ice40":  # (iCE40 pairs
            # an odd row's activation elements in its dual 8x8 multipliers)
            problems.append("group FIXED4 on DSPs packs two rows per multiplier: its DSP rows must be even")
        if self.t_k < 1 or self.t_k & (self.t_k - 1):
            problems.append(f"t_k must be a power of two, got {self.t_k}")
        if self.act_bits not in (4, 8):
            problems.append(f"act_bits must be 4 or 8, got {self.act_bits}")
        if self.max_k % self.t_k or self.max_k < self.t_k:
            problems.append(f"max_k ({self.max_k}) must be a positive multiple of t_k ({self.t_k})")
        if self.read_stages not in (1, 2):
            problems.append(f"read_stages must be 1 or 2, got {self.read_stages}")
        if self.act_fanout < 0:
            problems.append(f"act_fanout must be >= 0, got {self.act_fanout}")
        if not 16 <= self.acc_bits <= 32:
            problems.append(f"acc_bits must be 16..32, got {self.acc_bits}")
        if problems:
            raise RowmixError("array config: " + "; ".join(problems))

    def drain_shifts(self, group: str) -> bool:
        """Whether `group`'s hold registers shift toward its drain (else the drain muxes them by lane).

        Only groups whose rows are all DSP rows shift. DSP rows are small and sit in the DSP columns,
        so the chain is short hops. LUT-lane rows are large, and a chain through them ties far-apart
        rows together. On the ECP5 the DSPs + LUT multipliers baseline placed at 54.2 MHz with the
        chain and 81.2 MHz without it, while the DSP-only array gained from it (86.3 -> 90.6 MHz).
        On the full iCE40 array nextpnr found no legal placement with the chain at all.
        """
        g = self.groups[group]
        return self.shift_drain and g.rows > 0 and g.dsp_rows == g.rows

    @property
    def copy_rows(self) -> int:
        """Rows per copy of a control broadcast (a muxing drain's picks, the first stage of the code
        read addresses): `act_fanout`, MIN_COPY_ROWS at least (0: one copy, as `act_fanout` 0)."""
        return max(self.act_fanout, MIN_COPY_ROWS) if self.act_fanout else 0

    def drain_fanout(self, group: str) -> int:
        """Rows per registered first level of a muxing drain's hold-register mux (0: one mux of every row).

        With `act_fanout` (large arrays), a group that muxes its hold registers selects among each
        `act_fanout` rows beside them, a cycle ahead, and the drain muxes those picks. One mux of
        every row pulled all 41-52 rows' hold registers (984-1248 wires) into one spot beside the
        requant unit: on the ECP5, router2's overuse there fell to about 1800 (LUT-multiplier
        baseline) and 3600 (mixed array) wires and then rose, so the LUT-lane arrays did not route.
        A pick serves at least MIN_COPY_ROWS rows: with a copy per 2 rows, the second level's 21
        picks made the path from the pick select to the requant unit the ECP5 array's critical path.
        """
        rows = self.groups[group].rows
        f = self.copy_rows if self.act_fanout >= 2 else 0
        return f if f and rows > f and not self.drain_shifts(group) else 0

    def row_acc_bits(self, group: str) -> int:
        """Width of `group`'s row accumulators and hold registers.

        `acc_bits` unless `narrow_acc`; then the least width that holds every sum of `max_k` products
        of any code the group's memory can hold with any lane activation (signed, `lane_width` bits),
        so a row's sum never wraps for any configuration, whatever the artifact. The requant unit
        adds the bias at `acc_bits` (`protocol.check_accumulator` bounds that sum)."""
        if not self.narrow_acc:
            return self.acc_bits
        bound = self.max_k * WEIGHT_MAX[group] * (1 << (self.lane_width - 1))  # |sum| <= bound
        return min(self.acc_bits, bound.bit_length() + 1)

    @property
    def lane_width(self) -> int:
        return LANE_WIDTH[self.act_bits]

    # -- derived sizes ---------------------------------------------------------------------------
    @property
    def max_steps(self) -> int:
        return self.max_k // self.t_k

    def group_max_rows(self, group: str) -> int:
        return min(self.groups[group].max_rows or self.max_rows, self.max_rows)

    def max_tiles(self, group: str) -> int:
        rows = self.groups[group].rows
        return -(-self.group_max_rows(group) // rows) if rows else 0

    @property
    def macs_per_cycle(self) -> int:
        return self.t_k * sum(g.rows for g in self.groups.values())

    def to_json(self) -> dict:
        d = asdict(self)
        defaults = {"act_fanout": 0, "row_addr": False, "read_stages": 1, "write_stages": False, "shift_drain": False,
                    "narrow_acc": False}
        for k, default in defaults.items():  # older configurations (and their artifacts) stay as they were
            if d[k] == default:
                del d[k]
        d["groups"] = {g: {k: x for k, x in asdict(v).items() if k in ("rows", "kind") or x}
                       for g, v in self.groups.items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ArrayConfig":
        try:
            return cls(**d)
        except TypeError as e:
            raise RowmixError(f"array config: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> "ArrayConfig":
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise RowmixError(f"{path}: cannot read array config ({e})") from None
        return cls.from_json(d)
