"""Build directories that appear complete or not at all: every board build (bitstream or Vivado
project) is made in a temporary sibling of its output and renamed into place at the end."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..artifact import replace_dir
from ..hardware.config import ArrayConfig


@contextlib.contextmanager
def staged_build(out: str | Path) -> Iterator[Path]:
    """Yields the working directory; on success it replaces `out`, on any error it is removed."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.build-"))
    try:
        yield work
        work.chmod(0o755)  # mkdtemp makes it private
        replace_dir(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def write_build_record(work: Path, cfg: ArrayConfig, result: dict[str, Any]) -> None:
    """array.json (what `rowmix run --rtl` reads) and build.json beside the build products."""
    (work / "array.json").write_text(json.dumps(cfg.to_json(), indent=1) + "\n")
    (work / "build.json").write_text(json.dumps(result, indent=1) + "\n")
