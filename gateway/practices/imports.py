"""Where imported register files are kept: the interface ``importing`` and ``loading`` need.

The claims store implements it (``gateway.store.practices``, reached as ``store.practices``);
this package never imports the store. Every imported file is kept with its parsed rows; the
newest import is the register in force, and importing an older file again makes it so again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.practices.model import Practice

__all__ = ["PracticeImport", "PracticeImports"]


@dataclass(frozen=True, slots=True)
class PracticeImport:
    """One imported register file, as kept (without its rows)."""

    id: int
    source: str  # the file name it was imported from
    format: str  # csv | json
    sha256: str
    rows: int
    imported_at: datetime


class PracticeImports(Protocol):
    """The imported register files and their rows."""

    def record(
        self, source: str, format: str, content: bytes, practices: Sequence[Practice]
    ) -> int:
        """Keep an imported file and its checked rows, in one transaction; in force from now.
        Returns its import id."""
        ...

    def current(self) -> PracticeImport | None:
        """The import in force (the newest), or None before the first."""
        ...

    def history(self) -> list[PracticeImport]:
        """Every import, newest first."""
        ...

    def rows(self, import_id: int) -> list[Practice]:
        """The rows of one import."""
        ...

    def version(self) -> str:
        """``practices:<id>`` of the import in force, or ``none`` (cheap to poll)."""
        ...
