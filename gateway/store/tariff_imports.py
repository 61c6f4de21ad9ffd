"""The ``tariff_imports`` table: the store's side of ``gateway.tariffs.imports.TariffImports``."""

from __future__ import annotations

import hashlib

from gateway.store.engine import Engine
from gateway.store.rows import stored_moment
from gateway.tariffs.imports import StoredImport, version_of

__all__ = ["StoredTariffImports"]


class StoredTariffImports:
    """Every imported tariff file, kept in the claims database; the newest of a kind in force."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, kind: str, source: str, content: bytes, rows: int) -> int:
        """Keep an imported tariff file; it is in force from now (the newest of its kind)."""
        with self._engine.transaction(f"could not store tariff import {source}") as tx:
            return tx.insert(
                "INSERT INTO tariff_imports(kind, source, sha256, rows, imported_at, content) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (kind, source, hashlib.sha256(content).hexdigest(), rows, stored_moment(), content),
            )

    def current(self) -> dict[str, StoredImport]:
        """kind -> the newest import of each kind."""
        rows = self._engine.rows(
            "SELECT t.kind, t.id, t.sha256, t.content FROM tariff_imports t "
            "WHERE t.id = (SELECT MAX(id) FROM tariff_imports WHERE kind = t.kind)"
        )
        return {str(k): StoredImport(int(i), str(sha), bytes(c)) for k, i, sha, c in rows}

    def version(self) -> str:
        """Changes whenever any kind of tariff data is imported again (cheap to poll)."""
        rows = self._engine.rows("SELECT kind, MAX(id) FROM tariff_imports GROUP BY kind")
        return version_of({str(kind): int(last) for kind, last in rows})
