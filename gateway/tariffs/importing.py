"""Import tariff files into the store: a new version is in force as soon as it is recorded.

A file is read and parsed completely before anything is written, so a file with one bad row
changes nothing. Importing the version already in force records nothing (``unchanged``), so
running the import on every start is cheap and keeps the import history short. Importing an
older file again makes it the version in force (a rollback is an import).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.tariffs.csv_format import (
    TariffFileError,
    detect_kind,
    parse_nlk_codes,
    parse_nlk_rates,
    parse_takster,
)
from gateway.tariffs.imports import TariffImports

__all__ = ["ImportSummary", "TariffFile", "import_file", "import_files", "read_tariff_file"]


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What importing one file did. ``import_id`` is the stored id of the version in force
    for this kind: the new one, or the existing one when ``unchanged``."""

    kind: str
    rows: int
    import_id: int
    unchanged: bool


@dataclass(frozen=True, slots=True)
class TariffFile:
    """A tariff file read and checked, not yet imported."""

    path: Path
    kind: str
    content: bytes
    rows: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def count_rows(kind: str, content: bytes, source: str) -> int:
    """Parse ``content`` as ``kind`` completely and return the number of data rows."""
    if kind == "takster":
        return len(parse_takster(content, source))
    if kind == "nlk_codes":
        return len(parse_nlk_codes(content, source))
    if kind == "nlk_rates":
        return len(parse_nlk_rates(content, source))
    raise TariffFileError(source, f"unknown kind of tariff data {kind!r}")


def read_tariff_file(path: Path) -> TariffFile:
    """Read ``path`` and check every row; raises ``TariffFileError`` on any problem."""
    source = str(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise TariffFileError(source, "no such file") from None
    except IsADirectoryError:
        raise TariffFileError(source, "is a directory, not a CSV file") from None
    except OSError as exc:
        raise TariffFileError(source, f"cannot be read: {exc.strerror or exc}") from None
    kind = detect_kind(content, source)
    return TariffFile(path, kind, content, count_rows(kind, content, source))


def _record(imports: TariffImports, checked: TariffFile) -> ImportSummary:
    current = imports.current().get(checked.kind)
    if current is not None and current.sha256 == checked.sha256:
        return ImportSummary(checked.kind, checked.rows, current.id, unchanged=True)
    import_id = imports.record(checked.kind, checked.path.name, checked.content, checked.rows)
    return ImportSummary(checked.kind, checked.rows, import_id, unchanged=False)


def import_file(imports: TariffImports, path: Path) -> ImportSummary:
    """Import one takster, NLK code or NLK rate file (kind from its header).

    Raises ``TariffFileError`` (nothing recorded) when the file cannot be read or has a bad
    row, ``StorageError`` when the store cannot write.
    """
    return _record(imports, read_tariff_file(path))


def import_files(imports: TariffImports, paths: Sequence[Path]) -> list[ImportSummary]:
    """Import several files, all or none: every file is read and checked before any is
    recorded. Two files of the same kind in one call are refused (which should win?)."""
    checked = [read_tariff_file(path) for path in paths]
    by_kind: dict[str, Path] = {}
    for file in checked:
        if file.kind in by_kind:
            raise TariffFileError(
                str(file.path),
                f"is a {file.kind} file like {by_kind[file.kind]}; import one file per kind",
            )
        by_kind[file.kind] = file.path
    return [_record(imports, file) for file in checked]
