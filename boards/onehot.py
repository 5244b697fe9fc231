"""A one-hot FSM with the `with fsm.State(...)` / `fsm.next = ...` shape of Amaranth's `m.FSM()`.

Amaranth encodes FSM states in binary and Yosys will not re-encode a state register that has an
initial value, so every state test decodes the whole register and every transition feeds one wide
enable. With one flip-flop per state a state test is a single wire and each state bit's next value
is an OR of its own few entry conditions: the host link's FSM, 25 states, then no longer sets the
iCE40's Fmax."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from amaranth.hdl import Module, Signal


class OneHotFSM:
    """States come into being where they are first named (`State` or `next`), as in m.FSM()."""

    def __init__(self, m: Module, init: str, name: str = "state") -> None:
        self.m, self.init, self.name = m, init, name
        self.bits: dict[str, Signal] = {}
        self._bit(init)
        self._current: str | None = None
        self._targets: list[str] = []  # states this state's body has moved to so far

    def _bit(self, state: str) -> Signal:
        if state not in self.bits:
            self.bits[state] = Signal(init=int(state == self.init), name=f"{self.name}_{state.lower()}")
        return self.bits[state]

    @contextlib.contextmanager
    def State(self, name: str) -> Iterator[None]:  # noqa: N802 (Amaranth's spelling)
        with self.m.If(self._bit(name)):
            outer = self._current, self._targets
            self._current, self._targets = name, []
            try:
                yield
            finally:
                self._current, self._targets = outer

    @property
    def next(self) -> str | None:
        return self._current

    @next.setter
    def next(self, name: str) -> None:
        if self._current is None:
            raise RuntimeError("fsm.next is set outside a state")
        # A later assignment wins, as in m.FSM(): it also clears the targets set before it (which
        # touches only the states this state moves to, so each state bit keeps a small fan-in).
        clear = [t for t in self._targets if t != name]
        self.m.d.sync += [self.bits[t].eq(0) for t in clear]
        self.m.d.sync += [self.bits[self._current].eq(name == self._current), self._bit(name).eq(1)]
        if name not in self._targets:
            self._targets.append(name)
