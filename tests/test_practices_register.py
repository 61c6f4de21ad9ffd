"""The practice register: reading CSV and JSON all or nothing, versions in the store, lookups by
treatment date, and the SQL view the statistics join on."""

from __future__ import annotations

import json
import random
from datetime import date, datetime
from pathlib import Path

import pytest

from gateway.claims.model import Code, HealthcareProfessional, Ident, Organisation
from gateway.claims.practitioner import PRACTICE_TYPES, family_of, practice_type
from gateway.cli import main
from gateway.practices.importing import import_file
from gateway.practices.legacy import announce, convert, migrate_once
from gateway.practices.live import LiveRegister
from gateway.practices.loading import load_register, register_from_file
from gateway.practices.model import EMPTY_REGISTER, PracticeRegister
from gateway.practices.reading import PracticeFileError, parse_practices
from gateway.practices.senders import sender_of
from gateway.store import Store
from gateway.testing.claims import default_receiver, make_claim
from tests.conftest import database_table

PSYCHOLOGIST = HealthcareProfessional(Code("PS"), "Eksempelsen", "Eva", (Ident("9144911", "HPR"),))

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "practices" / "practices.csv"

HEADER = "her_id,name,practice_type,specialties,valid_from,valid_to,direct_settlement_from"


def csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode()


def test_every_sender_kuhr_serves_is_a_practice_type_with_a_rule_family() -> None:
    senders = {
        "fastlege", "legevakt", "spesialistlege", "poliklinikk", "privat_laboratorium",
        "privat_rontgeninstitutt", "psykologspesialist", "fysioterapeut", "kiropraktor",
        "tannlege", "tannpleier", "helsestasjon", "rehabiliteringsinstitusjon",
        "behandlingsreiser_utland", "logoped", "audiopedagog", "ortoptist", "pasientreiser",
        "fritt_behandlingsvalg",
    }  # fmt: skip
    kinds = {t.code for t in PRACTICE_TYPES.values() if t.sends_claims}
    assert kinds == senders | {"uavklart"}  # the old config's untyped receivers
    assert family_of(PRACTICE_TYPES["uavklart"], []) is None
    for code in senders:
        kind = PRACTICE_TYPES[code]
        specialties = sorted(kind.specialties)[:1] if kind.specialty_required else []
        assert family_of(kind, specialties) is not None, code
    assert PRACTICE_TYPES["fastlege"] != PRACTICE_TYPES["legevakt"]
    egenandel_only = {c for c, t in PRACTICE_TYPES.items() if t.egenandel_only}
    assert egenandel_only == {"rehabiliteringsinstitusjon", "behandlingsreiser_utland"}


def test_kuhr_praksistype_codes_name_our_types() -> None:
    assert (found := practice_type("FALE")) is not None and found.code == "fastlege"
    assert (found := practice_type("LEVA")) is not None and found.code == "legevakt"
    assert (found := practice_type("OPPT")) is not None and found.egenandel_only
    assert practice_type("LARO") is None  # private lab or X-ray institute: ambiguous


def test_the_sample_register_reads_and_answers_by_date() -> None:
    register = register_from_file(SAMPLE)
    moved = "8100001"
    assert len(register.periods(moved)) == 2
    before, after = register.on(moved, date(2019, 6, 1)), register.on(moved, date(2020, 6, 1))
    assert before is not None and before.municipality == "4601"
    assert after is not None and after.municipality == "4627"
    assert register.on(moved, date(2009, 12, 31)) is None
    orthodontist = register.latest("8400007")
    assert orthodontist is not None and orthodontist.practitioner_type == "kjeveortoped"
    assert orthodontist.specialties == ("kjeveortopedi",)  # implied by KUHR's TAKJ
    lab = register.latest("8200010")
    assert lab is not None and lab.practitioner_type == "lab" and lab.owner_her_id == "8200001"
    ended = register.latest("8400016")
    assert ended is not None and ended.direct_settlement_on(date(2022, 12, 31))
    assert not ended.direct_settlement_on(date(2023, 1, 1))


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (["1,A,fastlege,,2020-01-01,,2020-01-01", "1,A,fastlege,,2021-01-01,,2020-01-01"],
         "may not overlap"),
        (["1,A,LARO,,2020-01-01,,"], "ambiguous"),
        (["1,A,snekker,,2020-01-01,,"], "not a practice type"),
        (["1,A,poliklinikk,,2020-01-01,,"], "needs its specialties"),
        (["1,A,fastlege,kjeveortopedi,2020-01-01,,"], "cannot have the specialty"),
        (["1,A,fastlege,,2020-01-01,2019-01-01,"], "before valid_from"),
        (["x1,A,fastlege,,2020-01-01,,"], "not digits"),
        (["1,A,fastlege,,2020-02-30,,"], "not a valid date"),
    ],
)  # fmt: skip
def test_a_bad_row_refuses_the_whole_file(rows: list[str], problem: str) -> None:
    good = "9,Good,fastlege,,2020-01-01,,2020-01-01"
    with pytest.raises(PracticeFileError, match=problem):
        parse_practices(csv(good, *rows), "p.csv")


