"""The published code list: what number each rule's code has in an AppRec ``Error``.

Two data files ship in ``gateway/rules/kodeverk/`` (described in its README.md):

- ``merknader.csv``: the per-bill codes (merknader), one row per code: the number (``V``), the
  rule's mnemonic (``Rule.code``), the Norwegian text (``DN``), the guidance, and the ids of the
  rules that use it. Numbers below ``OWN_FIRST`` are KUHR's own public merknad numbers, kept with
  KUHR's meaning; ``OWN_FIRST``-``OWN_LAST`` are the project's own. Together they form one code
  system whose identifier (``S``) is configurable: ``DEFAULT_CODE_SYSTEM`` unless the operator
  sets the OID registered for it.
- ``meldingsfeil-8221.csv``: the message-level rule rejections (the whole BehandlerKrav refused),
  each mapped to a code of KITH's own list 8221, the list of general AppRec errors.

Every rule resolves to exactly one row (``CodeList.problems``); a row that names no rule is a
retired code, kept so that a number is never given a second meaning.
"""

from __future__ import annotations

import csv
import functools
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from gateway.errors import APPREC_ERROR_CODE_SYSTEM, RECEIPTS, ConfigurationError, ReplyChannel
from gateway.rules.base import Rule, Scope

#: The code system identifier (AppRec ``Error/@S``) of ``merknader.csv`` unless configured: an
#: OID under ITU-T X.667's arc 2.25 (derived from UUID 93ccf114-364b-45c1-86fb-c2acc7f89cbc), so
#: it is unique without registration. An operator with an OID registered for the list (e.g.
#: in Helsedirektoratet's code registry) configures that one instead.
DEFAULT_CODE_SYSTEM: Final = "2.25.196460633601604657870998019269096676540"
#: KITH code list 8221, general AppRec errors (message-level rejections).
KITH_8221: Final = APPREC_ERROR_CODE_SYSTEM
#: The project's own numbers. KUHR's public merknad numbers (458, 470, 710, 766, 1478) are far
#: below; within this code system a number outside the range must be KUHR's, with its meaning.
OWN_FIRST: Final = 9001
OWN_LAST: Final = 9999

#: Names of the two lists, as ``gateway rules list`` and the README show them.
MERKNADER_LIST: Final = "merknader"
KITH_8221_LIST: Final = "8221"
MERKNADER_FILE: Final = "merknader.csv"
MESSAGE_CODES_FILE: Final = "meldingsfeil-8221.csv"
_MERKNAD_COLUMNS = ("kode", "kortnavn", "tekst", "veiledning", "regler")
_MESSAGE_COLUMNS = ("kortnavn", "kode", "tekst", "veiledning", "regler")
#: The 8221 codes gateway answers with, and their texts: one source, ``gateway.errors``.
_KITH_8221_TEXTS: Final = {
    receipt.code: receipt.text
    for receipt in RECEIPTS.values()
    if receipt.channel is ReplyChannel.APPREC and receipt.code_system == KITH_8221
}


@dataclass(frozen=True, slots=True)
class Merknad:
    """One per-bill code: number, mnemonic, Norwegian text and guidance, and its rules."""

    code: int
    mnemonic: str
    text: str
    guidance: str
    rule_ids: tuple[str, ...]

    @property
    def value(self) -> str:
        """The code as ``Error/@V`` carries it."""
        return str(self.code)

    @property
    def kuhr(self) -> bool:
        """Whether the number is KUHR's own merknad number (not the project's)."""
        return self.code < OWN_FIRST


@dataclass(frozen=True, slots=True)
class MessageCode:
    """A message-level rule rejection as a KITH 8221 code."""

    mnemonic: str
    code: str
    text: str
    guidance: str
    rule_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RuleCode:
    """A rule's code as the sender sees it: ``V``, which list it is from, and ``DN``."""

    value: str
    code_list: str  # MERKNADER_LIST or KITH_8221_LIST
    text: str


