"""Block RAMs that map onto the FPGA's memories without soft logic.

A synchronous Amaranth read port promises the old word when its address is written in the same
cycle. The block RAMs do not (ECP5 DP16KD / PDPW16KD, iCE40 SB_RAM40_4K), so Yosys keeps the promise
in logic: registers for the write data and address, an address compare and a mux on every output
bit, between the block RAM and its reader. Measured on a 72 x 64 memory with Yosys 0.70: 72 LUT4
and 137 flip-flops extra on either device, and on the full ECP5 arrays that mux sat on the critical
path (the code memories' route to their read register).

The engine never uses a word read in the cycle it is written: configuration memories (codes, row
tables, channel map) are written only while the engine is idle, an activation bank only while no
pixel issues from it, an output bank only while it is not streamed. So its memories drop the
promise: a combinational read port into one register, on a memory marked `no_rw_check`, which Yosys
merges into the block RAM's own synchronous read and leaves a collision undefined. In simulation the
pair behaves exactly like the synchronous port (the register samples the word before the write).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Signal, Value
from amaranth.lib.memory import Memory

NO_RW_CHECK = {"no_rw_check": 1}


def block_ram(shape, depth: int) -> Memory:
    return Memory(shape=shape, depth=depth, init=[], attrs=NO_RW_CHECK)


@dataclass(frozen=True)
class RegisteredRead:
    """A read port whose `data` is the word at the previous cycle's `addr` (always enabled)."""

    addr: Value
    data: Value


def registered_read(m: Module, mem: Memory, name: str) -> RegisteredRead:
    port = mem.read_port(domain="comb")
    data = Signal(mem.shape, name=f"{name}_rdata", reset_less=True)
    m.d.sync += data.eq(port.data)
    return RegisteredRead(port.addr, data)