def test_fields_are_checked_and_errors_name_line_and_field() -> None:
    header = HEADER + ",account,kid,owner_her_id,enh_id,operating_agreement_from"
    cases = {
        "1,A,fastlege,,2020-01-01,,,12345678901,,,,": "'account'",
        "1,A,fastlege,,2020-01-01,,,,12,,,": "a KID needs an account",
        "1,A,fastlege,,2020-01-01,,,,,7,,": "only a poliklinikk has an owner",
        "1,A,fastlege,,2020-01-01,,,,,,987654321,": "not an organisation number",
        "1,A,tannlege,,2020-01-01,,,,,,,2020-01-01": "has no driftsavtale",
        "1,A,poliklinikk,radiologi,2020-01-01,,,,,7,,": "7 is not in the register",
    }
    for row, problem in cases.items():
        with pytest.raises(PracticeFileError, match=problem) as caught:
            parse_practices(csv(row, header=header), "p.csv")
        assert "p.csv, line 2" in str(caught.value)


def test_the_header_must_name_the_agreement_and_no_unknown_column() -> None:
    with pytest.raises(PracticeFileError, match="lacks direct_settlement_from"):
        parse_practices(b"her_id,name,practice_type,valid_from\n1,A,fastlege,2020-01-01\n", "p")
    with pytest.raises(PracticeFileError, match="unknown field"):
        parse_practices(csv("1,A,fastlege,,2020-01-01,,", header=HEADER + ",kommune"), "p")
    with pytest.raises(PracticeFileError, match="empty register"):
        parse_practices(csv(), "p")


def test_json_carries_the_same_fields() -> None:
    entries: list[dict[str, object]] = [
        {
            "her_id": "8200010",
            "name": "Lab",
            "practice_type": "SYKE",
            "specialties": ["medisinsk_genetikk"],
            "valid_from": "2020-01-01",
            "direct_settlement_from": "2020-01-01",
            "owner_her_id": "8200001",
        },
        {"her_id": "8200001", "name": "RHF", "practice_type": "helseforetak",
         "valid_from": "2020-01-01", "account": None},
    ]  # fmt: skip
    practices = parse_practices(json.dumps({"practices": entries}).encode(), "p.json")
    assert practices[0].practitioner_type == "medisinsk_genetikk"
    with pytest.raises(PracticeFileError, match=r"entry 1, field 'her_id'"):
        parse_practices(json.dumps([{**entries[1], "her_id": 8200001}]).encode(), "p.json")


def test_imports_are_versions_all_or_nothing(store: Store, tmp_path: Path) -> None:
    assert load_register(store.practices) is EMPTY_REGISTER
    live = LiveRegister(store.practices)
    assert not live.current()
    first = import_file(store.practices, SAMPLE)
    assert not first.unchanged and first.rows == 29 and first.practices == 28
    assert import_file(store.practices, SAMPLE).unchanged
    register = live.current()
    assert register.version == f"practices:{first.import_id}" and len(register) == 28

    broken = tmp_path / "broken.csv"
    broken.write_bytes(SAMPLE.read_bytes() + b"1,,,,,,,,,,,,,,,,,\n")
    with pytest.raises(PracticeFileError):
        import_file(store.practices, broken)
    assert store.practices.current() is not None
    assert live.current() is register  # nothing changed: the same register object

    smaller = tmp_path / "smaller.csv"
    smaller.write_bytes(csv("8141253,Speare AS,tannlege,,2015-01-01,,2015-01-01"))
    second = import_file(store.practices, smaller)
    assert live.current().version == f"practices:{second.import_id}"
    assert len(live.current()) == 1
    again = import_file(store.practices, SAMPLE)  # a rollback is an import
    assert not again.unchanged and len(live.current()) == 28


def test_the_statistics_view_joins_a_bill_to_its_practice(store: Store) -> None:
    import_file(store.practices, SAMPLE)
    rows = store.engine.rows(
        "SELECT practice_type, practitioner_type, fagomrade, municipality, "
        "operating_agreement_from FROM practices_in_force WHERE her_id = ? "
        "AND ? BETWEEN valid_from AND COALESCE(valid_to, '9999-12-31')",
        ("8100001", "2021-03-04"),
    )
    assert [tuple(r) for r in rows] == [("fastlege", "lege", "allmennmedisin", "4627", None)]
    physio = store.engine.rows(
        "SELECT her_id FROM practices_in_force WHERE practice_type = 'fysioterapeut' "
        "AND operating_agreement_from IS NOT NULL"
    )
    assert [r[0] for r in physio] == ["8400003"]


