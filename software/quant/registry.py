"""Method names -> plug-ins (the CLI's --method)."""

from __future__ import annotations

from ..errors import RowmixError
from .bitsplit import BitSplit
from .csq import CSQ
from .dpq import DPQ
from .methods import SP2, Fixed, Method, Mixed, Ratio
from .qmse import QMSE
from .rmsmp import RMSMP

METHODS = ("fixed", "sp2", "mixed", "rmsmp", "ilmpq", "msq", "qmse", "bitsplit", "dpq", "csq")


def make_method(name: str, bits: int = 8, ratio: str | Ratio | None = None, **options) -> Method:
    """`ilmpq` keeps FIXED-4 / FIXED-8 rows only (the SP2 share goes to FIXED-4), `msq` SP2-4 /
    FIXED-4 only (the FIXED-8 share goes to FIXED-4); both are RMSMP presets. `options` go to the
    method (RMSMP: ranking, split, samples, reassign_every, seed; QMSE: usp; Bit-Split: first_last_bits,
    samples, ...; DPQ: sparsity, ...; CSQ: target_bits, per_row, ...); `bits` is the weight width of
    fixed, qmse and bitsplit."""
    r = ratio if isinstance(ratio, Ratio) else Ratio.parse(ratio or "65:30:5")
    if name == "fixed":
        return Fixed(bits)
    if name == "sp2":
        return SP2()
    if name == "mixed":
        return Mixed(r)
    if name == "rmsmp":
        return RMSMP(r, **options)
    if name == "ilmpq":
        return RMSMP(Ratio(0, r.sp2 + r.fixed4, r.fixed8, r.source), name="ilmpq", **options)
    if name == "msq":
        return RMSMP(Ratio(r.sp2, r.fixed4 + r.fixed8, 0, r.source), name="msq", **options)
    if name == "qmse":
        return QMSE(bits, **options)
    if name == "bitsplit":
        return BitSplit(bits, **options)
    if name == "dpq":
        return DPQ(**options)
    if name == "csq":
        return CSQ(**options)
    raise RowmixError(f"unknown method {name!r} (known: {', '.join(METHODS)})")
