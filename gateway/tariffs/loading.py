"""Build the ``TariffBook`` the rules read: from the stored imports (the daemon) or a directory.

``load_book(imports)`` uses the newest import of each kind. Its version string is
``imports.version()`` for the same imports, so the daemon can poll ``version()`` cheaply and
call ``load_book`` only when it changes. A kind never imported is simply empty in the book.

``load_book_from_dir(directory)`` parses ``takster.csv``, ``nlk-codes.csv`` and
``nlk-rates.csv`` directly, for tests and tools; ``BUNDLED_TARIFFS`` is the project's own data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

import gateway
from gateway.tariffs.csv_format import (
    TariffFileError,
    parse_nlk_codes,
    parse_nlk_rates,
    parse_takster,
)
from gateway.tariffs.imports import TariffImports, version_of
from gateway.tariffs.model import NlkEntry, NlkRate, TakstEntry, TariffBook

__all__ = ["BUNDLED_TARIFFS", "FILE_NAMES", "load_book", "load_book_from_dir"]

#: The project's own tariff data (a source checkout; not part of an installed wheel).
BUNDLED_TARIFFS: Final = Path(gateway.__file__).resolve().parents[1] / "fixtures" / "tariffs"

#: Kind -> file name in a tariff directory.
FILE_NAMES: Final = {
    "takster": "takster.csv",
    "nlk_codes": "nlk-codes.csv",
    "nlk_rates": "nlk-rates.csv",
}


def _build(
    version: str,
    contents: dict[str, tuple[bytes, str]],  # kind -> (content, source for messages)
) -> TariffBook:
    takster: list[TakstEntry] = []
    nlk_codes: list[NlkEntry] = []
    nlk_rates: list[NlkRate] = []
    if "takster" in contents:
        takster = parse_takster(*contents["takster"])
    if "nlk_codes" in contents:
        nlk_codes = parse_nlk_codes(*contents["nlk_codes"])
    if "nlk_rates" in contents:
        nlk_rates = parse_nlk_rates(*contents["nlk_rates"])
    return TariffBook.build(version, takster, nlk_codes, nlk_rates)


def load_book(imports: TariffImports) -> TariffBook:
    """The tariff data in force: the newest import of each kind.

    Raises ``TariffFileError`` if a stored import no longer parses (it did when it was
    imported; only a stricter parser can make that happen): keep the book you have.
    """
    current = imports.current()
    # One read gives both the content and the ids, so version and content always match;
    # the string is the one ``imports.version()`` gives for the same imports.
    version = version_of({kind: stored.id for kind, stored in current.items()})
    contents = {
        kind: (stored.content, f"stored {kind} import #{stored.id}")
        for kind, stored in current.items()
        if kind in FILE_NAMES
    }
    return _build(version, contents)


def load_book_from_dir(directory: Path) -> TariffBook:
    """A book from the three CSV files in ``directory`` (all three must be there). The version
    is ``files:`` and a digest of the contents, so equal data gives an equal version."""
    contents: dict[str, tuple[bytes, str]] = {}
    digest = hashlib.sha256()
    for kind, name in FILE_NAMES.items():
        path = directory / name
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise TariffFileError(
                str(path),
                f"no such file (a tariff directory holds {', '.join(FILE_NAMES.values())})",
            ) from None
        except OSError as exc:
            raise TariffFileError(str(path), f"cannot be read: {exc.strerror or exc}") from None
        contents[kind] = (content, str(path))
        digest.update(hashlib.sha256(content).digest())
    return _build(f"files:{digest.hexdigest()[:16]}", contents)