# --- the old configuration, and the commands ------------------------------------------------------

RECEIVERS = """
[[receiver]]
her_id = "8200001"
name = "Helse Vest RHF"
account = "12030000003"

[[receiver]]
her_id = "8200010"
name = "Sjukehuslaboratoriet"
owner_her_id = "8200001"

[[receiver]]
her_id = "8141253"
name = "Speare AS"

[[receiver]]
her_id = "8100002"
name = "Byen psykologsenter"
account = "15061200018"
"""


def test_the_old_config_converts_to_a_register_that_decides_as_before(tmp_path: Path) -> None:
    receivers = tmp_path / "receivers.toml"
    receivers.write_text(RECEIVERS, encoding="utf-8")
    types = {"8141253": "tannlege", "8200010": "lab", "8300001": "psykolog"}
    content = convert(types, receivers)
    practices = {p.her_id: p for p in parse_practices(content, "converted")}
    assert practices["8141253"].name == "Speare AS"
    assert practices["8141253"].practitioner_type == "tannlege"
    lab = practices["8200010"]
    assert (lab.practice_type, lab.practitioner_type, lab.owner_her_id) == (
        "poliklinikk",
        "lab",
        "8200001",
    )
    assert practices["8200001"].practice_type == "helseforetak"
    assert practices["8300001"].practitioner_type == "psykolog"
    # a receiver the old table did not type keeps its type from the MsgHead (KITH 9060)
    untyped = practices["8100002"]
    assert (untyped.practice_type, untyped.account) == ("uavklart", "15061200018")
    register = PracticeRegister.build("converted", practices.values())
    head, _ = make_claim(
        rng=random.Random(2),
        practitioner="psykolog",
        bills=1,
        sender=Organisation("Byen", (Ident("8100002", "HER"),), PSYCHOLOGIST),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 9),
    )
    found = sender_of(register, head, date(2026, 11, 1))
    assert found.practice is untyped and found.practitioner_type == "psykolog"
    # every sender keeps being refunded: an agreement from 2000 on, as before the register
    assert all(
        p.direct_settlement_on(date(2001, 1, 1)) for p in practices.values() if p.kind.sends_claims
    )


def test_the_old_config_is_announced_and_imported_once(store: Store, tmp_path: Path) -> None:
    types = {"8141253": "tannlege"}
    assert announce({}, None, "c.toml") == ""
    first = migrate_once(store.practices, types, None, tmp_path / "c.toml")
    assert first is not None
    register = load_register(store.practices)
    assert register.latest("8141253") is not None
    assert migrate_once(store.practices, types, None, tmp_path / "c.toml") is None  # once
    text = announce(types, None, "c.toml")
    assert "gateway practices convert" in text and "[practitioners]" in text
    assert migrate_once(store.practices, {}, None, "c.toml") is None  # nothing to migrate


def test_the_practices_commands(
    store: Store, tmp_path: Path, credentials: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.toml"
    key, cert = credentials
    config.write_text(
        f"""
[identity]
name = "HELFO test"
her_id = "79768"
{database_table(store)}
[spool]
directory = "{tmp_path / "spool"}"
[outbox]
directory = "{tmp_path / "outbox"}"
[signing]
key_file = "{key}"
cert_file = "{cert}"
[practitioners]
"8141253" = "tannlege"
""",
        encoding="utf-8",
    )
    c = ["--config", str(config)]
    assert main(["practices", "show", *c]) == 0  # the old table, imported once at start
    assert "HER 8141253" in capsys.readouterr().out
    assert main(["practices", "import", str(SAMPLE), *c]) == 0
    assert "28 practices: imported, in force" in capsys.readouterr().out
    assert main(["practices", "import", str(SAMPLE), *c]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main(["practices", "show", "8100001", "--at", "2019-06-01", *c]) == 0
    shown = capsys.readouterr().out
    assert "Fjordlegene AS" in shown and "4601" in shown and "4627" not in shown
    assert main(["practices", "show", "--json", *c]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed["practices"]) == 28
    assert main(["practices", "show", "--history", *c]) == 0
    assert "practices.csv" in capsys.readouterr().out
    out = tmp_path / "converted.csv"
    assert main(["practices", "convert", "--out", str(out), *c]) == 0
    assert parse_practices(out.read_bytes(), str(out))[0].her_id == "8141253"
    broken = tmp_path / "broken.csv"
    broken.write_text(HEADER + "\n1,A,snekker,,2020-01-01,,\n", encoding="utf-8")
    assert main(["practices", "import", str(broken), *c]) == 1
    assert "not a practice type" in capsys.readouterr().err
