"""One error type for everything wrong with an artifact, naming file, layer, row and field."""

from __future__ import annotations

from ..errors import RowmixError


class ArtifactError(RowmixError):
    def __init__(
        self,
        file: str,
        message: str,
        *,
        layer: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file, self.message, self.layer, self.row, self.field = file, message, layer, row, field
        where = [f"layer '{layer}'"] if layer is not None else []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{file}: " + (", ".join(where) + ": " if where else "") + message)
