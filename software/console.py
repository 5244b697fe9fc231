"""Terminal output shared by the commands: a stderr console (stdout stays clean for --json) and
rich progress bars for long work."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

err = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def progress_bars(*tasks: tuple[str, int]) -> Iterator[list[Callable[[int], None]]]:
    """Progress bars on stderr (one live display); yields one `update(done)` per (description, total)."""
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True,
    ) as bar:
        ids = [bar.add_task(d, total=t) for d, t in tasks]
        yield [lambda done, i=i: bar.update(i, completed=done) for i in ids]


@contextlib.contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields `update(done)` taking the absolute count done so far."""
    with progress_bars((description, total)) as (update,):
        yield update
