"""Make Yosys-written Verilog start cleanly in Icarus Verilog.

Yosys's `write_verilog` (used by Amaranth) makes every `always @*` block sensitive to a dummy
register declared `= 0`, meant to run each block once at time zero. Icarus applies a declaration
initialiser without an event, so a combinational block whose real inputs are all registers that
keep their initial values (a ready signal decoded from an FSM state, say) stays X until one of them
changes. The UART link's first byte met exactly that: `ready` was X when the byte arrived and the
byte was consumed twice. Assigning the dummy register from an `initial #0` gives the event."""

from __future__ import annotations

import re
from pathlib import Path

_TRIGGER = re.compile(r"reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;")


def icarus_fixup(text: str) -> str:
    return _TRIGGER.sub(lambda m: f"reg {m.group(1)};\n  initial #0 {m.group(1)} = 1'h0;", text)


def icarus_copy(src: Path, dst: Path) -> Path:
    """`src` with the fix-up applied, written to `dst` (for the simulator only; synthesis keeps `src`)."""
    dst.write_text(icarus_fixup(src.read_text()))
    return dst
