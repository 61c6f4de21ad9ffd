"""The register in force, from the stored imports (the daemon, the commands) or from a file.

``load_register(imports)`` builds the ``PracticeRegister`` of the newest import; its version is
``imports.version()`` for that import, so a caller can poll ``version()`` cheaply and load only
when it changes (``gateway.practices.live``). Nothing imported: ``EMPTY_REGISTER``, and the
rules that need the register stand aside.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gateway.practices.imports import PracticeImports
from gateway.practices.model import EMPTY_REGISTER, PracticeRegister
from gateway.practices.reading import PracticeFileError, parse_practices

__all__ = ["load_register", "register_from_file", "version_of"]


def version_of(import_id: int | None) -> str:
    """The register version of an import id: ``practices:<id>``, or ``none``."""
    return "none" if import_id is None else f"practices:{import_id}"


def load_register(imports: PracticeImports) -> PracticeRegister:
    """The register in force: the rows of the newest import."""
    current = imports.current()
    if current is None:
        return EMPTY_REGISTER
    return PracticeRegister.build(version_of(current.id), imports.rows(current.id))


def register_from_file(path: Path) -> PracticeRegister:
    """A register straight from a file (tests, tools); version ``file:`` + a content digest."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise PracticeFileError(str(path), f"cannot be read: {exc.strerror or exc}") from None
    digest = hashlib.sha256(content).hexdigest()[:16]
    return PracticeRegister.build(f"file:{digest}", parse_practices(content, str(path)))
