"""The shipped code list and the rule registry match one to one, and the loader refuses a list
that would put a wrong or ambiguous code in an AppRec."""

from __future__ import annotations

import dataclasses
import fnmatch
import tomllib
from datetime import date
from pathlib import Path

import pytest

from gateway.errors import ConfigurationError
from gateway.rules.base import Rule, Scope, Severity
from gateway.rules.codes import (
    DEFAULT_CODE_SYSTEM,
    KITH_8221,
    KITH_8221_LIST,
    MERKNADER_FILE,
    MERKNADER_LIST,
    MESSAGE_CODES_FILE,
    OWN_FIRST,
    OWN_LAST,
    CodeList,
    RuleCode,
    load_code_list,
    shipped_code_list,
)
from gateway.rules.registry import RULES

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "gateway" / "rules" / "kodeverk"
MERKNAD_HEADER = "kode,kortnavn,tekst,veiledning,regler\n"
MESSAGE_HEADER = "kortnavn,kode,tekst,veiledning,regler\n"
SUMKRAV_ROW = "SUMKRAV,X99,Annen feil,Kontroller summen.,SUM-001\n"


def write(tmp_path: Path, merknader: str, message: str = MESSAGE_HEADER + SUMKRAV_ROW) -> Path:
    (tmp_path / MERKNADER_FILE).write_text(merknader, encoding="utf-8")
    (tmp_path / MESSAGE_CODES_FILE).write_text(message, encoding="utf-8")
    return tmp_path


def rule(rule_id: str, code: str, scope: Scope = Scope.BILL) -> Rule:
    return Rule(
        id=rule_id,
        version=1,
        code=code,
        text="t",
        severity=Severity.REJECT_BILL if scope is Scope.BILL else Severity.REJECT_MESSAGE,
        scope=scope,
        valid_from=date(2000, 1, 1),
        valid_to=None,
        check=lambda *_: None,
    )


# --- the shipped list ---------------------------------------------------------------------------


def test_every_rule_resolves_to_exactly_one_row_and_every_row_names_real_rules() -> None:
    codes = shipped_code_list()
    assert codes.problems(RULES) == []
    for r in RULES:
        if r.scope is Scope.BILL:
            rows = [m for m in codes.merknader if r.id in m.rule_ids]
            assert [m.mnemonic for m in rows] == [r.code]
        else:
            rows_8221 = [m for m in codes.message_codes if r.id in m.rule_ids]
            assert [m.mnemonic for m in rows_8221] == [r.code]


def test_kuhrs_public_merknad_numbers_keep_their_meaning() -> None:
    codes = shipped_code_list()
    assert codes.merknad("766").rule_ids == ("DATE-766",)  # datert frem i tid (CONT-003)
    assert codes.merknad("470").rule_ids == ("TAR-011",)  # 1b within 60 min (COMB-002)
    assert codes.merknad("458").rule_ids == ("DL-004",)  # egenandel reported late (DEAD-007)
    assert codes.merknad("766").text == "Enkeltregning er datert frem i tid"
    kuhr = {m.code for m in codes.merknader if m.kuhr}
    assert kuhr == {458, 470, 766}
    own = [m.code for m in codes.merknader if not m.kuhr]
    assert all(OWN_FIRST <= code <= OWN_LAST for code in own)


def test_rows_carry_norwegian_text_and_guidance() -> None:
    for entry in shipped_code_list().merknader:
        assert entry.text and entry.guidance and entry.rule_ids, entry


def test_message_level_rejections_use_kith_8221_with_its_own_text() -> None:
    codes = shipped_code_list()
    for mnemonic in ("SUMKRAV", "ANTALLREGNINGER"):
        entry = codes.message_code(mnemonic)
        assert (entry.code, entry.text) == ("X99", "Annen feil")
    assert KITH_8221 == "2.16.578.1.12.4.1.1.8221"
    sums = next(r for r in RULES if r.code == "SUMKRAV")
    assert codes.code_of(sums) == RuleCode("X99", KITH_8221_LIST, "Annen feil")
    duplicate = next(r for r in RULES if r.code == "DUPLIKAT")
    assert codes.code_of(duplicate) == RuleCode(
        "9001", MERKNADER_LIST, "Regningen (Guid) er allerede mottatt og godkjent"
    )


def test_the_default_code_system_is_an_oid_of_its_own() -> None:
    assert DEFAULT_CODE_SYSTEM.startswith("2.25.")  # X.667: unique without registration
    assert all(part.isdigit() for part in DEFAULT_CODE_SYSTEM.split("."))
    assert DEFAULT_CODE_SYSTEM != KITH_8221