@dataclass(frozen=True, slots=True)
class CodeList:
    """Both files, read and checked; look codes up by the rules' mnemonics."""

    merknader: tuple[Merknad, ...]
    message_codes: tuple[MessageCode, ...]

    def merknad(self, mnemonic: str) -> Merknad:
        """The per-bill code of ``mnemonic`` (``Rule.code``); ``LookupError`` if it has none."""
        for entry in self.merknader:
            if entry.mnemonic == mnemonic:
                return entry
        raise LookupError(f"rule code {mnemonic!r} is not in {MERKNADER_FILE}")

    def message_code(self, mnemonic: str) -> MessageCode:
        """The 8221 code of a message-level rule's ``mnemonic``; ``LookupError`` if none."""
        for entry in self.message_codes:
            if entry.mnemonic == mnemonic:
                return entry
        raise LookupError(f"rule code {mnemonic!r} is not in {MESSAGE_CODES_FILE}")

    def code_of(self, rule: Rule) -> RuleCode:
        """What an AppRec ``Error`` carries for ``rule``; ``LookupError`` if it is not listed."""
        if rule.scope is Scope.MESSAGE:
            message = self.message_code(rule.code)
            return RuleCode(message.code, KITH_8221_LIST, message.text)
        merknad = self.merknad(rule.code)
        return RuleCode(merknad.value, MERKNADER_LIST, merknad.text)

    def problems(self, rules: Sequence[Rule]) -> list[str]:
        """What keeps ``rules`` and the list from matching one to one (empty when they do).

        Each bill rule's code is in ``merknader.csv`` and each message rule's in
        ``meldingsfeil-8221.csv``; the row lists exactly the rules with that code; no row names
        a rule that does not exist.
        """
        found: list[str] = []
        ids = {rule.id for rule in rules}
        tables: tuple[tuple[str, Scope, Sequence[Merknad | MessageCode]], ...] = (
            (MERKNADER_FILE, Scope.BILL, self.merknader),
            (MESSAGE_CODES_FILE, Scope.MESSAGE, self.message_codes),
        )
        for file, scope, entries in tables:
            by_mnemonic = {entry.mnemonic: entry for entry in entries}
            for rule in rules:
                if rule.scope is not scope:
                    continue
                entry = by_mnemonic.get(rule.code)
                if entry is None:
                    found.append(f"{rule.id}: code {rule.code!r} is not in {file}")
                elif rule.id not in entry.rule_ids:
                    found.append(f"{rule.id}: {file} row {rule.code!r} does not list it")
            for entry in entries:
                for rule_id in entry.rule_ids:
                    if rule_id not in ids:
                        found.append(f"{file} row {entry.mnemonic!r}: no rule {rule_id}")
                        continue
                    rule = next(r for r in rules if r.id == rule_id)
                    if rule.code != entry.mnemonic or rule.scope is not scope:
                        found.append(
                            f"{file} row {entry.mnemonic!r} lists {rule_id}, "
                            f"whose code is {rule.code!r} ({rule.scope.value} rule)"
                        )
        return found

    def check(self, rules: Sequence[Rule]) -> None:
        """Raise ``ConfigurationError`` unless ``rules`` and the list match one to one."""
        found = self.problems(rules)
        if found:
            raise ConfigurationError("rule code list does not match the rules: " + "; ".join(found))


def load_code_list(directory: Path | None = None) -> CodeList:
    """Read and check both files from ``directory`` (default: the ones shipped in the package).

    Raises ``ConfigurationError`` naming the file and row for anything malformed.
    """
    merknader = tuple(_merknader(_rows(directory, MERKNADER_FILE, _MERKNAD_COLUMNS)))
    message_codes = tuple(_message_codes(_rows(directory, MESSAGE_CODES_FILE, _MESSAGE_COLUMNS)))
    shared = {m.mnemonic for m in merknader} & {m.mnemonic for m in message_codes}
    if shared:
        raise ConfigurationError(
            f"codes in both {MERKNADER_FILE} and {MESSAGE_CODES_FILE}: {sorted(shared)}"
        )
    listed = [entry.rule_ids for entry in merknader] + [entry.rule_ids for entry in message_codes]
    _unique((rule_id for ids in listed for rule_id in ids), "rule id listed in more than one row")
    return CodeList(merknader, message_codes)


