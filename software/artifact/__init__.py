"""The artifact: a versioned directory (manifest.json + weights.npz) that hands a quantized network
from the front end to the golden model, the hardware generator and the simulator (DESIGN section 3)."""

from .errors import ArtifactError
from .summary import summarize
from .io import files_digest, read_artifact, replace_dir, schema, sha256, write_artifact
from .spec import (
    FORMAT,
    FORMAT_VERSION,
    Add,
    Artifact,
    AvgPool,
    Flatten,
    GlobalAvgPool,
    InputSpec,
    MacLayer,
    MaxPool,
    Op,
    RowTable,
    Shortcut,
    TensorSpec,
)

__all__ = [
    "ArtifactError", "summarize", "files_digest", "read_artifact", "replace_dir", "schema", "sha256", "write_artifact",
    "FORMAT", "FORMAT_VERSION", "Add", "Artifact", "AvgPool", "Flatten", "GlobalAvgPool", "InputSpec",
    "MacLayer", "MaxPool", "Op", "RowTable", "Shortcut", "TensorSpec",
]
