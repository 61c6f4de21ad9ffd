"""Where imported tariff files are kept: the interface ``importing`` and ``loading`` need.

The claims store implements it (``gateway.store.tariff_imports``, reached as
``store.tariff_imports``); the tariff code never imports the store. Every imported file is kept;
the newest import of a kind is the one in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["StoredImport", "TariffImports", "version_of"]


@dataclass(frozen=True, slots=True)
class StoredImport:
    """One imported file as kept."""

    id: int
    sha256: str
    content: bytes


class TariffImports(Protocol):
    """The imported tariff files."""

    def record(self, kind: str, source: str, content: bytes, rows: int) -> int:
        """Keep an imported file of ``kind`` (from file ``source``, ``rows`` data rows); it is
        in force from now. Returns its import id."""
        ...

    def current(self) -> dict[str, StoredImport]:
        """kind -> the newest import of that kind (the one in force)."""
        ...

    def version(self) -> str:
        """``version_of`` the imports in force: changes whenever any kind is imported again
        (cheap to poll)."""
        ...


def version_of(import_ids: dict[str, int]) -> str:
    """The tariff version of the imports in force (kind -> import id): ``kind:id,...`` in kind
    order, or ``none``."""
    return ",".join(f"{kind}:{import_ids[kind]}" for kind in sorted(import_ids)) or "none"