@functools.cache
def shipped_code_list() -> CodeList:
    """The code list shipped with gateway (read once)."""
    return load_code_list()


# --- reading ----------------------------------------------------------------------------------

_Row = tuple[str, int, dict[str, str]]  # (file, line, values)


def _rows(directory: Path | None, name: str, columns: tuple[str, ...]) -> list[_Row]:
    if directory is None:
        text = (resources.files("gateway.rules") / "kodeverk" / name).read_text(encoding="utf-8")
    else:
        try:
            text = (directory / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read code list {directory / name}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != columns:
        raise ConfigurationError(f"{name}: the columns must be {', '.join(columns)}")
    rows: list[_Row] = []
    for row in reader:
        where = f"{name} line {reader.line_num}"
        if None in row or any(value is None for value in row.values()):
            raise ConfigurationError(f"{where}: expected {len(columns)} columns")
        values = {key: value.strip() for key, value in row.items()}
        for column in columns[:3]:
            if not values[column]:
                raise ConfigurationError(f"{where}: {column} is empty")
        rows.append((name, reader.line_num, values))
    return rows


def _merknader(rows: list[_Row]) -> Iterable[Merknad]:
    _unique((v["kode"] for _, _, v in rows), f"code in {MERKNADER_FILE}")
    _unique((v["kortnavn"] for _, _, v in rows), f"kortnavn in {MERKNADER_FILE}")
    for name, line, values in rows:
        where = f"{name} line {line}"
        if not values["kode"].isdigit() or values["kode"].startswith("0"):
            raise ConfigurationError(f"{where}: kode {values['kode']!r} is not a number")
        code = int(values["kode"])
        if code > OWN_LAST:
            raise ConfigurationError(f"{where}: kode {code} is above {OWN_LAST}")
        if code < OWN_FIRST and values["kortnavn"] != str(code):
            # A KUHR number is only taken over with KUHR's meaning, under its own number.
            raise ConfigurationError(
                f"{where}: kode {code} is KUHR's merknad; its kortnavn must be {code}, "
                f"or give it a number in {OWN_FIRST}-{OWN_LAST}"
            )
        yield Merknad(
            code=code,
            mnemonic=values["kortnavn"],
            text=values["tekst"],
            guidance=values["veiledning"],
            rule_ids=tuple(values["regler"].split()),
        )


def _message_codes(rows: list[_Row]) -> Iterable[MessageCode]:
    _unique((v["kortnavn"] for _, _, v in rows), f"kortnavn in {MESSAGE_CODES_FILE}")
    for name, line, values in rows:
        code = values["kode"]
        expected = _KITH_8221_TEXTS.get(code)
        if expected is None:
            raise ConfigurationError(
                f"{name} line {line}: {code!r} is not one of the KITH 8221 codes gateway uses "
                f"({', '.join(sorted(_KITH_8221_TEXTS))})"
            )
        if values["tekst"] != expected:
            raise ConfigurationError(
                f"{name} line {line}: the 8221 text of {code} is {expected!r}, "
                f"not {values['tekst']!r}"
            )
        yield MessageCode(
            mnemonic=values["kortnavn"],
            code=code,
            text=values["tekst"],
            guidance=values["veiledning"],
            rule_ids=tuple(values["regler"].split()),
        )


def _unique(values: Iterable[str], what: str) -> None:
    repeated = sorted(value for value, count in Counter(values).items() if count > 1)
    if repeated:
        raise ConfigurationError(f"repeated {what}: {', '.join(repeated)}")