def test_the_files_ship_as_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["gateway"]
    for path in SHIPPED.iterdir():
        relative = path.relative_to(ROOT / "gateway").as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative
    assert load_code_list(SHIPPED) == shipped_code_list()


# --- what the completeness check catches ----------------------------------------------------------


def test_a_rule_without_a_row_is_a_problem() -> None:
    codes = shipped_code_list()
    extra = rule("NEW-001", "NY_KODE")
    assert codes.problems((*RULES, extra)) == [
        f"NEW-001: code 'NY_KODE' is not in {MERKNADER_FILE}"
    ]
    with pytest.raises(ConfigurationError, match="NEW-001"):
        codes.check((*RULES, extra))
    with pytest.raises(LookupError):
        codes.merknad("NY_KODE")


def test_a_row_naming_a_rule_that_does_not_exist_is_a_problem() -> None:
    codes = shipped_code_list()
    without = tuple(r for r in RULES if r.id != "TAR-009")
    assert codes.problems(without) == [f"{MERKNADER_FILE} row 'ARSGRENSE': no rule TAR-009"]


def test_a_rule_whose_row_does_not_list_it_is_a_problem() -> None:
    codes = shipped_code_list()
    copy = rule("DUP-002", "DUPLIKAT")
    assert codes.problems((*RULES, copy)) == [
        f"DUP-002: {MERKNADER_FILE} row 'DUPLIKAT' does not list it"
    ]


def test_a_row_listing_a_rule_of_another_code_or_scope_is_a_problem() -> None:
    codes = shipped_code_list()
    changed = [dataclasses.replace(r, code="766") if r.id == "DUP-001" else r for r in RULES]
    found = codes.problems(changed)
    assert f"DUP-001: {MERKNADER_FILE} row '766' does not list it" in found
    assert any("lists DUP-001, whose code is '766'" in p for p in found)

    as_message = [
        dataclasses.replace(r, scope=Scope.MESSAGE) if r.id == "DUP-001" else r for r in RULES
    ]
    assert f"DUP-001: code 'DUPLIKAT' is not in {MESSAGE_CODES_FILE}" in codes.problems(as_message)


# --- the loader refuses ambiguous or wrong lists --------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("9001,A,a,g,R-1\n9001,B,b,g,R-2\n", "repeated code"),
        ("9001,A,a,g,R-1\n9002,A,b,g,R-2\n", "repeated kortnavn"),
        ("9001,A,a,g,R-1\n9002,B,b,g,R-1\n", "rule id listed in more than one row"),
        ("766,FREMTID,a,g,R-1\n", "KUHR's merknad"),
        ("10000,A,a,g,R-1\n", "above 9999"),
        ("9x1,A,a,g,R-1\n", "not a number"),
        ("09001,A,a,g,R-1\n", "not a number"),
        ("9001,A,,g,R-1\n", "tekst is empty"),
        ("9001,A,a\n", "expected 5 columns"),
        ("9001,A,a,g,R-1,extra\n", "expected 5 columns"),
        ("9001,SUMKRAV,a,g,R-1\n", "codes in both"),
    ],
)
def test_a_malformed_merknad_list_is_refused(tmp_path: Path, rows: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_code_list(write(tmp_path, MERKNAD_HEADER + rows))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("SUMKRAV,Z42,Annen feil,g,SUM-001\n", "not one of the KITH 8221 codes"),
        ("SUMKRAV,X99,Noe annet,g,SUM-001\n", "the 8221 text of X99 is 'Annen feil'"),
    ],
)
def test_a_message_code_outside_kith_8221_is_refused(
    tmp_path: Path, row: str, message: str
) -> None:
    directory = write(tmp_path, MERKNAD_HEADER, MESSAGE_HEADER + row)
    with pytest.raises(ConfigurationError, match=message):
        load_code_list(directory)


def test_wrong_columns_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="columns must be"):
        load_code_list(write(tmp_path, "code,name\n9001,A\n"))
    write(tmp_path, MERKNAD_HEADER)
    (tmp_path / MESSAGE_CODES_FILE).unlink()
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_code_list(tmp_path)


def test_a_retired_code_stays_listed_without_rules(tmp_path: Path) -> None:
    codes = load_code_list(write(tmp_path, MERKNAD_HEADER + "9001,GAMMEL,Utgått kode,g,\n"))
    assert codes.merknad("GAMMEL").rule_ids == ()
    assert isinstance(codes, CodeList)
    assert codes.problems([rule("SUM-001", "SUMKRAV", Scope.MESSAGE)]) == []
