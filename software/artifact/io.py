"""Reading and writing artifact directories: manifest.json + weights.npz, atomically, never a pickle."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from ..formats import GROUPS
from .errors import ArtifactError
from .manifest import arrays_of, bias_key, codes_key, from_manifest, to_manifest
from .spec import FORMAT, FORMAT_VERSION, Artifact
from .validate import MANIFEST, WEIGHTS, validate


@cache
def schema() -> dict[str, Any]:
    """The manifest's JSON Schema (shipped as rowmix/artifact/manifest.schema.json)."""
    return json.loads(resources.files(__package__).joinpath("manifest.schema.json").read_text())


def sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _schema_error(m: dict[str, Any], err: jsonschema.ValidationError) -> ArtifactError:
    path = list(err.absolute_path)
    layer = row = None
    if len(path) >= 2 and path[0] == "ops" and isinstance(path[1], int):
        op = m["ops"][path[1]]
        layer = op.get("name", f"#{path[1]}") if isinstance(op, dict) else f"#{path[1]}"
        path = path[2:]
        if len(path) >= 2 and path[0] == "rows" and isinstance(path[1], int):
            row, path = path[1], path[2:]
    field = ".".join(str(p) for p in path) or None
    return ArtifactError(MANIFEST, err.message, layer=layer, row=row, field=field)


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not root.is_dir():
        raise ArtifactError(str(root), "artifact directory does not exist")
    try:
        text = path.read_text()
    except OSError as e:
        raise ArtifactError(MANIFEST, f"cannot read: {e.strerror or e}") from None
    try:
        m = json.loads(text)
    except json.JSONDecodeError as e:
        raise ArtifactError(MANIFEST, f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ArtifactError(MANIFEST, f"not a rowmix artifact manifest (field 'format' must be '{FORMAT}')")
    if m.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(MANIFEST, f"unsupported format version {m.get('format_version')!r}; "
                            f"this rowmix reads version {FORMAT_VERSION}", field="format_version")
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(m))
    if err is not None:
        raise _schema_error(m, err)
    return m


def _read_arrays(root: Path, m: dict[str, Any]) -> dict[str, np.ndarray]:
    listed: dict[str, Any] = m["arrays"]
    for op in m["ops"]:
        if op["op"] in ("conv", "linear"):
            for key in [codes_key(op["name"], g) for g in GROUPS] + [bias_key(op["name"])]:
                if key not in listed:
                    raise ArtifactError(MANIFEST, f"array '{key}' is not listed in 'arrays'", layer=op["name"], field="arrays")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(root / WEIGHTS, allow_pickle=False) as npz:
            present = set(npz.files)
            for key, meta in listed.items():
                if key not in present:
                    raise ArtifactError(WEIGHTS, f"array '{key}' listed in manifest.json is missing", field=key)
                try:
                    a = npz[key]
                except ValueError as e:
                    if "allow_pickle" in str(e):
                        raise ArtifactError(WEIGHTS, f"array '{key}' holds pickled Python objects; "
                                            "rowmix never unpickles (allow_pickle=False)", field=key) from None
                    raise ArtifactError(WEIGHTS, f"array '{key}' is unreadable: {e}", field=key) from None
                if str(a.dtype) != meta["dtype"] or list(a.shape) != meta["shape"]:
                    raise ArtifactError(WEIGHTS, f"array '{key}' is {a.dtype}{list(a.shape)}, manifest.json says "
                                        f"{meta['dtype']}{meta['shape']}", field=key)
                if sha256(a) != meta["sha256"]:
                    raise ArtifactError(WEIGHTS, f"array '{key}' fails its sha256 check (file edited or corrupt)", field=key)
                arrays[key] = a
    except FileNotFoundError:
        raise ArtifactError(WEIGHTS, "file is missing") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise ArtifactError(WEIGHTS, f"not a readable npz archive (truncated or corrupt: {e})") from None
    return arrays


def read_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Load and fully validate an artifact directory; raises ArtifactError naming what is wrong."""
    root = Path(path)
    try:
        m = _read_manifest(root)
        art = from_manifest(m, _read_arrays(root, m))
        validate(art)
    except ArtifactError as e:
        if e.file in (MANIFEST, WEIGHTS):
            raise ArtifactError(str(root / e.file), e.message, layer=e.layer, row=e.row, field=e.field) from None
        raise
    return art


def write_artifact(art: Artifact, path: str | os.PathLike[str]) -> Path:
    """Write atomically: build in a temporary sibling directory, validate it by reading it back, then
    rename it into place. A crash leaves either the old artifact or the new one, never half of one."""
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        arrays = arrays_of(art)
        checksums = {k: {"dtype": str(a.dtype), "shape": list(a.shape), "sha256": sha256(a)} for k, a in arrays.items()}
        np.savez_compressed(tmp / WEIGHTS, **arrays)
        (tmp / MANIFEST).write_text(json.dumps(to_manifest(art, checksums), indent=1) + "\n")
        read_artifact(tmp)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def files_digest(root: Path, patterns: tuple[str, ...]) -> str:
    """A short digest of the files under `root` that match the glob `patterns`, by relative path and
    content: the identity of generated or source trees that decide whether a result can be reused."""
    h = hashlib.sha256()
    for f in sorted({f for p in patterns for f in root.glob(p) if f.is_file()}):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def replace_dir(new: Path, target: Path) -> None:
    """Move a finished directory to `target`, replacing what was there, with no window in which
    `target` holds a partial result."""
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.rename(target, old / "x")
        os.rename(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(new, target)
