"""Import a practice register file: checked whole before anything is written, all or nothing.

Importing the file already in force records nothing (``unchanged``), so running the import on
every start (``make run``) is cheap. Importing an older file again makes it the register in
force: a rollback is an import, as for the tariffs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from gateway.practices.imports import PracticeImports
from gateway.practices.model import Practice
from gateway.practices.reading import PracticeFileError, detect_format, parse_practices

__all__ = ["ImportSummary", "RegisterFile", "import_file", "read_register_file"]


@dataclass(frozen=True, slots=True)
class RegisterFile:
    """A register file read and checked, not yet imported."""

    path: Path
    format: str
    content: bytes
    practices: tuple[Practice, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What importing did: the import in force, its rows and practices, whether it was new."""

    import_id: int
    rows: int
    practices: int
    unchanged: bool


def read_register_file(path: Path) -> RegisterFile:
    """Read ``path`` and check every row; raises ``PracticeFileError`` on any problem."""
    source = str(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise PracticeFileError(source, "no such file") from None
    except IsADirectoryError:
        raise PracticeFileError(source, "is a directory, not a register file") from None
    except OSError as exc:
        raise PracticeFileError(source, f"cannot be read: {exc.strerror or exc}") from None
    practices = tuple(parse_practices(content, source))
    return RegisterFile(path, detect_format(content), content, practices)


def import_file(imports: PracticeImports, path: Path) -> ImportSummary:
    """Import one register file (CSV or JSON). Raises ``PracticeFileError`` (nothing recorded)
    when it cannot be read or has a bad row, ``StorageError`` when the store cannot write."""
    checked = read_register_file(path)
    distinct = len({p.her_id for p in checked.practices})
    current = imports.current()
    if current is not None and current.sha256 == checked.sha256:
        return ImportSummary(current.id, current.rows, distinct, unchanged=True)
    import_id = imports.record(
        checked.path.name, checked.format, checked.content, checked.practices
    )
    return ImportSummary(import_id, len(checked.practices), distinct, unchanged=False)
